// The gateway exchange: a cookie session becomes a short-lived JWT for the
// upstream, signed with better-auth's own keys so any service can verify it
// with the JWKS URL, issuer and audience alone. Minted tokens are cached per
// session until shortly before they expire. better-auth's signJWT endpoint
// reads, decrypts and imports the signing key on every call; the minter
// resolves it through better-auth's own resolveSigningKey at most every 30 s
// (and again when a key is created or leaves the JWKS) and signs with
// better-auth's signJWT (docs/adr/0061-signing-key-reuse.md).
import { resolveSigningKey, signJWT } from 'better-auth/plugins/jwt'
import type { JwtOptions, ResolvedSigningKey } from 'better-auth/plugins/jwt'
import { LRUCache } from 'lru-cache'
import { DbOperation, TokenIssueFailureReason, TokenKind, TokenVia } from '../reasons.ts'
import type { TokenIssueFailureReason as FailureReason } from '../reasons.ts'
import { Attr, SpanName } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { metricsFor } from '../telemetry/probe-traffic.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { exemplarOf } from './decision.ts'
import type { Auth } from './better-auth.ts'
import { upstreamClaims } from './better-auth.ts'
import type { SessionIdentity } from './session.ts'
import { SigningFailure, classifySigningError } from './signing-errors.ts'

export class TokenMintError extends Error {
  readonly reason: FailureReason
  constructor(reason: FailureReason, cause: unknown) {
    super(`token mint failed: ${reason}`, { cause })
    this.reason = reason
  }
}

const RENEW_BEFORE_EXPIRY_MS = 60_000
/** better-auth's endpoint context, of which signJWT and resolveSigningKey read only `context`. */
type GenericEndpointContext = Parameters<typeof signJWT>[0]
// How long a resolved signing key is reused. better-auth rotates by creating a
// new key on the first signing after the latest one expired; reused, an
// expired key signs for at most this much longer (it stays in the JWKS for the
// grace period, at least JWT_EXPIRATION_SECONDS, so its tokens still verify).
export const SIGNING_KEY_REUSE_MS = 30_000

type Minted = { token: string; kid: string | undefined }
/** The probe's sessions mint like any other, counted on no user-facing series. */
type MintContext = SessionIdentity & { probe?: boolean }

export class TokenMinter {
  readonly #auth: Auth
  readonly #metrics: Metrics
  /** Per session id; single-flight: concurrent requests of one session share one signing. */
  readonly #cache: LRUCache<string, Minted, MintContext>
  readonly #now: () => number
  /** The resolved signing key and when it was resolved; single-flight. */
  #key: { at: number; key: Promise<ResolvedSigningKey> } | undefined

  constructor(auth: Auth, metrics: Metrics, maxEntries: number, opts: { now?: () => number } = {}) {
    this.#auth = auth
    this.#metrics = metrics
    this.#now = opts.now ?? Date.now
    this.#cache = new LRUCache<string, Minted, MintContext>({
      max: maxEntries,
      // Each entry's ttl is set from the token's own expiry.
      ttl: RENEW_BEFORE_EXPIRY_MS,
      fetchMethod: async (_sessionId, _stale, { context: identity, options }) => {
        const minted = await this.#mint(identity)
        options.ttl = Math.max(1, Math.min(expiryOf(minted.token) - RENEW_BEFORE_EXPIRY_MS, identity.expiresAt) - Date.now())
        return minted
      },
    })
  }

  async tokenFor(identity: SessionIdentity, probe?: boolean): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        const minted = await this.#cache.fetch(identity.sessionId, { context: probe === true ? { ...identity, probe } : identity })
        if (minted !== undefined) return minted.token
      } catch (err) {
        if (err instanceof TokenMintError || attempt >= 2) throw err
        // Evicted while minting (the session ended or its key left the JWKS): mint again.
      }
    }
  }

  evict(sessionId: string): void {
    this.#cache.delete(sessionId)
  }

  /** Forget every minted token and the signing key (the invalidation bus reconnected). */
  clear(): void {
    this.#cache.clear()
    this.#key = undefined
  }

  /** A signing key was created (here or on another replica): sign with the newest from now on. */
  keyCreated(): void {
    this.#key = undefined
  }

  /** Signing keys left the JWKS: tokens they signed would no longer verify upstream. */
  forgetKeys(kids: ReadonlySet<string>): void {
    this.#key = undefined
    const stale = [...this.#cache.entries()].filter(([, minted]) => minted.kid === undefined || kids.has(minted.kid))
    for (const [sessionId] of stale) this.#cache.delete(sessionId)
  }

  /** The signing key better-auth would use now, resolved at most every SIGNING_KEY_REUSE_MS. */
  async #signingKey(ctx: GenericEndpointContext, options: JwtOptions | undefined): Promise<ResolvedSigningKey> {
    const now = this.#now()
    let entry = this.#key
    if (entry === undefined || now - entry.at >= SIGNING_KEY_REUSE_MS) {
      const key = resolveSigningKey(ctx, options).then((k) => {
        // Only a custom jwt.sign callback answers null; this deployment has none.
        if (k === null) throw new Error('resolveSigningKey returned no key')
        return k
      })
      entry = { at: now, key }
      this.#key = entry
      // A failure is not reused: the next mint resolves again.
      key.catch(() => {
        if (this.#key === entry) this.#key = undefined
      })
    }
    return entry.key
  }

  async #sign(payload: Record<string, unknown>): Promise<string> {
    const context = await this.#auth.$context
    const options = jwtOptionsOf(this.#auth)
    // better-auth's endpoints get their context this way; signJWT and resolveSigningKey read only `context`.
    const ctx = { context } as unknown as GenericEndpointContext
    return signJWT(ctx, { options, payload, resolvedKey: await this.#signingKey(ctx, options) })
  }

  async #mint(identity: MintContext): Promise<Minted> {
    const metrics = metricsFor(this.#metrics, identity.probe)
    return inSpan(SpanName.tokenMint, { [Attr.mechanism]: 'session' }, async (span) => {
      let token: string
      try {
        token = await this.#sign({
          sub: identity.userId,
          ...upstreamClaims({ email: identity.email, name: identity.name }, { id: identity.sessionId, idp: identity.idp }),
        })
      } catch (err) {
        const reason = mintFailureReason(err)
        if (reason === TokenIssueFailureReason.store_unavailable) metrics.dbError(DbOperation.token_mint)
        metrics.tokenIssueFailure(reason, exemplarOf())
        span?.setAttribute(Attr.reason, reason)
        throw new TokenMintError(reason, err)
      }
      metrics.tokenIssued(TokenKind.jwt, TokenVia.gateway_exchange)
      span?.setAttribute(Attr.outcome, 'allowed')
      return { token, kid: headerOf(token).kid }
    })
  }
}

/** The jwt plugin's options, as better-auth's signJWT endpoint passes them. */
function jwtOptionsOf(auth: Auth): JwtOptions | undefined {
  const plugin = (auth.options.plugins as ReadonlyArray<{ id: string; options?: unknown }> | undefined)?.find((p) => p.id === 'jwt')
  return plugin?.options as JwtOptions | undefined
}

/** A key problem is `signing_failed`; anything else on this path is the store (signing-errors.ts). */
export function mintFailureReason(err: unknown): FailureReason {
  return classifySigningError(err) === SigningFailure.store ? TokenIssueFailureReason.store_unavailable : TokenIssueFailureReason.signing_failed
}

function headerOf(jwt: string): { kid?: string } {
  try {
    const header = JSON.parse(Buffer.from(jwt.slice(0, jwt.indexOf('.')), 'base64url').toString('utf8')) as { kid?: unknown }
    return typeof header.kid === 'string' ? { kid: header.kid } : {}
  } catch {
    return {}
  }
}

function expiryOf(jwt: string): number {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: number }
    return typeof payload.exp === 'number' ? payload.exp * 1000 : Date.now()
  } catch {
    return Date.now()
  }
}
