// The gateway's own side of authentication, built from better-auth's
// instance: the session validator, the JWKS store, the JWT verifier, the
// token minter and the guard in front of the protected API, and the hooks
// that keep their caches honest when better-auth ends a session.
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { ResolvedConfig } from '../config/load.ts'
import type { SharedSessionReader } from '../shared-state/session-reader.ts'
import { DbOperation } from '../reasons.ts'
import { Attr, SpanName } from '../telemetry/attributes.ts'
import { pseudonymize } from '../telemetry/fingerprint.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { inSpan } from '../telemetry/tracing.ts'
import type { Auth, AuthHooks } from './better-auth.ts'
import { auditReplyCookies, requestAudience } from './cookie-audit-step.ts'
import { FRESH_SIGN_IN_MAX_ENTRIES, FreshSignIns } from './fresh-sign-ins.ts'
import { createGuard } from './guard.ts'
import type { Guard } from './guard.ts'
import { JwksStore } from './jwks.ts'
import type { Jwk } from './jwks.ts'
import { JwtVerifier } from './jwt.ts'
import { REVOKED_SESSIONS_MAX_ENTRIES, RevokedSessions } from './revoked-sessions.ts'
import { TokenMinter } from './minter.ts'
import { ProbeSignOuts } from '../telemetry/probe-traffic.ts'
import { SessionValidator } from './session.ts'
import type { CookieNames } from './session.ts'

export type GatewayAuth = {
  sessions: SessionValidator
  jwks: JwksStore
  jwtVerifier: JwtVerifier
  minter: TokenMinter
  /** Sessions that ended: JWTs minted for them are refused (`session_revoked`). */
  revokedSessions: RevokedSessions
  guard: Guard
  /** Sign-ins and sessions this instance handed out within FRESH_SIGN_IN_WINDOW_SECONDS. */
  freshSignIns: FreshSignIns
  /** User and session ids as they may appear in logs. */
  pseudonymize: (id: string) => string
  /** Sessions the sign-in probe is ending: not counted as revocations. */
  probeSignOuts: ProbeSignOuts
}

const JWT_CLOCK_TOLERANCE_SECONDS = 5

export function createGatewayAuth(
  config: ResolvedConfig,
  deps: { auth: Auth; pool: Pool; metrics: Metrics; cookieNames: CookieNames; readShared?: SharedSessionReader; log?: Logger },
): GatewayAuth {
  const { auth, pool, metrics } = deps
  const freshSignIns = new FreshSignIns({ windowSeconds: config.session.freshSignInWindowSeconds, maxEntries: FRESH_SIGN_IN_MAX_ENTRIES })
  let overflowLogged = 0
  const revokedSessions = new RevokedSessions({
    // A JWT minted just before its session ended lives this long at most.
    ttlSeconds: config.jwt.expirationSeconds + JWT_CLOCK_TOLERANCE_SECONDS,
    pool,
    onDbError: () => metrics.dbError(DbOperation.session_lookup),
    onOverflow: () => {
      const now = Date.now()
      if (now - overflowLogged < 60_000) return
      overflowLogged = now
      deps.log?.warn({ event: 'revoked_sessions_full', max: REVOKED_SESSIONS_MAX_ENTRIES }, 'revoked-session memory full: the oldest revocations are checked against the store only on a verify-once miss')
    },
  })
  const sessions = new SessionValidator({
    pool,
    issuedRecently: (token) => freshSignIns.issuedRecently(token),
    secret: config.secret,
    cookieNames: deps.cookieNames,
    cacheTtlSeconds: config.session.cacheTtlSeconds,
    cacheMaxEntries: config.session.cacheMaxEntries,
    onCacheLookup: (hit) => metrics.sessionCacheLookup(hit),
    onDbError: () => metrics.dbError(DbOperation.session_lookup),
    withIdp: config.oidc.length > 0,
    readShared: deps.readShared,
    onSessionExpired: (sessionId) => revokedSessions.add(sessionId),
  })

  const jwks: JwksStore = new JwksStore({
    fetchKeys: async () => {
      try {
        const res = (await auth.api.getJwks()) as unknown as { keys: Jwk[] }
        return res.keys
      } catch (err) {
        metrics.dbError(DbOperation.jwks_fetch)
        throw err
      }
    },
    refreshIntervalSeconds: config.jwt.jwksRefreshIntervalSeconds,
    cooldownSeconds: config.jwt.jwksRefreshCooldownSeconds,
    kidExists: async (kid) => {
      try {
        return (await pool.query({ name: 'authgw_jwks_kid', text: 'SELECT 1 FROM jwks WHERE id = $1', values: [kid] })).rowCount === 1
      } catch (err) {
        metrics.dbError(DbOperation.jwks_fetch)
        throw err
      }
    },
    onRefresh: (outcome, keys) => metrics.jwksRefresh(outcome, keys),
    traceRefresh: (fn) =>
      inSpan(SpanName.jwksRefresh, {}, async (span) => {
        const r = await fn()
        span?.setAttribute(Attr.jwksKeys, jwks.size)
        return r
      }),
  })

  const jwtVerifier = new JwtVerifier({
    jwks,
    issuer: config.issuer,
    audience: config.audience,
    algorithms: config.jwt.algorithms,
    cacheMaxEntries: config.jwt.cacheMaxEntries,
    clockToleranceSeconds: JWT_CLOCK_TOLERANCE_SECONDS,
    onCacheLookup: (hit) => metrics.jwtCacheLookup(hit),
    revoked: revokedSessions,
  })

  const minter = new TokenMinter(auth, metrics, config.session.cacheMaxEntries)
  const pseudo = pseudonymize(config.secret)
  const audience = requestAudience(deps.cookieNames.sessionToken, config.session.expiresInSeconds)
  const guard = createGuard({
    metrics,
    sessions,
    jwtVerifier,
    minter,
    pseudonymize: pseudo,
    freshSignIns,
    auditSetCookies: (request, setCookie) => auditReplyCookies(request, setCookie, audience, metrics),
  })
  return { sessions, jwks, jwtVerifier, minter, revokedSessions, guard, freshSignIns, pseudonymize: pseudo, probeSignOuts: new ProbeSignOuts() }
}

/** better-auth's hooks, filled in: a new signing key, a deleted session (sign-out, revocation, clean-up). */
export function connectAuthHooks(hooks: AuthHooks, parts: GatewayAuth, metrics: Metrics, logger: Logger): void {
  hooks.onSigningKeyCreated = () => {
    parts.jwks.keyCreated()
    parts.minter.keyCreated()
  }
  hooks.onSessionDeleted = (s) => {
    parts.sessions.evictToken(s.token)
    parts.freshSignIns.sessionEnded(s.token)
    parts.minter.evict(s.id)
    parts.revokedSessions.add(s.id)
    if (!parts.probeSignOuts.has(s.token)) metrics.sessionRevoked()
    logger.info({ event: 'session_revoked', session: parts.pseudonymize(s.id) }, 'audit')
  }
}
