// The keep-alive race behind docs/adr/0001-upstream-retry-policy.md, measured:
// an upstream that closes idle connections after IDLE_MS without announcing
// it (no `Keep-Alive: timeout=` hint, as many non-Node servers and load
// balancers do), and a client whose requests arrive IDLE_MS ± JITTER_MS apart,
// through the gateway's upstream hop (src/proxy/upstream-hop.ts) with three
// idle timeouts. Each retry is a request that, without the retry, would have
// been a 502 `reset`. Not part of `npm run bench`:
//   npx node bench/upstream-keepalive-race.ts  (REQUESTS=200 IDLE_MS=200 JITTER_MS=20)
import Fastify from 'fastify'
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Dispatcher } from 'undici'
import { createUpstreamPool, forward } from '../src/proxy/upstream-hop.ts'
import type { Hop } from '../src/proxy/upstream-hop.ts'

const REQUESTS = Number(process.env.REQUESTS ?? 200)
const IDLE_MS = Number(process.env.IDLE_MS ?? 200)
const JITTER_MS = Number(process.env.JITTER_MS ?? 20)

// The upstream: no idle timeout of Node's own (so no hint), its own idle timer instead.
const timers = new WeakMap<Socket, NodeJS.Timeout>()
const idle = (socket: Socket) => {
  clearTimeout(timers.get(socket))
  timers.set(socket, setTimeout(() => socket.destroy(), IDLE_MS))
}
const upstream = createServer((req, res) => {
  clearTimeout(timers.get(req.socket))
  res.once('finish', () => idle(req.socket))
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
})
upstream.keepAliveTimeout = 0
upstream.on('connection', (socket: Socket) => {
  idle(socket)
  socket.on('close', () => clearTimeout(timers.get(socket)))
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const upstreamOrigin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

async function measure(keepAliveTimeoutMs: number) {
  let retries = 0
  let failures = 0
  const app = Fastify({ logger: false })
  const pool = createUpstreamPool(upstreamOrigin, { connections: 1, timeoutMs: 10_000, connectTimeoutMs: 5_000, keepAliveTimeoutMs })
  const hop: Hop = {
    pool,
    observer: {
      responseStarted() {},
      failedBeforeResponse(reply) {
        failures++
        reply.code(502).send()
      },
      failedAfterResponse() {
        failures++
      },
      retried() {
        retries++
      },
    },
  }
  app.get('/api/*', (request, reply) => {
    forward(hop, reply, { method: request.method as Dispatcher.HttpMethod, path: request.url, headers: { host: 'upstream' }, body: null })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  let non200 = 0
  for (let i = 0; i < REQUESTS; i++) {
    await new Promise((r) => setTimeout(r, IDLE_MS - JITTER_MS + Math.random() * 2 * JITTER_MS))
    const status = await new Promise<number>((resolve) => {
      const req = httpRequest({ port, host: '127.0.0.1', path: '/api/x', agent: false }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', () => resolve(0))
      req.end()
    })
    if (status !== 200) non200++
  }
  await app.close()
  await pool.close()
  return { keepAliveTimeoutMs, requests: REQUESTS, non200, failures, retries }
}

const rows = []
for (const ms of [60_000, 4_000, Math.max(1, Math.floor(IDLE_MS / 2))]) rows.push(await measure(ms))
upstream.close()
console.log(`upstream idle timeout ${IDLE_MS} ms (no hint), requests ${IDLE_MS} ± ${JITTER_MS} ms apart, node ${process.version}`)
console.log('| UPSTREAM_KEEP_ALIVE_TIMEOUT_MS | requests | answered non-200 | upstream failures | retries (502s without the retry) |')
console.log('|---:|---:|---:|---:|---:|')
for (const r of rows) console.log(`| ${r.keepAliveTimeoutMs} | ${r.requests} | ${r.non200} | ${r.failures} | ${r.retries} |`)
