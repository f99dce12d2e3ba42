// PostgreSQL failures under a running gateway: the test stops and restarts a
// private cluster, and exhausts a two-connection pool. Store trouble is a 503
// with its reason, never a 401, and the gateway recovers without a restart.
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape, sumOf } from '../helpers/metrics.ts'
import { startPrivatePostgres } from '../helpers/private-postgres.ts'
import { eventually, recordingUpstream } from './support.ts'

const unauthorized = (s: Map<string, number>) => sumOf(s, 'authgw_unauthorized_total')

t.test('database stopped, then restarted under a running gateway', async (t) => {
  const pg = await startPrivatePostgres(t)
  const upstream = await recordingUpstream(t)
  // TTL 0: every session check goes to the database.
  const gw = await startTestGateway(t, {
    databaseUrl: pg.url,
    upstreamUrl: upstream.url,
    env: { SESSION_CACHE_TTL_SECONDS: '0', DB_CONNECT_TIMEOUT_MS: '1000' },
  })
  const email = uniqueEmail('db-outage')
  const c = new Client(gw.url)
  t.equal((await c.signUp(email, PASSWORD)).status, 200)
  const jwt = await c.token()
  t.equal((await c.get('/api/orders')).status, 200, 'cookie works before the outage')
  t.equal((await fetch(`${gw.url}/readyz`)).status, 200)

  await pg.stop()
  const before = await scrape(gw)

  t.test('uncached session checks answer 503 store_unavailable', async (t) => {
    for (let i = 0; i < 3; i++) {
      const r = await c.get('/api/orders')
      t.equal(r.status, 503, r.text)
      t.match(r.body, { error: 'service_unavailable', reason: 'store_unavailable' })
      t.equal(r.headers.get('retry-after'), '5')
    }
  })

  t.test('the better-auth endpoints that check the session answer 503 too', async (t) => {
    for (const path of ['/api/auth/token', '/api/auth/get-session']) {
      const r = await c.get(path)
      t.equal(r.status, 503, `${path}: ${r.text}`)
      t.match(r.body, { reason: 'store_unavailable' })
    }
  })

  t.test('sign-in answers 5xx, counted as a failure that is not about credentials', async (t) => {
    const b = await scrape(gw)
    const r = await new Client(gw.url).signIn(email, PASSWORD)
    t.ok(r.status >= 500 && r.status < 600, `sign-in: ${r.status} ${r.text}`)
    const moved = [...delta(b, await scrape(gw))].filter(([k]) => k.startsWith('authgw_sign_in_attempts_total'))
    t.equal(moved.length, 1, 'one sign-in attempt counted')
    // better-auth answers its own store failure with a 500, which mount.ts
    // labels `error`; `store_unavailable` is what the alerts would like.
    t.match(moved[0]?.[0] ?? '', /outcome="failure",reason="(store_unavailable|error)"/)
  })

  t.test('/readyz turns 503 and names the database', async (t) => {
    // Its database check is reused for up to a second.
    const body = await eventually(
      async () => {
        const r = await fetch(`${gw.url}/readyz`)
        return r.status === 503 ? r.json() : undefined
      },
      { limitMs: 5000, what: '/readyz 503' },
    )
    t.match(body, { status: 'not_ready', checks: { database: 'unreachable' } })
  })

  t.test('a bearer JWT needs no database: still served from the in-memory keys', async (t) => {
    const r = await new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${jwt}` } })
    t.equal(r.status, 200, r.text)
  })

  t.test('a kid the gateway has not seen cannot be looked up: 503 jwks_unavailable, also inside the refresh cooldown', async (t) => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const unseen = `${b64({ alg: 'EdDSA', kid: 'rotated-while-the-store-was-down' })}.${b64({ sub: 'x', exp: 4102444800 })}.${'A'.repeat(86)}`
    for (let i = 0; i < 3; i++) {
      const r = await new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${unseen}` } })
      t.equal(r.status, 503, `attempt ${i}: ${r.text}`)
      t.equal(r.body.reason, 'jwks_unavailable')
    }
  })

  t.test('the outage is counted as unavailability, nothing as a 401', async (t) => {
    const after = await scrape(gw)
    const d = delta(before, after)
    t.equal(unauthorized(after) - unauthorized(before), 0, 'no 401 of any reason')
    t.ok((d.get('authgw_auth_unavailable_total{mechanism="session",reason="store_unavailable"}') ?? 0) >= 5, 'auth_unavailable{store_unavailable}')
    t.ok((d.get('authgw_db_errors_total{operation="session_lookup"}') ?? 0) >= 3, 'db_errors{session_lookup}')
    t.ok((d.get('authgw_db_errors_total{operation="health_check"}') ?? 0) >= 1, 'db_errors{health_check}')
    t.ok((d.get('authgw_token_issue_failures_total{reason="store_unavailable"}') ?? 0) >= 1, 'token_issue_failures{store_unavailable}')
    const five = gw.logs.accessLines().filter((l) => l.status === 503 && l.route === '/api/*')
    t.ok(five.filter((l) => l.reason === 'store_unavailable').length >= 3, 'access lines with reason store_unavailable')
    t.same(five.filter((l) => l.outcome !== 'error' || !['store_unavailable', 'jwks_unavailable'].includes(String(l.reason))), [], 'every 503 line: outcome error and an unavailability reason')
  })

  t.test('restarted: service resumes without restarting the gateway', async (t) => {
    await pg.start()
    const r = await eventually(
      async () => {
        const res = await c.get('/api/orders')
        return res.status === 200 ? res : undefined
      },
      { limitMs: 20_000, everyMs: 100, what: 'cookie request 200 after the restart' },
    )
    t.equal(r.status, 200)
    await eventually(async () => ((await fetch(`${gw.url}/readyz`)).status === 200 ? true : undefined), { limitMs: 5000, what: '/readyz ready again' })
    const again = await new Client(gw.url).signIn(email, PASSWORD)
    t.equal(again.status, 200, `sign-in works again: ${again.text}`)
    t.equal((await c.get('/api/auth/token')).status, 200, 'token endpoint works again')
  })
})

t.test('database stopped while sessions are cached (default SESSION_CACHE_TTL_SECONDS): better-auth\'s 401s and 500s become 503', async (t) => {
  const pg = await startPrivatePostgres(t)
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { databaseUrl: pg.url, upstreamUrl: upstream.url, env: { DB_CONNECT_TIMEOUT_MS: '1000' } })
  t.equal(gw.config.session.cacheTtlSeconds, 30, 'the default session cache TTL')
  // Signed in, used the API (session and the gateway's JWT for it cached), asked for a token.
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('db-cached'), PASSWORD)).status, 200)
  t.equal((await c.get('/api/orders')).status, 200)
  t.equal((await c.get('/api/auth/token')).status, 200)
  // Signed in and seen by /api/auth/get-session only: its session is cached, no JWT minted for it yet.
  const fresh = new Client(gw.url)
  t.equal((await fresh.signUp(uniqueEmail('db-cached-unminted'), PASSWORD)).status, 200)
  t.equal((await fresh.get('/api/auth/get-session')).status, 200)
  // A second gateway on the same database that has minted nothing: its signing key is not
  // resolved yet, so minting needs the database (docs/adr/0061-signing-key-reuse.md).
  const gw2 = await startTestGateway(t, { databaseUrl: pg.url, upstreamUrl: upstream.url, env: { DB_CONNECT_TIMEOUT_MS: '1000' } })
  const unresolved = new Client(gw2.url)
  t.equal((await unresolved.signUp(uniqueEmail('db-cached-unresolved'), PASSWORD)).status, 200)
  t.equal((await unresolved.get('/api/auth/get-session')).status, 200)

  await pg.stop()
  const before = await scrape(gw)

  t.test("every endpoint behind better-auth's session check answers 503 store_unavailable, and signs nobody out", async (t) => {
    const calls: Array<[string, () => Promise<Res>]> = [
      ['GET /api/auth/token', () => c.get('/api/auth/token')],
      ['GET /api/auth/get-session', () => c.get('/api/auth/get-session')],
      ['GET /api/auth/list-sessions', () => c.get('/api/auth/list-sessions')],
      ['POST /api/auth/update-user', () => c.post('/api/auth/update-user', { name: 'Renamed During Outage' })],
      ['POST /api/auth/change-password', () => c.post('/api/auth/change-password', { currentPassword: PASSWORD, newPassword: `${PASSWORD} new` })],
      ['POST /api/auth/revoke-other-sessions', () => c.post('/api/auth/revoke-other-sessions', {})],
    ]
    for (const [what, call] of calls) {
      const jar = new Map(c.jar)
      const r = await call()
      t.equal(r.status, 503, `${what}: ${r.text}`)
      t.match(r.body, { error: 'service_unavailable', reason: 'store_unavailable' }, what)
      t.equal(r.headers.get('retry-after'), '5', what)
      t.same(r.headers.getSetCookie(), [], `${what}: no Set-Cookie (the outage clears no cookie)`)
      t.same(c.jar, jar, `${what}: the client keeps its cookies`)
    }
  })

  t.test('the API keeps serving the cached session and its cached JWT', async (t) => {
    const r = await c.get('/api/orders')
    t.equal(r.status, 200, r.text)
  })

  t.test('a cached session without a cached JWT, signing key reused: minted without the database', async (t) => {
    const b = await scrape(gw)
    const r = await fresh.get('/api/orders')
    t.equal(r.status, 200, r.text)
    const d = delta(b, await scrape(gw))
    t.equal(d.get('authgw_db_errors_total{operation="token_mint"}') ?? 0, 0, 'no db error of token_mint')
    t.equal(d.get('authgw_tokens_issued_total{kind="jwt",via="gateway_exchange"}'), 1, 'one token minted')
  })

  t.test('a cached session without a cached JWT, signing key never resolved: 503, counted as a database error of token_mint', async (t) => {
    const b = await scrape(gw2)
    const r = await unresolved.get('/api/orders')
    t.equal(r.status, 503, r.text)
    t.equal(r.body.reason, 'store_unavailable')
    const d = delta(b, await scrape(gw2))
    t.equal(d.get('authgw_db_errors_total{operation="token_mint"}'), 1, 'db_errors{token_mint}')
    t.equal(d.get('authgw_token_issue_failures_total{reason="store_unavailable"}'), 1)
    t.equal(d.get('authgw_token_issue_failures_total{reason="signing_failed"}') ?? 0, 0, 'not mistaken for a key problem')
    t.equal(d.get('authgw_db_errors_total{operation="session_lookup"}') ?? 0, 0, 'the session itself came from the cache')
  })

  t.test('nothing was counted as a 401', async (t) => {
    const after = await scrape(gw)
    const d = delta(before, after)
    t.equal(unauthorized(after) - unauthorized(before), 0, 'no 401 of any reason')
    t.equal(sumOf(after, 'authgw_session_nulls_total') - sumOf(before, 'authgw_session_nulls_total'), 0, 'no session null')
    t.ok((d.get('authgw_auth_unavailable_total{mechanism="session",reason="store_unavailable"}') ?? 0) >= 6, 'auth_unavailable{store_unavailable}')
    t.equal(d.get('authgw_token_issue_failures_total{reason="no_session"}') ?? 0, 0)
    const lines = gw.logs.accessLines().filter((l) => String(l.route).startsWith('/api/auth/') && l.status === 503)
    t.equal(lines.length, 6, 'one 503 access line per better-auth call')
    t.same(lines.filter((l) => l.reason !== 'store_unavailable' || l.outcome !== 'error' || l.mechanism !== 'session'), [], 'each with reason store_unavailable')
  })

  t.test('restarted: the same cookies work again', async (t) => {
    await pg.start()
    await eventually(async () => ((await c.get('/api/auth/token')).status === 200 ? true : undefined), { limitMs: 20_000, everyMs: 100, what: '/api/auth/token 200' })
    const s = await c.get('/api/auth/get-session')
    t.equal(s.status, 200)
    t.equal(s.body?.user?.name, 'Test User', 'the update made during the outage did not happen')
    t.equal((await fresh.get('/api/orders')).status, 200)
  })
})

t.test('pool exhaustion (DB_POOL_MAX=2): queues briefly, then 503, never hangs', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, {
    upstreamUrl: upstream.url,
    env: { DB_POOL_MAX: '2', DB_CONNECT_TIMEOUT_MS: '1000', SESSION_CACHE_TTL_SECONDS: '0' },
  })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('pool'), PASSWORD)).status, 200)
  // The first proxied call mints (and caches) the upstream JWT; later calls need only the session lookup.
  t.equal((await c.get('/api/orders')).status, 200)

  const hold = (seconds: number) => Promise.all([gw.pool.query(`SELECT pg_sleep(${seconds})`), gw.pool.query(`SELECT pg_sleep(${seconds})`)])
  const busy = () => eventually(async () => (gw.pool.totalCount === 2 && gw.pool.idleCount === 0 ? true : undefined), { limitMs: 5000, what: 'both connections busy' })

  t.test('held briefly: the lookup waits for a connection and succeeds', async (t) => {
    const held = hold(0.2)
    await busy()
    const r = await c.get('/api/orders')
    t.equal(r.status, 200, r.text)
    await held
  })

  t.test('held longer than DB_CONNECT_TIMEOUT_MS: every waiting lookup answers 503 store_unavailable', async (t) => {
    const before = await scrape(gw)
    const held = hold(2.5)
    await busy()
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => fetch(`${gw.url}/api/orders`, { headers: { cookie: c.cookieHeader }, signal: AbortSignal.timeout(15_000) })),
    )
    t.same(
      answers.map((a) => a.status),
      [503, 503, 503, 503, 503],
    )
    for (const a of answers) t.match(await a.json(), { reason: 'store_unavailable' })
    const d = delta(before, await scrape(gw))
    t.equal(d.get('authgw_auth_unavailable_total{mechanism="session",reason="store_unavailable"}'), 5)
    t.equal(d.get('authgw_db_errors_total{operation="session_lookup"}'), 5)
    t.equal(unauthorized(await scrape(gw)) - unauthorized(before), 0, 'no 401')
    await held
    t.equal((await c.get('/api/orders')).status, 200, 'served again once the connections are back')
  })
})
