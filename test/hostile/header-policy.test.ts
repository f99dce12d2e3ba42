// The trust boundary, observed from a real upstream: what a client may send
// through and what it may not. The upstream is a node:http server that
// records every request it receives.
import { request as httpRequest } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import t from 'tap'
import type { Test } from 'tap'
import { DEFAULT_IDENTITY_DENYLIST } from '../../src/proxy/headers.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { rawRequest, recordingUpstream } from '../faults/support.ts'

type Answer = { status: number; body: string; headers: IncomingHttpHeaders }

/** node:http keeps the path and header names exactly as given (fetch would normalise `..`). */
function send(base: string, path: string, headers: Record<string, string | string[]>, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(base)
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, agent: false, headers: { ...headers, connection: headers.connection ?? 'close' } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** One concrete header per deny-list entry (`prefix*` entries get a made-up suffix). */
const denied = DEFAULT_IDENTITY_DENYLIST.map((p) => (p.endsWith('*') ? `${p.slice(0, -1)}spoofed` : p))
const EXTRA = ['x-tenant-id', 'x-acme-*']
const spoofed: Record<string, string> = {
  ...Object.fromEntries(denied.map((h) => [h, 'admin@example.test'])),
  'x-tenant-id': 'tenant-0',
  'x-acme-role': 'root',
  // Spellings that servers behind the gateway may read as the same header.
  x_user_id: 'admin',
  'X-USER-ID': 'admin',
  X_Forwarded_User: 'admin',
  'proxy-authorization': 'Basic YWRtaW46YWRtaW4=',
}

const assertNoSpoofedHeader = (t: Test, h: IncomingHttpHeaders) => {
  const leaked = Object.keys(h).filter((name) => {
    const c = name.toLowerCase().replaceAll('_', '-')
    if (['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'].includes(c)) return false
    return c === 'proxy-authorization' || c === 'x-tenant-id' || c.startsWith('x-acme-') || denied.includes(c) || DEFAULT_IDENTITY_DENYLIST.some((p) => p.endsWith('*') && c.startsWith(p.slice(0, -1)))
  })
  t.same(leaked, [], 'no client-supplied identity header reached the upstream')
}

t.test('header policy with TRUST_PROXY naming the client as a trusted proxy', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, {
    upstreamUrl: upstream.url,
    env: { TRUST_PROXY: '127.0.0.1', IDENTITY_HEADERS_DENYLIST: EXTRA.join(','), PUBLIC_PATHS: '/api/public/' },
  })
  const c = new Client(gw.url)
  const email = uniqueEmail('headers')
  const signUp = await c.signUp(email, PASSWORD)
  t.equal(signUp.status, 200)
  const userId = signUp.body.user.id as string
  const sessionCookie = c.cookieHeader
  const jwks = createRemoteJWKSet(new URL(`${gw.url}/api/auth/jwks`))

  t.test('allowed with the session cookie: spoofed identity stripped, cookies filtered, X-Forwarded-* rebuilt, the gateway JWT', async (t) => {
    const start = upstream.received.length
    const r = await send(gw.url, '/api/orders?x=1', {
      ...spoofed,
      cookie: `${sessionCookie}; better-auth.session_data=abc; __Secure-better-auth.session_token=zzz; theme=dark; other=1`,
      'x-forwarded-for': '203.0.113.9, 198.51.100.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example.test',
      'x-custom-allowed': 'yes',
      'x-request-id': 'req-header-policy-1',
      connection: 'keep-alive, x-hop-by-hop',
      'x-hop-by-hop': 'must not pass',
    })
    t.equal(r.status, 200, r.body)
    t.equal(upstream.received.length - start, 1, 'exactly one request reached the upstream')
    const got = upstream.received.at(-1)!
    t.equal(got.url, '/api/orders?x=1')
    assertNoSpoofedHeader(t, got.headers)
    t.equal(got.headers['x-custom-allowed'], 'yes', 'other headers pass')
    t.equal(got.headers['x-hop-by-hop'], undefined, 'headers named in Connection are hop-by-hop')
    t.equal(got.headers.cookie, 'theme=dark; other=1', 'better-auth cookies stripped, the others kept')
    // The client is the trusted proxy, so its X-Forwarded-For names the real client.
    t.equal(got.headers['x-forwarded-for'], '198.51.100.1', 'X-Forwarded-For: the first untrusted hop, one value')
    t.equal(got.headers['x-forwarded-proto'], 'https')
    t.equal(got.headers['x-forwarded-host'], 'app.example.test')
    t.equal(got.headers['x-request-id'], 'req-header-policy-1')
    const auth = /^Bearer (.+)$/.exec(got.headers.authorization ?? '')
    t.ok(auth, 'Authorization: Bearer <gateway JWT>')
    const { payload } = await jwtVerify(auth![1]!, jwks, { issuer: gw.config.issuer, audience: gw.config.audience })
    t.equal(payload.sub, userId, 'the JWT names the session user')
    t.equal(payload.email, email)
  })

  t.test("allowed with a bearer JWT: the client's verified token is what the upstream gets", async (t) => {
    const token = await c.token()
    const start = upstream.received.length
    const r = await send(gw.url, '/api/orders', { ...spoofed, authorization: `Bearer ${token}`, cookie: 'theme=dark' })
    t.equal(r.status, 200, r.body)
    t.equal(upstream.received.length - start, 1)
    const got = upstream.received.at(-1)!
    assertNoSpoofedHeader(t, got.headers)
    t.equal(got.headers.authorization, `Bearer ${token}`)
    t.equal(got.headers['x-forwarded-for'], '127.0.0.1', 'a forwarded address that is not an IP falls back to the peer address')
  })

  t.test('denied requests never reach the upstream', async (t) => {
    const start = upstream.received.length
    const cases: Array<[string, Record<string, string>, string]> = [
      ['identity headers alone are not credentials', { ...spoofed }, 'no_credentials'],
      ['x-user-id with a bad cookie', { 'x-user-id': 'admin', cookie: 'better-auth.session_token=abc.def' }, 'malformed_cookie'],
      ['x-forwarded-user with a bad bearer', { 'x-forwarded-user': 'admin', authorization: 'Bearer a.b.c' }, 'malformed'],
      ['a client Authorization that is not Bearer', { authorization: 'Basic YWRtaW46YWRtaW4=' }, 'malformed'],
      ['the gateway client-IP header', { 'x-gateway-client-ip': '10.0.0.1' }, 'no_credentials'],
    ]
    for (const [what, headers, reason] of cases) {
      const r = await send(gw.url, '/api/orders', headers, 'POST')
      t.equal(r.status, 401, `${what}: ${r.body}`)
      t.equal(JSON.parse(r.body).reason, reason, what)
    }
    t.equal(upstream.received.length - start, 0, 'the upstream received nothing')
  })

  t.test('PUBLIC_PATHS: no credential passes, spoofed identity is still stripped, and no path escapes the prefix', async (t) => {
    const start = upstream.received.length
    const ok = await send(gw.url, '/api/public/ping', { ...spoofed, cookie: sessionCookie })
    t.equal(ok.status, 200, ok.body)
    const got = upstream.received.at(-1)!
    t.equal(got.headers.authorization, undefined, 'no Authorization on a public path')
    t.equal(got.headers.cookie, undefined, 'the session cookie is stripped there too')
    assertNoSpoofedHeader(t, got.headers)
    for (const path of ['/api/public/../orders', '/api/public/%2e%2e/orders', '/api/public/..%2forders', '/api/public/.%2e/orders', '/api/public/..\\orders', '/api/public%2f..%2forders']) {
      const r = await send(gw.url, path, {})
      t.equal(r.status, 401, `${path} needs credentials`)
    }
    t.equal(upstream.received.length - start, 1, 'only the real public path reached the upstream')
  })
})

t.test('bodies and framing: what the client sent arrives intact, hop-by-hop request fields stay behind', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('bodies'), PASSWORD)).status, 200)
  const port = Number(new URL(gw.url).port)
  const post = (headers: string, body: string) =>
    rawRequest(port, [`POST /api/echo HTTP/1.1\r\nHost: a\r\nCookie: ${c.cookieHeader}\r\n${headers}Connection: close\r\n\r\n${body}`])

  const json = '{"a":1,"b":"é"}'
  const start = upstream.received.length
  const r1 = await post(`Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\n`, json)
  t.equal(r1.status, 200, r1.text.slice(0, 200))
  const got1 = upstream.received.at(-1)!
  t.equal(got1.body.toString('utf8'), json, 'a JSON body is forwarded byte for byte (not re-serialised)')
  t.equal(got1.headers['content-type'], 'application/json; charset=utf-8', 'Content-Type parameters kept')

  const r2 = await post('Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n', '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n')
  t.equal(r2.status, 200)
  const got2 = upstream.received.at(-1)!
  t.equal(got2.body.toString(), 'hello world', 'a chunked body arrives whole')
  t.equal(got2.headers['transfer-encoding'], undefined)
  t.equal(got2.headers['content-length'], '11', 'with a Content-Length of its own')

  const r3 = await post('Content-Type: application/json\r\nContent-Length: 0\r\n', '')
  t.equal(r3.status, 200)
  const got3 = upstream.received.at(-1)!
  t.equal(got3.body.length, 0, 'an empty JSON body arrives empty (not as a serialised Buffer)')
  t.equal(got3.headers['content-length'] ?? '0', '0')

  for (const field of ['Keep-Alive: timeout=5', 'Upgrade: websocket', 'Expect: 100-continue', 'TE: trailers', 'Trailer: x-checksum', 'Proxy-Connection: keep-alive']) {
    const r = await post(`Content-Type: text/plain\r\nContent-Length: 2\r\n${field}\r\n`, 'hi')
    t.match(r.text, /HTTP\/1\.1 200 OK/, `${field}: answered by the upstream, not a 502`)
    const name = field.split(':')[0]!.toLowerCase()
    t.equal(upstream.received.at(-1)!.headers[name], undefined, `${field}: not forwarded`)
  }
  t.equal(upstream.received.length - start, 9)
})

t.test("the upstream's hop-by-hop response headers stay on its hop", async (t) => {
  const upstream = await recordingUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-upstream-hop', 'keep-alive': 'timeout=5', 'x-upstream-hop': '1', 'x-upstream-end': '1' })
    res.end('{"ok":true}')
  })
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { PUBLIC_PATHS: '/api/public/' } })
  // A client that asks to close must get a closed connection, whatever the upstream said about its own.
  const r = await send(gw.url, '/api/public/x', { connection: 'close' })
  t.equal(r.status, 200)
  t.equal(r.headers.connection, 'close')
  t.equal(r.headers['keep-alive'], undefined)
  t.equal(r.headers['x-upstream-hop'], undefined, 'a header the upstream named in Connection')
  t.equal(r.headers['x-upstream-end'], '1', 'end-to-end headers pass')
  // And a second request on the same socket is not mistaken for a protocol error.
  const raw = await rawRequest(Number(new URL(gw.url).port), ['GET /api/public/x HTTP/1.1\r\nHost: a\r\n\r\n', 'GET /api/public/y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'], { gapMs: 200 })
  t.equal(raw.text.match(/HTTP\/1\.1 200/g)?.length, 2, 'two answers on one keep-alive connection')
})

t.test('without TRUST_PROXY a client cannot choose its forwarded address', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('headers'), PASSWORD)).status, 200)
  const r = await send(gw.url, '/api/x', { cookie: c.cookieHeader, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example', host: 'gw.example' })
  t.equal(r.status, 200, r.body)
  const got = upstream.received.at(-1)!
  t.equal(got.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(got.headers['x-forwarded-proto'], 'http')
  t.equal(got.headers['x-forwarded-host'], 'gw.example', 'the Host the client connected with')
})
