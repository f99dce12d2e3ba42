// Sessions that ended while JWTs minted for them may still be unexpired. A
// JWT carries its session id (`sid`, see upstreamClaims); once that session
// is gone the token is refused with `session_revoked` on every replica
// (docs/adr/0031-revoked-session-jwts.md). Two sources of truth:
//   - a bounded in-memory set, fed by every session end this replica sees
//     (its own better-auth deletes, the invalidation bus, an expired session
//     found by a lookup), checked on every bearer request: a map lookup;
//   - the session row itself, read once per verify-once miss, so a replica
//     that started after the revocation, or missed the event, still refuses.
import type { Pool } from 'pg'
import { LRUCache } from 'lru-cache'

/** Bound on remembered revocations: about 13 MB when full (docs/adr/0031-revoked-session-jwts.md); past it the oldest are forgotten (logged). */
export const REVOKED_SESSIONS_MAX_ENTRIES = 100_000

export type RevokedSessionsOptions = {
  /** How long a revocation must be remembered: the longest JWT lifetime this deployment mints, plus clock tolerance. */
  ttlSeconds: number
  maxEntries?: number
  /** The pool the session row is read from on a verify-once miss; without it, the in-memory set alone decides. */
  pool?: Pool
  onDbError?: (err: unknown) => void
  /** A remembered revocation was pushed out by the bound before its TTL ended. */
  onOverflow?: () => void
  now?: () => number
}

// A named statement: planned once per pooled connection (as the session lookup, ADR 0060).
const ROW_STATEMENT = 'authgw_session_alive'
const ROW_SQL = 'SELECT "expiresAt" AS exp FROM "session" WHERE id = $1'
// After a failed row check, bearer requests skip it this long: an outage must
// not add DB_CONNECT_TIMEOUT_MS to every verify-once miss.
const STORE_RETRY_MS = 1_000

export class RevokedSessions {
  readonly #set: LRUCache<string, true>
  readonly #opts: RevokedSessionsOptions
  readonly #now: () => number
  #storeDownUntil = 0

  constructor(opts: RevokedSessionsOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.#set = new LRUCache<string, true>({
      max: opts.maxEntries ?? REVOKED_SESSIONS_MAX_ENTRIES,
      ttl: Math.max(1, opts.ttlSeconds) * 1000,
      dispose: (_v, _k, reason) => {
        if (reason === 'evict') opts.onOverflow?.()
      },
    })
  }

  get size(): number {
    return this.#set.size
  }

  /** This session ended (sign-out, revocation, password change, user deletion, expiry). */
  add(sessionId: string): void {
    this.#set.set(sessionId, true)
  }

  /** The hot path: every bearer request, verify-once hits included. */
  has(sessionId: string): boolean {
    return this.#set.has(sessionId)
  }

  /**
   * On a verify-once miss: is the session gone from the store? A store that
   * cannot answer says nothing (false): a signed, unexpired JWT stays
   * verifiable without the database, as it is for every other verifier.
   */
  async endedInStore(sessionId: string): Promise<boolean> {
    if (this.has(sessionId)) return true
    const pool = this.#opts.pool
    if (pool === undefined || this.#now() < this.#storeDownUntil) return false
    let exp: Date | undefined
    try {
      const res = await pool.query<{ exp: Date }>({ name: ROW_STATEMENT, text: ROW_SQL, values: [sessionId] })
      const row = res.rows[0]
      if (row !== undefined) exp = new Date(row.exp)
    } catch (err) {
      this.#storeDownUntil = this.#now() + STORE_RETRY_MS
      this.#opts.onDbError?.(err)
      return false
    }
    if (exp !== undefined && exp.getTime() > this.#now()) return false
    this.add(sessionId)
    return true
  }
}
