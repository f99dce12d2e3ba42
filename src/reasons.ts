// The closed vocabularies. Every value here is a Prometheus label value, a log
// field and a span attribute; the docs/reasons.md and docs/metrics.md tables are
// checked against this file by test/readme.test.ts. Add values; never rename them.

export const Mechanism = {
  session: 'session',
  jwt: 'jwt',
  none: 'none',
  /** Single sign-on through an OpenID Connect provider's callback. */
  oauth: 'oauth',
} as const
export type Mechanism = (typeof Mechanism)[keyof typeof Mechanism]

export const Outcome = {
  allowed: 'allowed',
  denied: 'denied',
  error: 'error',
} as const
export type Outcome = (typeof Outcome)[keyof typeof Outcome]

/** Why a session cookie did not yield a session. */
export const SessionReason = {
  no_cookie: 'no_cookie',
  cross_site_no_cookie: 'cross_site_no_cookie',
  cookie_name_mismatch: 'cookie_name_mismatch',
  malformed_cookie: 'malformed_cookie',
  bad_signature: 'bad_signature',
  session_not_found: 'session_not_found',
  session_expired: 'session_expired',
  user_not_found: 'user_not_found',
  // The causes of "401 after sign-in" that hid under the reasons above (docs/reasons.md, "Causes covered").
  cookie_not_returned: 'cookie_not_returned',
  credentials_omitted: 'credentials_omitted',
  server_side_no_cookie: 'server_side_no_cookie',
  mobile_no_cookie: 'mobile_no_cookie',
  duplicate_session_cookie: 'duplicate_session_cookie',
  session_data_without_token: 'session_data_without_token',
  fresh_session_not_found: 'fresh_session_not_found',
} as const
export type SessionReason = (typeof SessionReason)[keyof typeof SessionReason]

/** Why a bearer JWT was rejected. */
export const JwtReason = {
  malformed: 'malformed',
  alg_not_allowed: 'alg_not_allowed',
  kid_unknown: 'kid_unknown',
  bad_signature: 'bad_signature',
  expired: 'expired',
  not_yet_valid: 'not_yet_valid',
  issuer_mismatch: 'issuer_mismatch',
  audience_mismatch: 'audience_mismatch',
} as const
export type JwtReason = (typeof JwtReason)[keyof typeof JwtReason]

/**
 * A bearer JWT that verifies, refused because the session it was minted for
 * (its `sid` claim) has ended: signed out, revoked, password changed, user
 * deleted, expired. Kept apart from JwtReason, which a stateless verifier (an
 * upstream with the JWKS alone) can name from the token itself.
 */
export const JwtSessionReason = {
  session_revoked: 'session_revoked',
} as const
export type JwtSessionReason = (typeof JwtSessionReason)[keyof typeof JwtSessionReason]

/** Every value that `authgw_jwt_validation_failures_total{reason}` may carry. */
export const JwtRefusalReason = {
  ...JwtReason,
  ...JwtSessionReason,
} as const
export type JwtRefusalReason = (typeof JwtRefusalReason)[keyof typeof JwtRefusalReason]

/**
 * A better-auth endpoint refused a session that the gateway's own check, made
 * against a store known to be answering, found valid (source="auth",
 * mechanism="session"). Never a credential problem of the client: the two
 * verifiers disagree (a failed session refresh write, a version skew).
 */
export const AuthDisagreementReason = {
  auth_disagrees: 'auth_disagrees',
} as const

/** Every value that `authgw_session_nulls_total{reason}` may carry. */
export const SessionNullReason = {
  ...SessionReason,
  ...AuthDisagreementReason,
} as const
export type SessionNullReason = (typeof SessionNullReason)[keyof typeof SessionNullReason]

/** Neither credential was presented on a protected route. */
export const NoCredentialReason = {
  no_credentials: 'no_credentials',
} as const

/** 401s produced by better-auth endpoints (source="auth") that are not session reasons. */
export const AuthReason = {
  invalid_credentials: 'invalid_credentials',
  auth_rejected: 'auth_rejected',
} as const

/** 401s produced by the upstream API (source="upstream"). */
export const UpstreamRejectReason = {
  upstream_rejected: 'upstream_rejected',
} as const

/** Every value that `authgw_unauthorized_total{reason}` may carry. */
export const UnauthorizedReason = {
  ...SessionReason,
  ...AuthDisagreementReason,
  ...JwtReason,
  ...JwtSessionReason,
  ...NoCredentialReason,
  ...AuthReason,
  ...UpstreamRejectReason,
} as const
export type UnauthorizedReason = (typeof UnauthorizedReason)[keyof typeof UnauthorizedReason]

/** Infrastructure failures while deciding: answered 503, never 401. */
export const UnavailableReason = {
  store_unavailable: 'store_unavailable',
  jwks_unavailable: 'jwks_unavailable',
  /** An SSO provider's discovery, token, JWKS or userinfo endpoint unreachable (mechanism oauth). */
  provider_unavailable: 'provider_unavailable',
} as const
export type UnavailableReason = (typeof UnavailableReason)[keyof typeof UnavailableReason]

export const UnauthorizedSource = {
  gateway: 'gateway',
  auth: 'auth',
  upstream: 'upstream',
} as const
export type UnauthorizedSource = (typeof UnauthorizedSource)[keyof typeof UnauthorizedSource]

export const UpstreamFailureReason = {
  timeout: 'timeout',
  connect_error: 'connect_error',
  reset: 'reset',
  bad_response: 'bad_response',
} as const
export type UpstreamFailureReason = (typeof UpstreamFailureReason)[keyof typeof UpstreamFailureReason]

/** Why an upstream request was sent a second time (`authgw_upstream_retries_total{reason}`). */
export const UpstreamRetryReason = {
  /** A kept-alive connection the upstream had closed: reset before any response byte. */
  reset_reused_socket: 'reset_reused_socket',
} as const
export type UpstreamRetryReason = (typeof UpstreamRetryReason)[keyof typeof UpstreamRetryReason]

/** Access-line `outcome` of a request whose client left before the answer was complete (status 499). */
export const RequestOutcome = {
  client_closed: 'client_closed',
} as const

export const TokenKind = { jwt: 'jwt', session: 'session' } as const
export type TokenKind = (typeof TokenKind)[keyof typeof TokenKind]

export const TokenVia = {
  token_endpoint: 'token_endpoint',
  jwt_header: 'jwt_header',
  gateway_exchange: 'gateway_exchange',
  sign_in: 'sign_in',
  sign_up: 'sign_up',
} as const
export type TokenVia = (typeof TokenVia)[keyof typeof TokenVia]

export const TokenIssueFailureReason = {
  no_session: 'no_session',
  signing_failed: 'signing_failed',
  store_unavailable: 'store_unavailable',
} as const
export type TokenIssueFailureReason = (typeof TokenIssueFailureReason)[keyof typeof TokenIssueFailureReason]

export const SignInOutcome = { success: 'success', failure: 'failure' } as const
export type SignInOutcome = (typeof SignInOutcome)[keyof typeof SignInOutcome]

export const SignInMethod = { email: 'email', oauth: 'oauth' } as const
export type SignInMethod = (typeof SignInMethod)[keyof typeof SignInMethod]

/** `reason` on sign-in attempts; `none` for successes. */
export const SignInReason = {
  none: 'none',
  invalid_credentials: 'invalid_credentials',
  rate_limited: 'rate_limited',
  origin_rejected: 'origin_rejected',
  invalid_request: 'invalid_request',
  store_unavailable: 'store_unavailable',
  error: 'error',
} as const
export type SignInReason = (typeof SignInReason)[keyof typeof SignInReason]

/**
 * Why an SSO callback did not sign the user in (mechanism oauth): the label
 * `reason` of `authgw_oauth_callbacks_total` and, for method="oauth", of
 * `authgw_sign_in_attempts_total`; `none` on success.
 */
export const OAuthCallbackReason = {
  none: 'none',
  state_mismatch: 'state_mismatch',
  pkce_verifier_missing: 'pkce_verifier_missing',
  redirect_uri_mismatch: 'redirect_uri_mismatch',
  invalid_grant: 'invalid_grant',
  id_token_invalid: 'id_token_invalid',
  provider_unavailable: 'provider_unavailable',
  email_not_verified: 'email_not_verified',
  account_not_linked: 'account_not_linked',
  access_denied: 'access_denied',
  provider_error: 'provider_error',
} as const
export type OAuthCallbackReason = (typeof OAuthCallbackReason)[keyof typeof OAuthCallbackReason]

/** `outcome` of `authgw_oauth_callbacks_total`: `error` is the provider's fault (503-class), never the user's. */
export const OAuthCallbackOutcome = { success: 'success', failure: 'failure', error: 'error' } as const
export type OAuthCallbackOutcome = (typeof OAuthCallbackOutcome)[keyof typeof OAuthCallbackOutcome]

/** Which check an ID token failed (`idTokenCause` on the log line, `authgw.oauth.id_token_cause` on the span). */
export const IdTokenCause = {
  issuer: 'issuer',
  audience: 'audience',
  nonce: 'nonce',
  signature: 'signature',
  expiry: 'expiry',
  claims: 'claims',
} as const
export type IdTokenCause = (typeof IdTokenCause)[keyof typeof IdTokenCause]

/** `endpoint` of `authgw_oauth_provider_request_duration_seconds`. */
export const OAuthEndpoint = { discovery: 'discovery', token: 'token', jwks: 'jwks', userinfo: 'userinfo' } as const
export type OAuthEndpoint = (typeof OAuthEndpoint)[keyof typeof OAuthEndpoint]

export const JwksRefreshOutcome = { success: 'success', failure: 'failure', suppressed: 'suppressed' } as const
export type JwksRefreshOutcome = (typeof JwksRefreshOutcome)[keyof typeof JwksRefreshOutcome]

export const DbOperation = {
  session_lookup: 'session_lookup',
  token_mint: 'token_mint',
  session_refresh: 'session_refresh',
  jwks_fetch: 'jwks_fetch',
  health_check: 'health_check',
  migrate: 'migrate',
  pool: 'pool',
} as const
export type DbOperation = (typeof DbOperation)[keyof typeof DbOperation]

export const RateLimitReason = {
  rate_limited: 'rate_limited',
  /** The limited client address is a TRUST_PROXY hop's: everyone behind that proxy shares one bucket. */
  client_ip_unresolved: 'client_ip_unresolved',
} as const
export type RateLimitReason = (typeof RateLimitReason)[keyof typeof RateLimitReason]

/** Reasons of 4xx answers that are about the request itself, not about credentials. */
export const RequestErrorReason = {
  bad_request: 'bad_request',
  not_found: 'not_found',
  body_too_large: 'body_too_large',
  unsupported_media_type: 'unsupported_media_type',
  empty_body: 'empty_body',
  request_timeout: 'request_timeout',
  header_too_large: 'header_too_large',
} as const
export type RequestErrorReason = (typeof RequestErrorReason)[keyof typeof RequestErrorReason]

/** Why a browser will drop a Set-Cookie better-auth sent (`authgw_set_cookie_problems_total{problem}`). */
export const SetCookieProblem = {
  domain_public_suffix: 'domain_public_suffix',
  domain_not_host_suffix: 'domain_not_host_suffix',
  domain_ip: 'domain_ip',
  secure_over_http: 'secure_over_http',
  samesite_none_without_secure: 'samesite_none_without_secure',
  partitioned_without_secure: 'partitioned_without_secure',
  too_large: 'too_large',
  max_age_shorter_than_session: 'max_age_shorter_than_session',
} as const
export type SetCookieProblem = (typeof SetCookieProblem)[keyof typeof SetCookieProblem]

export const valuesOf = <T extends Record<string, string>>(o: T): Array<T[keyof T]> =>
  Object.values(o) as Array<T[keyof T]>

/** The synthetic sign-in probe's steps, in run order (`authgw_probe_*{step}`; docs/adr/0050-sign-in-probe.md). */
export const ProbeStep = {
  sign_in: 'sign_in',
  get_session: 'get_session',
  cookie_call: 'cookie_call',
  token: 'token',
  jwks_verify: 'jwks_verify',
  bearer_call: 'bearer_call',
  sign_out: 'sign_out',
  revoked: 'revoked',
} as const
export type ProbeStep = (typeof ProbeStep)[keyof typeof ProbeStep]

export const ProbeRunOutcome = { success: 'success', failure: 'failure' } as const
export type ProbeRunOutcome = (typeof ProbeRunOutcome)[keyof typeof ProbeRunOutcome]

/**
 * The probe's own failure reasons, for answers that carry no closed reason of
 * the gateway: no answer in time, no connection, a JWT that does not verify
 * against the public JWKS, an answer the step did not expect, a cookie still
 * accepted after sign-out.
 */
export const ProbeOwnReason = {
  timeout: 'timeout',
  connect_error: 'connect_error',
  jwks_verify_failed: 'jwks_verify_failed',
  unexpected_answer: 'unexpected_answer',
  not_revoked: 'not_revoked',
} as const

/** Every value that `authgw_probe_failures_total{reason}` may carry: the gateway's closed reasons and the probe's own. */
export const ProbeFailureReason = {
  ...UnauthorizedReason,
  ...UnavailableReason,
  ...UpstreamFailureReason,
  ...RequestErrorReason,
  ...RateLimitReason,
  ...ProbeOwnReason,
} as const
export type ProbeFailureReason = (typeof ProbeFailureReason)[keyof typeof ProbeFailureReason]
