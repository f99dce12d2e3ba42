// Every well-formed upstream answer reaches the client whole, whatever its
// framing (204/304 with a Content-Length, HEAD, 205, 103 Early Hints, chunked,
// close-delimited), over a raw TCP upstream that writes exact bytes; a
// malformed one is a 502. And every request leaves exactly one access line,
// also when the response never completes: the client left (499
// `client_closed`), or the upstream failed mid-body and the gateway cut it.
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { scrape, sumOf } from '../helpers/metrics.ts'
import { eventually, listenForTest, parseRawResponse, rawRequest } from './support.ts'

/** What the upstream writes for each path (after reading the request); undefined: nothing, ever. */
const ANSWERS: Record<string, string | undefined> = {
  '/api/204-cl': 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\n',
  '/api/204': 'HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n',
  '/api/304-cl': 'HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: "v1"\r\n\r\n',
  '/api/304': 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n',
  '/api/205': 'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n',
  '/api/103': 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok',
  '/api/head': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n',
  '/api/chunked': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
  '/api/own-request-id': 'HTTP/1.1 200 OK\r\nX-Request-Id: upstream-7\r\nContent-Length: 2\r\n\r\nok',
  '/api/ok': 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}',
  '/api/hang': undefined,
  // Malformed: both framings at once (RFC 9112 §6.3: handled as an error).
  '/api/te-cl': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  // undici takes no 100 Continue it did not ask for (nodejs/undici#201).
  '/api/100': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
}

/** A keep-alive raw TCP upstream: one request at a time per connection, answered from ANSWERS. */
async function rawUpstream(t: Test) {
  const received: string[] = []
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buf.subarray(0, end).toString('latin1')
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return
        buf = buf.subarray(end + 4 + length)
        const [method, path] = head.split(' ') as [string, string]
        received.push(`${method} ${path}`)
        if (path === '/api/close-delimited') {
          socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nuntil the end')
          return
        }
        if (path === '/api/slow-body') {
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nfirst bytes')
          return
        }
        if (path === '/api/reset-mid') {
          socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\npartial')
          setTimeout(() => socket.resetAndDestroy(), 50)
          return
        }
        const answer = ANSWERS[path]
        if (answer !== undefined) socket.write(answer)
      }
    })
  })
  const port = await listenForTest(t, server, sockets)
  return { url: `http://127.0.0.1:${port}`, received }
}

async function setup(t: Test) {
  const upstream = await rawUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { UPSTREAM_TIMEOUT_MS: '120000' } })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('answers'), PASSWORD)).status, 200)
  return { upstream, gw, cookie: c.cookieHeader, port: Number(new URL(gw.url).port) }
}

const req = (method: string, path: string, cookie: string, close = false) =>
  `${method} ${path} HTTP/1.1\r\nHost: a\r\nCookie: ${cookie}\r\n${close ? 'Connection: close\r\n' : ''}\r\n`
// With Connection: close on the last request, the server's close ends the read; the wait only bounds a hang.
const UNTIL_CLOSED = { waitMs: 30_000 }

/** The answers on one connection, split by their own framing (the next one starts with a status line). */
function answers(text: string): string[] {
  return text.split(/(?=HTTP\/1\.1 \d{3} )/).filter((s) => s !== '')
}

const linesFor = (gw: TestGateway, path: string) => gw.logs.accessLines().filter((l) => l.path === path)

t.test('well-formed upstream answers reach the client whole, and the connection stays usable', async (t) => {
  const { gw, cookie, port } = await setup(t)
  const cases: Array<{ method: string; path: string; status: number; body: string; check?: (headers: Record<string, string>) => void }> = [
    { method: 'GET', path: '/api/204-cl', status: 204, body: '', check: (h) => t.equal(h['content-length'], undefined, 'no Content-Length on the 204') },
    { method: 'GET', path: '/api/204', status: 204, body: '' },
    { method: 'GET', path: '/api/304-cl', status: 304, body: '', check: (h) => t.equal(h.etag, '"v1"') },
    { method: 'GET', path: '/api/304', status: 304, body: '' },
    { method: 'POST', path: '/api/205', status: 205, body: '' },
    { method: 'GET', path: '/api/103', status: 200, body: 'ok' },
    { method: 'HEAD', path: '/api/head', status: 200, body: '', check: (h) => t.equal(h['content-length'], '1000', "HEAD keeps the upstream's Content-Length") },
    { method: 'GET', path: '/api/chunked', status: 200, body: '3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n' },
    {
      method: 'GET',
      path: '/api/own-request-id',
      status: 200,
      body: 'ok',
      check: (h) => {
        // The client can follow the request into the gateway's logs; the upstream's own id is kept.
        t.equal(h['x-request-id'], linesFor(gw, '/api/own-request-id')[0]?.reqId, "the gateway's request id, as in its access line")
        t.equal(h['x-upstream-request-id'], 'upstream-7', "the upstream's id under its own name")
      },
    },
  ]
  for (const k of cases) {
    // The answer under test, then a plain request on the same connection: a
    // cut connection or a wrongly framed answer would lose or corrupt the second.
    const r = await rawRequest(port, [req(k.method, k.path, cookie), req('GET', '/api/ok', cookie, true)], { gapMs: 100, ...UNTIL_CLOSED })
    const [first, second] = answers(r.text)
    const a = parseRawResponse(first ?? '')
    t.equal(a.status, k.status, `${k.method} ${k.path}: ${JSON.stringify(r.text.slice(0, 200))}`)
    t.equal(a.body, k.body, `${k.method} ${k.path}: the body as sent`)
    k.check?.(a.headers)
    t.equal(parseRawResponse(second ?? '').body, '{"ok":true}', `${k.path}: the connection carried the next request`)
    const lines = linesFor(gw, k.path)
    t.equal(lines.length, 1, `${k.path}: one access line`)
    t.equal(lines[0]?.status, k.status)
  }

  const closeDelimited = await rawRequest(port, [req('GET', '/api/close-delimited', cookie, true)], UNTIL_CLOSED)
  t.equal(closeDelimited.status, 200)
  t.match(closeDelimited.body, /until the end/, 'a close-delimited body arrives whole')
  t.same(gw.logs.records().filter((r) => (r.level ?? 0) >= 50).map((r) => r.msg), [], 'no error-level line')
})

t.test('malformed upstream answers are a 502 bad_response with an access line, never a cut connection', async (t) => {
  const { gw, cookie, port } = await setup(t)
  for (const path of ['/api/te-cl', '/api/100']) {
    const before = await scrape(gw)
    const r = await rawRequest(port, [req('GET', path, cookie, true)], UNTIL_CLOSED)
    t.equal(r.status, 502, `${path}: ${JSON.stringify(r.text.slice(0, 200))}`)
    t.match(JSON.parse(r.body), { error: 'bad_gateway', reason: 'bad_response' })
    const after = await scrape(gw)
    t.equal(sumOf(after, 'authgw_upstream_failures_total', { reason: 'bad_response' }) - sumOf(before, 'authgw_upstream_failures_total', { reason: 'bad_response' }), 1)
    t.match(linesFor(gw, path), [{ status: 502, upstreamFailure: 'bad_response' }])
  }
})

t.test('a response that never completes still leaves its access line', async (t) => {
  const { upstream, gw, cookie, port } = await setup(t)
  const leave = async (path: string, until: () => boolean) => {
    const { connect } = await import('node:net')
    const s = connect(port, '127.0.0.1')
    s.on('error', () => undefined)
    s.write(req('GET', path, cookie))
    await eventually(async () => (until() ? true : undefined), { limitMs: 10_000, what: `${path} in flight` })
    s.destroy()
  }

  t.test('the client leaves before the upstream answered: 499 client_closed', async (t) => {
    const before = await scrape(gw)
    await leave('/api/hang', () => upstream.received.includes('GET /api/hang'))
    const [line] = await eventually(async () => (linesFor(gw, '/api/hang').length > 0 ? linesFor(gw, '/api/hang') : undefined), { limitMs: 10_000, what: 'access line' })
    t.match(line, { status: 499, outcome: 'client_closed', route: '/api/*', mechanism: 'session' })
    t.equal(line?.level, 30, 'info: the client chose to leave')
    const after = await scrape(gw)
    const count = (s: typeof before) => sumOf(s, 'authgw_http_request_duration_seconds_count', { route: '/api/*', status_code: 499 })
    t.equal(count(after) - count(before), 1, 'the request histogram counts it under 499')
    t.equal(sumOf(after, 'authgw_upstream_failures_total') - sumOf(before, 'authgw_upstream_failures_total'), 0, 'not an upstream failure')
  })

  t.test('the client leaves in the middle of the body: 499 client_closed', async (t) => {
    let sent = 0
    await leave('/api/slow-body', () => {
      sent = upstream.received.filter((r) => r === 'GET /api/slow-body').length
      return sent > 0
    })
    const [line] = await eventually(async () => (linesFor(gw, '/api/slow-body').length > 0 ? linesFor(gw, '/api/slow-body') : undefined), { limitMs: 10_000, what: 'access line' })
    t.match(line, { status: 499, outcome: 'client_closed' })
  })

  t.test('the upstream fails mid-body and the gateway cuts the answer: the line says so', async (t) => {
    const r = await rawRequest(port, [req('GET', '/api/reset-mid', cookie)], UNTIL_CLOSED)
    t.equal(r.status, 200, 'the status line was already out')
    const [line] = await eventually(async () => (linesFor(gw, '/api/reset-mid').length > 0 ? linesFor(gw, '/api/reset-mid') : undefined), { limitMs: 10_000, what: 'access line' })
    t.match(line, { status: 200, outcome: 'error', upstreamFailure: 'reset' })
    t.equal(line?.level, 50, 'error level: the gateway failed this one')
  })

  t.test('exactly one line per request', async (t) => {
    for (const path of ['/api/hang', '/api/slow-body', '/api/reset-mid']) t.equal(linesFor(gw, path).length, 1, path)
  })
})
