// What this instance handed out in the last FRESH_SIGN_IN_WINDOW_SECONDS, so
// a 401 seconds after a sign-in can say so (docs/reasons.md):
// - clients (a keyed hash of client IP + User-Agent) that received a session
//   cookie: a call from them without one is `cookie_not_returned`;
// - session tokens (a keyed hash) it issued: one that is then not found is
//   `fresh_session_not_found` (replica lag, eviction, a second database).
// Both maps are lru-cache instances bounded by count and by the window; the
// key is random per process, so a hash cannot be linked to a person or across
// restarts, and neither IP, User-Agent nor token is ever kept.
import { createHmac, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export type FreshSignInsOptions = {
  windowSeconds: number
  /** Bound on each map; the oldest entries go first. */
  maxEntries: number
  now?: () => number
}

/** Bound of each map: measured ≈ 211 heap bytes an entry, so ≈ 10 MiB a map and ≈ 20 MiB for both when full (bench/fresh-sign-ins-memory.ts). */
export const FRESH_SIGN_IN_MAX_ENTRIES = 50_000

export class FreshSignIns {
  readonly windowSeconds: number
  readonly #key = randomBytes(32)
  readonly #clients: LRUCache<string, number> | undefined
  readonly #tokens: LRUCache<string, number> | undefined
  readonly #now: () => number

  constructor(opts: FreshSignInsOptions) {
    this.windowSeconds = opts.windowSeconds
    this.#now = opts.now ?? Date.now
    if (opts.windowSeconds > 0) {
      const ttl = opts.windowSeconds * 1000
      this.#clients = new LRUCache({ max: opts.maxEntries, ttl })
      this.#tokens = new LRUCache({ max: opts.maxEntries, ttl })
    }
  }

  #hash(...parts: string[]): string {
    // 128 bits: collisions are out of reach at any bound this map can have.
    return createHmac('sha256', this.#key).update(parts.join('\0')).digest('base64url').slice(0, 22)
  }

  /** The pseudonymous client key: the same client IP and User-Agent give the same key within this process. */
  clientKey(ip: string, userAgent: string | undefined): string {
    return this.#hash('client', ip, userAgent ?? '')
  }

  /** A sign-in or sign-up gave this client a session cookie (and, when known, this session token). */
  signedIn(clientKey: string, token: string | undefined): void {
    const now = this.#now()
    this.#clients?.set(clientKey, now)
    if (token !== undefined) this.#tokens?.set(this.#hash('token', token), now)
  }

  /** The client signed out: a call without a cookie is expected now. */
  signedOut(clientKey: string): void {
    this.#clients?.delete(clientKey)
  }

  /** The session ended here (sign-out, revocation): not-found is the ordinary answer now. */
  sessionEnded(token: string): void {
    this.#tokens?.delete(this.#hash('token', token))
  }

  /** Seconds since this client last received a session cookie, when within the window. */
  sinceSignIn(clientKey: string): number | undefined {
    const at = this.#clients?.get(clientKey)
    return at === undefined ? undefined : Math.max(0, Math.round((this.#now() - at) / 1000))
  }

  /** Whether this instance issued the token within the window. */
  issuedRecently(token: string): boolean {
    return this.#tokens?.get(this.#hash('token', token)) !== undefined
  }

  get size(): { clients: number; tokens: number } {
    return { clients: this.#clients?.size ?? 0, tokens: this.#tokens?.size ?? 0 }
  }
}
