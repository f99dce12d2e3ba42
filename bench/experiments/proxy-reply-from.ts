// Experiment 'proxy-reply-from': the proxy as it was before the direct undici
// hop (src/proxy/upstream-hop.ts): @fastify/reply-from, with the header policy
// of that time (proxy-reply-from-headers.ts). For cost comparison only.
import replyFrom from '@fastify/reply-from'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { exemplarOf, recordUnauthorized } from '../../src/auth/decision.ts'
import type { Guard } from '../../src/auth/guard.ts'
import { Mechanism, UnauthorizedSource, UpstreamFailureReason, UpstreamRejectReason } from '../../src/reasons.ts'
import type { UpstreamFailureReason as FailureReason } from '../../src/reasons.ts'
import type { Metrics } from '../../src/telemetry/metrics.ts'
import { noteUpstreamFailure } from '../../src/telemetry/tracing.ts'
import { RequestErrorReason } from '../../src/reasons.ts'
import { stripHopByHop } from './proxy-reply-from-headers.ts'
import type { HeaderPolicy } from './proxy-reply-from-headers.ts'

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


/** Map an undici/reply-from error to the upstream failure reason and status. */
export function classifyUpstreamError(error: unknown): { reason: FailureReason; status: 502 | 504 } {
  const codes: string[] = []
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as Error & { code?: string }).code
    if (code) codes.push(code)
  }
  const has = (...c: string[]) => codes.some((x) => c.includes(x))
  // No connection at all, including UPSTREAM_CONNECT_TIMEOUT_MS running out
  // (reply-from labels that one 504): the upstream was never asked.
  if (has('ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'FST_REPLY_FROM_SERVICE_UNAVAILABLE')) {
    return { reason: UpstreamFailureReason.connect_error, status: 502 }
  }
  if (has('UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'FST_REPLY_FROM_GATEWAY_TIMEOUT', 'FST_REPLY_FROM_TIMEOUT')) {
    return { reason: UpstreamFailureReason.timeout, status: 504 }
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

  const onResponse = (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; stream: NodeJS.ReadableStream }): void => {
    const started = request.upstream?.startedAt ?? performance.now()
    metrics.observeUpstream(res.statusCode, (performance.now() - started) / 1000)
    if (res.statusCode === 401) {
      // Every 401 is counted, including an upstream's on a PUBLIC_PATHS route (mechanism none).
      recordUnauthorized(metrics, request, UnauthorizedSource.upstream, request.authgw.mechanism ?? Mechanism.none, UpstreamRejectReason.upstream_rejected)
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
    ;(request.upstream ??= {}).failure = reason
    noteUpstreamFailure(request, reason)
    request.log.warn({ reason, err: { type: error instanceof Error ? error.name : 'unknown', code: (error as { code?: string })?.code } }, 'upstream failed')
    reply.code(status).send({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason, requestId: request.id })
  }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))
    // Authenticate before the body is read: a denied client must not get to
    // make the gateway buffer up to PROXY_BODY_LIMIT_BYTES first.
    scope.addHook('onRequest', async (request, reply) => {
      if (isPublicPath(request.url, opts.publicPaths)) return
      const jwt = await guard(request, reply)
      if (jwt === undefined) return reply
      ;(request.upstream ??= {}).jwt = jwt
    })
    scope.all(PROXY_ROUTE, async (request, reply) => {
      const path = upstreamPath(request.url)
      if (path === undefined) {
        request.authgw.reason = RequestErrorReason.bad_request
        return reply.code(400).send({ error: RequestErrorReason.bad_request, reason: RequestErrorReason.bad_request, requestId: request.id })
      }
      const jwt = request.upstream?.jwt
      // The body exactly as received. Left to itself, reply-from would
      // JSON.stringify a Buffer body whose Content-Type is JSON
      // (`{"type":"Buffer","data":[…]}`) and drop Content-Type parameters.
      const body = request.body instanceof Buffer && request.body.length > 0 ? request.body : undefined
      ;(request.upstream ??= {}).startedAt = performance.now()
      return reply.from(path, {
        ...(body === undefined ? {} : { body, contentType: request.headers['content-type'] ?? 'application/octet-stream' }),
        rewriteRequestHeaders: (_req, headers) => headerPolicy.rewrite(request, headers, jwt),
        rewriteHeaders: (headers) => stripHopByHop(headers),
        // Never retry: a non-idempotent request must reach the upstream at most once.
        retryDelay: () => null,
        onResponse: onResponse as never,
        onError: onError as never,
      })
    })
  })
}

/**
 * The path part of a request URL as it is sent upstream (the query string is
 * passed through untouched by reply-from), or undefined when it does not
 * decode or climbs out of its prefix with a `..` segment.
 */
export function upstreamPath(url: string): string | undefined {
  const p = splitPath(url)
  if (p === undefined) return undefined
  return PARENT_SEGMENT.test(p.decoded.replaceAll('\\', '/')) ? undefined : p.path
}

/** The raw path (no query string) and its percent-decoded form; undefined when it does not decode. */
function splitPath(url: string): { path: string; decoded: string } | undefined {
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  try {
    return { path, decoded: decodeURIComponent(path) }
  } catch {
    return undefined
  }
}

const PARENT_SEGMENT = /(^|\/)\.\.(\/|$)/
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/

/**
 * PUBLIC_PATHS match on the decoded path, and a path that could be read as
 * another one upstream (dot segments, encoded or back slashes) is never public:
 * `/api/public/../admin` must not skip authentication.
 */
export function isPublicPath(url: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return false
  const p = splitPath(url)
  if (p === undefined) return false
  const { path, decoded } = p
  if (decoded.includes('\\') || decoded.includes('%') || DOT_SEGMENT.test(decoded) || /%2f|%5c/i.test(path)) return false
  return prefixes.some((p) => path.startsWith(p) && decoded.startsWith(p))
}

export const proxy = fp(proxyPlugin, { name: 'authgw-proxy', fastify: '5.x' })
