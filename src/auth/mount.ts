// better-auth mounted at /api/auth/*: raw bodies forwarded untouched (JSON
// and form posts), every Set-Cookie preserved, the client IP handed over in a
// header only the gateway sets. Every outcome of the endpoints that matter is
// counted here, at the Fastify layer, where status and headers are final.
//
// The handler reads top to bottom like better-auth's own toNodeHandler
// (getRequest → handler → setResponse), with the gateway's steps around it:
//   label → refuse a non-canonical target → session pre-check → better-auth →
//   session refusal reason → error mapping → AUTH_RESPONSE_STEPS → send.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import { StoreUnavailableError } from '../errors.ts'
import { DbOperation } from '../reasons.ts'
import { Attr } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { metricsFor } from '../telemetry/probe-traffic.ts'
import type { ProbeSignOuts } from '../telemetry/probe-traffic.ts'
import { activeSpan } from '../telemetry/tracing.ts'
import { countRateLimited, countSignIn, countTokens } from './accounting.ts'
import { auditAuthEvent } from './audit.ts'
import { mapStoreOutage, refuseNonCanonical, shapeNotFound, storeUnavailable } from './auth-errors.ts'
import type { Auth } from './better-auth.ts'
import { AUTH_BASE_PATH } from './better-auth.ts'
import { setAuthResponse, toAuthRequest } from './exchange.ts'
import type { AuthExchange, AuthResponseStep } from './exchange.ts'
import { countNullSession, countUnauthorized } from './refusals.ts'
import { AuthRoute, SESSION_ROUTES, authPath, authRouteLabel } from './routes.ts'
import { parseCookieHeader } from './session.ts'
import type { SessionValidator } from './session.ts'
import { SessionRefresher } from './session-refresh.ts'
import { auditAuthCookies } from './cookie-audit-step.ts'
import type { AudienceOf } from './cookie-audit-step.ts'
import type { FreshSignIns } from './fresh-sign-ins.ts'
import { rememberSignIns } from './sign-in-memory.ts'
import { createSessionVerdicts } from './session-verdict.ts'
import type { SessionVerdict, SessionVerdicts } from './session-verdict.ts'

export { AUTH_OTHER_ROUTE, AUTH_ROUTES, authRouteLabel } from './routes.ts'
export type { AuthExchange, AuthResponseStep } from './exchange.ts'

export type MountOptions = {
  auth: Auth
  metrics: Metrics
  sessions: SessionValidator
  /** Sessions the sign-in probe is ending (gateway-auth.ts): not counted as revocations. */
  probeSignOuts?: ProbeSignOuts
  pool: Pool
  bodyLimit: number
  /** Origin of BETTER_AUTH_URL: better-auth's request URL never comes from the client's Host. */
  origin: string
  /** Sign-ins this instance remembers (cookie_not_returned, fresh_session_not_found). */
  freshSignIns?: FreshSignIns
  /** The request's client address is a TRUST_PROXY hop's own (rate limiting cannot tell clients apart). */
  clientIpUnresolved?: (request: FastifyRequest) => boolean
  /** Scheme and host the browser sees, for the Set-Cookie audit. */
  cookieAudience?: AudienceOf
}

/**
 * What happens to every better-auth answer before it is sent, in order. Add a
 * concern (a Set-Cookie audit, a sign-in tracker, OAuth callback
 * classification) as one function here, not inside the handler; a step that
 * needs more than the metrics gets its dependencies through MountOptions.
 */
export const AUTH_RESPONSE_STEPS: readonly AuthResponseStep[] = [
  countRateLimited,
  countSignIn,
  countTokens,
  auditAuthEvent,
  countNullSession,
  countUnauthorized,
]

/** Routes the gateway reads the session of before better-auth answers. */
const PRECHECKED_ROUTES: ReadonlySet<string> = new Set([AuthRoute.token, AuthRoute.getSession])

async function mountPlugin(app: FastifyInstance, opts: MountOptions) {
  const { auth, sessions } = opts
  // better-auth and the gateway's session path meet here: the gateway extends
  // sessions through better-auth's getSession, with better-auth's settings.
  sessions.extendSessionsWith(new SessionRefresher(auth, { onStoreError: () => opts.metrics.dbError(DbOperation.session_refresh) }))
  const verdicts = createSessionVerdicts(sessions, opts.freshSignIns)
  const steps: readonly AuthResponseStep[] = [
    ...AUTH_RESPONSE_STEPS,
    ...(opts.freshSignIns === undefined ? [] : [rememberSignIns(opts.freshSignIns, sessions)]),
    ...(opts.cookieAudience === undefined ? [] : [auditAuthCookies(opts.cookieAudience)]),
  ]

  async function handleAuth(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    // The probe's requests are counted on its own series only.
    const metrics = metricsFor(opts.metrics, request.authgw.probe)
    const route = labelAuthRequest(request)
    if (authPath(request.url) === undefined) return refuseNonCanonical(request, reply)

    let known: SessionVerdict | undefined
    try {
      known = await precheckSession(verdicts, request, route)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      return storeUnavailable(metrics, request, reply, route)
    }

    const probeToken = request.authgw.probe === true && route === AuthRoute.signOut ? sessionTokenOf(sessions, request) : undefined
    const handle = () => auth.handler(toAuthRequest(request, opts.origin))
    const answer = opts.probeSignOuts === undefined ? await handle() : await opts.probeSignOuts.during(probeToken, handle)
    const { status, body } = await setAuthResponse(reply, answer)
    const x: AuthExchange = { request, reply, route, status, body, known }
    if (status === 429) x.clientIpUnresolved = opts.clientIpUnresolved?.(request) === true

    try {
      x.refusal = await sessionRefusal(verdicts, x)
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err
      return storeUnavailable(metrics, request, reply, route)
    }
    await mapStoreOutage(x, opts.pool)
    shapeNotFound(x)

    for (const step of steps) {
      const pending = step(x, metrics)
      if (pending !== undefined) await pending
    }
    return reply.send(x.body)
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))
    scope.all(`${AUTH_BASE_PATH}/*`, handleAuth)
  })
}

/** The bounded route label, on the request (for the access line) and on its span. */
function labelAuthRequest(request: FastifyRequest): string {
  const route = authRouteLabel(request.url)
  request.authgw.authEndpoint = route
  activeSpan()?.setAttribute(Attr.authEndpoint, route)
  return route
}

/**
 * /token and /get-session are labelled with the gateway's session reasons;
 * checking first makes an outage a 503 before better-auth spends its own
 * connect timeout on it.
 */
async function precheckSession(verdicts: SessionVerdicts, request: FastifyRequest, route: string): Promise<SessionVerdict | undefined> {
  return PRECHECKED_ROUTES.has(route) ? verdicts.verdict(request) : undefined
}

/**
 * A session route's refusal (401, a null session) or failure (5xx) is about
 * the credential only once the store has answered: the refusal's reason, or
 * undefined when better-auth did not refuse.
 */
async function sessionRefusal(verdicts: SessionVerdicts, x: AuthExchange) {
  if (!SESSION_ROUTES.has(x.route)) return undefined
  const refused = x.status === 401 || (x.route === AuthRoute.getSession && x.status === 200 && x.body.toString('utf8').trim() === 'null')
  if (!refused && x.status < 500) return undefined
  const reason = await verdicts.refusalReason(x.request, x.known)
  return refused ? reason : undefined
}

export const mountAuth = fp(mountPlugin, { name: 'authgw-better-auth', fastify: '5.x' })

/** The session token of a request's own session cookie, when its signature verifies. */
function sessionTokenOf(sessions: SessionValidator, request: FastifyRequest): string | undefined {
  const found = sessions.findToken(parseCookieHeader(request.headers.cookie))
  if (found === undefined || !('value' in found)) return undefined
  const verified = sessions.verifyCookie(found.value)
  return 'token' in verified ? verified.token : undefined
}
