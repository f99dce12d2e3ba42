// Startup sequence shared by main.ts and the tests: pool → connectivity check
// → better-auth → migrations under a lock → server → first JWKS load → test
// signing → listeners. Returns a handle whose close() drains and releases
// everything. Migrations that fail do not stop the process: it stays up, not
// ready, counting and logging each failed attempt and retrying with backoff,
// so the failure is visible on /metrics and /readyz and heals once the
// database allows it (a missing CREATE privilege granted, say).
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { createAuth } from './auth/better-auth.ts'
import { oidcRedirectUri } from './oauth/config.ts'
import type { Auth, AuthHooks } from './auth/better-auth.ts'
import type { ResolvedConfig } from './config/load.ts'
import { configuredCookieProblems } from './auth/set-cookie-audit.ts'
import { getCookies } from 'better-auth/cookies'
import { runMigrations } from './db/migrate.ts'
import { checkConnectivity, createPool, describeDatabase } from './db/pool.ts'
import { buildMetricsServer } from './metrics-server.ts'
import { buildServer } from './server.ts'
import { createProber } from './probe/prober.ts'
import type { Prober } from './probe/prober.ts'
import type { Gateway } from './server.ts'
import { SigningState, createSigningCheck } from './health/signing-check.ts'
import { DbOperation } from './reasons.ts'
import { primeSecretFingerprint } from './telemetry/fingerprint.ts'
import { createRegistry } from './telemetry/metrics.ts'
import { createSharedState } from './shared-state/coherence.ts'
import type { SharedState } from './shared-state/coherence.ts'
import { connectInvalidation } from './shared-state/wiring.ts'
import type { Metrics } from './telemetry/metrics.ts'
import type { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Pool } from 'pg'

export type Running = Gateway & {
  auth: Auth
  pool: Pool
  registry: Registry
  shared: SharedState
  metricsApp: FastifyInstance
  /** Base URL the gateway listens on (loopback form). */
  url: string
  metricsUrl: string
  /** The synthetic sign-in probe, when PROBE_INTERVAL_SECONDS is above 0. */
  prober: Prober | undefined
  close(): Promise<void>
}

export async function startGateway(config: ResolvedConfig, opts: { logger: Logger; version?: string; listen?: boolean }): Promise<Running> {
  const log = opts.logger
  // Pool errors (an idle connection whose server went away) can happen before
  // the metrics exist: counted once they do.
  let metrics: Metrics | undefined
  let earlyPoolErrors = 0
  const pool = createPool(config.databaseUrl, config.pool, (err) => {
    log.warn({ event: 'db_pool_error', err }, 'idle database connection failed')
    if (metrics) metrics.dbError(DbOperation.pool)
    else earlyPoolErrors++
  })
  const closers: Array<() => Promise<unknown>> = [() => pool.end()]
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined)
  }
  try {
    await checkConnectivity(pool, config.databaseUrl)
    const authHooks: AuthHooks = {}
    const registry = createRegistry()
    const shared = createSharedState(config, { pool, log, registry })
    closers.push(() => shared.close())
    const auth = createAuth(config, { pool, log, hooks: authHooks, shared: shared.auth })
    const firstMigration = await runMigrations(auth, pool, log).then(
      () => undefined,
      (err: unknown) => err,
    )
    // Off the event loop, before buildServer publishes it (then a memo hit).
    const fingerprint = await primeSecretFingerprint(config.secret, config.issuer)
    const gateway = await buildServer(config, { pool, auth, registry, logger: log, authHooks, sharedSessionReader: shared.sessionReader, version: opts.version })
    closers.push(() => gateway.app.close())
    metrics = gateway.metrics
    if (shared.bus !== undefined) {
      connectInvalidation(shared.bus, gateway, authHooks)
      await shared.bus.start()
    }
    for (; earlyPoolErrors > 0; earlyPoolErrors--) metrics.dbError(DbOperation.pool)

    const migrations = migrationRetries(firstMigration, () => runMigrations(auth, pool, log), {
      log,
      onFailure: () => gateway.metrics.dbError(DbOperation.migrate),
      // Keys can only load once the jwks table exists.
      onSuccess: () => void gateway.jwks.refresh().catch(() => undefined),
    })
    closers.push(async () => migrations.stop())
    gateway.app.addReadinessCheck('migrations', async () => migrations.state())

    // Readiness needs the signing keys: this creates the first key when the table is empty.
    if (firstMigration === undefined) {
      await gateway.jwks.refresh().catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'initial JWKS load failed'))
    }
    const signing = createSigningCheck(auth, {
      onResult: (r) => {
        if (r.state === SigningState.secret_mismatch) log.error({ event: 'signing_check', state: r.state }, r.detail ?? r.state)
        else if (r.state !== SigningState.ok) log.warn({ event: 'signing_check', state: r.state, detail: r.detail }, 'test signing failed')
      },
    })
    gateway.app.addReadinessCheck('signing', async () => (await signing()).state)
    if (firstMigration === undefined) await signing()

    const metricsApp = buildMetricsServer(registry)
    closers.push(() => metricsApp.close())

    let url = ''
    let metricsUrl = ''
    if (opts.listen !== false) {
      await listen(gateway.app, { setting: 'PORT', hostSetting: 'HOST', port: config.port, host: config.host })
      await listen(metricsApp, { setting: 'METRICS_PORT', hostSetting: 'METRICS_HOST', port: config.metricsPort, host: config.metricsHost })
      url = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`
      metricsUrl = `http://127.0.0.1:${(metricsApp.server.address() as AddressInfo).port}`
    } else {
      await gateway.app.ready()
    }

    // The probe calls the public URL: only once this replica listens.
    let prober: Prober | undefined
    if (config.probe.intervalSeconds > 0) {
      prober = createProber(config, { pool, auth, metrics: gateway.metrics.probe, log, sessionCookie: gateway.sessions.cookieNames.sessionToken })
      closers.push(() => (prober as Prober).stop())
      prober.start()
    }

    log.info(
      {
        event: 'startup',
        issuer: config.issuer,
        audience: config.audience,
        jwks_url: config.jwksUrl,
        base_url: config.baseUrl,
        secret_fingerprint: fingerprint,
        database: describeDatabase(config.databaseUrl),
        upstream: config.upstreamUrl,
        url,
        metrics_url: metricsUrl,
        listen: `${config.host}:${config.port}`,
        metrics_listen: `${config.metricsHost}:${config.metricsPort}`,
        // Open this one: it is the origin better-auth trusts.
        demo_page: config.demoApp ? `${config.baseUrl}/` : undefined,
        session_cookie: gateway.sessions.cookieNames.sessionToken,
        // Register each redirect_uri with its provider exactly as printed.
        oidc_providers:
          config.oidc.length > 0 ? config.oidc.map((p) => ({ id: p.id, issuer: p.issuer, redirect_uri: oidcRedirectUri(config.baseUrl, p.id) })) : undefined,
        ...shared.describe(),
        // The sign-in probe, when on: where it goes (the path is public, the account's password is not here).
        probe: prober === undefined ? undefined : { interval_seconds: config.probe.intervalSeconds, url: new URL(config.probe.url ?? config.baseUrl).origin, path: config.probe.path },
      },
      'authgw started',
    )
    warnOnSchemeMismatch(config, log)
    warnOnCookieProblems(config, auth, log)

    let closing: Promise<void> | undefined
    return {
      ...gateway,
      auth,
      pool,
      registry,
      shared,
      metricsApp,
      url,
      metricsUrl,
      prober,
      close() {
        closing ??= closeAll()
        return closing
      },
    }
  } catch (err) {
    await closeAll()
    throw err
  }
}

/** A listener that could not bind, naming the setting to change. */
export class ListenError extends Error {
  readonly setting: string
  readonly code: string | undefined
  constructor(setting: string, message: string, cause: unknown) {
    super(message, { cause })
    this.name = 'ListenError'
    this.setting = setting
    this.code = (cause as { code?: string }).code
  }
}

async function listen(app: FastifyInstance, where: { setting: string; hostSetting: string; port: number; host: string }): Promise<void> {
  try {
    await app.listen({ port: where.port, host: where.host })
  } catch (err) {
    const code = (err as { code?: string }).code
    const at = `${where.host}:${where.port}`
    if (code === 'EADDRINUSE') throw new ListenError(where.setting, `${where.setting} ${where.port} is already in use on ${where.host} (EADDRINUSE): stop the other process or set ${where.setting} to a free port`, err)
    if (code === 'EACCES') throw new ListenError(where.setting, `${where.setting} ${where.port} needs privileges this process lacks (EACCES): use a port above 1023`, err)
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ListenError(where.hostSetting, `${where.hostSetting} ${where.host} is not an address of this machine (${code}): cannot listen on ${at}`, err)
    throw err
  }
}

const MIGRATION_RETRY_MIN_MS = 1_000
const MIGRATION_RETRY_MAX_MS = 60_000

/** Startup migrations that failed, retried with exponential backoff until they succeed. */
function migrationRetries(
  first: unknown,
  migrate: () => Promise<void>,
  opts: { log: Logger; onFailure: () => void; onSuccess: () => void },
): { state(): 'ok' | 'failed'; stop(): void } {
  let failed = first !== undefined
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const report = (err: unknown, attempt: number, retryMs: number) => {
    opts.onFailure()
    const e = err as Error & { code?: string }
    opts.log.error({ event: 'migration_failed', attempt, retry_ms: retryMs, err: { type: e.name, code: e.code, message: e.message } }, 'database migrations failed; not ready until they succeed')
  }
  const schedule = (attempt: number, delay: number) => {
    if (stopped) return
    timer = setTimeout(() => {
      migrate().then(
        () => {
          if (stopped) return
          failed = false
          opts.log.info({ event: 'migration_recovered', attempt }, 'database migrations applied')
          opts.onSuccess()
        },
        (err: unknown) => {
          if (stopped) return
          const next = Math.min(delay * 2, MIGRATION_RETRY_MAX_MS)
          report(err, attempt, next)
          schedule(attempt + 1, next)
        },
      )
    }, delay)
    timer.unref()
  }
  if (failed) {
    report(first, 1, MIGRATION_RETRY_MIN_MS)
    schedule(2, MIGRATION_RETRY_MIN_MS)
  }
  return {
    state: () => (failed ? 'failed' : 'ok'),
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

/**
 * An https BETTER_AUTH_URL makes better-auth set `Secure`, `__Secure-` cookies
 * that a browser drops over plain http: warn before the first "401 after
 * sign-in" instead of after it.
 */
function warnOnSchemeMismatch(config: ResolvedConfig, log: Logger): void {
  const secure = config.baseUrl.startsWith('https://')
  if (secure && config.trustProxy === false) {
    log.warn(
      { event: 'cookie_scheme_mismatch', base_url: config.baseUrl, listening: 'http', trust_proxy: false },
      'BETTER_AUTH_URL is https but the gateway is reached over plain http without a trusted proxy: browsers will drop the Secure __Secure- session cookie (reason no_cookie / cookie_name_mismatch)',
    )
  }
}

/** The cookie audit, once, on the configured attributes: a warning per problem (check-config fails on them). */
function warnOnCookieProblems(config: ResolvedConfig, auth: Auth, log: Logger): void {
  const cookie = getCookies(auth.options).sessionToken
  const findings = configuredCookieProblems(cookie, {
    baseUrl: config.baseUrl,
    trustedOrigins: config.trustedOrigins,
    sessionExpiresInSeconds: config.session.expiresInSeconds,
  })
  for (const f of findings) {
    log.warn({ event: 'set_cookie_problem', at: 'startup', cookie: f.cookie, problem: f.problem, host: f.host }, 'browsers will drop the session cookie with this configuration')
  }
}
