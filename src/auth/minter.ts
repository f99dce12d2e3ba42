// The gateway exchange: a cookie session becomes a short-lived JWT for the
// upstream, signed with better-auth's own keys so any service can verify it
// with the JWKS URL, issuer and audience alone. signJWT reads and decrypts the
// key from the database on every call, so minted tokens are cached per session
// until shortly before they expire.
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

type Minted = { token: string; kid: string | undefined }
/** The probe's sessions mint like any other, counted on no user-facing series. */
type MintContext = SessionIdentity & { probe?: boolean }

export class TokenMinter {
  readonly #auth: Auth
  readonly #metrics: Metrics
  /** Per session id; single-flight: concurrent requests of one session share one signing. */
  readonly #cache: LRUCache<string, Minted, MintContext>

  constructor(auth: Auth, metrics: Metrics, maxEntries: number) {
    this.#auth = auth
    this.#metrics = metrics
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

  /** Forget every minted token (the invalidation bus reconnected). */
  clear(): void {
    this.#cache.clear()
  }

  /** Signing keys left the JWKS: tokens they signed would no longer verify upstream. */
  forgetKeys(kids: ReadonlySet<string>): void {
    const stale = [...this.#cache.entries()].filter(([, minted]) => minted.kid === undefined || kids.has(minted.kid))
    for (const [sessionId] of stale) this.#cache.delete(sessionId)
  }

  async #mint(identity: MintContext): Promise<Minted> {
    const metrics = metricsFor(this.#metrics, identity.probe)
    return inSpan(SpanName.tokenMint, { [Attr.mechanism]: 'session' }, async (span) => {
      let token: string
      try {
        const res = await this.#auth.api.signJWT({
          body: {
            payload: {
              sub: identity.userId,
              ...upstreamClaims({ email: identity.email, name: identity.name }, { id: identity.sessionId, idp: identity.idp }),
            },
          },
        })
        token = res.token
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
