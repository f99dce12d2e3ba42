// Startup sequence shared by main.ts and the tests: pool → connectivity check
// → better-auth → migrations under a lock → server → first JWKS load →
// listeners. Returns a handle whose close() drains and releases everything.
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { createAuth } from './auth/better-auth.ts'
import type { Auth, AuthHooks } from './auth/better-auth.ts'
import type { ResolvedConfig } from './config/load.ts'
import { runMigrations } from './db/migrate.ts'
import { checkConnectivity, createPool, describeDatabase } from './db/pool.ts'
import { buildMetricsServer } from './metrics-server.ts'
import { buildServer } from './server.ts'
import type { Gateway } from './server.ts'
import { secretFingerprint } from './telemetry/fingerprint.ts'
import { createRegistry } from './telemetry/metrics.ts'
import type { Registry } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import type { Pool } from 'pg'

export type Running = Gateway & {
  auth: Auth
  pool: Pool
  registry: Registry
  metricsApp: FastifyInstance
  /** Base URL the gateway listens on (loopback form). */
  url: string
  metricsUrl: string
  close(): Promise<void>
}

export async function startGateway(config: ResolvedConfig, opts: { logger: Logger; version?: string; listen?: boolean }): Promise<Running> {
  const log = opts.logger
  const pool = createPool(config.databaseUrl, config.pool)
  try {
    await checkConnectivity(pool, config.databaseUrl)
    const authHooks: AuthHooks = {}
    const auth = createAuth(config, { pool, log, hooks: authHooks })
    await runMigrations(auth, pool, log)
    const registry = createRegistry()
    const gateway = await buildServer(config, { pool, auth, registry, logger: log, authHooks, version: opts.version })
    // Readiness needs the signing keys: this creates the first key when the table is empty.
    await gateway.jwks.refresh().catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'initial JWKS load failed'))
    const metricsApp = buildMetricsServer(registry)

    let url = ''
    let metricsUrl = ''
    if (opts.listen !== false) {
      await gateway.app.listen({ port: config.port, host: config.host })
      await metricsApp.listen({ port: config.metricsPort, host: config.metricsHost })
      url = `http://127.0.0.1:${(gateway.app.server.address() as AddressInfo).port}`
      metricsUrl = `http://127.0.0.1:${(metricsApp.server.address() as AddressInfo).port}`
    } else {
      await gateway.app.ready()
    }

    log.info(
      {
        event: 'startup',
        issuer: config.issuer,
        audience: config.audience,
        jwks_url: config.jwksUrl,
        base_url: config.baseUrl,
        secret_fingerprint: secretFingerprint(config.secret),
        database: describeDatabase(config.databaseUrl),
        upstream: config.upstreamUrl,
        url,
        metrics_url: metricsUrl,
        session_cookie: gateway.sessions.cookieNames.sessionToken,
      },
      'authgw started',
    )
    warnOnSchemeMismatch(config, log)

    let closing: Promise<void> | undefined
    return {
      ...gateway,
      auth,
      pool,
      registry,
      metricsApp,
      url,
      metricsUrl,
      close() {
        closing ??= (async () => {
          await gateway.app.close()
          await metricsApp.close()
          await pool.end()
        })()
        return closing
      },
    }
  } catch (err) {
    await pool.end().catch(() => undefined)
    throw err
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
