// Variant (a), the baseline: bare Fastify + @fastify/reply-from with the same
// undici options as the gateway's proxy, and nothing else (no auth, metrics,
// logging or tracing). Not shipped; the benchmark only.
import replyFrom from '@fastify/reply-from'
import Fastify from 'fastify'

const upstream = process.env.UPSTREAM_URL
const port = Number(process.env.PORT ?? 0)
if (!upstream) throw new Error('UPSTREAM_URL is required')

const app = Fastify({ logger: false })
await app.register(replyFrom, {
  base: upstream,
  disableRequestLogging: true,
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 },
})
app.get('/readyz', async () => ({ ready: true }))
app.all('/api/*', (request, reply) => {
  reply.from(request.url, { retryDelay: () => null })
})
await app.listen({ port, host: '127.0.0.1' })
process.once('SIGTERM', () => {
  void app.close().then(() => process.exit(0))
})
