// One request of each outcome through real sockets, with the tracing SDK
// started in this process and an in-memory exporter: each yields the expected
// span tree and attributes, and the upstream's span continues the trace.
import { randomBytes } from 'node:crypto'
import { hrTimeToMicroseconds } from '@opentelemetry/core'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { startInProcessTracing } from '../fixtures/in-process-tracing.ts'
import { Kind, Status } from '../fixtures/spans.ts'
import type { SpanRecord, SpanTree } from '../fixtures/spans.ts'

// Before anything loads pg: the instrumentation patches it on load.
const tracing = await startInProcessTracing()
const { startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')
const { setDatabaseConnections } = await import('../fixtures/database-outage.ts')

const HEX32 = /^[0-9a-f]{32}$/
const HEX16 = /^[0-9a-f]{16}$/

function requestSpan(t: Test, tree: SpanTree, requestId: string | null): SpanRecord {
  const span = requestId === null ? undefined : tree.requestSpan(requestId)
  if (span === undefined) throw new Error(`no request span for ${requestId}`)
  t.equal(span.kind, Kind.server, 'request span is a SERVER span')
  t.equal(span.scope, '@fastify/otel')
  t.equal(span.parentSpanId, undefined, 'request span is a root (the client sent no traceparent)')
  return span
}

function upstreamHop(t: Test, tree: SpanTree, request: SpanRecord, path: string): void {
  const clients = tree.children(request).filter((s) => s.kind === Kind.client)
  t.equal(clients.length, 1, 'one client span for the upstream call')
  const client = clients[0] as SpanRecord
  t.equal(client.scope, 'authgw')
  t.match(client.attributes, { 'http.request.method': request.attributes['http.request.method'], 'url.path': path, 'server.address': '127.0.0.1' })
  t.match(client.attributes['server.port'], Number)
  t.equal(client.attributes['http.response.status_code'], 200)
  notAnError(t, client)
  const upstream = tree.spans.filter((s) => s.parentSpanId === client.spanId)
  t.equal(upstream.length, 1, 'the upstream continued the trace from the injected traceparent')
  t.equal(upstream[0]?.kind, Kind.server)
  t.equal(upstream[0]?.traceId, request.traceId, "the upstream's span shares the trace id")
  t.equal(upstream[0]?.attributes['url.path'], path)
}

/** A POST whose body arrives in two chunks, the second well after the headers. */
async function postInTwoChunks(url: string, cookie: string): Promise<Response> {
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(encoder.encode('{"part":'))
      await new Promise((resolve) => setTimeout(resolve, 100))
      controller.enqueue(encoder.encode('"two"}'))
      controller.close()
    },
  })
  const res = await fetch(url, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json', origin: new URL(url).origin },
    body,
    duplex: 'half',
  } as RequestInit)
  await res.arrayBuffer()
  return res
}

function notAnError(t: Test, span: SpanRecord): void {
  t.not(span.status.code, Status.error, `${span.name} is not a span error`)
  t.notOk('error.type' in span.attributes, `${span.name} has no error.type`)
}

t.test('allowed session, allowed JWT, denials and a 401 from better-auth', async (t) => {
  const gw = await startTestGateway(t)
  t.ok(gw.app.hasPlugin('authgw-tracing'), 'buildServer registered the tracing plugin')
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  const sessionCall = await c.get('/api/me')
  t.equal(sessionCall.status, 200, sessionCall.text)
  const token = await c.token()
  const bearer = new Client(gw.url)
  const jwtCall = await bearer.get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(jwtCall.status, 200, jwtCall.text)
  const jwtAgain = await bearer.get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(jwtAgain.status, 200, jwtAgain.text)
  // Another client than the one that signed up above (that one would be cookie_not_returned).
  const anonymous = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0' } })
  t.equal(anonymous.status, 401)
  const [h, p, s] = token.split('.') as [string, string, string]
  const tampered = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`
  const badJwt = await bearer.get('/api/me', { headers: { authorization: `Bearer ${tampered}` } })
  t.equal(badJwt.status, 401)
  const noSession = await new Client(gw.url).get('/api/auth/token', { headers: { cookie: 'theme=dark' } })
  t.equal(noSession.status, 401)
  const slowBody = await postInTwoChunks(`${gw.url}/api/items`, c.cookieHeader)
  t.equal(slowBody.status, 200)
  const callerTrace = { traceId: randomBytes(16).toString('hex'), spanId: randomBytes(8).toString('hex') }
  const traced = await c.get('/api/me', {
    headers: { traceparent: `00-${callerTrace.traceId}-${callerTrace.spanId}-01`, tracestate: 'caller=1' },
  })
  t.equal(traced.status, 200)
  const unsampledPath = `/api/unsampled-${randomBytes(4).toString('hex')}`
  const unsampledTrace = randomBytes(16).toString('hex')
  const unsampled = await c.get(unsampledPath, { headers: { traceparent: `00-${unsampledTrace}-${randomBytes(8).toString('hex')}-00` } })
  t.equal(unsampled.status, 200)

  const tree = await tracing.tree()

  t.test('allowed by session cookie', async (t) => {
    const req = requestSpan(t, tree, sessionCall.headers.get('x-request-id'))
    t.equal(req.name, 'GET /api/*')
    t.match(req.attributes, {
      'http.route': '/api/*',
      'http.request.method': 'GET',
      'url.path': '/api/me',
      'http.response.status_code': 200,
      'authgw.mechanism': 'session',
      'authgw.outcome': 'allowed',
    })
    t.match(req.attributes['enduser.pseudo.id'], HEX16, 'pseudonymous user id, never the email')
    notAnError(t, req)
    const validate = tree.child(req, 'authgw.session.validate')
    t.ok(validate, 'session validation span under the request span')
    if (!validate) return
    t.match(validate.attributes, { 'authgw.mechanism': 'session', 'authgw.outcome': 'allowed' })
    t.same(validate.attributes['authgw.cookie.names'], ['better-auth.session_token'], 'cookie names only')
    const query = tree.children(validate).find((s) => s.scope === '@opentelemetry/instrumentation-pg')
    t.ok(query, 'the session lookup query is a pg span under the validation span')
    t.match(query?.attributes['db.query.text'], /FROM "session"/)
    t.notOk(Object.keys(query?.attributes ?? {}).some((k) => k.includes('parameter') || k === 'db.statement.values'), 'no query parameters')
    const mint = tree.child(validate, 'authgw.token.mint')
    t.ok(mint, 'the upstream JWT is minted under the validation span')
    if (mint) {
      t.match(mint.attributes, { 'authgw.mechanism': 'session', 'authgw.outcome': 'allowed' })
      t.ok(tree.descendants(mint).some((s) => s.scope === 'better-auth'), "better-auth's own spans nest under it")
    }
    upstreamHop(t, tree, req, '/api/me')
  })

  t.test('allowed by Bearer JWT', async (t) => {
    const req = requestSpan(t, tree, jwtCall.headers.get('x-request-id'))
    t.match(req.attributes, { 'authgw.mechanism': 'jwt', 'authgw.outcome': 'allowed', 'http.response.status_code': 200 })
    notAnError(t, req)
    const verify = tree.child(req, 'authgw.jwt.verify')
    t.ok(verify, 'JWT verification span under the request span')
    t.match(verify?.attributes, { 'authgw.mechanism': 'jwt', 'authgw.outcome': 'allowed', 'authgw.jwt.alg': 'EdDSA', 'authgw.cache.hit': false })
    t.match(verify?.attributes['authgw.jwt.kid'], /.+/)
    // Created when the result was known (a miss), with the time it started.
    const raw = (id: string | undefined) => tracing.exporter.getFinishedSpans().find((s) => s.spanContext().spanId === id)
    const [verifyTime, reqTime] = [raw(verify?.spanId)?.duration, raw(req.spanId)?.duration].map((d) => (d ? hrTimeToMicroseconds(d) : -1))
    t.ok(verifyTime !== undefined && verifyTime > 0 && verifyTime < (reqTime ?? 0), `verification took ${verifyTime} µs of the request's ${reqTime} µs`)
    t.notOk(tree.child(req, 'authgw.session.validate'), 'one mechanism per request')
    upstreamHop(t, tree, req, '/api/me')
  })

  t.test('allowed by Bearer JWT from the verify-once cache: no verify span, its attributes on the request span', async (t) => {
    const req = requestSpan(t, tree, jwtAgain.headers.get('x-request-id'))
    t.match(req.attributes, {
      'authgw.mechanism': 'jwt',
      'authgw.outcome': 'allowed',
      'authgw.cache.hit': true,
      'authgw.jwt.alg': 'EdDSA',
      'http.response.status_code': 200,
    })
    t.match(req.attributes['authgw.jwt.kid'], /.+/)
    notAnError(t, req)
    t.notOk(tree.child(req, 'authgw.jwt.verify'), 'a cache hit is not a span of its own')
    t.equal(tree.children(req).length, 1, 'the upstream client span is the only child')
    upstreamHop(t, tree, req, '/api/me')
  })

  t.test('denied: no credentials', async (t) => {
    const req = requestSpan(t, tree, anonymous.headers.get('x-request-id'))
    t.match(req.attributes, {
      'http.response.status_code': 401,
      'authgw.mechanism': 'none',
      'authgw.outcome': 'denied',
      'authgw.reason': 'no_credentials',
      'authgw.source': 'gateway',
    })
    notAnError(t, req)
    t.match(tree.child(req, 'authgw.session.validate')?.attributes, { 'authgw.outcome': 'denied', 'authgw.reason': 'no_credentials' })
    t.equal(tree.children(req).filter((s) => s.kind === Kind.client).length, 0, 'a denied request never reaches the upstream')
  })

  t.test('denied: JWT with a bad signature', async (t) => {
    const req = requestSpan(t, tree, badJwt.headers.get('x-request-id'))
    t.match(req.attributes, { 'http.response.status_code': 401, 'authgw.mechanism': 'jwt', 'authgw.reason': 'bad_signature' })
    notAnError(t, req)
    const verify = tree.child(req, 'authgw.jwt.verify')
    t.match(verify?.attributes, { 'authgw.outcome': 'denied', 'authgw.reason': 'bad_signature', 'authgw.jwt.alg': 'EdDSA' })
    t.match(verify?.attributes['authgw.jwt.kid'], /.+/)
    if (verify) notAnError(t, verify)
  })

  t.test('401 from better-auth (/api/auth/token without a session)', async (t) => {
    const req = requestSpan(t, tree, noSession.headers.get('x-request-id'))
    t.equal(req.name, 'GET /api/auth/*')
    t.match(req.attributes, {
      'authgw.auth.endpoint': '/api/auth/token',
      'http.response.status_code': 401,
      'authgw.source': 'auth',
      'authgw.outcome': 'denied',
    })
    notAnError(t, req)
    const own = tree.descendants(req).filter((s) => s.scope === 'better-auth')
    t.ok(own.some((s) => s.attributes['better_auth.operation_id'] === 'getJSONWebToken'), "better-auth's spans nest under the request span")
  })

  t.test('a body that arrives after the headers: the handler still runs in the request span', async (t) => {
    const req = requestSpan(t, tree, slowBody.headers.get('x-request-id'))
    t.match(req.attributes, { 'http.request.method': 'POST', 'http.response.status_code': 200, 'authgw.outcome': 'allowed' })
    t.ok(tree.child(req, 'authgw.session.validate'), 'the guard span is a child of the request span')
    upstreamHop(t, tree, req, '/api/items')
  })

  t.test("a caller's traceparent: the gateway joins its trace and the upstream gets one traceparent, ours", async (t) => {
    const req = tree.requestSpan(traced.headers.get('x-request-id') as string)
    t.equal(req?.traceId, callerTrace.traceId)
    t.equal(req?.parentSpanId, callerTrace.spanId)
    // Two traceparent headers would make the upstream start a trace of its own.
    if (req) upstreamHop(t, tree, req, '/api/me')
  })

  t.test('an unsampled caller: nothing recorded, and the upstream is told so', async (t) => {
    t.same(tree.trace(unsampledTrace), [])
    t.notOk(tree.spans.some((sp) => sp.attributes['url.path'] === unsampledPath), 'the upstream did not start a sampled trace of its own')
    const line = gw.logs.accessLines().find((r) => r.reqId === unsampled.headers.get('x-request-id'))
    t.ok(line, 'the request is still logged')
    t.notOk(line && 'trace_id' in line, 'without a trace id that would lead nowhere')
  })

  t.test('every span of the run has a valid trace id and belongs to a trace with a root', async (t) => {
    for (const s of tree.spans) {
      t.match(s.traceId, HEX32)
      const remoteParent = s.parentSpanId === callerTrace.spanId
      if (s.parentSpanId !== undefined && !remoteParent && !tree.byId(s.parentSpanId)) t.fail(`orphan span ${s.name}`)
    }
  })
})

t.test('503 while the session store is down: the request span is an error with error.type', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  // The session was never looked up through the guard, so it is not cached.
  await setDatabaseConnections(gw.databaseUrl, false)
  t.teardown(() => setDatabaseConnections(gw.databaseUrl, true))
  const res = await c.get('/api/me')
  t.equal(res.status, 503, res.text)
  await setDatabaseConnections(gw.databaseUrl, true)

  const tree = await tracing.tree()
  const req = requestSpan(t, tree, res.headers.get('x-request-id'))
  t.equal(req.status.code, Status.error)
  t.match(req.attributes, {
    'http.response.status_code': 503,
    'error.type': 'store_unavailable',
    'authgw.outcome': 'error',
    'authgw.reason': 'store_unavailable',
  })
  t.match(tree.child(req, 'authgw.session.validate')?.attributes, { 'authgw.outcome': 'error', 'authgw.reason': 'store_unavailable' })
})

t.test('504 upstream timeout and 502 upstream down: request spans are errors with error.type', async (t) => {
  const hanging = createServer(() => {
    // Never answers.
  })
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
  const upstreamUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`
  t.teardown(() => {
    hanging.closeAllConnections()
    hanging.close()
  })
  const gw = await startTestGateway(t, { upstreamUrl, env: { UPSTREAM_TIMEOUT_MS: '300' } })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)

  const timedOut = await c.get('/api/slow')
  t.equal(timedOut.status, 504, timedOut.text)
  hanging.closeAllConnections()
  await new Promise((resolve) => hanging.close(resolve))
  const down = await c.get('/api/me')
  t.equal(down.status, 502, down.text)

  const tree = await tracing.tree()
  const slow = requestSpan(t, tree, timedOut.headers.get('x-request-id'))
  t.equal(slow.status.code, Status.error)
  t.match(slow.attributes, { 'http.response.status_code': 504, 'error.type': 'timeout', 'authgw.outcome': 'allowed' })
  const slowClient = tree.children(slow).find((s) => s.kind === Kind.client)
  t.equal(slowClient?.status.code, Status.error, 'the upstream client span failed too')
  // The proxy tells tracing why the hop failed (noteUpstreamFailure); the span never reads the proxy's log fields.
  t.match(slowClient?.attributes, { 'error.type': 'timeout' }, 'the client span names the proxy\'s failure reason')

  const req = requestSpan(t, tree, down.headers.get('x-request-id'))
  t.equal(req.status.code, Status.error)
  t.match(req.attributes, { 'http.response.status_code': 502, 'error.type': 'connect_error' })
  const client = tree.children(req).find((s) => s.kind === Kind.client)
  t.ok(client, 'the failed upstream call has its client span')
  t.equal(client?.status.code, Status.error)
  t.match(client?.attributes, { 'error.type': 'connect_error' })
})
