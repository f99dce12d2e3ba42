// pino with tracing on: one JSON access line per request carrying its request
// span's ids, audit lines for the auth events, 401s on /token and /get-session
// that explain themselves, and trace_id exemplars in the OpenMetrics scrape.
import t from 'tap'
import { startInProcessTracing } from '../fixtures/in-process-tracing.ts'
import { parseExposition } from '../fixtures/openmetrics.ts'

// Before anything loads pg: the instrumentation patches it on load.
const tracing = await startInProcessTracing()
const { TEST_SECRET, startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')
const { pseudonymize } = await import('../../src/telemetry/fingerprint.ts')

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/

t.test('one access line per request, each with its request span ids; audit lines for auth events', async (t) => {
  const gw = await startTestGateway(t)
  const email = uniqueEmail()
  const requestIds: string[] = []
  const track = <T extends { headers: Headers }>(res: T): T => {
    const id = res.headers.get('x-request-id')
    if (id) requestIds.push(id)
    return res
  }

  const c = new Client(gw.url)
  const signUp = track(await c.signUp(email, PASSWORD))
  t.equal(signUp.status, 200)
  const browser = new Client(gw.url)
  const wrong = track(await browser.signIn(email, 'not the password at all'))
  t.equal(wrong.status, 401)
  const signIn = track(await browser.signIn(email, PASSWORD))
  t.equal(signIn.status, 200)
  const me = track(await browser.get('/api/me'))
  t.equal(me.status, 200)
  const userId = me.body.id as string
  const posted = track(await browser.post('/api/items', { name: 'a body read in another async context' }))
  t.equal(posted.status, 200, posted.text)
  const tokenRes = track(await browser.get('/api/auth/token'))
  t.equal(tokenRes.status, 200)
  const bearer = track(await new Client(gw.url).get('/api/me', { headers: { authorization: `Bearer ${tokenRes.body.token}` } }))
  t.equal(bearer.status, 200)
  track(await new Client(gw.url).get('/api/me'))
  track(await new Client(gw.url).get('/healthz'))
  track(await new Client(gw.url).get('/readyz'))
  track(await new Client(gw.url).get('/nowhere'))
  const signOut = track(await browser.post('/api/auth/sign-out', {}))
  t.equal(signOut.status, 200)

  const tree = await tracing.tree()
  const records = gw.logs.records()
  for (const line of gw.logs.lines) t.doesNotThrow(() => JSON.parse(line), 'every log line is JSON')

  t.test('exactly one access line per request, no framework request logging', async (t) => {
    const access = records.filter((r) => r.msg === 'request')
    for (const id of requestIds) t.equal(access.filter((r) => r.reqId === id).length, 1, `one access line for ${id}`)
    t.equal(new Set(access.map((r) => r.reqId)).size, access.length, 'no request logged twice')
    const others = access.filter((r) => !requestIds.includes(r.reqId as string))
    t.same(new Set(others.map((r) => r.route)), new Set(['/api/auth/jwks']), 'the only other requests are the upstream fetching the JWKS')
    const frameworkLines = records.filter((r) => r.msg === 'incoming request' || r.msg === 'request completed' || /remote server|response received/.test(String(r.msg)))
    t.same(frameworkLines, [], "Fastify's and reply-from's own request logging are off")
  })

  t.test('every access line carries the ids of its request span', async (t) => {
    for (const line of records.filter((r) => r.msg === 'request')) {
      t.match(line.trace_id, HEX32, `${line.route} has trace_id`)
      t.match(line.span_id, HEX16, `${line.route} has span_id`)
      const span = tree.requestSpan(line.reqId as string)
      t.ok(span, `request span for ${line.route}`)
      t.equal(line.trace_id, span?.traceId)
      t.equal(line.span_id, span?.spanId)
      for (const field of ['reqId', 'method', 'route', 'status', 'duration_ms']) t.ok(field in line, `${line.route} has ${field}`)
    }
  })

  t.test('guarded requests carry mechanism, outcome, reason and the pseudonymous user', async (t) => {
    const byId = (res: { headers: Headers }) => records.find((r) => r.msg === 'request' && r.reqId === res.headers.get('x-request-id'))
    const expected = pseudonymize(TEST_SECRET)(userId)
    t.match(byId(me), { route: '/api/*', status: 200, mechanism: 'session', outcome: 'allowed', user: expected })
    t.match(byId(bearer), { mechanism: 'jwt', outcome: 'allowed', user: expected })
    t.match(byId(posted), { method: 'POST', mechanism: 'session', outcome: 'allowed', user: expected })
    t.not(expected, userId)
    for (const r of records) {
      if (JSON.stringify(r).includes(email)) t.fail(`the email reached a log line: ${r.msg}`)
    }
  })

  t.test('log lines written inside a request (POST bodies included) carry its trace id', async (t) => {
    const audit = records.filter((r) => r.msg === 'audit')
    const traceOf = (res: { headers: Headers }) => tree.requestSpan(res.headers.get('x-request-id') as string)?.traceId
    const find = (event: string, extra: Record<string, unknown> = {}) =>
      audit.find((r) => r.event === event && Object.entries(extra).every(([k, v]) => r[k] === v))
    t.match(find('sign_up'), { outcome: 'success', trace_id: traceOf(signUp) })
    t.match(find('sign_in', { outcome: 'failure' }), { reason: 'invalid_credentials', trace_id: traceOf(wrong), reqId: wrong.headers.get('x-request-id') })
    t.match(find('sign_in', { outcome: 'success' }), { trace_id: traceOf(signIn) })
    t.match(find('token_issued'), { via: 'token_endpoint', trace_id: traceOf(tokenRes) })
    t.match(find('signed_out'), { trace_id: traceOf(signOut) })
    const revoked = find('session_revoked')
    t.ok(revoked, 'session revocation is audited')
    t.equal(revoked?.trace_id, traceOf(signOut), 'inside the sign-out request')
    t.match(revoked?.session, HEX16, 'the session id is pseudonymous')
  })
})

t.test('401 and null session from /token and /get-session explain themselves', async (t) => {
  const gw = await startTestGateway(t)
  const origin = 'http://app.example.test'
  const token = await new Client(gw.url).get('/api/auth/token', {
    headers: { cookie: '__Secure-better-auth.session_token=Zq9-not-logged-1; theme=dark', origin },
  })
  t.equal(token.status, 401)
  const session = await new Client(gw.url).get('/api/auth/get-session', { headers: { cookie: 'better-auth.session_token=Zq9-not-logged-2.sig; theme=dark' } })
  t.equal(session.status, 200)
  t.equal(session.text.trim(), 'null')

  const access = gw.logs.accessLines()
  const tokenLine = access.find((r) => r.reqId === token.headers.get('x-request-id'))
  t.match(tokenLine, {
    route: '/api/auth/token',
    status: 401,
    source: 'auth',
    reason: 'cookie_name_mismatch',
    origin,
    host: new URL(gw.url).host,
    code: token.body.code,
  })
  t.same(tokenLine?.cookieNames, ['__Secure-better-auth.session_token', 'theme'], 'cookie names, never values')
  const sessionLine = access.find((r) => r.reqId === session.headers.get('x-request-id'))
  t.match(sessionLine, { route: '/api/auth/get-session', reason: 'malformed_cookie', host: new URL(gw.url).host })
  t.same(sessionLine?.cookieNames, ['better-auth.session_token', 'theme'])
  for (const line of [tokenLine, sessionLine]) t.notOk(JSON.stringify(line).includes('Zq9-not-logged'), 'no cookie value')
})

t.test('OpenMetrics scrape carries trace_id exemplars of sampled requests', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  const ok = await c.get('/api/me')
  t.equal(ok.status, 200)
  // Another client than the one that just signed up (that one would be cookie_not_returned).
  const denied = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0' } })
  t.equal(denied.status, 401)
  const tree = await tracing.tree()
  const traceOf = (res: { headers: Headers }) => tree.requestSpan(res.headers.get('x-request-id') as string)?.traceId

  const res = await fetch(`${gw.metricsUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })
  t.match(res.headers.get('content-type'), /application\/openmetrics-text/)
  const samples = parseExposition(await res.text())

  const okBuckets = samples.filter(
    (s) => s.name === 'authgw_http_request_duration_seconds_bucket' && s.labels.route === '/api/*' && s.labels.status_code === '200' && s.exemplar,
  )
  t.ok(okBuckets.length > 0, 'the request histogram has an exemplar for the allowed call')
  t.ok(okBuckets.some((s) => s.exemplar?.labels.trace_id === traceOf(ok)), "the exemplar is the request's trace id")
  for (const s of okBuckets) t.match(s.exemplar?.labels.trace_id, HEX32)

  const unauthorized = samples.find(
    (s) => s.name === 'authgw_unauthorized_total' && s.labels.source === 'gateway' && s.labels.reason === 'no_credentials',
  )
  t.equal(unauthorized?.value, 1)
  t.equal(unauthorized?.exemplar?.labels.trace_id, traceOf(denied), "the 401 counter's exemplar is the denied request's trace id")
})
