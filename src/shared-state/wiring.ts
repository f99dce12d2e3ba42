// What each invalidation does to this replica's caches, and which better-auth
// events announce one. A session that ends (sign-out, revocation of one, all
// or other sessions, password change with revocation, user deletion, expiry
// clean-up: every path deletes session rows through better-auth's
// databaseHooks) announces the session and its minted upstream JWT; a signing
// key created here or gone from the JWKS announces a key-set change. A JWT
// event also puts the session among the revoked ones, so its bearer JWTs are
// refused here too (docs/adr/0031-revoked-session-jwts.md).
import type { AuthHooks } from '../auth/better-auth.ts'
import type { JwksStore } from '../auth/jwks.ts'
import type { JwtVerifier } from '../auth/jwt.ts'
import type { TokenMinter } from '../auth/minter.ts'
import type { RevokedSessions } from '../auth/revoked-sessions.ts'
import { cacheKey } from '../auth/session.ts'
import type { SessionValidator } from '../auth/session.ts'
import type { InvalidationBus } from './bus.ts'
import { InvalidationKind } from './vocabulary.ts'

export type Caches = {
  sessions: SessionValidator
  minter: TokenMinter
  jwks: JwksStore
  jwtVerifier: JwtVerifier
  revokedSessions: RevokedSessions
}

export function connectInvalidation(bus: InvalidationBus, caches: Caches, authHooks: AuthHooks): void {
  const { sessions, minter, jwks, jwtVerifier, revokedSessions } = caches
  bus.on(InvalidationKind.session, (key) => sessions.evictCacheKey(key))
  bus.on(InvalidationKind.jwt, (sessionId) => {
    minter.evict(sessionId)
    revokedSessions.add(sessionId)
  })
  bus.on(InvalidationKind.jwks, () => {
    // Refresh now, whatever cooldown junk kids started.
    jwks.keyCreated()
    void jwks.refresh().catch(() => undefined)
  })
  // The revoked set is kept: a revocation stays true. Events missed while the
  // connection was down are caught by the session-row check of every
  // verify-once miss, and the flush below makes every token's next use a miss.
  bus.onReconnect(() => {
    sessions.clear()
    minter.clear()
    jwtVerifier.flush()
    void jwks.refresh().catch(() => undefined)
  })

  // The server's own hooks evict locally; these announce to the others.
  const localSessionDeleted = authHooks.onSessionDeleted
  authHooks.onSessionDeleted = async (s) => {
    await localSessionDeleted?.(s)
    await Promise.all([bus.publish(InvalidationKind.session, cacheKey(s.token)), bus.publish(InvalidationKind.jwt, s.id)])
  }
  const localKeyCreated = authHooks.onSigningKeyCreated
  authHooks.onSigningKeyCreated = async () => {
    await localKeyCreated?.()
    await bus.publish(InvalidationKind.jwks, 'created')
  }
  jwks.onKeysRemoved((kids) => {
    for (const kid of kids) void bus.publish(InvalidationKind.jwks, kid.slice(0, 128))
  })
}
