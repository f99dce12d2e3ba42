// Variant (a), the baseline: bare Fastify + @fastify/reply-from with the same
// undici options as the gateway's proxy, and nothing else (no auth, metrics,
// logging or tracing). Not shipped; the benchmark only.
// BENCH_BASELINE_HOP=undici (variant a-lean, a reference without a budget):
// the same bare server, but through the gateway's direct undici hop
// (src/proxy/upstream-hop.ts) instead of reply-from.
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import type { Dispatcher } from 'undici'
import { createUpstreamPool, forward } from '../src/proxy/upstream-hop.ts'
import type { Hop } from '../src/proxy/upstream-hop.ts'

const upstream = process.env.UPSTREAM_URL
const port = Number(process.env.PORT ?? 0)
if (!upstream) throw new Error('UPSTREAM_URL is required')

const app = Fastify({ logger: false })
app.get('/readyz', async () => ({ ready: true }))
if (process.env.BENCH_BASELINE_HOP === 'undici') {
  const pool = createUpstreamPool(new URL(upstream).origin, { connections: 128, timeoutMs: 30_000, connectTimeoutMs: 10_000, keepAliveTimeoutMs: 60_000 })
  app.addHook('onClose', () => pool.close())
  const hop: Hop = {
    pool,
    observer: {
      responseStarted() {},
      failedBeforeResponse(reply) {
        reply.code(502).send()
      },
      failedAfterResponse() {},
      retried() {},
    },
  }
  const host = new URL(upstream).host
  // reply-from's request headers: the client's, minus Connection and what it names, with the upstream's Host.
  const SKIP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade'])
  app.all('/api/*', (request, reply) => {
    const from = request.raw.headers
    const named = typeof from.connection === 'string' ? from.connection.toLowerCase().split(',').map((s) => s.trim()) : []
    const headers: IncomingHttpHeaders = {}
    for (const name in from) if (!SKIP.has(name) && !named.includes(name)) headers[name] = from[name]
    headers.host = host
    const body = request.body instanceof Buffer && request.body.length > 0 ? request.body : null
    forward(hop, reply, { method: request.method as Dispatcher.HttpMethod, path: request.url, headers, body })
  })
} else {
  await app.register(replyFrom, {
    base: upstream,
    disableRequestLogging: true,
    undici: { connections: 128, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 },
  })
  app.all('/api/*', (request, reply) => {
    reply.from(request.url, { retryDelay: () => null })
  })
}
await app.listen({ port, host: '127.0.0.1' })
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
