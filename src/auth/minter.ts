// The gateway exchange: a cookie session becomes a short-lived JWT for the
// upstream, signed with better-auth's own keys so any service can verify it
// with the JWKS URL, issuer and audience alone. signJWT reads and decrypts the
// key from the database on every call, so minted tokens are cached per session
// until shortly before they expire.
import { TokenIssueFailureReason, TokenKind, TokenVia } from '../reasons.ts'
import type { TokenIssueFailureReason as FailureReason } from '../reasons.ts'
import { Attr, SpanName } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { inSpan } from '../telemetry/tracing.ts'
import { exemplarOf } from './decision.ts'
import type { Auth } from './better-auth.ts'
import { upstreamClaims } from './better-auth.ts'
import { BoundedCache } from './bounded-cache.ts'
import type { SessionIdentity } from './session.ts'

export class TokenMintError extends Error {
  readonly reason: FailureReason
  constructor(reason: FailureReason, cause: unknown) {
    super(`token mint failed: ${reason}`, { cause })
    this.reason = reason
  }
}

const RENEW_BEFORE_EXPIRY_MS = 60_000

export class TokenMinter {
  readonly #auth: Auth
  readonly #metrics: Metrics
  readonly #cache: BoundedCache<string>
  readonly #inflight = new Map<string, Promise<string>>()

  constructor(auth: Auth, metrics: Metrics, maxEntries: number) {
    this.#auth = auth
    this.#metrics = metrics
    this.#cache = new BoundedCache(maxEntries)
  }

  async tokenFor(identity: SessionIdentity): Promise<string> {
    const cached = this.#cache.get(identity.sessionId, Date.now())
    if (cached !== undefined) return cached
    const running = this.#inflight.get(identity.sessionId)
    if (running) return running
    const p = this.#mint(identity).finally(() => this.#inflight.delete(identity.sessionId))
    this.#inflight.set(identity.sessionId, p)
    return p
  }

  evict(sessionId: string): void {
    this.#cache.delete(sessionId)
  }

  async #mint(identity: SessionIdentity): Promise<string> {
    return inSpan(SpanName.tokenMint, { [Attr.mechanism]: 'session' }, async (span) => {
      let token: string
      try {
        const res = await this.#auth.api.signJWT({
          body: {
            payload: {
              sub: identity.userId,
              ...upstreamClaims({ email: identity.email, name: identity.name }, { id: identity.sessionId }),
            },
          },
        })
        token = res.token
      } catch (err) {
        // A secret that differs from the one that encrypted the key cannot
        // decrypt it; anything else while reading the key is the store.
        const reason = /decrypt/i.test(err instanceof Error ? err.message : '')
          ? TokenIssueFailureReason.signing_failed
          : TokenIssueFailureReason.store_unavailable
        this.#metrics.tokenIssueFailure(reason, exemplarOf())
        span?.setAttribute(Attr.reason, reason)
        throw new TokenMintError(reason, err)
      }
      this.#metrics.tokenIssued(TokenKind.jwt, TokenVia.gateway_exchange)
      const exp = expiryOf(token)
      this.#cache.set(identity.sessionId, token, Math.min(exp - RENEW_BEFORE_EXPIRY_MS, identity.expiresAt))
      span?.setAttribute(Attr.outcome, 'allowed')
      return token
    })
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
