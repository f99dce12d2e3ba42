// Size limits and server timeouts, driven over raw sockets (node:net) so the
// test controls every byte and every pause. Small values come from the same
// environment variables an operator sets.
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { scrape, sumOf } from '../helpers/metrics.ts'
import { rawRequest } from '../faults/support.ts'

const LIMITS = {
  MAX_HEADER_SIZE: '2048',
  AUTH_BODY_LIMIT_BYTES: '1024',
  PROXY_BODY_LIMIT_BYTES: '2048',
  HEADERS_TIMEOUT_MS: '300',
  REQUEST_TIMEOUT_MS: '600',
  KEEP_ALIVE_TIMEOUT_MS: '300',
}

t.test('limits and timeouts from the environment', async (t) => {
  const gw = await startTestGateway(t, { env: LIMITS })
  const port = Number(new URL(gw.url).port)
  const server = gw.app.server

  t.test('the listener carries the configured values', async (t) => {
    t.equal((server as unknown as { maxHeaderSize?: number }).maxHeaderSize, 2048)
    t.equal(server.headersTimeout, 300)
    t.equal(server.requestTimeout, 600)
    t.equal(server.keepAliveTimeout, 300)
  })

  t.test('a header block over MAX_HEADER_SIZE gets 431 header_too_large and the connection closes', async (t) => {
    const small = await rawRequest(port, [`GET /api/me HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(1200)}\r\nConnection: close\r\n\r\n`])
    t.equal(small.status, 401, 'a block under the limit is served')
    const big = await rawRequest(port, [`GET /api/me HTTP/1.1\r\nHost: a\r\nX-Pad: ${'p'.repeat(3000)}\r\n\r\n`])
    t.equal(big.status, 431, big.text.slice(0, 200))
    t.same(JSON.parse(big.body), { error: 'header_too_large', reason: 'header_too_large' })
    t.ok(big.closed, 'server closed the connection')
    // The same through many small headers.
    const many = await rawRequest(port, [`GET /api/me HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 100 }, (_, i) => `X-H${i}: ${'v'.repeat(30)}\r\n`).join('')}\r\n`])
    t.equal(many.status, 431)
  })

  t.test('a body over AUTH_BODY_LIMIT_BYTES on /api/auth/* gets 413 body_too_large', async (t) => {
    const before = await scrape(gw)
    const head = (len: string) => `POST /api/auth/sign-in/email HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n${len}\r\n`
    const json = (n: number) => {
      const base = JSON.stringify({ email: 'nobody@example.test', password: '' })
      return `${base.slice(0, -2)}${'x'.repeat(n - base.length)}"}`
    }
    const atLimit = await rawRequest(port, [`${head(`Content-Length: 1024\r\nConnection: close\r\n`)}${json(1024)}`])
    t.not(atLimit.status, 413, `a body of exactly the limit is accepted (${atLimit.status})`)
    t.ok(atLimit.status !== undefined && atLimit.status < 500, 'and answered without a server error')

    const declared = await rawRequest(port, [`${head('Content-Length: 1025\r\n')}${json(1025)}`])
    t.equal(declared.status, 413, declared.text.slice(0, 200))
    t.match(JSON.parse(declared.body), { error: 'body_too_large', reason: 'body_too_large' })

    // No Content-Length: the limit is enforced while the chunks arrive.
    const chunk = 'x'.repeat(700)
    const chunked = await rawRequest(port, [`${head('Transfer-Encoding: chunked\r\n')}${(700).toString(16)}\r\n${chunk}\r\n`, `${(700).toString(16)}\r\n${chunk}\r\n`, '0\r\n\r\n'], {
      gapMs: 50,
    })
    t.equal(chunked.status, 413, chunked.text.slice(0, 200))
    t.match(JSON.parse(chunked.body), { reason: 'body_too_large' })

    const after = await scrape(gw)
    const count = (s: typeof before) =>
      sumOf(s, 'authgw_http_request_duration_seconds_count', { route: '/api/auth/sign-in/email', status_code: 413 })
    t.equal(count(after) - count(before), 2, 'both 413s are in the request histogram under the sign-in route')
    const lines = gw.logs.accessLines().filter((r) => r.status === 413)
    t.ok(lines.length >= 2 && lines.every((r) => r.reason === 'body_too_large'), 'access lines carry the reason')
  })

  t.test('PROXY_BODY_LIMIT_BYTES on /api/*: a denied client is refused before its body is read; a signed-in one gets 413', async (t) => {
    const body = 'b'.repeat(4096)
    const anonymous = await rawRequest(port, [`POST /api/upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n${body}`])
    // The guard runs before the body parser: no credentials → 401, not 413.
    t.equal(anonymous.status, 401, anonymous.text.slice(0, 200))
    t.match(JSON.parse(anonymous.body), { reason: 'no_credentials' })

    const c = new Client(gw.url)
    t.equal((await c.signUp(uniqueEmail('limits'), PASSWORD)).status, 200)
    const signedIn = await rawRequest(port, [
      `POST /api/upload HTTP/1.1\r\nHost: a\r\nCookie: ${c.cookieHeader}\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n${body}`,
    ])
    t.equal(signedIn.status, 413, signedIn.text.slice(0, 200))
    t.match(JSON.parse(signedIn.body), { reason: 'body_too_large' })
  })

  t.test('a flood of unauthenticated /readyz probes costs at most one database ping at a time', async (t) => {
    // A gateway with the default timeouts: 200 parallel connections on a busy
    // machine must not trip this file's 300 ms header timeout.
    const gw = await startTestGateway(t)
    let pings = 0
    let inFlight = 0
    let maxInFlight = 0
    const query = gw.pool.query.bind(gw.pool)
    // Count, do not replace: every query still goes to PostgreSQL.
    gw.pool.query = ((...args: Parameters<typeof query>) => {
      if (args[0] !== 'SELECT 1') return query(...args)
      pings++
      maxInFlight = Math.max(maxInFlight, ++inFlight)
      const done = query(...args) as unknown as Promise<unknown>
      void done.finally(() => inFlight--).catch(() => undefined)
      return done
    }) as typeof gw.pool.query
    t.teardown(() => {
      gw.pool.query = query
    })
    const started = performance.now()
    const answers = await Promise.all(Array.from({ length: 200 }, () => fetch(`${gw.url}/readyz`).then((r) => r.status)))
    const seconds = (performance.now() - started) / 1000
    t.same(new Set(answers), new Set([200]))
    t.equal(maxInFlight, 1, 'never two pings at once')
    // An answer is reused for a second: one ping per started second of the flood, however many probes.
    t.ok(pings <= Math.ceil(seconds) + 1, `${pings} pings for 200 probes over ${seconds.toFixed(1)} s`)
  })

  t.test('headers trickled slower than HEADERS_TIMEOUT_MS: 408 request_timeout, connection cut', async (t) => {
    const lines = ['GET /healthz HTTP/1.1\r\n', 'Host: a\r\n', ...Array.from({ length: 40 }, (_, i) => `X-Slow-${i}: 1\r\n`), '\r\n']
    const r = await rawRequest(port, lines, { gapMs: 100, waitMs: 5000 })
    t.equal(r.status, 408, r.text.slice(0, 200))
    t.same(JSON.parse(r.body), { error: 'request_timeout', reason: 'request_timeout' })
    t.ok(r.closed || r.error !== undefined, 'connection closed by the server')
  })

  t.test('a connection that never sends a byte is cut', async (t) => {
    const r = await rawRequest(port, [''], { waitMs: 8000 })
    t.ok(r.closed || r.error !== undefined, `closed by the server (${r.text.slice(0, 80)})`)
  })

  t.test('a body trickled slower than REQUEST_TIMEOUT_MS: 408 request_timeout', async (t) => {
    const head = 'POST /api/auth/sign-in/email HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n'
    const r = await rawRequest(port, [head, ...'{"email":"a@example.test","password":"0123456789012345678"}'.split('')], { gapMs: 100, waitMs: 5000 })
    t.equal(r.status, 408, r.text.slice(0, 200))
    t.same(JSON.parse(r.body), { error: 'request_timeout', reason: 'request_timeout' })
    t.ok(r.closed || r.error !== undefined)
  })

  t.test('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_MS', async (t) => {
    const r = await rawRequest(port, ['GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'], { waitMs: 8000 })
    t.equal(r.status, 200)
    t.equal(r.headers['connection']?.toLowerCase(), 'keep-alive', 'the response kept the connection open')
    t.ok(r.closed, 'then the server closed it while the client stayed silent')
  })
})
