// Everything under /api/ except /api/auth/ goes to the upstream over a
// direct undici hop (upstream-hop.ts), after the guard allowed it.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import fp from 'fastify-plugin'
import { exemplarOf, recordUnauthorized } from '../auth/decision.ts'
import type { Guard } from '../auth/guard.ts'
import { Mechanism, UnauthorizedSource, UpstreamFailureReason, UpstreamRejectReason } from '../reasons.ts'
import type { UpstreamFailureReason as FailureReason } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { metricsFor } from '../telemetry/probe-traffic.ts'
import { RequestErrorReason } from '../reasons.ts'
import { noteUpstreamFailure } from '../telemetry/tracing.ts'
import type { HeaderPolicy } from './headers.ts'
import { withoutQuery } from './request-target.ts'
import type { UpstreamState } from './upstream-state.ts'
import { createUpstreamPool, forward } from './upstream-hop.ts'
import type { Hop, HopObserver } from './upstream-hop.ts'

export const PROXY_ROUTE = '/api/*'

export type ProxyOptions = {
  upstreamUrl: string
  publicPaths: string[]
  timeoutMs: number
  connectTimeoutMs: number
  connections: number
  keepAliveTimeoutMs: number
  bodyLimit: number
  guard: Guard
  headerPolicy: HeaderPolicy
  metrics: Metrics
}


/** Map an undici (or reply-from) error to the upstream failure reason and status. */
export function classifyUpstreamError(error: unknown): { reason: FailureReason; status: 502 | 504 } {
  const codes: string[] = []
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as Error & { code?: string }).code
    if (code) codes.push(code)
    // Happy eyeballs (a host name with several addresses) fails with one error per address.
    if (e instanceof AggregateError) for (const inner of e.errors) if (typeof inner?.code === 'string') codes.push(inner.code)
  }
  const has = (...c: string[]) => codes.some((x) => c.includes(x))
  // undici's SocketError for a status line it will not take (an unsolicited
  // 100 Continue, an upgrade nobody asked for): a bad response, not a reset.
  if (error instanceof Error && (error as Error & { code?: string }).code === 'UND_ERR_SOCKET' && /^bad (response|upgrade)$/.test(error.message)) {
    return { reason: UpstreamFailureReason.bad_response, status: 502 }
  }
  // No connection at all, including UPSTREAM_CONNECT_TIMEOUT_MS running out
  // (reply-from labelled that one 504): the upstream was never asked.
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
  const { guard, headerPolicy } = opts
  // The probe's requests are counted on its own series only.
  const metricsOf = (request: FastifyRequest) => metricsFor(opts.metrics, request.authgw.probe)
  const upstreamHost = new URL(opts.upstreamUrl).host
  const pool = createUpstreamPool(new URL(opts.upstreamUrl).origin, opts)
  app.decorateRequest('upstream', undefined)
  app.addHook('onClose', async () => {
    // Fastify has stopped taking requests and answered the ones in flight by now.
    await pool.close()
  })

  const observer: HopObserver = {
    responseStarted(reply, statusCode) {
      const request = reply.request
      const started = request.upstream?.startedAt ?? performance.now()
      metricsOf(request).observeUpstream(statusCode, (performance.now() - started) / 1000)
      if (statusCode === 401) {
        // Every 401 is counted, including an upstream's on a PUBLIC_PATHS route (mechanism none).
        recordUnauthorized(opts.metrics, request, UnauthorizedSource.upstream, request.authgw.mechanism ?? Mechanism.none, UpstreamRejectReason.upstream_rejected)
      }
    },
    failedBeforeResponse(reply, error) {
      const { reason, status } = classifyUpstreamError(error)
      const request = reply.request
      metricsOf(request).upstreamFailure(reason, exemplarOf())
      recordFailure(request, reason)
      request.log.warn({ reason, err: { type: error.name, code: (error as { code?: string }).code } }, 'upstream failed')
      reply.code(status).send({ error: status === 504 ? 'gateway_timeout' : 'bad_gateway', reason, requestId: request.id })
    },
    retried(reply, reason, error) {
      const request = reply.request
      metricsOf(request).upstreamRetry(reason)
      upstreamState(request).retry = reason
      request.log.info({ reason, err: { type: error.name, code: (error as { code?: string }).code } }, 'upstream retried')
    },
    failedAfterResponse(reply, error) {
      // Headers are already on their way: the client sees a cut response,
      // and the access line (written on 'close') names the reason.
      const { reason } = classifyUpstreamError(error)
      metricsOf(reply.request).upstreamFailure(reason, exemplarOf())
      recordFailure(reply.request, reason)
    },
  }
  // The hop hijacks the reply: no onSend hook may matter on this route (the
  // tracing plugin annotates its span in onResponse for that reason).
  const hop: Hop = { pool, observer }

  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.bodyLimit }, (_req, body, done) => done(null, body))
    // Authenticate before the body is read: a denied client must not get to
    // make the gateway buffer up to PROXY_BODY_LIMIT_BYTES first.
    scope.addHook('onRequest', async (request, reply) => {
      if (isPublicPath(request.url, opts.publicPaths)) return
      const jwt = await guard(request, reply)
      if (jwt === undefined) return reply
      upstreamState(request).jwt = jwt
    })
    scope.all(PROXY_ROUTE, (request, reply) => {
      const target = upstreamTarget(request.url)
      if (target === undefined) {
        request.authgw.reason = RequestErrorReason.bad_request
        reply.code(400).send({ error: RequestErrorReason.bad_request, reason: RequestErrorReason.bad_request, requestId: request.id })
        return
      }
      // The body exactly as received (an empty one is no body).
      const body = request.body instanceof Buffer && request.body.length > 0 ? request.body : null
      const headers = headerPolicy.upstreamHeaders(request, upstreamHost, request.upstream?.jwt, body)
      upstreamState(request).startedAt = performance.now()
      forward(hop, reply, { method: request.method as Dispatcher.HttpMethod, path: target, headers, body })
    })
  })
}

/** The proxy's record of a failed upstream call; tracing (the hop's span) is told through its own API. */
function recordFailure(request: FastifyRequest, reason: FailureReason): void {
  upstreamState(request).failure = reason
  noteUpstreamFailure(request, reason)
}

function upstreamState(request: FastifyRequest): UpstreamState {
  return (request.upstream ??= {})
}

/**
 * The request target as it is sent upstream: the path, resolved the way a URL
 * parser resolves it (as reply-from did), and the query string untouched; or
 * undefined when the path does not decode or climbs out of its prefix.
 */
export function upstreamTarget(url: string): string | undefined {
  const q = url.indexOf('?')
  const raw = q === -1 ? url : url.slice(0, q)
  const path = upstreamPath(raw)
  if (path === undefined) return undefined
  // Most paths need nothing: no dot segment, nothing a URL parser would escape.
  const resolved = PLAIN_PATH.test(path) && !DOT_SEGMENT.test(path) && !ENCODED_DOT.test(path) ? path : new URL(path, 'http://upstream').pathname
  return q === -1 ? resolved : resolved + url.slice(q)
}

// RFC 3986 pchar and "/" only.
const PLAIN_PATH = /^[\w\-.~!$&'()*+,;=:@/%]*$/
const ENCODED_DOT = /%2e/i

/**
 * The path part of a request URL, or undefined when it does not decode or
 * could climb out of its prefix: a `..` segment, or `..` next to a slash at
 * all (the rule reply-from applied, kept so `/api/...` stays a 400).
 */
export function upstreamPath(url: string): string | undefined {
  const p = splitPath(url)
  if (p === undefined) return undefined
  const d = p.decoded.replaceAll('\\', '/')
  return d === '..' || d.includes('/..') || d.includes('../') ? undefined : p.path
}

/** The raw path (no query string) and its percent-decoded form; undefined when it does not decode. */
function splitPath(url: string): { path: string; decoded: string } | undefined {
  const path = withoutQuery(url)
  try {
    return { path, decoded: decodeURIComponent(path) }
  } catch {
    return undefined
  }
}

const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/

/**
 * PUBLIC_PATHS match whole segments, on the raw and the decoded path alike:
 * `/api/public` covers `/api/public` and `/api/public/…`, never
 * `/api/public-admin`; an entry ending in `/` covers only what is under it.
 * A path that could be read as another one upstream (dot segments, encoded or
 * back slashes) is never public: `/api/public/../admin` must not skip
 * authentication.
 */
export function isPublicPath(url: string, prefixes: readonly string[]): boolean {
  if (prefixes.length === 0) return false
  const p = splitPath(url)
  if (p === undefined) return false
  const { path, decoded } = p
  if (decoded.includes('\\') || decoded.includes('%') || DOT_SEGMENT.test(decoded) || /%2f|%5c/i.test(path)) return false
  return prefixes.some((prefix) => underPrefix(path, prefix) && underPrefix(decoded, prefix))
}

function underPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false
  return prefix.endsWith('/') || path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* / */
}

export const proxy = fp(proxyPlugin, { name: 'authgw-proxy', fastify: '5.x' })
