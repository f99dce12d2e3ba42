// buildServer(config, deps): registers everything in order; never listens.
// Dependencies (pool, auth, registry, logger) are passed in so tests can build
// several independent gateways in one process.
import { randomUUID } from 'node:crypto'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { getCookies } from 'better-auth/cookies'
import type { Auth, AuthHooks } from './auth/better-auth.ts'
import { connectAuthHooks, createGatewayAuth } from './auth/gateway-auth.ts'
import type { JwksStore } from './auth/jwks.ts'
import type { JwtVerifier } from './auth/jwt.ts'
import { requestAudience } from './auth/cookie-audit-step.ts'
import { mountAuth } from './auth/mount.ts'
import type { TokenMinter } from './auth/minter.ts'
import type { RevokedSessions } from './auth/revoked-sessions.ts'
import { clientIpUnresolved } from './proxy/client-ip.ts'
import { cookieNamesFor } from './auth/session.ts'
import type { SessionValidator } from './auth/session.ts'
import type { ResolvedConfig } from './config/load.ts'
import { createSso } from './oauth/sso.ts'
import { errorHandler, notFoundHandler } from './error-handler.ts'
import type { SharedSessionReader } from './shared-state/session-reader.ts'
import { Drain } from './health/drain.ts'
import { health } from './health/health.ts'
import { connectionsCheckingInterval, createClientErrorHandler, createConnectHandler, frameworkErrors } from './proxy/client-errors.ts'
import { createHeaderPolicy } from './proxy/headers.ts'
import { answerRequestLine } from './proxy/request-target.ts'
import { proxy } from './proxy/proxy.ts'
import { PROBE_HEADER, PROBE_REASON_HEADER, createProbeMark } from './probe/mark.ts'
import { DbOperation } from './reasons.ts'
import { createAccessLog } from './telemetry/access-log.ts'
import { secretFingerprint } from './telemetry/fingerprint.ts'
import { createMetrics } from './telemetry/metrics.ts'
import type { Metrics } from './telemetry/metrics.ts'
import { getFastifyOtelPlugin } from './telemetry/tracing.ts'
import { cors } from './web/cors.ts'
import { demoApp } from './web/demo-app.ts'

export type ServerDeps = {
  pool: Pool
  auth: Auth
  registry: Registry
  logger: Logger
  /** The hooks object given to createAuth; the server fills it in. */
  authHooks: AuthHooks
  /** Redis mode: the session lookup reads Redis before PostgreSQL. */
  sharedSessionReader?: SharedSessionReader
  version?: string
}

export type Gateway = {
  app: FastifyInstance
  metrics: Metrics
  jwks: JwksStore
  sessions: SessionValidator
  jwtVerifier: JwtVerifier
  minter: TokenMinter
  /** Sessions that ended: JWTs minted for them are refused (`session_revoked`). */
  revokedSessions: RevokedSessions
  /** Flip /readyz to 503 (first step of a graceful shutdown). */
  setDraining(): void
}

export async function buildServer(config: ResolvedConfig, deps: ServerDeps): Promise<Gateway> {
  const { pool, auth, logger } = deps
  const cookies = getCookies(auth.options)
  const cookieNames = cookieNamesFor(cookies.sessionToken.name, [cookies.sessionData.name, cookies.dontRememberToken.name, cookies.accountData.name])

  const metrics = createMetrics(deps.registry, {
    version: deps.version ?? '0.0.0',
    // Sampled at scrape time.
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    oauthProviders: config.oidc.map((p) => p.id),
    config: {
      issuer: config.issuer,
      audience: config.audience,
      jwks_url: config.jwksUrl,
      cookie_prefix: cookies.sessionToken.name.replace(/\.session_token$/, ''),
      secret_fingerprint: secretFingerprint(config.secret, config.issuer),
    },
  })
  const gatewayAuth = createGatewayAuth(config, { auth, pool, metrics, cookieNames, readShared: deps.sharedSessionReader, log: logger })
  const { sessions, jwks, jwtVerifier, minter, guard } = gatewayAuth
  const sso = createSso(config, { auth, metrics, log: logger })

  const probeMark = createProbeMark(config.secret)
  const drain = new Drain()
  const app = Fastify(fastifyOptions(config, logger, drain)) as unknown as FastifyInstance
  app.server.on('connect', createConnectHandler(logger))

  // Tracing: the request span (@fastify/otel) when the SDK runs, registered
  // before every other hook and route so it wraps them all.
  const otelPlugin = getFastifyOtelPlugin()
  if (otelPlugin) await app.register(otelPlugin)

  app.decorateRequest('authgw', null as never)
  const access = createAccessLog(metrics)
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    request.authgw = {}
    const mark = request.headers[PROBE_HEADER]
    if (mark !== undefined && probeMark.verify(mark, request.method, request.url)) request.authgw.probe = true
    reply.header('x-request-id', request.id)
    access.watch(reply)
    if (!answerRequestLine(request, reply)) done()
  })
  // The sign-in probe labels a failed step with the gateway's own reason
  // (only its marked requests are told; an upstream's answer is sent before this could run).
  app.addHook('onSend', (request, reply, payload, done) => {
    const reason = request.authgw?.probe === true ? (request.authgw.reason ?? request.upstream?.failure) : undefined
    if (reason !== undefined) reply.header(PROBE_REASON_HEADER, reason)
    done(null, payload)
  })
  app.addHook('onResponse', (request, reply, done) => {
    access.write(request, reply)
    done()
  })
  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFoundHandler)

  await app.register(cors, { baseUrl: config.baseUrl, trustedOrigins: config.trustedOrigins })
  await app.register(mountAuth, {
    auth,
    metrics,
    sessions,
    probeSignOuts: gatewayAuth.probeSignOuts,
    pool,
    bodyLimit: config.limits.authBodyBytes,
    origin: new URL(config.baseUrl).origin,
    freshSignIns: gatewayAuth.freshSignIns,
    clientIpUnresolved: clientIpUnresolved(config.trustProxy),
    cookieAudience: requestAudience(sessions.cookieNames.sessionToken, config.session.expiresInSeconds),
    sso: sso?.routes,
  })
  await app.register(proxy, {
    upstreamUrl: config.upstreamUrl,
    publicPaths: config.publicPaths,
    timeoutMs: config.upstream.timeoutMs,
    connectTimeoutMs: config.upstream.connectTimeoutMs,
    connections: config.upstream.connections,
    keepAliveTimeoutMs: config.upstream.keepAliveTimeoutMs,
    bodyLimit: config.limits.proxyBodyBytes,
    guard,
    headerPolicy: createHeaderPolicy({ extraDenylist: config.identityHeadersDenylist, authCookieNames: cookieNames.all }),
    metrics,
  })
  await app.register(health, { pool, jwks, isDraining: () => drain.draining, onDbError: () => metrics.dbError(DbOperation.health_check) })
  if (config.demoApp) await app.register(demoApp, { ssoProviders: config.oidc.map((p) => p.id) })

  // Keep the in-process caches honest when better-auth ends a session here.
  connectAuthHooks(deps.authHooks, gatewayAuth, metrics, logger)
  app.addHook('onReady', async () => {
    jwks.start()
  })
  app.addHook('onClose', async () => {
    jwks.stop()
    sso?.observer.close()
  })

  return {
    app,
    metrics,
    jwks,
    sessions,
    jwtVerifier,
    minter,
    revokedSessions: gatewayAuth.revokedSessions,
    setDraining() {
      drain.start()
    },
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

function fastifyOptions(config: ResolvedConfig, logger: Logger, drain: Drain): FastifyServerOptions {
  return {
    loggerInstance: logger,
    // The gateway writes exactly one access line per request itself (telemetry/access-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // A hop count is valid at runtime; the typings omit it.
    trustProxy: config.trustProxy as boolean | string[],
    bodyLimit: config.limits.proxyBodyBytes,
    routerOptions: { maxParamLength: 256 },
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    http: {
      // Every response closes its connection once the shutdown drain started.
      ServerResponse: drain.responseClass(),
      maxHeaderSize: config.limits.maxHeaderSize,
      headersTimeout: config.limits.headersTimeoutMs,
      connectionsCheckingInterval: connectionsCheckingInterval(config.limits),
    },
    clientErrorHandler: createClientErrorHandler(logger),
    frameworkErrors,
    // A client's X-Request-Id is kept when it is a plain token, so a request can be followed across services.
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  } as FastifyServerOptions
}
