// A full end-to-end run with tracing on (sign-up, sign-in, calls, token,
// bearer, several failure reasons, sign-out), then every log line and every
// exported span (attributes, events, status, names, resource) is searched for
// the password, BETTER_AUTH_SECRET, every cookie value and every token issued.
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startInProcessTracing } from '../fixtures/in-process-tracing.ts'

// Before anything loads pg: the instrumentation patches it on load.
const tracing = await startInProcessTracing()
const { TEST_SECRET, freePort, startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')
const { buildDemoApi } = await import('../../src/demo-api/server.ts')

t.test('no credential reaches a log line or a span', async (t) => {
  // The upstream records the JWTs the gateway mints for it.
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const upstream = buildDemoApi({ jwksUrl: `${origin}/api/auth/jwks`, issuer: origin, audience: origin })
  const minted = new Set<string>()
  upstream.addHook('onRequest', async (request) => {
    const m = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
    if (m) minted.add(m[1] as string)
  })
  await upstream.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { port, upstreamUrl: `http://127.0.0.1:${(upstream.server.address() as AddressInfo).port}` })

  const secrets = new Map<string, string>()
  const remember = (what: string, value: unknown) => {
    if (typeof value === 'string' && value.length >= 8) secrets.set(value, what)
  }
  const cookiesOf = (c: InstanceType<typeof Client>) => {
    for (const [name, value] of c.jar) {
      remember(`cookie ${name}`, value)
      const decoded = decodeURIComponent(value)
      remember(`cookie ${name} (decoded)`, decoded)
      // A signed cookie is `<value>.<signature>`: neither half may leak alone.
      const dot = decoded.lastIndexOf('.')
      if (dot > 0) {
        remember(`cookie ${name} value`, decoded.slice(0, dot))
        remember(`cookie ${name} signature`, decoded.slice(dot + 1))
      }
    }
  }
  const rememberJwt = (what: string, jwt: string) => {
    remember(what, jwt)
    remember(`${what} signature`, jwt.split('.')[2])
  }
  const wrongPassword = `wrong-${PASSWORD}-Xy7`
  remember('password', PASSWORD)
  remember('wrong password', wrongPassword)
  remember('BETTER_AUTH_SECRET', TEST_SECRET)
  const email = uniqueEmail('redaction')
  remember('email', email)

  const alice = new Client(gw.url)
  t.equal((await alice.signUp(email, PASSWORD)).status, 200)
  cookiesOf(alice)
  const browser = new Client(gw.url)
  t.equal((await browser.signIn(email, wrongPassword)).status, 401)
  t.equal((await browser.signIn(email, PASSWORD)).status, 200)
  cookiesOf(browser)
  for (let i = 0; i < 3; i++) t.equal((await browser.get('/api/me')).status, 200)
  t.equal((await browser.post('/api/items', { note: PASSWORD, secret: TEST_SECRET })).status, 200)
  const session = await browser.get('/api/auth/get-session')
  t.equal(session.status, 200)
  remember('session token (get-session body)', session.body.session.token)
  const jwt = await browser.token()
  rememberJwt('JWT from /api/auth/token', jwt)
  const bearer = new Client(gw.url)
  t.equal((await bearer.get('/api/me', { headers: { authorization: `Bearer ${jwt}` } })).status, 200)
  const withQuery = await bearer.get(`/api/me?token=${jwt}&access_token=${jwt}&code=${TEST_SECRET}`, { headers: { authorization: `Bearer ${jwt}` } })
  t.equal(withQuery.status, 200)

  // Failures, each with its reason.
  const [h, p, s] = jwt.split('.') as [string, string, string]
  const tampered = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`
  rememberJwt('tampered JWT', tampered)
  t.equal((await bearer.get('/api/me', { headers: { authorization: `Bearer ${tampered}` } })).status, 401)
  t.equal((await bearer.get('/api/me', { headers: { authorization: 'Bearer not-a-jwt-but-secret-Q1w2e3r4' } })).status, 401)
  remember('malformed bearer', 'not-a-jwt-but-secret-Q1w2e3r4')
  const sessionCookie = browser.jar.get('better-auth.session_token') as string
  const forged = `${sessionCookie.slice(0, -8)}AAAAAAAA`
  remember('forged cookie', forged)
  t.equal((await new Client(gw.url).get('/api/me', { headers: { cookie: `better-auth.session_token=${forged}` } })).status, 401)
  t.equal((await new Client(gw.url).get('/api/me', { headers: { cookie: `__Secure-better-auth.session_token=${sessionCookie}` } })).status, 401)
  t.equal((await new Client(gw.url).get('/api/auth/token', { headers: { cookie: `better-auth.session_token=${forged}`, origin: 'http://elsewhere.example' } })).status, 401)
  t.equal((await new Client(gw.url).get('/api/me', { headers: { 'sec-fetch-site': 'cross-site', origin: 'http://elsewhere.example' } })).status, 401)
  const oldCookies = browser.cookieHeader
  t.equal((await browser.post('/api/auth/sign-out', {})).status, 200)
  t.equal((await new Client(gw.url).get('/api/me', { headers: { cookie: oldCookies } })).status, 401)
  t.equal((await alice.get('/api/me')).status, 200)
  for (const token of minted) rememberJwt('JWT minted for the upstream', token)
  t.ok(minted.size >= 2, 'the upstream saw minted JWTs (one per session)')

  const tree = await tracing.tree()
  const logText = gw.logs.lines.join('\n')
  const spanText = tree.spans.map((sp) => JSON.stringify(sp)).join('\n')

  t.test('the corpus is the real one', async (t) => {
    t.ok(gw.logs.lines.length >= 25, `${gw.logs.lines.length} log lines`)
    t.ok(tree.spans.length >= 60, `${tree.spans.length} spans`)
    t.ok(spanText.includes('better-auth.session_token'), 'cookie names are there (the search finds what is present)')
    t.ok(tree.spans.some((sp) => String(sp.attributes['db.query.text'] ?? '').includes('WHERE s.token = $1')), 'the session lookup ran with its token as a parameter')
    t.ok(tree.spans.some((sp) => sp.attributes['url.path'] === '/api/me' && sp.attributes['authgw.mechanism'] === 'jwt'), 'the query-string call is there')
    t.ok(secrets.size >= 15, `${secrets.size} secrets to look for`)
  })

  t.test('zero hits in the logs', async (t) => {
    const hits = [...secrets].filter(([value]) => logText.includes(value)).map(([, what]) => what)
    t.same(hits, [])
  })

  t.test('zero hits in the exported spans', async (t) => {
    const hits = [...secrets].filter(([value]) => spanText.includes(value)).map(([, what]) => what)
    t.same(hits, [])
  })

  t.test('no query string in any URL attribute', async (t) => {
    for (const sp of tree.spans) {
      for (const key of ['url.full', 'url.path', 'url.query', 'http.target', 'http.url']) {
        const v = sp.attributes[key]
        if (typeof v === 'string' && v.includes('?')) t.fail(`${sp.name} ${key}=${v}`)
      }
    }
    const logged = gw.logs.accessLines().find((r) => r.reqId === withQuery.headers.get('x-request-id'))
    t.equal(logged?.path, '/api/me')
  })
})
