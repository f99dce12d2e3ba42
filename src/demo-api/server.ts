// The demo upstream: a separate service that trusts nothing but the JWT the
// gateway forwards, verified the way any external service would (PyJWT, a Go
// service …): the JWKS URL, the issuer and the audience. It imports nothing
// from the gateway.
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { ProxyTracerProvider, trace } from '@opentelemetry/api'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { createRemoteJWKSet, errors, jwtVerify } from 'jose'

export type DemoApiOptions = {
  jwksUrl: string
  issuer: string
  audience: string
  algorithms?: string[]
  logger?: boolean
  /** Continue the caller's trace (W3C traceparent); default: when an OpenTelemetry SDK is registered. */
  tracing?: boolean
}

const JWKS_OUTAGE = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID'])

export function buildDemoApi(opts: DemoApiOptions): FastifyInstance {
  const app = Fastify({ logger: opts.logger ?? false })
  if (opts.tracing ?? tracerProviderRegistered()) {
    // One server span per request, child of the gateway's upstream call.
    const instrumentation = new FastifyOtelInstrumentation({
      instrumentHooks: false,
      instrumentHandler: false,
      recordExceptions: false,
      requestHook: (span, request) => {
        span.updateName(`${request.method} ${request.routeOptions.url ?? ''}`.trim())
        span.setAttribute('url.path', request.url.split('?')[0] as string)
      },
    })
    app.register(instrumentation.plugin())
  }
  const jwks = createRemoteJWKSet(new URL(opts.jwksUrl), { timeoutDuration: 5000, cooldownDuration: 30_000 })

  app.decorateRequest('identity', null)
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/api/public/')) return
    const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
    if (!m) return reply.code(401).send({ error: 'unauthorized', reason: 'missing_bearer' })
    try {
      const { payload } = await jwtVerify(m[1] as string, jwks, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: opts.algorithms ?? ['EdDSA'],
        clockTolerance: 5,
      })
      ;(request as unknown as { identity: unknown }).identity = payload
    } catch (err) {
      // Keys that cannot be fetched say nothing about the token: a 503, never
      // a 401 the gateway would have to count as the upstream rejecting it.
      if (!(err instanceof errors.JOSEError) || JWKS_OUTAGE.has(err.code)) {
        return reply.code(503).header('retry-after', '5').send({ error: 'service_unavailable', reason: 'jwks_unavailable' })
      }
      return reply.code(401).send({ error: 'unauthorized', reason: err.code })
    }
  })

  app.get('/api/me', async (request) => {
    const claims = (request as unknown as { identity: Record<string, unknown> }).identity
    return { id: claims.sub, email: claims.email, name: claims.name, sessionId: claims.sid, issuer: claims.iss, expiresAt: claims.exp }
  })
  app.get('/api/public/ping', async () => ({ pong: true }))
  app.all('/api/*', async (request) => ({ ok: true, method: request.method, path: request.url.split('?')[0] }))
  return app
}

/** True when an OpenTelemetry SDK registered a tracer provider (e.g. started with the bootstrap). */
function tracerProviderRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== new ProxyTracerProvider().getDelegate()
}
