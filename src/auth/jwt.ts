// Bearer JWT verification with jose (docs/adr/0002-jwt-verification.md)
// against the in-memory JWKS, behind a verify-once cache keyed by a hash of
// the whole token (expiry re-checked on every hit; entries of keys that left
// the JWKS dropped at once). Each rejection maps to exactly one JwtReason;
// a token whose session has ended is `session_revoked`, checked on every hit
// (a map lookup) and, on a miss, against the session row (revoked-sessions.ts).
import { hash } from 'node:crypto'
import { decodeProtectedHeader, errors, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import { LRUCache } from 'lru-cache'
import { JwtReason, JwtSessionReason } from '../reasons.ts'
import type { JwtRefusalReason } from '../reasons.ts'
import type { JwksStore } from './jwks.ts'
import { JwksUnavailableError } from './jwks.ts'
import type { RevokedSessions } from './revoked-sessions.ts'

export type JwtClaims = { sub: string; exp: number; nbf?: number; iat?: number; [claim: string]: unknown }

export type JwtResult =
  | { ok: true; claims: JwtClaims; kid: string; alg: string; cached: boolean }
  | { ok: false; reason: JwtRefusalReason; kid?: string; alg?: string }

export type JwtVerifierOptions = {
  jwks: JwksStore
  issuer: string
  audience: string
  algorithms: string[]
  cacheMaxEntries: number
  /** Longest time a verified token is trusted without re-verifying its signature. */
  cacheTtlSeconds?: number
  clockToleranceSeconds?: number
  onCacheLookup?: (hit: boolean) => void
  /** Sessions that ended: their JWTs (by `sid`) are refused. */
  revoked?: RevokedSessions
  now?: () => number
}

const MAX_TOKEN_LENGTH = 8192
const B64URL = /^[A-Za-z0-9_-]*$/

type Cached = { claims: JwtClaims; kid: string; alg: string }

/** The key resolver's verdicts, mapped to reasons like jose's own errors. */
class KidUnknown extends Error {}
class KeyAlgMismatch extends Error {}

export class JwtVerifier {
  /** The key set tokens are verified against. */
  readonly keys: JwksStore
  readonly #opts: JwtVerifierOptions
  readonly #cache: LRUCache<string, Cached>
  readonly #toleranceSeconds: number
  readonly #ttlMs: number
  readonly #now: () => number

  constructor(opts: JwtVerifierOptions) {
    this.#opts = opts
    this.keys = opts.jwks
    this.#ttlMs = (opts.cacheTtlSeconds ?? 60) * 1000
    this.#cache = new LRUCache({ max: opts.cacheMaxEntries, ttl: this.#ttlMs })
    this.#toleranceSeconds = opts.clockToleranceSeconds ?? 5
    this.#now = opts.now ?? Date.now
    // A token signed by a key that left the JWKS must not pass from the cache.
    opts.jwks.onKeysRemoved((kids) => this.forgetKeys(kids))
  }

  /** Forget every verified token. */
  flush(): void {
    this.#cache.clear()
  }

  /** Forget the verified tokens signed by these keys. */
  forgetKeys(kids: ReadonlySet<string>): void {
    const stale = [...this.#cache.entries()].filter(([, v]) => kids.has(v.kid))
    for (const [key] of stale) this.#cache.delete(key)
  }

  /** Throws JwksUnavailableError when keys cannot be loaded; never throws for a bad token. */
  async verify(token: string): Promise<JwtResult> {
    const now = this.#now()
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: JwtReason.malformed }
    // One-shot digest: half the cost of a Hash object on every request.
    const cacheKey = hash('sha256', token, 'base64url')
    const hit = this.#cache.get(cacheKey)
    this.#opts.onCacheLookup?.(hit !== undefined)
    if (hit !== undefined) {
      const timeReason = this.#checkTimes(hit.claims, now)
      if (timeReason) {
        this.#cache.delete(cacheKey)
        return { ok: false, reason: timeReason, kid: hit.kid, alg: hit.alg }
      }
      const sid = hit.claims.sid
      if (typeof sid === 'string' && this.#opts.revoked?.has(sid) === true) {
        this.#cache.delete(cacheKey)
        return { ok: false, reason: JwtSessionReason.session_revoked, kid: hit.kid, alg: hit.alg }
      }
      return { ok: true, claims: hit.claims, kid: hit.kid, alg: hit.alg, cached: true }
    }

    const parts = token.split('.')
    // Strict base64url in every part (jose's decoder would also take base64).
    // An unsecured JWS (`alg: none`, RFC 7515 §A.5) has an empty signature: let
    // it reach the algorithm check and be named alg_not_allowed, not malformed.
    if (parts.length !== 3 || !parts.every((p, i) => (p.length > 0 || i === 2) && B64URL.test(p))) {
      return { ok: false, reason: JwtReason.malformed }
    }
    let header: { alg?: unknown; kid?: unknown }
    try {
      header = decodeProtectedHeader(token)
    } catch {
      return { ok: false, reason: JwtReason.malformed }
    }
    // Labels for spans and logs: bounded, whatever the token says.
    const alg = typeof header.alg === 'string' ? header.alg.slice(0, 16) : undefined
    const shownKid = typeof header.kid === 'string' ? header.kid.slice(0, 64) : undefined

    let payload: JWTPayload
    let kid: string | undefined
    try {
      const verified = await jwtVerify(
        token,
        async (protectedHeader) => {
          if (typeof protectedHeader.kid !== 'string') throw new KidUnknown()
          const key = await this.#opts.jwks.getKey(protectedHeader.kid)
          if (key === undefined) throw new KidUnknown()
          if (key.alg !== protectedHeader.alg) throw new KeyAlgMismatch()
          kid = key.kid
          return key.key
        },
        {
          algorithms: this.#opts.algorithms,
          issuer: this.#opts.issuer,
          audience: this.#opts.audience,
          requiredClaims: ['sub', 'exp'],
          clockTolerance: this.#toleranceSeconds,
          currentDate: new Date(now),
        },
      )
      payload = verified.payload
    } catch (err) {
      if (err instanceof JwksUnavailableError) throw err
      return { ok: false, reason: reasonOf(err), alg, kid: shownKid }
    }
    if (typeof payload.sub !== 'string' || kid === undefined || alg === undefined) return { ok: false, reason: JwtReason.malformed, alg, kid: shownKid }
    const claims = payload as JwtClaims
    // Never cached: a later hit would skip the store.
    if (typeof claims.sid === 'string' && this.#opts.revoked !== undefined && (await this.#opts.revoked.endedInStore(claims.sid))) {
      return { ok: false, reason: JwtSessionReason.session_revoked, kid, alg }
    }
    this.#cache.set(cacheKey, { claims, kid, alg }, { ttl: Math.max(1, Math.min(claims.exp * 1000 - now, this.#ttlMs)) })
    return { ok: true, claims, kid, alg, cached: false }
  }

  // jose's rule (seconds, tolerance both ways), re-applied on every cache hit.
  #checkTimes(claims: JwtClaims, nowMs: number): JwtReason | undefined {
    const now = Math.floor(nowMs / 1000)
    if (claims.nbf !== undefined && claims.nbf > now + this.#toleranceSeconds) return JwtReason.not_yet_valid
    if (claims.exp <= now - this.#toleranceSeconds) return JwtReason.expired
    return undefined
  }
}

/** Exactly one reason for each way jose (or the key resolver) rejects a token. */
export function reasonOf(err: unknown): JwtReason {
  if (err instanceof KidUnknown) return JwtReason.kid_unknown
  if (err instanceof KeyAlgMismatch || err instanceof errors.JOSEAlgNotAllowed) return JwtReason.alg_not_allowed
  if (err instanceof errors.JWSSignatureVerificationFailed) return JwtReason.bad_signature
  if (err instanceof errors.JWTExpired) return JwtReason.expired
  if (err instanceof errors.JWTClaimValidationFailed) {
    // An absent issuer or audience is one that differs.
    if (err.claim === 'iss') return JwtReason.issuer_mismatch
    if (err.claim === 'aud') return JwtReason.audience_mismatch
    if (err.claim === 'nbf' && err.reason === 'check_failed') return JwtReason.not_yet_valid
    // `sub` or `exp` missing, or a time claim that is not a number.
    return JwtReason.malformed
  }
  // JWSInvalid, JWTInvalid, JOSENotSupported (an unknown `crit` extension, RFC 7515 §4.1.11) …
  if (err instanceof errors.JOSEError) return JwtReason.malformed
  // A published key jose cannot use for this token (e.g. an RSA modulus under 2048 bits).
  return JwtReason.bad_signature
}
