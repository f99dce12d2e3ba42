// Everything under /api/ except /api/auth/ goes to the upstream through
// @fastify/reply-from (undici keep-alive), after the guard allowed it.
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { exemplarOf, recordUnauthorized } from '../auth/decision.ts'
import type { Guard } from '../auth/guard.ts'
import { Mechanism, UnauthorizedSource, UpstreamFailureReason, UpstreamRejectReason } from '../reasons.ts'
import type { UpstreamFailureReason as FailureReason } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import type { HeaderPolicy } from './headers.ts'

export const PROXY_ROUTE = '/api/*'

export type ProxyOptions = {
  upstreamUrl: string
  publicPaths: string[]
  timeoutMs: number
  connectTimeoutMs: number
  connections: number
  bodyLimit: number
  guard: Guard
  headerPolicy: HeaderPolicy
  metrics: Metrics
}

declare module 'fastify' {
  interface FastifyRequest {
    upstreamJwt?: string
    upstreamStartedAt?: number
  }
}

/** Map an undici/reply-from error to the upstream failure reason and status. */
export function classifyUpstreamError(error: unknown): { reason: FailureReason; status: 502 | 504 } {
  const codes: string[] = []
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as Error & { code?: string }).code
    if (code) codes.push(code)
  }
  const has = (...c: string[]) => codes.some((x) => c.includes(x))
  if (has('UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT', 'ETIMEDOUT')) {
    return { reason: UpstreamFailureReason.timeout, status: 504 }
  }
  if (has('ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'FST_REPLY_FROM_SERVICE_UNAVAILABLE')) {
    return { reason: UpstreamFailureReason.connect_error, status: 502 }
  }
  if (has('ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED')) return { reason: UpstreamFailureReason.reset, status: 502 }
  return { reason: UpstreamFailureReason.bad_response, status: 502 }
}

async function proxyPlugin(app: FastifyInstance, opts: ProxyOptions) {
  const { metrics, guard, headerPolicy } = opts
  await app.register(replyFrom, {
    base: opts.upstreamUrl,
    disableRequestLogging: true,
    undici: {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
      connect: { timeout: opts.connectTimeoutMs },
    },
  })

  const isPublic = (url: string) => opts.publicPaths.some((p) => url.startsWith(p))

  const onResponse = (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; stream: NodeJS.ReadableStream }): void => {
    const started = request.upstreamStartedAt ?? performance.now()
    metrics.observeUpstream(res.statusCode, (performance.now() - started) / 1000)
    if (res.statusCode === 401 && request.authgw.mechanism !== undefined && request.authgw.mechanism !== Mechanism.none) {
      recordUnauthorized(metrics, request, UnauthorizedSource.upstream, request.authgw.mechanism, UpstreamRejectReason.upstream_rejected)
    }
    res.stream.on('error', (err: unknown) => {
      // Headers are already on their way: the client sees a cut response.
      metrics.upstreamFailure(classifyUpstreamError(err).reason, exemplarOf())
    })
    reply.send(res.stream)
  }

  const onError = (reply: FastifyReply, { error }: { error: unknown }) => {
    const { reason, status } = classifyUpstreamError(error)
    metrics.upstreamFailure(reason, exemplarOf())
    const request = reply.request
    request.authgw.detail = { ...request.authgw.detail, upstreamFailure: reason }
    request.log.warn({ reason, err: { type: error instanceof Error ? error.name : 'unknown', code: (error as { code?: string })?.code } }, 'upstream failed')
    reply.code(status).send({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason, requestId: request.id })
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))
    scope.all(PROXY_ROUTE, async (request, reply) => {
      let jwt: string | undefined
      if (isPublic(request.url)) {
        jwt = undefined
      } else {
        jwt = await guard(request, reply)
        if (jwt === undefined) return reply
      }
      request.upstreamStartedAt = performance.now()
      return reply.from(request.url, {
        rewriteRequestHeaders: (_req, headers) => {
          if (jwt === undefined) {
            const h = headerPolicy.rewrite(request, headers, '')
            delete h.authorization
            return h
          }
          return headerPolicy.rewrite(request, headers, jwt)
        },
        // Never retry: a non-idempotent request must reach the upstream at most once.
        retryDelay: () => null,
        onResponse: onResponse as never,
        onError: onError as never,
      })
    })
  })
}

export const proxy = fp(proxyPlugin, { name: 'authgw-proxy', fastify: '5.x' })
