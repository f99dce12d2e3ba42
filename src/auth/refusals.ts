// better-auth's refusals: every 401 it sends is counted through the one way
// to deny, a null session from /get-session is counted as a session null, and
// both carry the fields that explain "401 right after sign-in" (which cookies
// came, from where, better-auth's code). Steps of the /api/auth/* mount.
import type { FastifyRequest } from 'fastify'
import { AuthDisagreementReason, AuthReason, Mechanism, UnauthorizedSource } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { recordUnauthorized } from './decision.ts'
import { errorCode } from './exchange.ts'
import type { AuthExchange } from './exchange.ts'
import { AuthRoute } from './routes.ts'
import { parseCookieHeader } from './session.ts'

/** /get-session answered 200 with a null session: a session null, labelled with the store's reason. */
export function countNullSession(x: AuthExchange, metrics: Metrics): void {
  if (x.route !== AuthRoute.getSession || x.status !== 200 || x.refusal === undefined) return
  metrics.sessionNull(x.refusal)
  const a = x.request.authgw
  a.reason = x.refusal
  a.mechanism = Mechanism.session
  a.detail = explainRefusal(x.request, errorCode(x.body))
}

/**
 * A 401 from better-auth. On /token and /get-session (checked before
 * forwarding), and whenever the store says the session is fine, the refusal
 * is a session one; anything else is better-auth rejecting the request.
 */
export function countUnauthorized(x: AuthExchange, metrics: Metrics): void {
  if (x.status !== 401) return
  const { request, refusal } = x
  const checkedBefore = x.route === AuthRoute.token || x.route === AuthRoute.getSession
  if (refusal !== undefined && (checkedBefore || refusal === AuthDisagreementReason.auth_disagrees)) {
    metrics.sessionNull(refusal)
    recordUnauthorized(metrics, request, UnauthorizedSource.auth, Mechanism.session, refusal)
    request.authgw.detail = explainRefusal(request, errorCode(x.body))
  } else {
    const reason = x.route === AuthRoute.signIn ? AuthReason.invalid_credentials : AuthReason.auth_rejected
    recordUnauthorized(metrics, request, UnauthorizedSource.auth, Mechanism.none, reason)
    request.authgw.detail = { code: errorCode(x.body) }
  }
}

/** What explains "401 right after sign-in": which cookies came, from where, and better-auth's code. */
export function explainRefusal(request: FastifyRequest, code: string | undefined): Record<string, unknown> {
  return {
    cookieNames: [...parseCookieHeader(request.headers.cookie).keys()].slice(0, 20),
    origin: request.headers.origin,
    host: request.headers.host,
    secFetchSite: request.headers['sec-fetch-site'],
    code,
  }
}
