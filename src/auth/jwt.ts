// Bearer JWT verification with node:crypto and pre-imported keys, behind a
// verify-once cache keyed by a hash of the whole token (expiry re-checked on
// every hit). Each rejection maps to exactly one JwtReason.
import { constants, hash, verify as cryptoVerify } from 'node:crypto'
import { JwtReason } from '../reasons.ts'
import { BoundedCache } from './bounded-cache.ts'
import type { JwksStore, VerifyKey } from './jwks.ts'

export type JwtClaims = { sub: string; exp: number; nbf?: number; iat?: number; [claim: string]: unknown }

export type JwtResult =
  | { ok: true; claims: JwtClaims; kid: string; alg: string; cached: boolean }
  | { ok: false; reason: JwtReason; kid?: string; alg?: string }

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
  now?: () => number
}

const MAX_TOKEN_LENGTH = 8192
const B64URL = /^[A-Za-z0-9_-]*$/

type Cached = { claims: JwtClaims; kid: string; alg: string }

export class JwtVerifier {
  readonly #opts: JwtVerifierOptions
  readonly #cache: BoundedCache<Cached>
  readonly #allowed: Set<string>
  readonly #toleranceMs: number
  readonly #now: () => number

  constructor(opts: JwtVerifierOptions) {
    this.#opts = opts
    this.#cache = new BoundedCache(opts.cacheMaxEntries)
    this.#allowed = new Set(opts.algorithms)
    this.#toleranceMs = (opts.clockToleranceSeconds ?? 5) * 1000
    this.#now = opts.now ?? Date.now
  }

  /** Forget every verified token, e.g. when keys were removed. */
  flush(): void {
    this.#cache.clear()
  }

  /** Throws JwksUnavailableError when keys cannot be loaded; never throws for a bad token. */
  async verify(token: string): Promise<JwtResult> {
    const now = this.#now()
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: JwtReason.malformed }
    // One-shot digest: half the cost of a Hash object on every request.
    const cacheKey = hash('sha256', token, 'base64url')
    const hit = this.#cache.get(cacheKey, now)
    this.#opts.onCacheLookup?.(hit !== undefined)
    if (hit !== undefined) {
      const timeReason = this.#checkTimes(hit.claims, now)
      if (timeReason) {
        this.#cache.delete(cacheKey)
        return { ok: false, reason: timeReason, kid: hit.kid, alg: hit.alg }
      }
      return { ok: true, claims: hit.claims, kid: hit.kid, alg: hit.alg, cached: true }
    }

    const parts = token.split('.')
    // An unsecured JWS (`alg: none`, RFC 7515 §A.5) has an empty signature: let
    // it reach the algorithm check and be named alg_not_allowed, not malformed.
    if (parts.length !== 3 || !parts.every((p, i) => (p.length > 0 || i === 2) && B64URL.test(p))) {
      return { ok: false, reason: JwtReason.malformed }
    }
    const [h, p, s] = parts as [string, string, string]
    const header = parseJsonObject(h)
    if (header === undefined || typeof header.alg !== 'string') return { ok: false, reason: JwtReason.malformed }
    const alg = header.alg
    const kid = typeof header.kid === 'string' ? header.kid : undefined
    const shownKid = kid === undefined ? undefined : kid.slice(0, 64)
    if (!this.#allowed.has(alg)) return { ok: false, reason: JwtReason.alg_not_allowed, alg: alg.slice(0, 16), kid: shownKid }
    // RFC 7515 §4.1.11: a critical extension we do not understand must be rejected.
    if (header.crit !== undefined) return { ok: false, reason: JwtReason.malformed, alg, kid: shownKid }
    if (kid === undefined) return { ok: false, reason: JwtReason.kid_unknown, alg }

    const key = await this.#opts.jwks.getKey(kid)
    if (key === undefined) return { ok: false, reason: JwtReason.kid_unknown, alg, kid: shownKid }
    if (key.alg !== alg) return { ok: false, reason: JwtReason.alg_not_allowed, alg, kid }
    if (!verifySignature(key, `${h}.${p}`, Buffer.from(s, 'base64url'))) return { ok: false, reason: JwtReason.bad_signature, alg, kid }

    const payload = parseJsonObject(p)
    if (payload === undefined || typeof payload.sub !== 'string' || typeof payload.exp !== 'number') {
      return { ok: false, reason: JwtReason.malformed, alg, kid }
    }
    if (payload.nbf !== undefined && typeof payload.nbf !== 'number') return { ok: false, reason: JwtReason.malformed, alg, kid }
    const claims = payload as JwtClaims
    const timeReason = this.#checkTimes(claims, now)
    if (timeReason) return { ok: false, reason: timeReason, alg, kid }
    if (claims.iss !== this.#opts.issuer) return { ok: false, reason: JwtReason.issuer_mismatch, alg, kid }
    const aud = claims.aud
    if (!(aud === this.#opts.audience || (Array.isArray(aud) && aud.includes(this.#opts.audience)))) {
      return { ok: false, reason: JwtReason.audience_mismatch, alg, kid }
    }
    const ttlMs = (this.#opts.cacheTtlSeconds ?? 60) * 1000
    this.#cache.set(cacheKey, { claims, kid, alg }, Math.min(claims.exp * 1000, now + ttlMs))
    return { ok: true, claims, kid, alg, cached: false }
  }

  #checkTimes(claims: JwtClaims, now: number): JwtReason | undefined {
    if (claims.exp * 1000 + this.#toleranceMs <= now) return JwtReason.expired
    if (claims.nbf !== undefined && claims.nbf * 1000 - this.#toleranceMs > now) return JwtReason.not_yet_valid
    return undefined
  }
}

function parseJsonObject(b64url: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(b64url, 'base64url').toString('utf8'))
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

function verifySignature(k: VerifyKey, data: string, signature: Buffer): boolean {
  try {
    switch (k.alg) {
      case 'EdDSA':
        return cryptoVerify(null, Buffer.from(data), k.key, signature)
      case 'ES256':
        return cryptoVerify('sha256', Buffer.from(data), { key: k.key, dsaEncoding: 'ieee-p1363' }, signature)
      case 'RS256':
        return cryptoVerify('sha256', Buffer.from(data), k.key, signature)
      case 'PS256':
        return cryptoVerify(
          'sha256',
          Buffer.from(data),
          { key: k.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
          signature,
        )
      default:
        return false
    }
  } catch {
    return false
  }
}
