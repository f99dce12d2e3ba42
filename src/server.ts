// buildServer(config, deps): registers everything in order; never listens.
// Dependencies (pool, auth, registry, logger) are passed in so tests can build
// several independent gateways in one process.
import { randomUUID } from 'node:crypto'
import Fastify, { LogController } from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Auth, AuthHooks } from './auth/better-auth.ts'
import { createGuard } from './auth/guard.ts'
import { JwksStore } from './auth/jwks.ts'
import type { Jwk } from './auth/jwks.ts'
import { JwtVerifier } from './auth/jwt.ts'
import { TokenMinter } from './auth/minter.ts'
import { AUTH_OTHER_ROUTE, authRouteLabel, mountAuth } from './auth/mount.ts'
import { SessionValidator, cookieNamesFor } from './auth/session.ts'
import type { ResolvedConfig } from './config/load.ts'
import type { SharedSessionReader } from './shared-state/session-reader.ts'
import { Drain } from './health/drain.ts'
import { health } from './health/health.ts'
import { connectionsCheckingInterval, createClientErrorHandler, createConnectHandler, frameworkErrors } from './proxy/client-errors.ts'
import { createHeaderPolicy } from './proxy/headers.ts'
import { requestLineProblem } from './proxy/request-target.ts'
import { proxy } from './proxy/proxy.ts'
import { DbOperation, Outcome, RequestErrorReason, RequestOutcome } from './reasons.ts'
import { Attr, SpanName } from './telemetry/attributes.ts'
import { pseudonymize, secretFingerprint } from './telemetry/fingerprint.ts'
import { safePath } from './telemetry/logging.ts'
import { OTHER_ROUTE, createMetrics } from './telemetry/metrics.ts'
import type { Metrics } from './telemetry/metrics.ts'
import { activeSpan, getFastifyOtelPlugin, inSpan } from './telemetry/tracing.ts'
import { cors } from './web/cors.ts'
import { demoApp } from './web/demo-app.ts'
import { getCookies } from 'better-auth/cookies'

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
  /** Flip /readyz to 503 (first step of a graceful shutdown). */
  setDraining(): void
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

export async function buildServer(config: ResolvedConfig, deps: ServerDeps): Promise<Gateway> {
  const { pool, auth, logger } = deps
  const cookies = getCookies(auth.options)
  const cookieNames = cookieNamesFor(cookies.sessionToken.name, [
    cookies.sessionData.name,
    cookies.dontRememberToken.name,
    cookies.accountData.name,
  ])
  const cookiePrefix = cookies.sessionToken.name.replace(/\.session_token$/, '')

  const metrics = createMetrics(deps.registry, {
    version: deps.version ?? '0.0.0',
    // Sampled at scrape time.
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    config: {
      issuer: config.issuer,
      audience: config.audience,
      jwks_url: config.jwksUrl,
      cookie_prefix: cookiePrefix,
      secret_fingerprint: secretFingerprint(config.secret, config.issuer),
    },
  })

  const sessions = new SessionValidator({
    pool,
    secret: config.secret,
    cookieNames,
    cacheTtlSeconds: config.session.cacheTtlSeconds,
    cacheMaxEntries: config.session.cacheMaxEntries,
    onCacheLookup: (hit) => metrics.sessionCacheLookup(hit),
    onDbError: () => metrics.dbError(DbOperation.session_lookup),
    readShared: deps.sharedSessionReader,
  })

  const jwks = new JwksStore({
    fetchKeys: async () => {
      try {
        const res = (await auth.api.getJwks()) as unknown as { keys: Jwk[] }
        return res.keys
      } catch (err) {
        metrics.dbError(DbOperation.jwks_fetch)
        throw err
      }
    },
    refreshIntervalSeconds: config.jwt.jwksRefreshIntervalSeconds,
    cooldownSeconds: config.jwt.jwksRefreshCooldownSeconds,
    onRefresh: (outcome, keys) => metrics.jwksRefresh(outcome, keys),
    traceRefresh: (fn) =>
      inSpan(SpanName.jwksRefresh, {}, async (span) => {
        const r = await fn()
        span?.setAttribute(Attr.jwksKeys, jwks.size)
        return r
      }),
  })

  const jwtVerifier = new JwtVerifier({
    jwks,
    issuer: config.issuer,
    audience: config.audience,
    algorithms: config.jwt.algorithms,
    cacheMaxEntries: config.jwt.cacheMaxEntries,
    onCacheLookup: (hit) => metrics.jwtCacheLookup(hit),
  })

  const minter = new TokenMinter(auth, metrics, config.session.cacheMaxEntries)
  const pseudo = pseudonymize(config.secret)
  const guard = createGuard({ metrics, sessions, jwtVerifier, minter, pseudonymize: pseudo })

  const drain = new Drain()
  const app = Fastify({
    loggerInstance: logger,
    // The gateway writes exactly one access line per request itself (onResponse).
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
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance

  app.server.on('connect', createConnectHandler(logger))

  // Tracing: the request span (@fastify/otel) when the SDK runs, registered
  // before every other hook and route so it wraps them all.
  const otelPlugin = getFastifyOtelPlugin()
  if (otelPlugin) await app.register(otelPlugin)

  app.decorateRequest('authgw', null as never)
  const access = accessLog(metrics)
  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    request.authgw = {}
    reply.header('x-request-id', request.id)
    access.watch(reply)
    const problem = requestLineProblem(request)
    if (problem === undefined) return done()
    if (problem === 'request_target' && request.url === '*' && request.method === 'OPTIONS') {
      // RFC 9110 §9.3.7: OPTIONS * asks about the server, not a resource.
      reply.code(204).header('allow', ALLOWED_METHODS).send()
      return
    }
    const reason = RequestErrorReason.bad_request
    request.authgw.reason = reason
    request.authgw.detail = { refused: problem }
    reply.code(400).send({ error: reason, reason, requestId: request.id })
  })

  app.addHook('onResponse', (request, reply, done) => {
    access.write(request, reply)
    done()
  })

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
    if (status >= 500) {
      request.authgw.outcome = 'error'
      request.authgw.detail = { ...request.authgw.detail, errorType: err.code ?? err.name }
      request.log.error({ err: { type: err.name, code: err.code, message: err.message } }, 'request failed')
      activeSpan()?.setAttribute(Attr.errorType, err.code ?? err.name)
      return reply.code(status).send({ error: 'internal_error', requestId: request.id })
    }
    const reason = errorReason(status, err.code)
    request.authgw.reason = reason
    return reply.code(status).send({ error: reason, reason, requestId: request.id })
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: 'not_found', reason: RequestErrorReason.not_found, requestId: request.id })
  })

  await app.register(cors, { baseUrl: config.baseUrl, trustedOrigins: config.trustedOrigins })
  await app.register(mountAuth, { auth, metrics, sessions, pool, bodyLimit: config.limits.authBodyBytes, origin: new URL(config.baseUrl).origin })
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
  await app.register(health, {
    pool,
    jwks,
    isDraining: () => drain.draining,
    onDbError: () => metrics.dbError(DbOperation.health_check),
  })
  if (config.demoApp) await app.register(demoApp)

  // Keep the in-process caches honest when better-auth ends a session here.
  deps.authHooks.onSigningKeyCreated = () => jwks.keyCreated()
  deps.authHooks.onSessionDeleted = (s) => {
    sessions.evictToken(s.token)
    minter.evict(s.id)
    metrics.sessionRevoked()
    logger.info({ event: 'session_revoked', session: pseudo(s.id) }, 'audit')
  }

  app.addHook('onReady', async () => {
    jwks.start()
  })
  app.addHook('onClose', async () => {
    jwks.stop()
  })

  return {
    app,
    metrics,
    jwks,
    sessions,
    jwtVerifier,
    minter,
    setDraining() {
      drain.start()
    },
  }
}

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS'

const kReply = Symbol('authgw.reply')
const kLogged = Symbol('authgw.accessLogged')
type WatchedResponse = FastifyReply['raw'] & { [kReply]?: FastifyReply; [kLogged]?: boolean }

/**
 * One access line and one request-histogram observation per request. Fastify
 * runs onResponse only when the response finished; a response that never
 * finishes (the client left: 499 `client_closed`; the gateway cut it after an
 * upstream failure mid-body) is written from the response's 'close' event.
 */
function accessLog(metrics: Metrics) {
  const write = (request: FastifyRequest, reply: FastifyReply, closed?: 'client' | 'gateway') => {
    const res = reply.raw as WatchedResponse
    if (res[kLogged]) return
    res[kLogged] = true
    const route = routeLabel(request.routeOptions.url, request.url)
    const status = closed === 'client' ? CLIENT_CLOSED_STATUS : reply.statusCode
    const seconds = reply.elapsedTime / 1000
    // Captured when the request span started: its context is gone by now.
    const ids = request.traceIds
    metrics.observeRequest(request.method, route, status, seconds, ids ? { trace_id: ids.trace_id } : undefined)
    const a = request.authgw
    // reqId comes from the request's child logger.
    const line = {
      method: request.method,
      route,
      path: safePath(request.url).slice(0, 256),
      status,
      duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
      mechanism: a.mechanism,
      outcome: closed === 'client' ? RequestOutcome.client_closed : closed === 'gateway' ? Outcome.error : a.outcome,
      reason: a.reason,
      source: a.source,
      user: a.userId,
      trace_id: ids?.trace_id,
      span_id: ids?.span_id,
      ...a.detail,
    }
    if (status >= 500 || closed === 'gateway') request.log.error(line, 'request')
    else request.log.info(line, 'request')
  }
  function onClose(this: WatchedResponse) {
    const reply = this[kReply]
    if (reply === undefined || this[kLogged] || this.writableFinished) return
    // The hop records an upstream failure before it cuts a started response.
    const cutByGateway = reply.request.authgw.detail?.upstreamFailure !== undefined && this.headersSent
    write(reply.request, reply, cutByGateway ? 'gateway' : 'client')
  }
  return {
    write,
    watch(reply: FastifyReply) {
      const res = reply.raw as WatchedResponse
      res[kReply] = reply
      res.on('close', onClose)
    },
  }
}

/** nginx's status for a request whose client closed the connection before the answer was complete. */
const CLIENT_CLOSED_STATUS = 499

const KNOWN_ROUTES = new Set(['/healthz', '/readyz', '/api/*'])

function routeLabel(template: string | undefined, url: string): string {
  if (template === undefined) return OTHER_ROUTE
  if (template === '/api/auth/*') return authRouteLabel(url)
  if (KNOWN_ROUTES.has(template) || template.startsWith('/app') || template === '/') return template
  return template.length <= 64 ? template : AUTH_OTHER_ROUTE
}

function errorReason(status: number, code: string | undefined): RequestErrorReason {
  if (status === 413) return RequestErrorReason.body_too_large
  if (status === 415) return RequestErrorReason.unsupported_media_type
  if (status === 400 && code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return RequestErrorReason.empty_body
  if (status === 408) return RequestErrorReason.request_timeout
  if (status === 404) return RequestErrorReason.not_found
  if (status === 431) return RequestErrorReason.header_too_large
  return RequestErrorReason.bad_request
}
