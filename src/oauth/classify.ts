// One SSO callback's outcome, decided from what better-auth answered (the
// `error=` of its redirect) and what the gateway saw of the provider on the
// way (the token endpoint's error, the ID token's failed check, unreachable
// endpoints). Pure: src/oauth/observer.ts gathers the facts.
import { IdTokenCause, OAuthCallbackReason } from '../reasons.ts'
import type { OAuthEndpoint } from '../reasons.ts'

/** What the gateway saw of the provider while better-auth handled one callback. */
export type CallbackTrace = {
  provider: string
  /** The token endpoint answered an OAuth error (RFC 6749 §5.2). */
  tokenError?: { error: string; description?: string; status: number }
  /** An endpoint that could not be reached or answered 5xx. */
  unavailable?: OAuthEndpoint
  /** The check an ID token failed, re-run with jose after better-auth refused it. */
  idTokenCause?: IdTokenCause
}

export type Classified = {
  reason: OAuthCallbackReason
  idTokenCause?: IdTokenCause
  /** The provider's own error code (bounded, for the log line only). */
  providerError?: string
  providerErrorDescription?: string
}

/** better-auth's `error=` codes that mean the state did not check out (src/state.ts, oauth2/state.ts). */
const STATE_ERRORS = new Set(['state_mismatch', 'state_not_found', 'state_invalid', 'state_security_mismatch', 'please_restart_the_process'])
const PKCE = /pkce|code.?verifier|code.?challenge/i
const REDIRECT_URI = /redirect.?ur[il]/i

const bounded = (s: string | undefined, n: number): string | undefined => (s === undefined ? undefined : s.slice(0, n))

/**
 * @param errorCode the `error` of better-auth's redirect (undefined: signed in)
 * @param providerError the `error` the provider put on the callback URL, if any
 */
export function classifyCallback(
  errorCode: string | undefined,
  query: { error?: string; error_description?: string },
  trace: CallbackTrace,
): Classified {
  if (errorCode === undefined) return { reason: OAuthCallbackReason.none }
  const fromProvider = query.error !== undefined && query.error === errorCode
  if (fromProvider) {
    const described = { providerError: bounded(query.error, 64), providerErrorDescription: bounded(query.error_description, 200) }
    if (query.error === 'access_denied') return { reason: OAuthCallbackReason.access_denied, ...described }
    if (query.error === 'redirect_uri_mismatch') return { reason: OAuthCallbackReason.redirect_uri_mismatch, ...described }
    if (query.error === 'invalid_request' && PKCE.test(query.error_description ?? '')) return { reason: OAuthCallbackReason.pkce_verifier_missing, ...described }
    if (query.error === 'temporarily_unavailable' || query.error === 'server_error') return { reason: OAuthCallbackReason.provider_unavailable, ...described }
    return { reason: OAuthCallbackReason.provider_error, ...described }
  }
  if (STATE_ERRORS.has(errorCode)) return { reason: OAuthCallbackReason.state_mismatch, providerError: undefined }
  if (trace.unavailable !== undefined) return { reason: OAuthCallbackReason.provider_unavailable }
  switch (errorCode) {
    case 'invalid_code': {
      const te = trace.tokenError
      if (te === undefined) return { reason: OAuthCallbackReason.provider_error, providerError: errorCode }
      const described = { providerError: bounded(te.error, 64), providerErrorDescription: bounded(te.description, 200) }
      if (te.error === 'redirect_uri_mismatch' || (te.error === 'invalid_grant' && REDIRECT_URI.test(te.description ?? ''))) {
        return { reason: OAuthCallbackReason.redirect_uri_mismatch, ...described }
      }
      if ((te.error === 'invalid_grant' || te.error === 'invalid_request') && PKCE.test(te.description ?? '')) {
        return { reason: OAuthCallbackReason.pkce_verifier_missing, ...described }
      }
      if (te.error === 'invalid_grant') return { reason: OAuthCallbackReason.invalid_grant, ...described }
      if (te.status >= 500 || te.error === 'temporarily_unavailable' || te.error === 'server_error') {
        return { reason: OAuthCallbackReason.provider_unavailable, ...described }
      }
      return { reason: OAuthCallbackReason.provider_error, ...described }
    }
    case 'unable_to_get_user_info':
      if (trace.idTokenCause !== undefined) return { reason: OAuthCallbackReason.id_token_invalid, idTokenCause: trace.idTokenCause }
      return { reason: OAuthCallbackReason.provider_error, providerError: errorCode }
    // The `iss` authorization response parameter (RFC 9207) names another issuer.
    case 'issuer_mismatch':
      return { reason: OAuthCallbackReason.id_token_invalid, idTokenCause: IdTokenCause.issuer }
    case 'nonce_binding_missing':
      return { reason: OAuthCallbackReason.id_token_invalid, idTokenCause: IdTokenCause.nonce }
    case 'email_not_verified':
      return { reason: OAuthCallbackReason.email_not_verified }
    case 'account_not_linked':
      return { reason: OAuthCallbackReason.account_not_linked }
    default:
      return { reason: OAuthCallbackReason.provider_error, providerError: bounded(errorCode, 64) }
  }
}
