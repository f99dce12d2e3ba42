// Upstream failures over real sockets: refused, timed out, reset before and
// during the response, an unparseable response. Each has its status, its
// `authgw_upstream_failures_total` reason, and no request is sent twice.
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import { REQUEST_NOISE, delta, scrape, unexpectedMovements } from '../helpers/metrics.ts'
import type { Scrape } from '../helpers/metrics.ts'
import { classifyUpstreamError } from '../../src/proxy/proxy.ts'
import { eventually, listenForTest } from './support.ts'

const TIMEOUT_MS = '300'
const FAILURES = 'authgw_upstream_failures_total'
const failure = (reason: string) => `${FAILURES}{reason="${reason}"}`

/**
 * A raw TCP upstream that misbehaves by path. It reads one request per
 * connection (head and Content-Length body), counts it, then acts.
 */
async function faultyUpstream(t: Test) {
  const received: string[] = []
  /** Paths whose connection the gateway closed, in order. */
  const closed: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    let requested: string | undefined
    socket.on('close', () => {
      sockets.delete(socket)
      if (requested !== undefined) closed.push(requested)
    })
    socket.on('error', () => undefined)
    let buf = Buffer.alloc(0)
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      const end = buf.indexOf('\r\n\r\n')
      if (end === -1) return
      const head = buf.subarray(0, end).toString('latin1')
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (buf.length < end + 4 + length) return
      socket.off('data', onData)
      const [method, path] = head.split(' ') as [string, string]
      received.push(`${method} ${path}`)
      requested = path
      act(path, socket)
    }
    socket.on('data', onData)
  })
  const act = (path: string, socket: Socket) => {
    const ok = (body: string) => `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`
    switch (path) {
      case '/api/ok':
        socket.end(ok('{"ok":true}'))
        break
      case '/api/hang':
        break // never answers: UPSTREAM_TIMEOUT_MS
      case '/api/reset':
        socket.resetAndDestroy()
        break
      case '/api/reset-mid':
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"partial":')
        setTimeout(() => socket.resetAndDestroy(), 50)
        break
      case '/api/stall-body':
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"partial":')
        break // body never completes
      case '/api/garbage':
        socket.end('SPDY/9 banana\r\n\r\n')
        break
      default:
        socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
    }
  }
  const port = await listenForTest(t, server, sockets)
  return { url: `http://127.0.0.1:${port}`, received, closed }
}

async function signedIn(t: Test, url: string): Promise<Client> {
  const c = new Client(url)
  const r = await c.signUp(uniqueEmail('upstream'), PASSWORD)
  t.equal(r.status, 200, r.text)
  return c
}

/** The failure counters may move after the response (a cut body): wait for the expected movement, then compare exactly. */
async function settled(gw: { metricsUrl: string }, before: Scrape, key: string, by: number): Promise<Map<string, number>> {
  return eventually(
    async () => {
      const d = delta(before, await scrape(gw))
      return (d.get(key) ?? 0) >= by ? d : undefined
    },
    { limitMs: 10_000, what: `${key} +${by}` },
  )
}

// Everything a request moves besides the failure under test.
const ALLOWED_NOISE = [
  ...REQUEST_NOISE,
  'authgw_http_request_duration_seconds_count',
  'authgw_auth_decisions_total',
  'authgw_tokens_issued_total',
  'authgw_upstream_request_duration_seconds_bucket',
  'authgw_upstream_request_duration_seconds_sum',
  'authgw_upstream_request_duration_seconds_count',
]

t.test('connection refused → 502 connect_error', async (t) => {
  const closedPort = await freePort()
  const gw = await startTestGateway(t, { upstreamUrl: `http://127.0.0.1:${closedPort}`, env: { UPSTREAM_TIMEOUT_MS: TIMEOUT_MS } })
  const c = await signedIn(t, gw.url)
  const before = await scrape(gw)
  const r = await c.post('/api/orders', { item: 1 })
  t.equal(r.status, 502, r.text)
  t.match(r.body, { error: 'bad_gateway', reason: 'connect_error' })
  const d = await settled(gw, before, failure('connect_error'), 1)
  t.same(unexpectedMovements(d, { [failure('connect_error')]: 1 }, ALLOWED_NOISE), [])
  const line = gw.logs.accessLines().find((l) => l.status === 502)
  t.equal(line?.upstreamFailure, 'connect_error', 'the access line names the reason')
})

t.test('timeout, reset, bad response: status, reason, one attempt each', async (t) => {
  const upstream = await faultyUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_TIMEOUT_MS: TIMEOUT_MS } })
  const c = await signedIn(t, gw.url)

  const cases: Array<{ path: string; status: number; error: string; reason: string }> = [
    { path: '/api/hang', status: 504, error: 'gateway_timeout', reason: 'timeout' },
    { path: '/api/reset', status: 502, error: 'bad_gateway', reason: 'reset' },
    { path: '/api/garbage', status: 502, error: 'bad_gateway', reason: 'bad_response' },
  ]
  for (const method of ['POST', 'GET'] as const) {
    for (const k of cases) {
      t.test(`${method} ${k.path} → ${k.status} ${k.reason}`, async (t) => {
        const before = await scrape(gw)
        const sent = upstream.received.length
        const r = method === 'POST' ? await c.post(k.path, { n: 1 }) : await c.get(k.path)
        t.equal(r.status, k.status, r.text)
        t.match(r.body, { error: k.error, reason: k.reason })
        const d = await settled(gw, before, failure(k.reason), 1)
        t.same(unexpectedMovements(d, { [failure(k.reason)]: 1 }, ALLOWED_NOISE), [])
        t.same(upstream.received.slice(sent), [`${method} ${k.path}`], 'the upstream received the request exactly once')
      })
    }
  }

  t.test('reset after the response started: the client sees a cut response, counted as reset', async (t) => {
    const before = await scrape(gw)
    const sent = upstream.received.length
    const res = await fetch(`${gw.url}/api/reset-mid`, { method: 'POST', headers: { cookie: c.cookieHeader, origin: gw.url, 'content-type': 'application/json' }, body: '{}' })
    t.equal(res.status, 200, 'headers were already on their way')
    await t.rejects(res.text(), 'the body is cut')
    const d = await settled(gw, before, failure('reset'), 1)
    t.same(unexpectedMovements(d, { [failure('reset')]: 1 }, ALLOWED_NOISE), [])
    t.same(upstream.received.slice(sent), ['POST /api/reset-mid'])
  })

  t.test('a body that stalls past UPSTREAM_TIMEOUT_MS: cut, counted as timeout', async (t) => {
    const before = await scrape(gw)
    const res = await fetch(`${gw.url}/api/stall-body`, { headers: { cookie: c.cookieHeader } })
    t.equal(res.status, 200)
    await t.rejects(res.text())
    const d = await settled(gw, before, failure('timeout'), 1)
    t.same(unexpectedMovements(d, { [failure('timeout')]: 1 }, ALLOWED_NOISE), [])
  })

  t.test('a client that leaves aborts its upstream call: the upstream connection is closed long before any timeout, nothing counted', async (t) => {
    // A timeout far beyond the wait below: only an abort can close the upstream connection in time.
    const patient = await startTestGateway(t, { upstreamUrl: upstream.url, databaseUrl: gw.databaseUrl, env: { UPSTREAM_TIMEOUT_MS: '120000' } })
    const before = await scrape(patient)
    const sent = upstream.received.length
    const closedBefore = upstream.closed.filter((p) => p === '/api/hang').length
    const aborted = new AbortController()
    const pending = fetch(`${patient.url}/api/hang`, { headers: { cookie: c.cookieHeader }, signal: aborted.signal }).catch((err: Error) => err.name)
    await eventually(async () => (upstream.received.length > sent ? true : undefined), { limitMs: 10_000, what: 'the call reached the upstream' })
    aborted.abort()
    t.equal(await pending, 'AbortError')
    await eventually(async () => (upstream.closed.filter((p) => p === '/api/hang').length > closedBefore ? true : undefined), {
      limitMs: 20_000,
      what: 'the upstream connection closed',
    })
    t.same(unexpectedMovements(delta(before, await scrape(patient)), {}, ALLOWED_NOISE), [], 'no upstream failure: nobody was waiting for the answer')
    t.same(upstream.received.slice(sent), ['GET /api/hang'], 'sent once')
  })

  t.test('the gateway still serves once the upstream behaves', async (t) => {
    const r = await c.get('/api/ok')
    t.equal(r.status, 200, r.text)
    t.same(r.body, { ok: true })
  })
})

// A connect that times out cannot be produced on loopback (the kernel always
// answers), so this one row is checked on the error shapes reply-from hands over.
t.test('classification of the errors reply-from hands to onError', async (t) => {
  const err = (code: string, cause?: Error) => Object.assign(new Error(code, { cause }), { code })
  t.same(classifyUpstreamError(err('UND_ERR_CONNECT_TIMEOUT', err('UND_ERR_CONNECT_TIMEOUT'))), { reason: 'connect_error', status: 502 }, 'UPSTREAM_CONNECT_TIMEOUT_MS exceeded → 502 connect_error')
  t.same(classifyUpstreamError(err('FST_REPLY_FROM_GATEWAY_TIMEOUT', err('UND_ERR_HEADERS_TIMEOUT'))), { reason: 'timeout', status: 504 })
  t.same(classifyUpstreamError(err('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', err('ECONNREFUSED'))), { reason: 'connect_error', status: 502 })
  t.same(classifyUpstreamError(err('UND_ERR_SOCKET')), { reason: 'reset', status: 502 })
  t.same(classifyUpstreamError(err('HPE_INVALID_CONSTANT')), { reason: 'bad_response', status: 502 })
  t.same(classifyUpstreamError('not an error'), { reason: 'bad_response', status: 502 })
})
