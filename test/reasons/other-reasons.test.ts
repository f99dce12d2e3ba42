// The remaining reasons on authgw_unauthorized_total (no_credentials,
// better-auth's own 401s, the upstream's 401) and the two 503 reasons, which
// must never show up as 401s. Each case diffs the whole scrape.
import { generateKeyPairSync, sign } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { REQUEST_NOISE, delta, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'
import type { SeriesMatcher } from '../helpers/metrics.ts'
import { startPrivatePostgres } from '../helpers/private-postgres.ts'
import { eventually } from '../faults/support.ts'

const unauthorized = (source: string, mechanism: string, reason: string) => seriesKey('authgw_unauthorized_total', { source, mechanism, reason })
const decision = (mechanism: string, outcome: string) => seriesKey('authgw_auth_decisions_total', { mechanism, outcome })
const requests = (method: string, route: string, status: number) =>
  seriesKey('authgw_http_request_duration_seconds_count', { method, route, status_code: status })

/** Send one request between two scrapes; fail on any series that moved other than `expected`. */
async function measured(t: Test, gw: TestGateway, send: () => Promise<Res>, expected: Record<string, number>, allow: SeriesMatcher[] = []): Promise<Res> {
  const before = await scrape(gw)
  const res = await send()
  const after = await scrape(gw)
  t.same(unexpectedMovements(delta(before, after), expected, [...REQUEST_NOISE, ...allow]), [], 'exactly the expected series moved')
  return res
}

function accessLine(gw: TestGateway, res: Res) {
  const id = res.headers.get('x-request-id')
  return gw.logs.accessLines().find((r) => r.reqId === id)
}

t.test('no_credentials: a protected route without cookie or Authorization', async (t) => {
  const gw = await startTestGateway(t)
  const res = await measured(t, gw, () => new Client(gw.url).get('/api/me'), {
    [unauthorized('gateway', 'none', 'no_credentials')]: 1,
    [decision('none', 'denied')]: 1,
    [requests('GET', '/api/*', 401)]: 1,
  })
  t.equal(res.status, 401)
  t.same(res.body, { error: 'unauthorized', reason: 'no_credentials', requestId: res.headers.get('x-request-id') })
  t.equal(res.headers.get('www-authenticate'), 'Bearer realm="authgw"', 'RFC 6750 §3.1: a challenge without an error code')
  t.match(accessLine(gw, res), { status: 401, mechanism: 'none', outcome: 'denied', reason: 'no_credentials', source: 'gateway' })
})

t.test("better-auth's own 401s (source=auth)", async (t) => {
  const gw = await startTestGateway(t)
  const email = uniqueEmail('auth401')
  t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)

  for (const [how, who] of [
    ['wrong password', email],
    ['unknown email', uniqueEmail('nobody')],
  ] as const) {
    await t.test(`invalid_credentials: ${how}`, async (t) => {
      const res = await measured(t, gw, () => new Client(gw.url).signIn(who, 'not the password 123'), {
        [unauthorized('auth', 'none', 'invalid_credentials')]: 1,
        [seriesKey('authgw_sign_in_attempts_total', { method: 'email', outcome: 'failure', reason: 'invalid_credentials' })]: 1,
        [requests('POST', '/api/auth/sign-in/email', 401)]: 1,
      })
      t.equal(res.status, 401)
      t.match(res.body, { code: 'INVALID_EMAIL_OR_PASSWORD' }, "better-auth's body goes out unchanged")
      t.match(accessLine(gw, res), { status: 401, mechanism: 'none', outcome: 'denied', reason: 'invalid_credentials', source: 'auth' })
      const audit = gw.logs.records().find((r) => r.reqId === res.headers.get('x-request-id') && r.event === 'sign_in')
      t.match(audit, { outcome: 'failure', reason: 'invalid_credentials' }, 'audit line')
      t.notOk(JSON.stringify(gw.logs.records()).includes('not the password 123'), 'the password is in no log line')
    })
  }

  await t.test('no_cookie: /api/auth/token without any cookie', async (t) => {
    // Another User-Agent than the test client that signed in above (that one would be cookie_not_returned).
    const res = await measured(t, gw, () => new Client(gw.url).get('/api/auth/token', { headers: { 'user-agent': 'curl/8.5.0' } }), {
      [unauthorized('auth', 'session', 'no_cookie')]: 1,
      [seriesKey('authgw_session_nulls_total', { reason: 'no_cookie' })]: 1,
      [seriesKey('authgw_token_issue_failures_total', { reason: 'no_session' })]: 1,
      [requests('GET', '/api/auth/token', 401)]: 1,
    })
    t.equal(res.status, 401)
    t.match(res.body, { code: 'UNAUTHORIZED' })
    t.match(accessLine(gw, res), { status: 401, mechanism: 'session', outcome: 'denied', reason: 'no_cookie', source: 'auth' })
  })

  await t.test('auth_rejected: another better-auth endpoint that needs a session', async (t) => {
    const res = await measured(t, gw, () => new Client(gw.url).get('/api/auth/list-sessions'), {
      [unauthorized('auth', 'none', 'auth_rejected')]: 1,
      [requests('GET', '/api/auth/list-sessions', 401)]: 1,
    })
    t.equal(res.status, 401)
    t.match(accessLine(gw, res), { status: 401, mechanism: 'none', outcome: 'denied', reason: 'auth_rejected', source: 'auth' })
  })
})

t.test('upstream_rejected: the upstream answers 401 to an authenticated request', async (t) => {
  const seen: IncomingHttpHeaders[] = []
  const upstream = createServer((req, res) => {
    seen.push(req.headers)
    if (req.url?.startsWith('/api/reject') || req.url?.startsWith('/api/public/reject')) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="insufficient_scope"' })
      res.end(JSON.stringify({ error: 'upstream_says_no' }))
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('{"ok":true}')
  })
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => upstream.close(() => resolve())))
  const gw = await startTestGateway(t, {
    upstreamUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    env: { PUBLIC_PATHS: '/api/public/' },
  })

  const user = new Client(gw.url)
  t.equal((await user.signUp(uniqueEmail('upstream'), PASSWORD)).status, 200)
  const token = await user.token()
  // Warm-up: mints and caches the session's upstream JWT, so the measured call mints nothing.
  t.equal((await user.get('/api/ok')).status, 200)

  for (const mechanism of ['session', 'jwt'] as const) {
    await t.test(`via ${mechanism}`, async (t) => {
      const send = () => (mechanism === 'session' ? user.get('/api/reject') : new Client(gw.url).get('/api/reject', { headers: { authorization: `Bearer ${token}` } }))
      const res = await measured(
        t,
        gw,
        send,
        {
          [unauthorized('upstream', mechanism, 'upstream_rejected')]: 1,
          [decision(mechanism, 'allowed')]: 1,
          [requests('GET', '/api/*', 401)]: 1,
          [seriesKey('authgw_upstream_request_duration_seconds_count', { status_code: 401 })]: 1,
        },
        ['authgw_upstream_request_duration_seconds_bucket', 'authgw_upstream_request_duration_seconds_sum'],
      )
      t.equal(res.status, 401)
      t.same(res.body, { error: 'upstream_says_no' }, "the upstream's body goes out unchanged")
      t.match(accessLine(gw, res), { status: 401, mechanism, outcome: 'denied', reason: 'upstream_rejected', source: 'upstream' })
      const last = seen.at(-1)
      t.match(last?.authorization, /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, 'the upstream got a JWT')
      t.notOk(last?.cookie, 'and no session cookie')
    })
  }

  await t.test('on a public path (no mechanism): still counted, as mechanism none', async (t) => {
    const res = await measured(
      t,
      gw,
      () => new Client(gw.url).get('/api/public/reject'),
      {
        [unauthorized('upstream', 'none', 'upstream_rejected')]: 1,
        [requests('GET', '/api/*', 401)]: 1,
        [seriesKey('authgw_upstream_request_duration_seconds_count', { status_code: 401 })]: 1,
      },
      ['authgw_upstream_request_duration_seconds_bucket', 'authgw_upstream_request_duration_seconds_sum'],
    )
    t.equal(res.status, 401)
    t.match(accessLine(gw, res), { status: 401, mechanism: 'none', reason: 'upstream_rejected', source: 'upstream' })
  })
})

t.test('store_unavailable and jwks_unavailable: 503 while PostgreSQL is down, never a 401', async (t) => {
  const db = await startPrivatePostgres(t)
  const gw = await startTestGateway(t, { databaseUrl: db.url, env: { DB_CONNECT_TIMEOUT_MS: '1000' } })
  const user = new Client(gw.url)
  t.equal((await user.signUp(uniqueEmail('outage'), PASSWORD)).status, 200)
  // Never used on a protected route: no cache holds this session, every check needs the store.
  const stranger = generateKeyPairSync('ed25519').privateKey
  const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const data = `${b64u({ alg: 'EdDSA', kid: 'kid-rotated-in-elsewhere' })}.${b64u({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 600 })}`
  const unknownKidToken = `${data}.${sign(null, Buffer.from(data), stranger).toString('base64url')}`

  // The invalidation bus's LISTEN connection follows the database down and back up (a gauge, and
  // cache drops and a JWKS refresh on reconnect): each measurement starts once it has settled.
  const busUp = async (up: 0 | 1) =>
    eventually(async () => ((await scrape(gw)).get('authgw_invalidation_bus_up') === up ? true : undefined), { limitMs: 60_000, what: `authgw_invalidation_bus_up ${up}` })
  await busUp(1)
  const refreshed = seriesKey('authgw_jwks_refreshes_total', { outcome: 'success' })
  const refreshesBeforeOutage = (await scrape(gw)).get(refreshed) ?? 0
  await db.stop()
  await busUp(0)

  const unavailable = (res: Res, reason: string) => {
    t.equal(res.status, 503, res.text)
    t.same(res.body, { error: 'service_unavailable', reason, requestId: res.headers.get('x-request-id') })
    t.equal(res.headers.get('retry-after'), '5')
    t.notOk(res.headers.get('www-authenticate'), 'no 401 challenge')
  }

  await t.test('session on a protected route', async (t) => {
    const res = await measured(t, gw, () => user.get('/api/me'), {
      [seriesKey('authgw_auth_unavailable_total', { mechanism: 'session', reason: 'store_unavailable' })]: 1,
      [decision('session', 'error')]: 1,
      [seriesKey('authgw_db_errors_total', { operation: 'session_lookup' })]: 1,
      [requests('GET', '/api/*', 503)]: 1,
    })
    unavailable(res, 'store_unavailable')
    t.match(accessLine(gw, res), { status: 503, mechanism: 'session', outcome: 'error', reason: 'store_unavailable' })
  })

  await t.test('session on /api/auth/token', async (t) => {
    const res = await measured(t, gw, () => user.get('/api/auth/token'), {
      [seriesKey('authgw_auth_unavailable_total', { mechanism: 'session', reason: 'store_unavailable' })]: 1,
      [decision('session', 'error')]: 1,
      [seriesKey('authgw_token_issue_failures_total', { reason: 'store_unavailable' })]: 1,
      [seriesKey('authgw_db_errors_total', { operation: 'session_lookup' })]: 1,
      [requests('GET', '/api/auth/token', 503)]: 1,
    })
    unavailable(res, 'store_unavailable')
  })

  await t.test('bearer JWT with a kid this instance has not seen', async (t) => {
    const res = await measured(t, gw, () => new Client(gw.url).get('/api/me', { headers: { authorization: `Bearer ${unknownKidToken}` } }), {
      [seriesKey('authgw_auth_unavailable_total', { mechanism: 'jwt', reason: 'jwks_unavailable' })]: 1,
      [decision('jwt', 'error')]: 1,
      [seriesKey('authgw_jwks_refreshes_total', { outcome: 'failure' })]: 1,
      [seriesKey('authgw_db_errors_total', { operation: 'jwks_fetch' })]: 1,
      [requests('GET', '/api/*', 503)]: 1,
    })
    unavailable(res, 'jwks_unavailable')
    t.match(accessLine(gw, res), { status: 503, mechanism: 'jwt', outcome: 'error', reason: 'jwks_unavailable' })
  })

  await db.start()
  await busUp(1)
  await eventually(async () => (((await scrape(gw)).get(refreshed) ?? 0) > refreshesBeforeOutage ? true : undefined), {
    limitMs: 30_000,
    what: 'the JWKS refresh that follows the bus reconnect',
  })
  await t.test('the same session works again once PostgreSQL is back, without a gateway restart', async (t) => {
    const res = await measured(
      t,
      gw,
      () => user.get('/api/me'),
      {
        [decision('session', 'allowed')]: 1,
        [seriesKey('authgw_tokens_issued_total', { kind: 'jwt', via: 'gateway_exchange' })]: 1,
        [requests('GET', '/api/*', 200)]: 1,
        // The demo upstream fetches the JWKS once to verify the minted token.
        [requests('GET', '/api/auth/jwks', 200)]: 1,
        [seriesKey('authgw_upstream_request_duration_seconds_count', { status_code: 200 })]: 1,
      },
      ['authgw_upstream_request_duration_seconds_bucket', 'authgw_upstream_request_duration_seconds_sum'],
    )
    t.equal(res.status, 200, res.text)
  })
})
