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
import { cookieOccurrences, missingCookieDetail, missingCookieReason } from './cookie-diagnosis.ts'
import type { MissingCookieEvidence } from './cookie-diagnosis.ts'
import type { FreshSignIns } from './fresh-sign-ins.ts'
import { parseCookieHeader } from './session.ts'
import type { SessionResult, SessionValidator } from './session.ts'

export type Guard = (request: FastifyRequest, reply: FastifyReply) => Promise<string | undefined>

export type GuardDeps = {
  metrics: Metrics
  sessions: SessionValidator
  jwtVerifier: JwtVerifier
  minter: TokenMinter
  pseudonymize: (userId: string) => string
  /** Sign-ins of the last FRESH_SIGN_IN_WINDOW_SECONDS (cookie_not_returned). */
  freshSignIns?: FreshSignIns
  /** The Set-Cookie audit for a session extension's cookie (cookie-audit-step.ts). */
  auditSetCookies?: (request: FastifyRequest, setCookie: readonly string[]) => void
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
        // A stale token shadowing a good cookie: say so (the bearer still decides).
        if (await hasValidSessionCookie(request)) {
          span?.setAttribute(Attr.alsoHadSessionCookie, true)
          request.authgw.detail = { ...request.authgw.detail, alsoHadSessionCookie: true }
        }
        deny(metrics, request, reply, Mechanism.jwt, result.reason)
        return undefined
      }
      span?.setAttributes({ [Attr.outcome]: 'allowed', [Attr.cacheHit]: result.cached })
      allow(metrics, request, Mechanism.jwt, deps.pseudonymize(result.claims.sub))
      return token
    })
  }

  async function hasValidSessionCookie(request: FastifyRequest): Promise<boolean> {
    const cookies = parseCookieHeader(request.headers.cookie)
    if (!cookies.has(sessions.cookieNames.sessionToken)) return false
    try {
      return (await sessions.validate(cookies))?.ok === true
    } catch {
      // A store that cannot answer says nothing about the cookie; the bearer's reason stands.
      return false
    }
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
        // No session cookie at all: say which of the known stories this is.
        const evidence = missingCookieEvidence(request, cookies, secureCookie, sessions, deps.freshSignIns)
        const reason = missingCookieReason(evidence)
        span?.setAttributes({ [Attr.outcome]: 'denied', [Attr.reason]: reason })
        request.authgw.detail = missingCookieDetail(evidence)
        deny(metrics, request, reply, reason === NoCredentialReason.no_credentials ? Mechanism.none : Mechanism.session, reason)
        return undefined
      }
      if (!result.ok) {
        const refusal = duplicateCookieReason(request, sessions, result.reason)
        span?.setAttributes({ [Attr.outcome]: 'denied', [Attr.reason]: refusal.reason })
        request.authgw.detail = { cookieNames, ...refusal.detail }
        deny(metrics, request, reply, Mechanism.session, refusal.reason)
        return undefined
      }
      span?.setAttributes({ [Attr.outcome]: 'allowed', [Attr.cacheHit]: result.cached })
      if (result.setCookie !== undefined && result.setCookie.length > 0) {
        // The extended session's cookie, as better-auth set it; the proxy hop
        // sends the gateway's headers along with the upstream's.
        for (const cookie of result.setCookie) reply.header('set-cookie', cookie)
        deps.auditSetCookies?.(request, result.setCookie)
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

/** What the request and this instance know about a missing session cookie. */
export function missingCookieEvidence(
  request: FastifyRequest,
  cookies: Map<string, string>,
  secureCookie: boolean,
  sessions: SessionValidator,
  fresh: FreshSignIns | undefined,
): MissingCookieEvidence {
  return {
    headers: request.headers,
    protocol: request.protocol,
    cookies,
    secureCookie,
    sessionDataName: sessions.cookieNames.sessionData,
    sinceSignIn: fresh?.sinceSignIn(fresh.clientKey(request.ip, request.headers['user-agent'])),
  }
}

/** Why a request carried no session cookie; shared with the /api/auth/token and /get-session labelling. */
export function noCookieReason(
  request: FastifyRequest,
  hadCookies: boolean,
  secureCookie: boolean,
  evidence: { sessions?: SessionValidator; fresh?: FreshSignIns } = {},
) {
  const cookies = parseCookieHeader(request.headers.cookie)
  if (!hadCookies) cookies.clear()
  if (evidence.sessions === undefined) return missingCookieReason({ headers: request.headers, protocol: request.protocol, cookies, secureCookie })
  return missingCookieReason(missingCookieEvidence(request, cookies, secureCookie, evidence.sessions, evidence.fresh))
}

/**
 * The session cookie's name came more than once (a host-only and a Domain
 * cookie, or cookie tossing from a sibling subdomain). Like better-auth
 * (better-call's parser), only the first value is ever honoured, so the
 * gateway and better-auth's own endpoints always agree; when that value is
 * refused the reason says the name was duplicated, and the log line keeps why
 * the first one failed.
 */
export function duplicateCookieReason(
  request: FastifyRequest,
  sessions: SessionValidator,
  reason: SessionReason,
): { reason: SessionReason; detail: Record<string, unknown> } {
  const n = cookieOccurrences(request.headers.cookie, sessions.cookieNames.sessionToken)
  if (n < 2) return { reason, detail: {} }
  return { reason: SessionReason.duplicate_session_cookie, detail: { sessionCookieCount: Math.min(n, 20), firstCookieReason: reason } }
}
