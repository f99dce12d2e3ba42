// Counting what better-auth answered: sign-in attempts, tokens issued and
// refused, rate limiting. Steps of the /api/auth/* mount (see mount.ts).
import { RateLimitReason, SignInOutcome, SignInReason, TokenIssueFailureReason, TokenKind, TokenVia } from '../reasons.ts'
import type { SignInReason as SignInReasonT } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { exemplarOf } from './decision.ts'
import type { AuthExchange } from './exchange.ts'
import { AuthRoute } from './routes.ts'

export function countRateLimited(x: AuthExchange, metrics: Metrics): void {
  if (x.status !== 429) return
  // One bucket for everyone behind a proxy is a misconfiguration, not an attack.
  metrics.rateLimited(x.route, x.clientIpUnresolved === true ? RateLimitReason.client_ip_unresolved : RateLimitReason.rate_limited)
  if (x.clientIpUnresolved === true) x.request.authgw.detail = { ...x.request.authgw.detail, clientIpUnresolved: true }
}

export function countSignIn(x: AuthExchange, metrics: Metrics): void {
  if (x.route !== AuthRoute.signIn) return
  metrics.signInAttempt(x.status === 200 ? SignInOutcome.success : SignInOutcome.failure, signInReason(x.status))
}

export function countTokens(x: AuthExchange, metrics: Metrics): void {
  switch (x.route) {
    case AuthRoute.signIn:
      if (x.status === 200) metrics.tokenIssued(TokenKind.session, TokenVia.sign_in)
      break
    case AuthRoute.signUp:
      if (x.status === 200) metrics.tokenIssued(TokenKind.session, TokenVia.sign_up)
      break
    case AuthRoute.token:
      if (x.status === 200) metrics.tokenIssued(TokenKind.jwt, TokenVia.token_endpoint)
      else metrics.tokenIssueFailure(x.status === 401 ? TokenIssueFailureReason.no_session : TokenIssueFailureReason.signing_failed, exemplarOf())
      break
  }
}

export function signInReason(status: number): SignInReasonT {
  if (status === 200) return SignInReason.none
  if (status === 401) return SignInReason.invalid_credentials
  if (status === 429) return SignInReason.rate_limited
  if (status === 403) return SignInReason.origin_rejected
  if (status === 400 || status === 422 || status === 413 || status === 415) return SignInReason.invalid_request
  if (status === 503) return SignInReason.store_unavailable
  return SignInReason.error
}
