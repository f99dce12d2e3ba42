// Session-cookie authentication without calling getSession per request:
// verify better-auth's cookie HMAC with a KeyObject built once (node:crypto,
// ~5 µs instead of ~160 µs through WebCrypto), then look the session up in an
// LRU cache in front of one joined query. Concurrent lookups of one session
// share a single query (lru-cache's fetchMethod); a revocation replaces the
// entry with a tombstone, which also discards a lookup still in flight.
// Every miss is classified into exactly one SessionReason.
import { createHmac, createSecretKey, hash, timingSafeEqual } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Pool } from 'pg'
import { StoreUnavailableError } from '../errors.ts'
import { SessionReason } from '../reasons.ts'
import type { SessionRefresher } from './session-refresh.ts'

export type SessionIdentity = {
  sessionId: string
  userId: string
  email: string
  name: string
  expiresAt: number
  /** The SSO provider the session was signed in through (only with SSO configured). */
  idp?: string
}

export type SessionResult =
  | {
      ok: true
      identity: SessionIdentity
      cached: boolean
      /** Set-Cookie values of a session extension (better-auth's `updateAge`), for the response. */
      setCookie?: string[]
    }
  | { ok: false; reason: SessionReason }

export type CookieNames = {
  /** The name better-auth sets with this configuration, e.g. `better-auth.session_token`. */
  sessionToken: string
  /** The same cookie with or without `__Secure-`: seeing it means a prefix mismatch. */
  otherVariant: string
  /** Every cookie name better-auth may set, so only these are stripped upstream. */
  all: string[]
  /** better-auth's session-data (cookie cache) cookie, possibly chunked as `<name>.0`, `<name>.1` … */
  sessionData?: string
}

export function cookieNamesFor(sessionTokenName: string, others: string[]): CookieNames {
  const SECURE = '__Secure-'
  const otherVariant = sessionTokenName.startsWith(SECURE) ? sessionTokenName.slice(SECURE.length) : SECURE + sessionTokenName
  const all = new Set<string>()
  for (const n of [sessionTokenName, ...others]) {
    const plain = n.startsWith(SECURE) ? n.slice(SECURE.length) : n
    all.add(plain)
    all.add(SECURE + plain)
  }
  const sessionData = others.find((n) => n.endsWith('.session_data'))
  return { sessionToken: sessionTokenName, otherVariant, all: [...all], ...(sessionData !== undefined ? { sessionData } : {}) }
}

/** Parse a Cookie header into name → raw value (first occurrence wins, like better-call). */
export function parseCookieHeader(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>()
  if (!header) return out
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const name = part.slice(0, eq).trim()
    if (name === '' || out.has(name)) continue
    out.set(name, part.slice(eq + 1).trim())
  }
  return out
}

export type SessionValidatorOptions = {
  pool: Pool
  secret: string
  cookieNames: CookieNames
  cacheTtlSeconds: number
  cacheMaxEntries: number
  onCacheLookup?: (hit: boolean) => void
  onDbError?: (err: unknown) => void
  /** Redis mode: a shared copy read before PostgreSQL (undefined: read PostgreSQL). */
  readShared?: (token: string) => Promise<LookupRow | undefined>
  /** Whether this instance issued the token within FRESH_SIGN_IN_WINDOW_SECONDS (fresh-sign-ins.ts). */
  issuedRecently?: (token: string) => boolean
  now?: () => number
  /** Read the session's `idp` column (it exists only when SSO providers are configured). */
  withIdp?: boolean
  /** The store holds this session past its expiry (never said from the cache: another replica may have extended it). */
  onSessionExpired?: (sessionId: string) => void
}

export type ValidateOptions = {
  /**
   * Re-read a session the cache holds as valid (a store that stopped
   * answering then throws StoreUnavailableError). Known-bad sessions stay
   * answered from the cache: a token that was not found or expired never
   * becomes valid again.
   */
  revalidate?: boolean
  /** Extend the session as better-auth's getSession would, with this Cookie header. */
  extendWith?: string
}

/** A cached lookup: the session, or why there is none (`revoked`: a tombstone). */
type Lookup = { identity: SessionIdentity } | { reason: SessionReason; revoked?: true }

type LookupRow = { sid: string; uid: string; exp: Date; user_id: string | null; email: string | null; name: string | null; idp?: string | null }

// How long a cookie value whose signature checked out skips the HMAC. The
// signature of the same bytes under the same secret cannot stop being valid,
// so this bounds memory only; revocation is the session lookup's business.
const VERIFIED_COOKIE_TTL_MS = 10 * 60_000
// After a session extension that failed or wrote nothing, the same session is
// not tried again for this long (a store outage must not cost every request a
// getSession call).
const EXTENSION_RETRY_MS = 5_000
// A lookup replaced by a revocation while in flight is retried; the second
// attempt finds the tombstone.
const LOOKUP_ATTEMPTS = 3
// better-call's signed-cookie signature: HMAC-SHA256 in standard base64, 43 characters and one '='.
const SIGNATURE = /^[A-Za-z0-9+/]{43}=$/

// A named statement: each pooled connection parses and plans it once, then
// only binds and executes (docs/adr/0060-named-session-lookup.md: the
// database's CPU per lookup 218–264 → 78–89 µs).
const LOOKUP_STATEMENT = 'authgw_session_lookup'
const LOOKUP_SQL = `SELECT s.id AS sid, s."userId" AS uid, s."expiresAt" AS exp, u.id AS user_id, u.email, u.name
  FROM "session" s LEFT JOIN "user" u ON u.id = s."userId" WHERE s.token = $1`
const LOOKUP_SQL_WITH_IDP = LOOKUP_SQL.replace('u.email, u.name', 'u.email, u.name, s.idp')

export class SessionValidator {
  readonly cookieNames: CookieNames
  readonly #pool: Pool
  readonly #key: KeyObject
  /** Absent when SESSION_CACHE_TTL_SECONDS=0: every check reads the store. */
  readonly #cache: LRUCache<string, Lookup, string> | undefined
  /** Hashes of signed cookie values already verified (verify once, like JWTs); never the values. */
  readonly #verified: LRUCache<string, true>
  /** Sessions whose last extension attempt failed or wrote nothing, until they may be tried again. */
  readonly #extensionBackoff: LRUCache<string, true>
  readonly #extensions = new Map<string, Promise<Extension>>()
  readonly #ttlMs: number
  readonly #opts: SessionValidatorOptions
  readonly #now: () => number
  #refresher: SessionRefresher | undefined

  constructor(opts: SessionValidatorOptions) {
    this.#opts = opts
    this.cookieNames = opts.cookieNames
    this.#pool = opts.pool
    this.#key = createSecretKey(Buffer.from(opts.secret, 'utf8'))
    this.#ttlMs = opts.cacheTtlSeconds * 1000
    this.#now = opts.now ?? Date.now
    if (this.#ttlMs > 0) {
      this.#cache = new LRUCache<string, Lookup, string>({
        max: opts.cacheMaxEntries,
        ttl: this.#ttlMs,
        fetchMethod: async (_key, _stale, { context: token, options }) => {
          const lookup = this.#classify(await this.#query(token))
          // Never cache a valid session past its own expiry.
          if ('identity' in lookup) options.ttl = Math.max(1, Math.min(this.#ttlMs, lookup.identity.expiresAt - this.#now()))
          return lookup
        },
      })
    }
    this.#verified = new LRUCache({ max: opts.cacheMaxEntries, ttl: VERIFIED_COOKIE_TTL_MS })
    this.#extensionBackoff = new LRUCache({ max: opts.cacheMaxEntries, ttl: EXTENSION_RETRY_MS })
  }

  /** Extend sessions the way better-auth does (see session-refresh.ts); without it sessions are never extended here. */
  extendSessionsWith(refresher: SessionRefresher): void {
    this.#refresher = refresher
  }

  /** Which session-cookie situation this request is in, before any crypto. */
  findToken(cookies: Map<string, string>): { value: string } | { reason: SessionReason } | undefined {
    const value = cookies.get(this.cookieNames.sessionToken)
    if (value !== undefined) return { value }
    if (cookies.has(this.cookieNames.otherVariant)) return { reason: SessionReason.cookie_name_mismatch }
    for (const name of cookies.keys()) {
      // Another prefix (advanced.cookiePrefix differs between apps) or a hand-built name.
      if (name.endsWith('.session_token') || name.endsWith('session-token')) return { reason: SessionReason.cookie_name_mismatch }
    }
    return undefined
  }

  /** Verify the signed cookie value; returns the session token or the reason it is unusable. */
  verifyCookie(raw: string): { token: string } | { reason: SessionReason } {
    // The value is read as better-call's getSignedCookie reads it, so both accept
    // the same cookies (docs/adr/0005-own-session-cookie-verification.md; the
    // differential test): surrounding double quotes dropped, percent-decoded only
    // when it has a '%', kept as it stands when that fails.
    const unquoted = raw.charCodeAt(0) === 34 ? raw.slice(1, -1) : raw
    let value = unquoted
    let undecodable = false
    if (unquoted.includes('%')) {
      try {
        value = decodeURIComponent(unquoted)
      } catch {
        undecodable = true
      }
    }
    const dot = value.lastIndexOf('.')
    if (dot < 1) return { reason: SessionReason.malformed_cookie }
    const token = value.slice(0, dot)
    const signature = value.slice(dot + 1)
    // Standard base64 only: Buffer would also decode base64url, which better-call refuses.
    if (!SIGNATURE.test(signature)) return { reason: SessionReason.malformed_cookie }
    // The HMAC costs ~8 µs per request in the benchmark; a hash of the whole
    // signed value (token and signature) costs ~1 µs and only ever matches
    // bytes that were verified before.
    const seen = cacheKey(value)
    if (this.#verified.get(seen) !== undefined) return { token }
    const given = Buffer.from(signature, 'base64')
    const expected = createHmac('sha256', this.#key).update(token).digest()
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { reason: undecodable ? SessionReason.malformed_cookie : SessionReason.bad_signature }
    this.#verified.set(seen, true)
    return { token }
  }

  /** Look the session up (cache first). Throws StoreUnavailableError when the store cannot answer. */
  async lookup(token: string, opts: { revalidate?: boolean } = {}): Promise<SessionResult> {
    const cache = this.#cache
    if (cache === undefined) {
      this.#opts.onCacheLookup?.(false)
      return this.#result(this.#classify(await this.#query(token)), false)
    }
    const key = cacheKey(token)
    // The hot path: a plain hit, without fetch()'s promise and status bookkeeping.
    const hit = opts.revalidate === true ? undefined : cache.get(key)
    if (hit !== undefined) {
      this.#opts.onCacheLookup?.(true)
      return this.#cachedResult(key, hit)
    }
    for (let attempt = 1; ; attempt++) {
      const status: LRUCache.Status<string, Lookup> = {}
      const known = cache.peek(key)
      let lookup: Lookup | undefined
      try {
        lookup = await cache.fetch(key, {
          context: token,
          status,
          forceRefresh: opts.revalidate === true && (known === undefined || 'identity' in known),
          // A re-read that fails keeps the entry: during an outage a cached session is still served.
          noDeleteOnFetchRejection: true,
        })
      } catch (err) {
        if (err instanceof StoreUnavailableError || attempt >= LOOKUP_ATTEMPTS) throw err
        // The lookup was replaced while in flight (a revocation's tombstone): ask again.
        continue
      }
      if (lookup === undefined) {
        if (attempt >= LOOKUP_ATTEMPTS) throw new Error('session lookup yielded nothing')
        continue
      }
      const cached = status.fetch === 'hit' || status.fetch === 'inflight'
      this.#opts.onCacheLookup?.(cached)
      return cached ? this.#cachedResult(key, lookup) : this.#result(lookup, false)
    }
  }

  #cachedResult(key: string, lookup: Lookup): SessionResult {
    if ('identity' in lookup && lookup.identity.expiresAt <= this.#now()) {
      this.#cache?.set(key, { reason: SessionReason.session_expired })
      return { ok: false, reason: SessionReason.session_expired }
    }
    return this.#result(lookup, true)
  }

  /** Full check of a request's cookies. */
  async validate(cookies: Map<string, string>, opts: ValidateOptions = {}): Promise<SessionResult | undefined> {
    const found = this.findToken(cookies)
    if (found === undefined) return undefined
    if ('reason' in found) return { ok: false, reason: found.reason }
    const verified = this.verifyCookie(found.value)
    if ('reason' in verified) return { ok: false, reason: verified.reason }
    const result = await this.lookup(verified.token, opts)
    if (!result.ok && result.reason === SessionReason.session_not_found && this.#opts.issuedRecently?.(verified.token) === true) {
      const key = cacheKey(verified.token)
      if (!this.#isTombstone(key)) {
        // Issued here seconds ago and not found: the store lags or lost it
        // (read replica, eviction, a second database). Do not remember the
        // miss, so the next request reads again.
        this.#cache?.delete(key)
        return { ok: false, reason: SessionReason.fresh_session_not_found }
      }
    }
    if (!result.ok || opts.extendWith === undefined) return result
    return this.#extendIfDue(verified.token, result, cookies, opts.extendWith)
  }

  /** A session ended on this instance (sign-out, revocation): refuse it at once, including lookups in flight. */
  evictToken(token: string): void {
    // set() over a lookup in flight aborts it, so its answer is never cached.
    this.#cache?.set(cacheKey(token), { reason: SessionReason.session_not_found, revoked: true })
  }

  /** A session ended on another replica (the bus names it by its cache key): refuse it at once. */
  evictCacheKey(key: string): void {
    this.#cache?.set(key, { reason: SessionReason.session_not_found, revoked: true })
  }

  /** Forget every cached lookup (the invalidation bus reconnected: events may have been missed). */
  clear(): void {
    this.#cache?.clear()
  }

  async #query(token: string): Promise<LookupRow | undefined> {
    const shared = await this.#opts.readShared?.(token)
    if (shared !== undefined) return shared
    try {
      // One statement name per text: pg refuses a name prepared with other text on the same connection.
      const statement = this.#opts.withIdp === true ? { name: `${LOOKUP_STATEMENT}_idp`, text: LOOKUP_SQL_WITH_IDP } : { name: LOOKUP_STATEMENT, text: LOOKUP_SQL }
      const res = await this.#pool.query<LookupRow>({ ...statement, values: [token] })
      return res.rows[0]
    } catch (err) {
      this.#opts.onDbError?.(err)
      throw new StoreUnavailableError(err)
    }
  }

  #classify(row: LookupRow | undefined): Lookup {
    if (row === undefined) return { reason: SessionReason.session_not_found }
    const expiresAt = new Date(row.exp).getTime()
    if (expiresAt <= this.#now()) {
      this.#opts.onSessionExpired?.(row.sid)
      return { reason: SessionReason.session_expired }
    }
    if (row.user_id === null) return { reason: SessionReason.user_not_found }
    const identity: SessionIdentity = { sessionId: row.sid, userId: row.user_id, email: row.email ?? '', name: row.name ?? '', expiresAt }
    if (typeof row.idp === 'string') identity.idp = row.idp
    return { identity }
  }

  #result(lookup: Lookup, cached: boolean): SessionResult {
    if ('identity' in lookup) {
      if (lookup.identity.expiresAt <= this.#now()) return { ok: false, reason: SessionReason.session_expired }
      return { ok: true, identity: lookup.identity, cached }
    }
    return { ok: false, reason: lookup.reason }
  }

  /**
   * better-auth's getSession extends a session once
   * `expiresAt - expiresIn + updateAge <= now`, unless it is a "don't remember
   * me" session or refresh is disabled. The gateway's own path honours the
   * same rule by asking better-auth to do exactly that, at most once per
   * session at a time.
   */
  async #extendIfDue(token: string, result: SessionResult & { ok: true }, cookies: Map<string, string>, cookieHeader: string): Promise<SessionResult> {
    const refresher = this.#refresher
    if (refresher === undefined || !refresher.isDue(result.identity.expiresAt, this.#now())) return result
    const dontRemember = cookies.get(refresher.dontRememberCookie)
    if (dontRemember !== undefined && 'token' in this.verifyCookie(dontRemember)) return result
    const key = cacheKey(token)
    if (this.#extensionBackoff.has(key)) return result
    let running = this.#extensions.get(key)
    if (running === undefined) {
      running = this.#extend(key, result.identity, cookieHeader).finally(() => this.#extensions.delete(key))
      this.#extensions.set(key, running)
    }
    const extension = await running
    switch (extension.kind) {
      case 'extended':
        return { ok: true, identity: extension.identity, cached: result.cached, setCookie: extension.setCookie }
      case 'gone':
        // better-auth no longer has this session: say why from the store itself.
        return this.lookup(token, { revalidate: true })
      case 'failed':
        return result
    }
  }

  async #extend(key: string, identity: SessionIdentity, cookieHeader: string): Promise<Extension> {
    const refresher = this.#refresher as SessionRefresher
    const outcome = await refresher.refresh(cookieHeader)
    if (outcome.kind === 'failed') {
      this.#extensionBackoff.set(key, true)
      return outcome
    }
    if (outcome.kind === 'gone') {
      if (!this.#isTombstone(key)) this.#cache?.delete(key)
      return outcome
    }
    const now = this.#now()
    const extended: SessionIdentity = { ...identity, expiresAt: outcome.expiresAt }
    // A revocation while the extension was in flight wins.
    if (this.#cache !== undefined && !this.#isTombstone(key) && outcome.expiresAt > now) {
      this.#cache.set(key, { identity: extended }, { ttl: Math.max(1, Math.min(this.#ttlMs, outcome.expiresAt - now)) })
    }
    // better-auth wrote nothing (another instance extended it first, or a refresh it skips): do not ask again at once.
    if (refresher.isDue(outcome.expiresAt, now)) this.#extensionBackoff.set(key, true)
    return { kind: 'extended', identity: extended, setCookie: outcome.setCookie }
  }

  #isTombstone(key: string): boolean {
    const v = this.#cache?.peek(key)
    return v !== undefined && 'revoked' in v
  }
}

type Extension = { kind: 'extended'; identity: SessionIdentity; setCookie: string[] } | { kind: 'gone' } | { kind: 'failed' }

export const cacheKey = (token: string): string => hash('sha256', token, 'base64url')
