// The guard in front of the protected API. Exactly one mechanism per request:
// `Authorization: Bearer <JWT>` if present, else the better-auth session
// cookie. Produces the JWT the upstream receives, or sends the denial.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { StoreUnavailableError } from '../errors.ts'
import { JwtReason, Mechanism, NoCredentialReason, SessionReason, UnavailableReason } from '../reasons.ts'
import { Attr, SpanName } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { allow, deny, unavailable } from './decision.ts'
import { JwksUnavailableError } from './jwks.ts'
import type { JwtVerifier } from './jwt.ts'
import { TokenMintError } from './minter.ts'
import type { TokenMinter } from './minter.ts'
import { parseCookieHeader } from './session.ts'
import type { SessionResult, SessionValidator } from './session.ts'

export type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<string | undefined>

export type GuardDeps = {
  metrics: Metrics
  sessions: SessionValidator
  jwtVerifier: JwtVerifier
  minter: TokenMinter
  pseudonymize: (userId: string) => string
}

const BEARER = /^Bearer +([^\s]+) *$/i

export function createGuard(deps: GuardDeps): Guard {
  const { metrics, sessions, jwtVerifier, minter } = deps
  const secureCookie = sessions.cookieNames.sessionToken.startsWith('__Secure-')
  // A minted token signed by a key that left the JWKS would fail at the upstream.
  jwtVerifier.keys.onKeysRemoved((kids) => minter.forgetKeys(kids))

  async function viaJwt(request: FastifyRequest, reply: FastifyReply, authorization: string): Promise<string | undefined> {
    const m = BEARER.exec(authorization)
    if (!m) {
      deny(metrics, request, reply, Mechanism.jwt, JwtReason.malformed)
      return undefined
    }
    const token = m[1] as string
    return inSpan(SpanName.jwtVerify, { [Attr.mechanism]: Mechanism.jwt }, async (span) => {
      let result
      try {
        result = await jwtVerifier.verify(token)
      } catch (err) {
        if (err instanceof JwksUnavailableError) {
          unavailable(metrics, request, reply, Mechanism.jwt, UnavailableReason.jwks_unavailable)
          span?.setAttributes({ [Attr.outcome]: 'error', [Attr.reason]: UnavailableReason.jwks_unavailable })
          return undefined
        }
        throw err
      }
      if (result.kid) span?.setAttribute(Attr.jwtKid, result.kid)
      if (result.alg) span?.setAttribute(Attr.jwtAlg, result.alg)
      if (!result.ok) {
        span?.setAttributes({ [Attr.outcome]: 'denied', [Attr.reason]: result.reason })
        deny(metrics, request, reply, Mechanism.jwt, result.reason)
        return undefined
      }
      span?.setAttributes({ [Attr.outcome]: 'allowed', [Attr.cacheHit]: result.cached })
      allow(metrics, request, Mechanism.jwt, deps.pseudonymize(result.claims.sub))
      return token
    })
  }

  async function viaSession(request: FastifyRequest, reply: FastifyReply, cookies: Map<string, string>): Promise<string | undefined> {
    const cookieNames = [...cookies.keys()].slice(0, 20)
    return inSpan(SpanName.sessionValidate, { [Attr.mechanism]: Mechanism.session, [Attr.cookieNames]: cookieNames }, async (span) => {
      let result: SessionResult | undefined
      try {
        result = await sessions.validate(cookies, { extendWith: request.headers.cookie })
      } catch (err) {
        if (err instanceof StoreUnavailableError) {
          span?.setAttributes({ [Attr.outcome]: 'error', [Attr.reason]: UnavailableReason.store_unavailable })
          unavailable(metrics, request, reply, Mechanism.session, UnavailableReason.store_unavailable)
          return undefined
        }
        throw err
      }
      if (result === undefined) {
        // No session cookie at all. Tell a browser that dropped it on a
        // cross-site call apart from a client that never had one.
        const reason = noCookieReason(request, cookies.size > 0, secureCookie)
        span?.setAttributes({ [Attr.outcome]: 'denied', [Attr.reason]: reason })
        request.authgw.detail = { cookieNames, origin: request.headers.origin, secFetchSite: request.headers['sec-fetch-site'] }
        deny(metrics, request, reply, reason === NoCredentialReason.no_credentials ? Mechanism.none : Mechanism.session, reason)
        return undefined
      }
      if (!result.ok) {
        span?.setAttributes({ [Attr.outcome]: 'denied', [Attr.reason]: result.reason })
        request.authgw.detail = { cookieNames }
        deny(metrics, request, reply, Mechanism.session, result.reason)
        return undefined
      }
      span?.setAttributes({ [Attr.outcome]: 'allowed', [Attr.cacheHit]: result.cached })
      if (result.setCookie !== undefined && result.setCookie.length > 0) {
        // The extended session's cookie, as better-auth set it; the proxy hop
        // sends the gateway's headers along with the upstream's.
        for (const cookie of result.setCookie) reply.header('set-cookie', cookie)
        request.log.info({ event: 'session_extended', session: deps.pseudonymize(result.identity.sessionId) }, 'audit')
      }
      let token: string
      try {
        token = await minter.tokenFor(result.identity, request.authgw.probe)
      } catch (err) {
        if (err instanceof TokenMintError) {
          const reason = err.reason === 'signing_failed' ? UnavailableReason.jwks_unavailable : UnavailableReason.store_unavailable
          unavailable(metrics, request, reply, Mechanism.session, reason)
          return undefined
        }
        throw err
      }
      allow(metrics, request, Mechanism.session, deps.pseudonymize(result.identity.userId))
      return token
    })
  }

  return async function guard(request, reply) {
    const authorization = request.headers.authorization
    if (authorization !== undefined) return viaJwt(request, reply, authorization)
    return viaSession(request, reply, parseCookieHeader(request.headers.cookie))
  }
}

/** Why a request carried no session cookie; shared with the /api/auth/token and /get-session labelling. */
export function noCookieReason(request: FastifyRequest, hadCookies: boolean, secureCookie: boolean) {
  const site = request.headers['sec-fetch-site']
  if (site === 'cross-site') return SessionReason.cross_site_no_cookie
  const origin = request.headers.origin
  if (site === undefined && typeof origin === 'string' && origin !== 'null') {
    try {
      if (new URL(origin).hostname !== request.hostname) return SessionReason.cross_site_no_cookie
    } catch {
      // An unparseable Origin says nothing about the site.
    }
  }
  // A browser (it sends Sec-Fetch-*) or a client with other cookies is a
  // cookie client whose session cookie is missing.
  if (hadCookies || site !== undefined) return SessionReason.no_cookie
  // A Secure (`__Secure-`) session cookie is never sent over plain http, and
  // browsers send no Sec-Fetch-* to such origins: every cookie client lands here.
  if (secureCookie && request.protocol === 'http') return SessionReason.no_cookie
  return NoCredentialReason.no_credentials
}
