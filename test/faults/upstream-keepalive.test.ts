// Kept-alive upstream connections against real node:http upstreams: the
// gateway closes idle connections after UPSTREAM_KEEP_ALIVE_TIMEOUT_MS (or
// the upstream's own `Keep-Alive: timeout=` hint), and an idempotent request
// that meets a kept-alive connection the upstream had already closed (reset
// before any response byte) is sent once more on a fresh connection, counted
// on authgw_upstream_retries_total. Nothing else is ever sent twice.
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, unexpectedMovements, REQUEST_NOISE } from '../helpers/metrics.ts'
import { eventually, listenForTest, sleep } from './support.ts'

const RETRIES = 'authgw_upstream_retries_total{reason="reset_reused_socket"}'
const RESETS = 'authgw_upstream_failures_total{reason="reset"}'
const NOISE = [
  ...REQUEST_NOISE,
  'authgw_http_request_duration_seconds_count',
  'authgw_auth_decisions_total',
  'authgw_tokens_issued_total',
  /^authgw_upstream_request_duration_seconds_/,
]

type Seen = { method: string; url: string; socket: number; nth: number; body: string }

/**
 * A node:http upstream. Each request is recorded with the number of its
 * connection and its position on that connection; `drop` decides whether the
 * upstream closes the connection instead of answering (as a server whose idle
 * timer fired just as the request arrived does).
 */
async function nodeUpstream(t: Test, opts: { keepAliveTimeout: number; drop?: (s: Seen) => 'fin' | 'rst' | undefined }) {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  const ids = new WeakMap<Socket, { id: number; n: number }>()
  const closedByPeer: number[] = []
  let next = 0
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const conn = ids.get(req.socket)!
    conn.n++
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', url: req.url ?? '', socket: conn.id, nth: conn.n, body: Buffer.concat(chunks).toString() }
      seen.push(s)
      const drop = opts.drop?.(s)
      if (drop === 'fin') req.socket.destroy()
      else if (drop === 'rst') req.socket.resetAndDestroy()
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ socket: conn.id, nth: conn.n }))
    })
  })
  // 0: no idle timeout and no `Keep-Alive: timeout=` hint in answers.
  server.keepAliveTimeout = opts.keepAliveTimeout
  server.on('connection', (s: Socket) => {
    ids.set(s, { id: next++, n: 0 })
    sockets.add(s)
    // The gateway closed it (it never does so mid-request here): its idle timeout.
    s.on('end', () => closedByPeer.push(ids.get(s)!.id))
    s.on('close', () => sockets.delete(s))
  })
  const port = await listenForTest(t, server, sockets)
  return { url: `http://127.0.0.1:${port}`, seen, closedByPeer }
}

async function signedIn(t: Test, gw: TestGateway): Promise<Client> {
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('keepalive'), PASSWORD)).status, 200)
  return c
}

t.test('UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: an idle connection is closed by the gateway, the next request opens a new one', async (t) => {
  const upstream = await nodeUpstream(t, { keepAliveTimeout: 0 })
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: '300', UPSTREAM_CONNECTIONS: '1' } })
  const c = await signedIn(t, gw)
  // Two at once on one connection: the second waits for the first, so there is no idle time between them.
  const both = await Promise.all([c.get('/api/a'), c.get('/api/b')])
  t.same(both.map((r) => r.status), [200, 200])
  t.equal(upstream.seen.at(-1)?.socket, upstream.seen.at(-2)?.socket, 'back to back: the connection is reused')
  const used = upstream.seen.at(-1)!.socket
  await eventually(async () => (upstream.closedByPeer.includes(used) ? true : undefined), { limitMs: 10_000, what: 'the gateway closed the idle connection' })
  t.pass('the gateway closed the idle connection itself')
  t.equal((await c.get('/api/c')).status, 200)
  t.not(upstream.seen.at(-1)?.socket, used, 'the next request went out on a new connection')
})

t.test("the upstream's Keep-Alive: timeout= hint wins over a longer setting", async (t) => {
  // Node answers with `Keep-Alive: timeout=5` (and closes a second later); undici keeps such a connection 5 s − 2 s = 3 s.
  const upstream = await nodeUpstream(t, { keepAliveTimeout: 5000 })
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: '60000', UPSTREAM_CONNECTIONS: '1' } })
  const c = await signedIn(t, gw)
  t.equal((await c.get('/api/a')).status, 200)
  const used = upstream.seen.at(-1)!.socket
  await eventually(async () => (upstream.closedByPeer.includes(used) ? true : undefined), { limitMs: 10_000, what: 'the gateway closed the idle connection' })
  t.pass('closed by the gateway, before the upstream would have')
})

t.test('a kept-alive connection the upstream closed under an idempotent request: sent once more, counted', async (t) => {
  // The second request on every connection finds it closed (FIN), before any answer byte.
  const upstream = await nodeUpstream(t, { keepAliveTimeout: 0, drop: (s) => (s.nth === 2 ? (s.method === 'DELETE' ? 'rst' : 'fin') : undefined) })
  // A long idle timeout: the kept-alive connection must still be there for the next request, however slow the machine.
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_CONNECTIONS: '1', UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: '60000' } })
  const c = await signedIn(t, gw)

  for (const [method, body] of [
    ['GET', undefined],
    ['HEAD', undefined],
    ['PUT', '{"v":1}'],
    ['DELETE', undefined],
  ] as const) {
    t.test(`${method}: retried once on a new connection`, async (t) => {
      t.equal((await c.get('/api/warm')).status, 200, 'first request on a new connection')
      const before = await scrape(gw)
      const from = upstream.seen.length
      const r = await c.request(method, '/api/x', body === undefined ? {} : { body })
      t.equal(r.status, 200, `${method}: ${r.text}`)
      const sent = upstream.seen.slice(from)
      t.same(sent.map((s) => [s.method, s.url, s.nth]), [[method, '/api/x', 2], [method, '/api/x', 1]], 'dropped on the reused connection, answered on a new one')
      if (body !== undefined) t.same(sent.map((s) => s.body), [body, body], 'the same body both times')
      t.same(unexpectedMovements(delta(before, await scrape(gw)), { [RETRIES]: 1 }, NOISE), [], 'one retry counted, no failure')
      t.match(gw.logs.accessLines().at(-1), { status: 200, upstreamRetry: 'reset_reused_socket' }, 'the access line says it was retried')
    })
  }

  for (const method of ['POST', 'PATCH']) {
    t.test(`${method}: never retried`, async (t) => {
      t.equal((await c.get('/api/warm')).status, 200)
      const before = await scrape(gw)
      const from = upstream.seen.length
      const r = await c.request(method, '/api/x', { body: '{"v":1}' })
      t.equal(r.status, 502, r.text)
      t.match(r.body, { reason: 'reset' })
      t.same(upstream.seen.slice(from).map((s) => s.method), [method], 'sent exactly once')
      t.same(unexpectedMovements(delta(before, await scrape(gw)), { [RESETS]: 1 }, NOISE), [], 'a reset, no retry')
    })
  }
})

t.test('retried at most once; a reset on a new connection, or after the answer began, is never retried', async (t) => {
  // Every request on every connection is dropped (RST): the retry meets the same fate.
  let mode: 'first' | 'all' | 'mid' = 'first'
  const upstream = await nodeUpstream(t, {
    keepAliveTimeout: 0,
    drop: (s) => (s.url === '/api/warm' ? undefined : mode === 'all' || (mode === 'first' && s.nth === 1) ? 'rst' : undefined),
  })
  // A long idle timeout: the kept-alive connection must still be there for the next request, however slow the machine.
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_CONNECTIONS: '1', UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: '60000' } })
  const c = await signedIn(t, gw)

  t.test('reset on a new connection: no retry', async (t) => {
    mode = 'first'
    // Let the previous connection go, so this request opens a new one.
    const before = await scrape(gw)
    const from = upstream.seen.length
    const r = await c.get('/api/fresh')
    t.equal(r.status, 502, r.text)
    t.same(upstream.seen.slice(from).map((s) => [s.url, s.nth]), [['/api/fresh', 1]], 'sent once')
    t.same(unexpectedMovements(delta(before, await scrape(gw)), { [RESETS]: 1 }, NOISE), [])
  })

  t.test('reset on the reused connection, and again on the new one: one retry, then 502', async (t) => {
    mode = 'all'
    t.equal((await c.get('/api/warm')).status, 200)
    const before = await scrape(gw)
    const from = upstream.seen.length
    const r = await c.get('/api/x')
    t.equal(r.status, 502, r.text)
    t.match(r.body, { reason: 'reset' })
    t.same(upstream.seen.slice(from).map((s) => [s.url, s.nth]), [['/api/x', 2], ['/api/x', 1]], 'twice, never three times')
    t.same(unexpectedMovements(delta(before, await scrape(gw)), { [RETRIES]: 1, [RESETS]: 1 }, NOISE), [])
  })
})

t.test('a reset after the answer began on a reused connection is not retried: the client sees the cut', async (t) => {
  const { createServer: createNetServer } = await import('node:net')
  const sockets = new Set<Socket>()
  const requests: string[] = []
  // Raw: the second request on a connection gets a status line and part of its body, then a reset.
  const server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let n = 0
    let buf = ''
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      while (buf.includes('\r\n\r\n')) {
        const head = buf.slice(0, buf.indexOf('\r\n\r\n'))
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4)
        n++
        requests.push(`${head.split(' ')[1]} ${n}`)
        if (n === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
        else {
          socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial')
          setTimeout(() => socket.resetAndDestroy(), 50)
        }
      }
    })
  })
  const port = await listenForTest(t, server, sockets)
  const gw = await startTestGateway(t, { upstreamUrl: `http://127.0.0.1:${port}`, env: { UPSTREAM_CONNECTIONS: '1', UPSTREAM_KEEP_ALIVE_TIMEOUT_MS: '60000' } })
  const c = await signedIn(t, gw)
  t.equal((await c.get('/api/warm')).status, 200)
  const before = await scrape(gw)
  const res = await fetch(`${gw.url}/api/mid`, { headers: { cookie: c.cookieHeader } })
  t.equal(res.status, 200)
  await t.rejects(res.text(), 'the body is cut')
  await sleep(100)
  t.same(requests.filter((r) => r.startsWith('/api/mid')), ['/api/mid 2'], 'sent once')
  const d = await eventually(async () => {
    const m = delta(before, await scrape(gw))
    return (m.get(RESETS) ?? 0) >= 1 ? m : undefined
  }, { limitMs: 10_000, what: 'reset counted' })
  t.same(unexpectedMovements(d, { [RESETS]: 1 }, NOISE), [], 'no retry')
})
