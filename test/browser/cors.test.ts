// CORS on the wire (no browser needed): TRUSTED_ORIGINS decides, credentials
// are allowed, only /api/* answers cross-origin, and the exposed headers are
// exactly the ones the gateway actually sends a client.
import t from 'tap'
import { EXPOSED_HEADERS } from '../../src/web/cors.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'

const TRUSTED = 'http://app.example.test:5173'
const UNTRUSTED = 'http://evil.example.test'

const exposed = (h: Headers) =>
  (h.get('access-control-expose-headers') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
    .sort()

t.test('trusted origins get credentialed CORS on /api/*, others nothing', async (t) => {
  const gw = await startTestGateway(t, { env: { TRUSTED_ORIGINS: TRUSTED, DEMO_APP: 'on' } })

  const simple = await fetch(`${gw.url}/api/me`, { headers: { origin: TRUSTED, 'sec-fetch-site': 'cross-site' } })
  t.equal(simple.status, 401, 'a cross-site call without a cookie')
  t.equal(simple.headers.get('access-control-allow-origin'), TRUSTED)
  t.equal(simple.headers.get('access-control-allow-credentials'), 'true')
  t.same(exposed(simple.headers), ['retry-after', 'www-authenticate', 'x-request-id', 'x-retry-after'], 'exactly the headers a client needs are exposed')
  t.match(simple.headers.get('vary') ?? '', /origin/i, 'caches keep answers per origin')
  t.equal((await simple.json()).reason, 'cross_site_no_cookie')

  const own = await fetch(`${gw.url}/api/me`, { headers: { origin: new URL(gw.config.baseUrl).origin } })
  t.equal(own.headers.get('access-control-allow-origin'), new URL(gw.config.baseUrl).origin, 'the BETTER_AUTH_URL origin is always trusted')

  const foreign = await fetch(`${gw.url}/api/me`, { headers: { origin: UNTRUSTED } })
  t.equal(foreign.status, 401, 'the gateway still answers; the browser hides it')
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers']) {
    t.equal(foreign.headers.get(h), null, `no ${h} for an untrusted origin`)
  }

  const preflight = await fetch(`${gw.url}/api/auth/sign-up/email`, {
    method: 'OPTIONS',
    headers: { origin: TRUSTED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  })
  t.equal(preflight.status, 204)
  t.equal(preflight.headers.get('access-control-allow-origin'), TRUSTED)
  t.equal(preflight.headers.get('access-control-allow-credentials'), 'true')
  t.match(preflight.headers.get('access-control-allow-headers') ?? '', /content-type/)
  t.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/)

  const bearerPreflight = await fetch(`${gw.url}/api/me`, {
    method: 'OPTIONS',
    headers: { origin: TRUSTED, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  })
  t.equal(bearerPreflight.status, 204)
  t.match(bearerPreflight.headers.get('access-control-allow-headers') ?? '', /authorization/, 'bearer clients may send Authorization')

  const foreignPreflight = await fetch(`${gw.url}/api/auth/sign-up/email`, {
    method: 'OPTIONS',
    headers: { origin: UNTRUSTED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  })
  t.equal(foreignPreflight.headers.get('access-control-allow-origin'), null, 'an untrusted preflight is refused')

  for (const path of ['/healthz', '/readyz', '/', '/app/main.js']) {
    const r = await fetch(`${gw.url}${path}`, { headers: { origin: TRUSTED } })
    t.equal(r.status, 200, path)
    t.equal(r.headers.get('access-control-allow-origin'), null, `${path} is not readable cross-origin`)
  }
})

t.test('the gateway sends no header a client would need beyond the exposed ones', async (t) => {
  const gw = await startTestGateway(t, { env: { TRUSTED_ORIGINS: TRUSTED } })
  const c = new Client(gw.url)
  const headers = { origin: TRUSTED }
  const responses: Array<[string, Res]> = [
    ['sign-up', await c.post('/api/auth/sign-up/email', { email: uniqueEmail('cors'), password: PASSWORD, name: 'C' }, { headers })],
    ['get-session', await c.get('/api/auth/get-session', { headers })],
    ['token', await c.get('/api/auth/token', { headers })],
    ['/api/me', await c.get('/api/me', { headers })],
    ['sign-out', await c.post('/api/auth/sign-out', {}, { headers })],
  ]
  for (const [name, r] of responses) {
    t.equal(r.status, 200, `${name} answered 200`)
    for (const h of ['set-auth-jwt', 'set-auth-token']) t.equal(r.headers.get(h), null, `${name}: ${h} is never sent (so it is not exposed)`)
    // better-auth's own expose list would replace the gateway's when copied through.
    t.same(exposed(r.headers), [...EXPOSED_HEADERS].sort(), `${name}: the gateway's expose list is intact`)
  }
})

t.test("better-auth's 429 carries X-Retry-After, readable cross-origin", async (t) => {
  const gw = await startTestGateway(t, { env: { TRUSTED_ORIGINS: TRUSTED, AUTH_RATE_LIMIT: 'on' } })
  const c = new Client(gw.url)
  let limited
  // Sign-in allows 3 attempts per 10 s per client IP.
  for (let i = 0; i < 4 && limited === undefined; i++) {
    const r = await c.post('/api/auth/sign-in/email', { email: uniqueEmail('rl'), password: PASSWORD }, { headers: { origin: TRUSTED } })
    if (r.status === 429) limited = r
  }
  t.ok(limited, 'the fourth sign-in was rate limited')
  t.match(limited?.headers.get('x-retry-after'), /^\d+$/)
  t.ok(exposed(limited!.headers).includes('x-retry-after'), 'X-Retry-After is exposed')
  t.equal(limited?.headers.get('access-control-allow-origin'), TRUSTED)
})
