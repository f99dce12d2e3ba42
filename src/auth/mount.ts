// better-auth mounted at /api/auth/*: raw bodies forwarded untouched (JSON
// and form posts), every Set-Cookie preserved, the client IP handed over in a
// header only the gateway sets. Every outcome of the endpoints that matter is
// counted here, at the Fastify layer, where status and headers are final.
import { isIP } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import { StoreUnavailableError } from '../errors.ts'
import {
  AuthDisagreementReason,
  AuthReason,
  DbOperation,
  Mechanism,
  NoCredentialReason,
  RequestErrorReason,
  SessionReason,
  SignInOutcome,
  SignInReason,
  TokenIssueFailureReason,
  TokenKind,
  TokenVia,
  UnauthorizedSource,
  UnavailableReason,
} from '../reasons.ts'
import type { SessionNullReason, SignInReason as SignInReasonT } from '../reasons.ts'
import { Attr } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { activeSpan } from '../telemetry/tracing.ts'
import { canonicalPath } from '../proxy/request-target.ts'
import type { Auth } from './better-auth.ts'
import { AUTH_BASE_PATH, CLIENT_IP_HEADER } from './better-auth.ts'
import { exemplarOf, recordUnauthorized, unavailable } from './decision.ts'
import { noCookieReason } from './guard.ts'
import { parseCookieHeader } from './session.ts'
import type { SessionValidator } from './session.ts'
import { SessionRefresher } from './session-refresh.ts'
import type { SsoRoutes } from '../oauth/mount-hook.ts'

/** better-auth endpoints that get their own route label; everything else is `/api/auth/other`. */
export const AUTH_ROUTES = [
  '/sign-up/email',
  '/sign-in/email',
  '/sign-out',
  '/get-session',
  '/token',
  '/jwks',
  '/list-sessions',
  '/revoke-session',
  '/revoke-sessions',
  '/revoke-other-sessions',
  '/update-user',
  '/change-password',
  '/change-email',
  '/delete-user',
  '/request-password-reset',
  '/reset-password',
  '/verify-email',
  '/send-verification-email',
  '/ok',
  '/error',
  '/sign-in/social',
] as const
const AUTH_ROUTE_SET = new Set<string>(AUTH_ROUTES)
export const AUTH_OTHER_ROUTE = `${AUTH_BASE_PATH}/other`
/** SSO provider callbacks, one label for every provider id. */
export const AUTH_CALLBACK_ROUTE = `${AUTH_BASE_PATH}/callback/:id`

/**
 * Bounded route label for a better-auth URL, from the same canonical path
 * better-auth routes on; a target that is not canonical is never forwarded
 * (400) and labels as `/api/auth/other`.
 */
export function authRouteLabel(url: string): string {
  const path = authPath(url)
  if (path === undefined) return AUTH_OTHER_ROUTE
  const endpoint = path.slice(AUTH_BASE_PATH.length)
  if (/^\/callback\/[^/]+$/.test(endpoint)) return AUTH_CALLBACK_ROUTE
  return AUTH_ROUTE_SET.has(endpoint) ? path : AUTH_OTHER_ROUTE
}

/** The path better-auth will act on, or undefined when the target must be refused. */
function authPath(url: string): string | undefined {
  const path = canonicalPath(url)
  return path !== undefined && path.startsWith(`${AUTH_BASE_PATH}/`) ? path : undefined
}

export type MountOptions = {
  auth: Auth
  metrics: Metrics
  sessions: SessionValidator
  pool: Pool
  bodyLimit: number
  /** Origin of BETTER_AUTH_URL: better-auth's request URL never comes from the client's Host. */
  origin: string
  /** SSO sign-in starts and provider callbacks (only with providers configured). */
  sso?: SsoRoutes
}

/**
 * Endpoints behind better-auth's session middlewares (plus getSession itself):
 * a 401 there means "no usable session", whatever the reason was inside.
 */
const SESSION_ROUTES = new Set(
  [
    '/get-session',
    '/token',
    '/list-sessions',
    '/revoke-session',
    '/revoke-sessions',
    '/revoke-other-sessions',
    '/update-user',
    '/change-password',
    '/change-email',
    '/delete-user',
  ].map((p) => AUTH_BASE_PATH + p),
)

const SKIP_RESPONSE_HEADERS = new Set(['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive'])

async function mountPlugin(app: FastifyInstance, opts: MountOptions) {
  const { auth, metrics, sessions } = opts
  const secureCookie = sessions.cookieNames.sessionToken.startsWith('__Secure-')
  // better-auth and the gateway's session path meet here: the gateway extends
  // sessions through better-auth's getSession, with better-auth's settings.
  sessions.extendSessionsWith(new SessionRefresher(auth, { onStoreError: () => metrics.dbError(DbOperation.session_refresh) }))

  async function storeReachable(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        opts.pool.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('timeout')), 1000)
        }),
      ])
      return true
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Session state as the gateway sees it, for labelling better-auth's own
   * answers. `revalidate` re-reads a session the cache holds as valid, so the
   * verdict is the store's own (StoreUnavailableError when it cannot answer).
   */
  async function sessionVerdict(request: FastifyRequest, revalidate = false): Promise<SessionReason | 'valid'> {
    const cookies = parseCookieHeader(request.headers.cookie)
    const result = await sessions.validate(cookies, { revalidate })
    if (result === undefined) {
      // Same classification as the guard; on a better-auth endpoint the client is a session client.
      const reason = noCookieReason(request, cookies.size > 0, secureCookie)
      return reason === NoCredentialReason.no_credentials ? SessionReason.no_cookie : reason
    }
    return result.ok ? 'valid' : result.reason
  }

  /**
   * Why better-auth refused (or failed) a session route, decided by the store.
   * better-auth's session middleware turns any error while loading the session
   * into a 401 and getSession into a 500, so neither says anything about the
   * credential until the store has answered: a known-bad session keeps its
   * reason, a session the gateway saw as valid is read again, and when that
   * read also finds it valid the two disagree (`auth_disagrees`).
   */
  async function refusalReason(request: FastifyRequest, known: SessionReason | 'valid' | undefined): Promise<SessionNullReason> {
    const verdict = known === undefined || known === 'valid' ? await sessionVerdict(request, true) : known
    return verdict === 'valid' ? AuthDisagreementReason.auth_disagrees : verdict
  }

  /** The store cannot answer: 503 store_unavailable, and no cookie of better-auth's answer reaches the client. */
  function storeUnavailable(request: FastifyRequest, reply: FastifyReply, route: string): FastifyReply {
    reply.removeHeader('set-cookie')
    if (route === `${AUTH_BASE_PATH}/token`) metrics.tokenIssueFailure(TokenIssueFailureReason.store_unavailable, exemplarOf())
    return unavailable(metrics, request, reply, Mechanism.session, UnavailableReason.store_unavailable)
  }

  async function forward(request: FastifyRequest, reply: FastifyReply): Promise<{ status: number; body: Buffer }> {
    const headers = new Headers()
    for (const [name, value] of Object.entries(request.headers)) {
      if (value === undefined || name === CLIENT_IP_HEADER || name.startsWith(':')) continue
      if (Array.isArray(value)) for (const v of value) headers.append(name, v)
      else headers.set(name, value)
    }
    headers.set(CLIENT_IP_HEADER, isIP(request.ip) !== 0 ? request.ip : (request.socket.remoteAddress ?? ''))
    const method = request.method
    const body = method === 'GET' || method === 'HEAD' ? undefined : (request.body as Buffer | undefined)
    const res = await auth.handler(
      new Request(`${opts.origin}${request.url}`, { method, headers, body: body && body.length > 0 ? (body as unknown as BodyInit) : undefined }),
    )
    reply.code(res.status)
    for (const [name, value] of res.headers) if (!SKIP_RESPONSE_HEADERS.has(name)) reply.header(name, value)
    // reply.header appends Set-Cookie; copying the Headers object would keep only the last one.
    for (const cookie of res.headers.getSetCookie()) reply.header('set-cookie', cookie)
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
  }

  function errorCode(body: Buffer): string | undefined {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { code?: unknown }
      return typeof parsed?.code === 'string' ? parsed.code.slice(0, 64) : undefined
    } catch {
      return undefined
    }
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))

    scope.all(`${AUTH_BASE_PATH}/*`, async (request, reply) => {
      const route = authRouteLabel(request.url)
      request.authgw.authEndpoint = route
      activeSpan()?.setAttribute(Attr.authEndpoint, route)
      // `/api/auth/./sign-in/email` and its kin: better-auth would act on one
      // path while this gateway labels, counts and audits another.
      if (authPath(request.url) === undefined) {
        request.authgw.reason = RequestErrorReason.bad_request
        return reply.code(400).send({ error: RequestErrorReason.bad_request, reason: RequestErrorReason.bad_request, requestId: request.id })
      }

      // /token and /get-session are labelled with the gateway's session
      // reasons; checking first makes an outage a 503 before better-auth
      // spends its own connect timeout on it.
      let known: SessionReason | 'valid' | undefined
      const checksSession = route === `${AUTH_BASE_PATH}/token` || route === `${AUTH_BASE_PATH}/get-session`
      if (checksSession) {
        try {
          known = await sessionVerdict(request)
        } catch (err) {
          if (!(err instanceof StoreUnavailableError)) throw err
          return storeUnavailable(request, reply, route)
        }
      }

      const sso = opts.sso?.begin(request, authPath(request.url) as string)
      let { status, body } = sso ? await sso.run(() => forward(request, reply)) : await forward(request, reply)
      const ssoReply = sso?.finish(reply, status, body)
      if (ssoReply !== undefined) return ssoReply

      // A session route's refusal (401, a null session) or failure (5xx) is
      // about the credential only once the store has answered.
      let refusal: SessionNullReason | undefined
      const refused = status === 401 || (route === `${AUTH_BASE_PATH}/get-session` && status === 200 && body.toString('utf8').trim() === 'null')
      if (SESSION_ROUTES.has(route) && (refused || status >= 500)) {
        try {
          const reason = await refusalReason(request, known)
          if (refused) refusal = reason
        } catch (err) {
          if (!(err instanceof StoreUnavailableError)) throw err
          return storeUnavailable(request, reply, route)
        }
      }

      // Any other better-auth 5xx while the database is really gone (sign-in,
      // sign-up answer a store outage with a bare 500): 503 store_unavailable.
      if (!SESSION_ROUTES.has(route) && status >= 500 && !(await storeReachable())) {
        status = 503
        body = Buffer.from(JSON.stringify({ error: 'service_unavailable', reason: UnavailableReason.store_unavailable, requestId: request.id }))
        reply.code(503).header('content-type', 'application/json; charset=utf-8').header('retry-after', '5').removeHeader('set-cookie')
        request.authgw.reason = UnavailableReason.store_unavailable
        request.authgw.outcome = 'error'
      }
      // Unknown better-auth paths: the same 404 shape as the rest of the gateway.
      if (status === 404 && body.length === 0) {
        body = Buffer.from(JSON.stringify({ error: 'not_found', reason: RequestErrorReason.not_found, requestId: request.id }))
        reply.header('content-type', 'application/json; charset=utf-8')
      }

      if (status === 429) metrics.rateLimited(route)
      switch (route) {
        case `${AUTH_BASE_PATH}/sign-in/email`: {
          const reason = signInReason(status)
          metrics.signInAttempt(status === 200 ? SignInOutcome.success : SignInOutcome.failure, reason)
          if (status === 200) metrics.tokenIssued(TokenKind.session, TokenVia.sign_in)
          request.log.info({ event: 'sign_in', outcome: status === 200 ? 'success' : 'failure', reason, code: status === 200 ? undefined : errorCode(body) }, 'audit')
          break
        }
        case `${AUTH_BASE_PATH}/sign-up/email`:
          if (status === 200) {
            metrics.tokenIssued(TokenKind.session, TokenVia.sign_up)
            request.log.info({ event: 'sign_up', outcome: 'success' }, 'audit')
          }
          break
        case `${AUTH_BASE_PATH}/token`:
          if (status === 200) {
            metrics.tokenIssued(TokenKind.jwt, TokenVia.token_endpoint)
            request.log.info({ event: 'token_issued', via: TokenVia.token_endpoint }, 'audit')
          } else {
            metrics.tokenIssueFailure(status === 401 ? TokenIssueFailureReason.no_session : TokenIssueFailureReason.signing_failed, exemplarOf())
          }
          break
        case `${AUTH_BASE_PATH}/get-session`:
          if (refusal !== undefined && status === 200) {
            metrics.sessionNull(refusal)
            request.authgw.reason = refusal
            request.authgw.mechanism = Mechanism.session
            request.authgw.detail = explain(request, errorCode(body))
          }
          break
        case `${AUTH_BASE_PATH}/sign-out`:
          if (status === 200) request.log.info({ event: 'signed_out' }, 'audit')
          break
      }

      if (status === 401) {
        if (refusal !== undefined && (checksSession || refusal === AuthDisagreementReason.auth_disagrees)) {
          metrics.sessionNull(refusal)
          recordUnauthorized(metrics, request, UnauthorizedSource.auth, Mechanism.session, refusal)
          request.authgw.detail = explain(request, errorCode(body))
        } else {
          const reason = route === `${AUTH_BASE_PATH}/sign-in/email` ? AuthReason.invalid_credentials : AuthReason.auth_rejected
          recordUnauthorized(metrics, request, UnauthorizedSource.auth, Mechanism.none, reason)
          request.authgw.detail = { code: errorCode(body) }
        }
      }
      return reply.send(body)
    })
  })
}

/** What explains "401 right after sign-in": which cookies came, from where, and better-auth's code. */
function explain(request: FastifyRequest, code: string | undefined): Record<string, unknown> {
  return {
    cookieNames: [...parseCookieHeader(request.headers.cookie).keys()].slice(0, 20),
    origin: request.headers.origin,
    host: request.headers.host,
    secFetchSite: request.headers['sec-fetch-site'],
    code,
  }
}

function signInReason(status: number): SignInReasonT {
  if (status === 200) return SignInReason.none
  if (status === 401) return SignInReason.invalid_credentials
  if (status === 429) return SignInReason.rate_limited
  if (status === 403) return SignInReason.origin_rejected
  if (status === 400 || status === 422 || status === 413 || status === 415) return SignInReason.invalid_request
  if (status === 503) return SignInReason.store_unavailable
  return SignInReason.error
}

export const mountAuth = fp(mountPlugin, { name: 'authgw-better-auth', fastify: '5.x' })
