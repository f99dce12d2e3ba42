// What better-auth's OAuth client does not tell: which provider endpoint was
// slow or unreachable, what the token endpoint answered, and which check an
// ID token failed. better-auth does the protocol (discovery, PKCE, code
// exchange, ID token verification); this module only watches it:
//  - provider requests are timed from undici's diagnostics channels (the
//    fetch better-auth and jose use), matched to the endpoints of each
//    provider's discovery document;
//  - each configured provider's code exchange and user-info step are wrapped
//    so their failure lands in the current callback's trace (an
//    AsyncLocalStorage entered around auth.handler);
//  - an ID token better-auth refused is verified again with jose, the same
//    library and options better-auth uses, to name the failed check.
import { AsyncLocalStorage } from 'node:async_hooks'
import diagnostics from 'node:diagnostics_channel'
import { errors as joseErrors, jwtVerify } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import type { Logger } from 'pino'
import { IdTokenCause, OAuthEndpoint } from '../reasons.ts'
import type { CallbackTrace } from './classify.ts'
import type { OidcProviderConfig } from './config.ts'
import { discoveryUrl } from './config.ts'

/** better-auth's ID token checks (packages/core/src/oauth2/verify-id-token.ts). */
const ID_TOKEN_CLOCK_TOLERANCE_SECONDS = 30
const ID_TOKEN_REQUIRED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat']
const DISCOVERY_TIMEOUT_MS = 5000

type UndiciRequest = { origin?: string | URL; path?: string; method?: string }
type Timed = { provider: string; endpoint: OAuthEndpoint; start: bigint }

/** The parts of a better-auth OAuth provider object this module wraps. */
type BetterAuthProvider = {
  id: string
  idToken?: { jwks?: JWTVerifyGetKey; issuer?: string; audience?: string | string[]; algorithms?: string[] }
  validateAuthorizationCode: (data: unknown) => Promise<unknown>
  getUserInfo: (tokens: { idToken?: string; expectedIdTokenNonce?: string }) => Promise<unknown>
}

export type OAuthObserverDeps = {
  providers: readonly OidcProviderConfig[]
  /** better-auth's context promise (`auth.$context`), whose socialProviders are wrapped. */
  authContext: Promise<{ socialProviders: unknown }>
  observe: (provider: string, endpoint: OAuthEndpoint, seconds: number) => void
  log: Logger
}

export class OAuthObserver {
  readonly providerIds: ReadonlySet<string>
  readonly #deps: OAuthObserverDeps
  readonly #als = new AsyncLocalStorage<CallbackTrace>()
  /** `origin + path` of each provider endpoint → which provider and endpoint it is. */
  readonly #endpoints = new Map<string, { provider: string; endpoint: OAuthEndpoint }>()
  readonly #inFlight = new WeakMap<object, Timed>()
  readonly #wrapped = new WeakSet<object>()
  readonly #unsubscribe: Array<() => void> = []

  constructor(deps: OAuthObserverDeps) {
    this.#deps = deps
    this.providerIds = new Set(deps.providers.map((p) => p.id))
    for (const p of deps.providers) this.#endpoints.set(stripQuery(discoveryUrl(p.issuer)), { provider: p.id, endpoint: OAuthEndpoint.discovery })
    this.#subscribe('undici:request:create', (m) => this.#onCreate(m as { request: UndiciRequest }))
    this.#subscribe('undici:request:headers', (m) => this.#onDone(m as { request: UndiciRequest; response: { statusCode: number } }))
    this.#subscribe('undici:request:error', (m) => this.#onDone(m as { request: UndiciRequest; error: unknown }))
  }

  /** Learn each provider's endpoints (its discovery document) and wrap better-auth's provider objects. */
  async start(): Promise<void> {
    await Promise.all(this.#deps.providers.map((p) => this.#learnEndpoints(p)))
    await this.#wrapProviders()
  }

  close(): void {
    for (const u of this.#unsubscribe.splice(0)) u()
  }

  /** Run better-auth's handling of one callback with a fresh trace; returns the trace with what it saw. */
  async traceCallback<T>(provider: string, run: () => Promise<T>): Promise<{ result: T; trace: CallbackTrace }> {
    // A provider whose discovery failed at startup is built by better-auth
    // on a later request: wrap it (and learn its endpoints) then.
    await this.#wrapProviders()
    if (![...this.#endpoints.values()].some((e) => e.provider === provider && e.endpoint === OAuthEndpoint.token)) {
      const p = this.#deps.providers.find((x) => x.id === provider)
      if (p !== undefined) await this.#learnEndpoints(p)
    }
    const trace: CallbackTrace = { provider }
    const result = await this.#als.run(trace, run)
    return { result, trace }
  }

  #subscribe(name: string, fn: (message: unknown) => void): void {
    diagnostics.subscribe(name, fn)
    this.#unsubscribe.push(() => diagnostics.unsubscribe(name, fn))
  }

  #onCreate(m: { request: UndiciRequest }): void {
    const key = stripQuery(`${String(m.request.origin ?? '').replace(/\/$/, '')}${m.request.path ?? ''}`)
    const known = this.#endpoints.get(key)
    if (known !== undefined) this.#inFlight.set(m.request, { ...known, start: process.hrtime.bigint() })
  }

  #onDone(m: { request: UndiciRequest; response?: { statusCode: number }; error?: unknown }): void {
    const timed = this.#inFlight.get(m.request)
    if (timed === undefined) return
    this.#inFlight.delete(m.request)
    this.#deps.observe(timed.provider, timed.endpoint, Number(process.hrtime.bigint() - timed.start) / 1e9)
    const trace = this.#als.getStore()
    if (trace !== undefined && trace.provider === timed.provider && (m.error !== undefined || (m.response?.statusCode ?? 0) >= 500)) {
      trace.unavailable ??= timed.endpoint
    }
  }

  async #learnEndpoints(p: OidcProviderConfig): Promise<void> {
    try {
      const res = await fetch(discoveryUrl(p.issuer), { signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS), redirect: 'manual' })
      if (!res.ok) throw new Error(`discovery answered ${res.status}`)
      const doc = (await res.json()) as Record<string, unknown>
      const add = (url: unknown, endpoint: OAuthEndpoint) => {
        if (typeof url === 'string') this.#endpoints.set(stripQuery(url), { provider: p.id, endpoint })
      }
      add(doc.token_endpoint, OAuthEndpoint.token)
      add(doc.jwks_uri, OAuthEndpoint.jwks)
      add(doc.userinfo_endpoint, OAuthEndpoint.userinfo)
    } catch (err) {
      this.#deps.log.warn({ event: 'oauth_discovery_failed', provider: p.id, err: { message: (err as Error).message } }, 'SSO provider discovery failed')
    }
  }

  async #wrapProviders(): Promise<void> {
    const ctx = await this.#deps.authContext
    for (const provider of ctx.socialProviders as BetterAuthProvider[]) {
      if (!this.providerIds.has(provider.id) || this.#wrapped.has(provider)) continue
      this.#wrapped.add(provider)
      this.#wrap(provider)
    }
  }

  #wrap(provider: BetterAuthProvider): void {
    const exchange = provider.validateAuthorizationCode.bind(provider)
    const userInfo = provider.getUserInfo.bind(provider)
    provider.validateAuthorizationCode = async (data) => {
      try {
        return await exchange(data)
      } catch (err) {
        const trace = this.#als.getStore()
        // betterFetch rejects with the token endpoint's JSON error body plus its status.
        const body = err as { error?: unknown; error_description?: unknown; status?: unknown }
        if (trace !== undefined && typeof body.error === 'string' && typeof body.status === 'number') {
          trace.tokenError = { error: body.error, description: typeof body.error_description === 'string' ? body.error_description : undefined, status: body.status }
        } else if (trace !== undefined && typeof body.status === 'number' && body.status >= 500) {
          trace.unavailable ??= OAuthEndpoint.token
        } else if (trace !== undefined && !(err instanceof Error && err.name === 'BetterAuthError')) {
          trace.unavailable ??= OAuthEndpoint.token
        }
        throw err
      }
    }
    provider.getUserInfo = async (tokens) => {
      let result: unknown
      try {
        result = await userInfo(tokens)
      } catch (err) {
        // better-auth lets a userinfo request that cannot connect escape (a 500).
        const trace = this.#als.getStore()
        if (trace !== undefined) trace.unavailable ??= OAuthEndpoint.userinfo
        throw err
      }
      const trace = this.#als.getStore()
      if (result === null && trace !== undefined && tokens.idToken !== undefined && provider.idToken?.jwks !== undefined) {
        const cause = await idTokenCause(tokens.idToken, provider.idToken, tokens.expectedIdTokenNonce)
        if (cause === 'unavailable') trace.unavailable ??= OAuthEndpoint.jwks
        else if (cause !== undefined) trace.idTokenCause = cause
      }
      return result
    }
  }
}

/** Verify again as better-auth did and name the first check that fails (undefined: it verifies). */
async function idTokenCause(
  token: string,
  config: NonNullable<BetterAuthProvider['idToken']>,
  nonce: string | undefined,
): Promise<IdTokenCause | 'unavailable' | undefined> {
  try {
    const { payload } = await jwtVerify(token, config.jwks as JWTVerifyGetKey, {
      issuer: config.issuer,
      audience: config.audience,
      algorithms: config.algorithms,
      requiredClaims: ID_TOKEN_REQUIRED_CLAIMS,
      clockTolerance: ID_TOKEN_CLOCK_TOLERANCE_SECONDS,
    })
    if (nonce !== undefined && payload.nonce !== nonce) return IdTokenCause.nonce
    return undefined
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) return IdTokenCause.expiry
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      if (err.claim === 'iss') return IdTokenCause.issuer
      if (err.claim === 'aud') return IdTokenCause.audience
      if (err.claim === 'nbf' || err.claim === 'iat' || err.claim === 'exp') return IdTokenCause.expiry
      return IdTokenCause.claims
    }
    if (
      err instanceof joseErrors.JWSSignatureVerificationFailed ||
      err instanceof joseErrors.JWKSNoMatchingKey ||
      err instanceof joseErrors.JWKSMultipleMatchingKeys ||
      err instanceof joseErrors.JOSEAlgNotAllowed
    ) {
      return IdTokenCause.signature
    }
    if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError)) return 'unavailable'
    // A JWKS endpoint answering non-200 is a generic JOSEError from jose's fetch.
    if (err.code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/.test(err.message)) return 'unavailable'
    return IdTokenCause.claims
  }
}

function stripQuery(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
