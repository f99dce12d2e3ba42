// The in-memory JWKS: keys imported once as KeyObjects, refreshed in the
// background, single-flight, and on an unknown `kid` at most once per cooldown
// so a flood of junk kids cannot turn into a flood of key-store reads. Inside
// the cooldown an unknown kid is looked up by id in the key store (a bounded
// number a second, misses remembered): a key another replica created a moment
// ago is fetched at once, a junk kid costs at most one indexed read.
import { createPublicKey } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import { AuthgwError } from '../errors.ts'
import { JwksRefreshOutcome } from '../reasons.ts'
import type { JwksRefreshOutcome as RefreshOutcome } from '../reasons.ts'

export type Jwk = JsonWebKey & { kid?: string; alg?: string }
export type VerifyKey = { kid: string; alg: string; key: KeyObject }

export class JwksUnavailableError extends AuthgwError {
  constructor(cause: unknown) {
    super('AUTHGW_ERR_JWKS_UNAVAILABLE', undefined, { cause })
  }
}

export type JwksStoreOptions = {
  fetchKeys: () => Promise<Jwk[]>
  refreshIntervalSeconds: number
  cooldownSeconds: number
  onRefresh?: (outcome: RefreshOutcome, keys: number, durationSeconds: number, err?: unknown) => void
  /** Wraps each real refresh, e.g. in a span. */
  traceRefresh?: <T>(fn: () => Promise<T>) => Promise<T>
  /**
   * Whether the key store holds a key with this kid. Asked inside the cooldown,
   * so a key created by another replica since the last refresh is not refused
   * as unknown while its announcement is on its way.
   */
  kidExists?: (kid: string) => Promise<boolean>
  now?: () => number
}

const MAX_KID_LENGTH = 256
/** Store look-ups for unknown kids inside the cooldown, at most this many a second. */
export const KID_LOOKUPS_PER_SECOND = 20
const KID_MISSES_REMEMBERED = 1024
/**
 * The kids a key store look-up is spent on: the ids better-auth (or a custom id generator: UUIDs,
 * cuids) gives its keys. Anything else (a NUL, non-ASCII, spaces) cannot be a key of this
 * deployment and must not reach the database, where it would be an error a client caused.
 */
const LOOKUP_KID = /^[A-Za-z0-9._~-]{1,128}$/

export class JwksStore {
  #keys = new Map<string, VerifyKey>()
  #inflight: Promise<void> | undefined
  #lastUnknownKidRefresh = Number.NEGATIVE_INFINITY
  #lastSuccess = 0
  /** Outcome of the latest refresh: inside a cooldown after a failed one, an unknown kid is undecidable, not unknown. */
  #lastRefreshFailed = false
  #timer: NodeJS.Timeout | undefined
  readonly #removalListeners: Array<(kids: ReadonlySet<string>) => void> = []
  readonly #opts: JwksStoreOptions
  readonly #now: () => number
  /** Kids the store did not hold, until the next refresh or the cooldown's end. */
  readonly #kidMisses: LRUCache<string, true>
  #kidLookupWindow = 0
  #kidLookups = 0

  constructor(opts: JwksStoreOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
    this.#kidMisses = new LRUCache({ max: KID_MISSES_REMEMBERED, ttl: Math.max(1, opts.cooldownSeconds) * 1000, perf: { now: () => this.#now() } })
  }

  get size(): number {
    return this.#keys.size
  }

  get loaded(): boolean {
    return this.#lastSuccess > 0 && this.#keys.size > 0
  }

  get lastSuccess(): number {
    return this.#lastSuccess
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.refresh().catch(() => undefined)
    }, this.#opts.refreshIntervalSeconds * 1000)
    this.#timer.unref()
  }

  /**
   * A signing key was just created by this instance: the next unknown kid
   * refreshes at once instead of waiting out a cooldown that junk kids started.
   */
  keyCreated(): void {
    this.#lastUnknownKidRefresh = Number.NEGATIVE_INFINITY
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
  }

  /** Called after a refresh in which keys left the set (or changed under the same kid). */
  onKeysRemoved(listener: (kids: ReadonlySet<string>) => void): void {
    this.#removalListeners.push(listener)
  }

  /** Refresh now; concurrent callers share one fetch. Keeps the old keys on failure. */
  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight
    const started = performance.now()
    const run = async () => {
      let jwks: Jwk[]
      try {
        jwks = await this.#opts.fetchKeys()
      } catch (err) {
        this.#lastRefreshFailed = true
        this.#opts.onRefresh?.(JwksRefreshOutcome.failure, this.#keys.size, (performance.now() - started) / 1000, err)
        throw new JwksUnavailableError(err)
      }
      const next = new Map<string, VerifyKey>()
      for (const jwk of jwks) {
        if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string') continue
        // Reuse imported keys: creating KeyObjects is the expensive part on OpenSSL 3.
        const known = this.#keys.get(jwk.kid)
        if (known && known.alg === jwk.alg) {
          next.set(jwk.kid, known)
          continue
        }
        try {
          const { kid, alg, ...material } = jwk
          next.set(kid, { kid, alg, key: createPublicKey({ key: material, format: 'jwk' }) })
        } catch {
          // A key we cannot import cannot verify anything; skip it rather than fail the set.
        }
      }
      const removed = new Set<string>()
      for (const [kid, key] of this.#keys) if (next.get(kid) !== key) removed.add(kid)
      this.#keys = next
      this.#kidMisses.clear()
      this.#lastSuccess = this.#now()
      this.#lastRefreshFailed = false
      if (removed.size > 0) for (const listener of this.#removalListeners) listener(removed)
      this.#opts.onRefresh?.(JwksRefreshOutcome.success, next.size, (performance.now() - started) / 1000)
    }
    const traced = this.#opts.traceRefresh ? this.#opts.traceRefresh(run) : run()
    this.#inflight = traced.finally(() => {
      this.#inflight = undefined
    })
    return this.#inflight
  }

  /**
   * The key for `kid`. Unknown kids trigger one refresh per cooldown; inside
   * the cooldown they are simply unknown — unless the latest refresh failed:
   * then the key store, not the token, is the problem and JwksUnavailableError
   * is thrown (a 503, never a 401 for a store reason). Also thrown when the key
   * set cannot be loaded at all.
   */
  async getKey(kid: string): Promise<VerifyKey | undefined> {
    const key = this.#keys.get(kid)
    if (key !== undefined) return key
    if (kid.length > MAX_KID_LENGTH) return undefined
    const now = this.#now()
    if (this.loaded && now - this.#lastUnknownKidRefresh < this.#opts.cooldownSeconds * 1000) {
      if (!this.#inflight) this.#opts.onRefresh?.(JwksRefreshOutcome.suppressed, this.#keys.size, 0)
      else await this.#inflight.catch(() => undefined)
      const known = this.#keys.get(kid)
      if (known !== undefined) return known
      if (this.#lastRefreshFailed) throw new JwksUnavailableError(new Error('latest JWKS refresh failed'))
      if (!(await this.#storeHolds(kid))) return undefined
      return this.#refreshedKey(kid)
    }
    this.#lastUnknownKidRefresh = now
    return this.#refreshedKey(kid)
  }

  /** Refresh, then the key for `kid`; a failed refresh is JwksUnavailableError (a 503). */
  async #refreshedKey(kid: string): Promise<VerifyKey | undefined> {
    try {
      await this.refresh()
    } catch (err) {
      throw err instanceof JwksUnavailableError ? err : new JwksUnavailableError(err)
    }
    return this.#keys.get(kid)
  }

  /** The key store's answer for one kid, within the per-second budget; a store that cannot answer is a 503, not a 401. */
  async #storeHolds(kid: string): Promise<boolean> {
    const lookup = this.#opts.kidExists
    if (lookup === undefined || !LOOKUP_KID.test(kid) || this.#kidMisses.has(kid)) return false
    const second = Math.floor(this.#now() / 1000)
    if (second !== this.#kidLookupWindow) {
      this.#kidLookupWindow = second
      this.#kidLookups = 0
    }
    if (this.#kidLookups >= KID_LOOKUPS_PER_SECOND) return false
    this.#kidLookups++
    let held: boolean
    try {
      held = await lookup(kid)
    } catch (err) {
      throw new JwksUnavailableError(err)
    }
    if (!held) this.#kidMisses.set(kid, true)
    return held
  }
}
