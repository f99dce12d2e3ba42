// The only module that creates metrics. Names and labels are a contract with
// dashboards/, alerts/ and the README (test/telemetry/metrics-contract.test.ts
// keeps them in step): add series, never rename.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import {
  AuthDisagreementReason,
  AuthReason,
  DbOperation,
  JwksRefreshOutcome,
  JwtReason,
  Mechanism,
  OAuthCallbackOutcome,
  OAuthCallbackReason,
  OAuthEndpoint,
  NoCredentialReason,
  Outcome,
  SessionNullReason,
  SessionReason,
  SignInMethod,
  SignInOutcome,
  SignInReason,
  TokenIssueFailureReason,
  TokenKind,
  TokenVia,
  UnavailableReason,
  UpstreamFailureReason,
  UpstreamRejectReason,
  UpstreamRetryReason,
  valuesOf,
} from '../reasons.ts'
import type { SignInMethod as SignInMethodT, UnauthorizedReason, UnauthorizedSource } from '../reasons.ts'

export const MetricName = {
  httpRequestDuration: 'authgw_http_request_duration_seconds',
  authDecisions: 'authgw_auth_decisions_total',
  unauthorized: 'authgw_unauthorized_total',
  sessionNulls: 'authgw_session_nulls_total',
  jwtValidationFailures: 'authgw_jwt_validation_failures_total',
  tokensIssued: 'authgw_tokens_issued_total',
  tokenIssueFailures: 'authgw_token_issue_failures_total',
  signInAttempts: 'authgw_sign_in_attempts_total',
  jwksRefreshes: 'authgw_jwks_refreshes_total',
  jwksKeys: 'authgw_jwks_keys',
  jwksLastRefresh: 'authgw_jwks_last_refresh_timestamp_seconds',
  upstreamRequestDuration: 'authgw_upstream_request_duration_seconds',
  upstreamFailures: 'authgw_upstream_failures_total',
  dbPoolConnections: 'authgw_db_pool_connections',
  dbErrors: 'authgw_db_errors_total',
  configInfo: 'authgw_config_info',
  buildInfo: 'authgw_build_info',
  // additions beyond the issue's contract
  authUnavailable: 'authgw_auth_unavailable_total',
  rateLimited: 'authgw_rate_limited_total',
  sessionCache: 'authgw_session_cache_lookups_total',
  jwtCache: 'authgw_jwt_cache_lookups_total',
  sessionsRevoked: 'authgw_sessions_revoked_total',
  upstreamRetries: 'authgw_upstream_retries_total',
  // single sign-on (issue 18)
  oauthCallbacks: 'authgw_oauth_callbacks_total',
  oauthRedirects: 'authgw_oauth_redirects_total',
  oauthProviderRequestDuration: 'authgw_oauth_provider_request_duration_seconds',
} as const

/** Route label for anything that matched no known route template. */
export const OTHER_ROUTE = 'other'

// Around a 250 ms latency SLO; non-integer bounds so `le` renders the same on
// Prometheus 2 and 3 (3 prints "1" as "1.0").
const REQUEST_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5, 5]

export type ConfigInfoLabels = {
  issuer: string
  audience: string
  jwks_url: string
  cookie_prefix: string
  secret_fingerprint: string
}

export type Exemplar = { trace_id: string } | undefined

export type PoolStats = { total: number; idle: number; waiting: number }

// Provider calls: discovery and JWKS are small GETs, the token exchange the slowest.
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5, 2.5, 5, 10]

/** The outcome an SSO callback reason is counted under: the provider's failures are `error`, never the user's. */
export function oauthOutcomeOf(reason: OAuthCallbackReason): OAuthCallbackOutcome {
  if (reason === OAuthCallbackReason.none) return OAuthCallbackOutcome.success
  return reason === OAuthCallbackReason.provider_unavailable ? OAuthCallbackOutcome.error : OAuthCallbackOutcome.failure
}

export function createMetrics(
  registry: Registry,
  info: { config: ConfigInfoLabels; version: string; poolStats?: () => PoolStats; oauthProviders?: readonly string[] },
) {
  const oauthProviders = info.oauthProviders ?? []
  collectDefaultMetrics({ register: registry, prefix: 'authgw_' })
  // These three are gauges with a `_total` suffix, which `promtool check metrics` rejects.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`authgw_${name}`)
  }

  const httpRequestDuration = new Histogram({
    name: MetricName.httpRequestDuration,
    help: 'Duration of requests answered by the gateway, by route template and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
    enableExemplars: true,
  })
  const authDecisions = new Counter({
    name: MetricName.authDecisions,
    help: 'Authentication decisions on protected routes, by mechanism and outcome.',
    labelNames: ['mechanism', 'outcome'] as const,
    registers: [registry],
  })
  const unauthorized = new Counter({
    name: MetricName.unauthorized,
    help: 'Every 401 the gateway sent, by who produced it, mechanism and reason.',
    labelNames: ['source', 'mechanism', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const sessionNulls = new Counter({
    name: MetricName.sessionNulls,
    help: 'Session lookups that yielded no session, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const jwtValidationFailures = new Counter({
    name: MetricName.jwtValidationFailures,
    help: 'Bearer JWTs rejected, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const tokensIssued = new Counter({
    name: MetricName.tokensIssued,
    help: 'Tokens issued, by kind (jwt or session) and path.',
    labelNames: ['kind', 'via'] as const,
    registers: [registry],
  })
  const tokenIssueFailures = new Counter({
    name: MetricName.tokenIssueFailures,
    help: 'Failed token issuances, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const signInAttempts = new Counter({
    name: MetricName.signInAttempts,
    help: 'Sign-in attempts, by method, outcome and reason (none on success).',
    labelNames: ['method', 'outcome', 'reason'] as const,
    registers: [registry],
  })
  const jwksRefreshes = new Counter({
    name: MetricName.jwksRefreshes,
    help: 'JWKS refreshes, by outcome (suppressed = skipped by the unknown-kid cooldown).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  const jwksKeys = new Gauge({
    name: MetricName.jwksKeys,
    help: 'Keys in the in-memory JWKS.',
    registers: [registry],
  })
  const jwksLastRefresh = new Gauge({
    name: MetricName.jwksLastRefresh,
    help: 'Unix time of the last successful JWKS refresh.',
    registers: [registry],
  })
  const upstreamRequestDuration = new Histogram({
    name: MetricName.upstreamRequestDuration,
    help: 'Duration of proxied upstream calls until response headers, by upstream status.',
    labelNames: ['status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  })
  const upstreamFailures = new Counter({
    name: MetricName.upstreamFailures,
    help: 'Upstream calls that failed without a usable response, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const dbPoolConnections = new Gauge({
    name: MetricName.dbPoolConnections,
    help: 'PostgreSQL pool connections, by state.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = info.poolStats?.()
      if (stats === undefined) return
      this.set({ state: 'total' }, stats.total)
      this.set({ state: 'idle' }, stats.idle)
      this.set({ state: 'waiting' }, stats.waiting)
    },
  })
  const dbErrors = new Counter({
    name: MetricName.dbErrors,
    help: 'Database errors seen by the gateway, by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  })
  const configInfo = new Gauge({
    name: MetricName.configInfo,
    help: 'Auth configuration of this instance (1); replicas that disagree point at config drift.',
    labelNames: ['issuer', 'audience', 'jwks_url', 'cookie_prefix', 'secret_fingerprint'] as const,
    registers: [registry],
  })
  const buildInfo = new Gauge({
    name: MetricName.buildInfo,
    help: 'Build of this instance (1).',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  })
  const authUnavailable = new Counter({
    name: MetricName.authUnavailable,
    help: 'Auth decisions that could not be made (answered 503), by mechanism and reason.',
    labelNames: ['mechanism', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const rateLimited = new Counter({
    name: MetricName.rateLimited,
    help: 'Requests answered 429 by better-auth rate limiting, by route.',
    labelNames: ['route', 'reason'] as const,
    registers: [registry],
  })
  const sessionCache = new Counter({
    name: MetricName.sessionCache,
    help: 'Gateway session-cache lookups, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const jwtCache = new Counter({
    name: MetricName.jwtCache,
    help: 'Verify-once JWT cache lookups, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const sessionsRevoked = new Counter({
    name: MetricName.sessionsRevoked,
    help: 'Sessions ended through sign-out or revocation.',
    registers: [registry],
  })
  const upstreamRetries = new Counter({
    name: MetricName.upstreamRetries,
    help: 'Upstream requests sent a second time, by reason (only idempotent requests whose kept-alive connection was reset before any response byte).',
    labelNames: ['reason'] as const,
    registers: [registry],
  })

  const oauthCallbacks = new Counter({
    name: MetricName.oauthCallbacks,
    help: 'SSO provider callbacks, by provider, outcome (success, failure, error = provider unavailable) and reason (none on success).',
    labelNames: ['provider', 'outcome', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const oauthRedirects = new Counter({
    name: MetricName.oauthRedirects,
    help: 'SSO sign-ins started: redirects to a provider, by provider.',
    labelNames: ['provider'] as const,
    registers: [registry],
  })
  const oauthProviderRequestDuration = new Histogram({
    name: MetricName.oauthProviderRequestDuration,
    help: "Duration of the gateway's requests to an SSO provider (failed ones included), by provider and endpoint.",
    labelNames: ['provider', 'endpoint'] as const,
    buckets: PROVIDER_BUCKETS,
    registers: [registry],
  })

  // Every fixed combination exists at 0 from the first scrape, so rate() and
  // ratio rules work after a restart.
  for (const mechanism of valuesOf(Mechanism)) {
    if (mechanism === Mechanism.oauth && oauthProviders.length === 0) continue
    for (const outcome of valuesOf(Outcome)) authDecisions.inc({ mechanism, outcome }, 0)
  }
  for (const [source, mechanism, reason] of unauthorizedCombinations()) {
    unauthorized.inc({ labels: { source, mechanism, reason }, value: 0 })
  }
  for (const reason of valuesOf(SessionNullReason)) sessionNulls.inc({ reason }, 0)
  for (const reason of valuesOf(JwtReason)) jwtValidationFailures.inc({ labels: { reason }, value: 0 })
  for (const kind of valuesOf(TokenKind)) {
    for (const via of valuesOf(TokenVia)) {
      if (kind === TokenKind.jwt ? isJwtVia(via) : !isJwtVia(via)) tokensIssued.inc({ kind, via }, 0)
    }
  }
  for (const reason of valuesOf(TokenIssueFailureReason)) tokenIssueFailures.inc({ labels: { reason }, value: 0 })
  signInAttempts.inc({ method: SignInMethod.email, outcome: SignInOutcome.success, reason: SignInReason.none }, 0)
  for (const reason of valuesOf(SignInReason)) {
    if (reason !== SignInReason.none) signInAttempts.inc({ method: SignInMethod.email, outcome: SignInOutcome.failure, reason }, 0)
  }
  // SSO series only exist when providers are configured: without SSO the scrape is unchanged.
  for (const provider of oauthProviders) {
    oauthRedirects.inc({ provider }, 0)
    for (const reason of valuesOf(OAuthCallbackReason)) oauthCallbacks.inc({ labels: { provider, outcome: oauthOutcomeOf(reason), reason }, value: 0 })
    for (const endpoint of valuesOf(OAuthEndpoint)) oauthProviderRequestDuration.zero({ provider, endpoint })
  }
  if (oauthProviders.length > 0) {
    for (const reason of valuesOf(OAuthCallbackReason)) {
      signInAttempts.inc({ method: SignInMethod.oauth, outcome: reason === OAuthCallbackReason.none ? SignInOutcome.success : SignInOutcome.failure, reason }, 0)
    }
  }
  for (const outcome of valuesOf(JwksRefreshOutcome)) jwksRefreshes.inc({ outcome }, 0)
  for (const reason of valuesOf(UpstreamFailureReason)) upstreamFailures.inc({ labels: { reason }, value: 0 })
  for (const reason of valuesOf(UpstreamRetryReason)) upstreamRetries.inc({ reason }, 0)
  for (const state of ['total', 'idle', 'waiting']) dbPoolConnections.set({ state }, 0)
  for (const operation of valuesOf(DbOperation)) dbErrors.inc({ operation }, 0)
  for (const [mechanism, reason] of [
    [Mechanism.session, UnavailableReason.store_unavailable],
    [Mechanism.session, UnavailableReason.jwks_unavailable],
    [Mechanism.jwt, UnavailableReason.jwks_unavailable],
    ...(oauthProviders.length > 0 ? [[Mechanism.oauth, UnavailableReason.provider_unavailable] as const] : []),
  ] as const) {
    authUnavailable.inc({ labels: { mechanism, reason }, value: 0 })
  }
  for (const result of ['hit', 'miss']) {
    sessionCache.inc({ result }, 0)
    jwtCache.inc({ result }, 0)
  }
  configInfo.set(info.config, 1)
  buildInfo.set({ version: info.version, node_version: process.version }, 1)
  jwksKeys.set(0)
  jwksLastRefresh.set(0)

  // prom-client types exemplar labels as the metric's own label names; they are free-form.
  const exemplar = (e: Exemplar) => e as never

  // A scrape shows one exemplar per bucket, the latest: replacing it on every
  // request of a busy series is wasted work (~4 µs per traced request in the
  // benchmark). A series gets a new exemplar at most once per
  // EXEMPLAR_INTERVAL_MS, except slow (≥ 100 ms) and 5xx requests, which
  // always leave theirs: those are the traces someone clicks through to.
  const lastExemplar = new Map<string, number>()
  const requestExemplar = (method: string, route: string, statusCode: number, seconds: number, e: Exemplar): Exemplar => {
    if (e === undefined || seconds >= 0.1 || statusCode >= 500) return e
    const key = `${method} ${route} ${statusCode}`
    const now = Date.now()
    const last = lastExemplar.get(key)
    if (last !== undefined && now - last < EXEMPLAR_INTERVAL_MS) return undefined
    lastExemplar.set(key, now)
    return e
  }

  return {
    registry,
    observeRequest(method: string, route: string, statusCode: number, seconds: number, e: Exemplar) {
      httpRequestDuration.observe({
        labels: { method, route, status_code: statusCode },
        value: seconds,
        exemplarLabels: exemplar(requestExemplar(method, route, statusCode, seconds, e)),
      })
    },
    decision(mechanism: Mechanism, outcome: Outcome) {
      authDecisions.inc({ mechanism, outcome })
    },
    unauthorized(source: UnauthorizedSource, mechanism: Mechanism, reason: UnauthorizedReason, e: Exemplar) {
      unauthorized.inc({ labels: { source, mechanism, reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    sessionNull(reason: SessionNullReason) {
      sessionNulls.inc({ reason })
    },
    jwtFailure(reason: JwtReason, e: Exemplar) {
      jwtValidationFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    tokenIssued(kind: TokenKind, via: TokenVia) {
      tokensIssued.inc({ kind, via })
    },
    tokenIssueFailure(reason: TokenIssueFailureReason, e: Exemplar) {
      tokenIssueFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    signInAttempt(outcome: SignInOutcome, reason: SignInReason | OAuthCallbackReason, method: SignInMethodT = SignInMethod.email) {
      signInAttempts.inc({ method, outcome, reason })
    },
    oauthCallback(provider: string, reason: OAuthCallbackReason, e: Exemplar) {
      oauthCallbacks.inc({ labels: { provider, outcome: oauthOutcomeOf(reason), reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    oauthRedirect(provider: string) {
      oauthRedirects.inc({ provider })
    },
    observeOAuthProvider(provider: string, endpoint: OAuthEndpoint, seconds: number) {
      oauthProviderRequestDuration.observe({ provider, endpoint }, seconds)
    },
    jwksRefresh(outcome: JwksRefreshOutcome, keys?: number) {
      jwksRefreshes.inc({ outcome })
      if (outcome === JwksRefreshOutcome.success) {
        jwksLastRefresh.set(Date.now() / 1000)
        if (keys !== undefined) jwksKeys.set(keys)
      }
    },
    observeUpstream(statusCode: number, seconds: number) {
      upstreamRequestDuration.observe({ status_code: statusCode }, seconds)
    },
    upstreamFailure(reason: UpstreamFailureReason, e: Exemplar) {
      upstreamFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    setPool(total: number, idle: number, waiting: number) {
      dbPoolConnections.set({ state: 'total' }, total)
      dbPoolConnections.set({ state: 'idle' }, idle)
      dbPoolConnections.set({ state: 'waiting' }, waiting)
    },
    dbError(operation: DbOperation) {
      dbErrors.inc({ operation })
    },
    unavailable(mechanism: Mechanism, reason: UnavailableReason, e: Exemplar) {
      authUnavailable.inc({ labels: { mechanism, reason }, value: 1, exemplarLabels: exemplar(e) })
    },
    rateLimited(route: string) {
      rateLimited.inc({ route, reason: 'rate_limited' })
    },
    sessionCacheLookup(hit: boolean) {
      sessionCache.inc({ result: hit ? 'hit' : 'miss' })
    },
    jwtCacheLookup(hit: boolean) {
      jwtCache.inc({ result: hit ? 'hit' : 'miss' })
    },
    sessionRevoked() {
      sessionsRevoked.inc()
    },
    upstreamRetry(reason: UpstreamRetryReason) {
      upstreamRetries.inc({ reason })
    },
  }
}

/** Shortest time between two exemplars of one fast, non-5xx request series. */
export const EXEMPLAR_INTERVAL_MS = 1000

export type Metrics = ReturnType<typeof createMetrics>

function isJwtVia(via: string): boolean {
  return via === TokenVia.token_endpoint || via === TokenVia.jwt_header || via === TokenVia.gateway_exchange
}

/** The bounded set of (source, mechanism, reason) triples that can occur. */
export function unauthorizedCombinations(): Array<[UnauthorizedSource, Mechanism, UnauthorizedReason]> {
  const out: Array<[UnauthorizedSource, Mechanism, UnauthorizedReason]> = []
  for (const r of valuesOf(SessionReason)) out.push(['gateway', 'session', r])
  for (const r of valuesOf(JwtReason)) out.push(['gateway', 'jwt', r])
  out.push(['gateway', 'none', NoCredentialReason.no_credentials])
  for (const r of valuesOf(AuthReason)) out.push(['auth', 'none', r])
  for (const r of valuesOf(SessionReason)) out.push(['auth', 'session', r])
  for (const r of valuesOf(AuthDisagreementReason)) out.push(['auth', 'session', r])
  for (const m of [Mechanism.session, Mechanism.jwt, Mechanism.none]) out.push(['upstream', m, UpstreamRejectReason.upstream_rejected])
  return out
}

const OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE
const PROMETHEUS = Registry.PROMETHEUS_CONTENT_TYPE
let renderQueue: Promise<unknown> = Promise.resolve()

/** prom-client accepts exemplars only on metrics created in an OpenMetrics registry. */
export function createRegistry(): Registry {
  return new (Registry as unknown as new (contentType: string) => Registry)(OPENMETRICS)
}

/**
 * Render in the format the scraper asked for: OpenMetrics (with exemplars)
 * when its Accept header names it, classic text otherwise. prom-client ties
 * the format to the registry and strips `_total` from counter names in place
 * when rendering OpenMetrics, so render under a lock and restore the names.
 */
export function renderMetrics(registry: Registry, accept: string | undefined): Promise<{ body: string; contentType: string }> {
  const contentType = typeof accept === 'string' && accept.includes('application/openmetrics-text') ? OPENMETRICS : PROMETHEUS
  const run = async () => {
    const metrics = registry.getMetricsAsArray() as unknown as Array<{ name: string }>
    const names = metrics.map((m) => m.name)
    setContentType(registry, contentType)
    try {
      return { body: await registry.metrics(), contentType }
    } finally {
      setContentType(registry, OPENMETRICS)
      metrics.forEach((m, i) => {
        m.name = names[i] as string
      })
    }
  }
  const result = renderQueue.then(run, run)
  renderQueue = result.catch(() => undefined)
  return result
}

// The typings pin a registry to the content type it was declared with.
function setContentType(registry: Registry, contentType: string): void {
  ;(registry as unknown as { setContentType(c: string): void }).setContentType(contentType)
}
