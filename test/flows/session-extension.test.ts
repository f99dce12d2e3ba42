// Sessions are extended on the gateway's own path as better-auth's getSession
// extends them (expiresIn 6 s, updateAge 2 s here): an active client stays
// signed in past expiresIn, an idle one does not, the row's expiresAt moves
// once per updateAge (not per request), and the response carries better-auth's
// refreshed session cookie. UPDATEs are counted by a trigger in the test's own
// database.
import pg from 'pg'
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, sumOf } from '../helpers/metrics.ts'
import { eventually, recordingUpstream, sleep } from '../faults/support.ts'

const EXPIRES_IN_S = 6
const UPDATE_AGE_S = 2
const COOKIE = 'better-auth.session_token'
// Fewer than DB_POOL_MAX (10): were each request to extend on its own, every
// extension could wait for the row at once and be counted.
const BURST = 8

async function sql(url: string, text: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query(text, values)).rows
  } finally {
    await client.end()
  }
}

/** Record every UPDATE of a session row. */
async function countUpdates(gw: TestGateway): Promise<void> {
  await sql(gw.databaseUrl, 'CREATE TABLE session_updates (token text NOT NULL, new_expires timestamptz NOT NULL)')
  await sql(
    gw.databaseUrl,
    `CREATE FUNCTION record_session_update() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN INSERT INTO session_updates VALUES (NEW.token, NEW."expiresAt"); RETURN NEW; END $$`,
  )
  await sql(gw.databaseUrl, 'CREATE TRIGGER session_updates AFTER UPDATE ON "session" FOR EACH ROW EXECUTE FUNCTION record_session_update()')
}

const tokenOf = (c: Client) => decodeURIComponent(c.jar.get(COOKIE) ?? '').split('.')[0] ?? ''
const updatesOf = async (gw: TestGateway, c: Client) =>
  Number((await sql(gw.databaseUrl, 'SELECT count(*)::int AS n FROM session_updates WHERE token = $1', [tokenOf(c)]))[0]?.n)
const expiresAtOf = async (gw: TestGateway, c: Client) =>
  new Date((await sql(gw.databaseUrl, 'SELECT "expiresAt" AS exp FROM "session" WHERE token = $1', [tokenOf(c)]))[0]?.exp as Date).getTime()
const sessionCookies = (r: Res) => r.headers.getSetCookie().filter((c) => c.startsWith(`${COOKIE}=`))

/** Wait until better-auth would extend the session: expiresAt - expiresIn + updateAge <= now. */
async function untilDue(gw: TestGateway, c: Client): Promise<void> {
  const exp = await expiresAtOf(gw, c)
  await eventually(async () => (exp - EXPIRES_IN_S * 1000 + UPDATE_AGE_S * 1000 <= Date.now() - 20 ? true : undefined), {
    limitMs: 10_000,
    what: 'session due for extension',
  })
}

t.test(`SESSION_EXPIRES_IN_SECONDS=${EXPIRES_IN_S}, SESSION_UPDATE_AGE_SECONDS=${UPDATE_AGE_S}`, async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, {
    upstreamUrl: upstream.url,
    env: { SESSION_EXPIRES_IN_SECONDS: String(EXPIRES_IN_S), SESSION_UPDATE_AGE_SECONDS: String(UPDATE_AGE_S), SESSION_CACHE_TTL_SECONDS: '1' },
  })
  await countUpdates(gw)

  await t.test('a client active every second stays signed in past expiresIn; the row and the cookie are extended', async (t) => {
    const c = new Client(gw.url)
    const signUp = await c.signUp(uniqueEmail('active'), PASSWORD)
    t.equal(signUp.status, 200)
    const [signUpCookie] = sessionCookies(signUp)
    t.match(signUpCookie, new RegExp(`; Max-Age=${EXPIRES_IN_S};`), 'better-auth sets Max-Age = SESSION_EXPIRES_IN_SECONDS')
    const firstExpiry = await expiresAtOf(gw, c)
    const started = Date.now()
    const refreshed: string[] = []
    let requests = 0
    // Two whole session lifetimes and a bit, one request a second.
    while (Date.now() - started < (2 * EXPIRES_IN_S + 1) * 1000) {
      const r = await c.get('/api/orders')
      requests++
      t.equal(r.status, 200, `request ${requests} at ${Math.round((Date.now() - started) / 100) / 10} s: ${r.text}`)
      if (r.status !== 200) break
      refreshed.push(...sessionCookies(r))
      await sleep(1000)
    }
    t.ok(Date.now() - started > EXPIRES_IN_S * 1000, 'signed in for longer than expiresIn')
    const updates = await updatesOf(gw, c)
    t.ok(updates >= 2, `the row was extended (${updates} UPDATEs)`)
    t.ok(updates <= Math.ceil((Date.now() - started) / (UPDATE_AGE_S * 1000)) + 1, `at most one UPDATE per updateAge (${updates} UPDATEs for ${requests} requests)`)
    t.ok((await expiresAtOf(gw, c)) > firstExpiry + EXPIRES_IN_S * 1000, 'expiresAt moved past the original expiry')
    t.equal(refreshed.length, updates, 'one refreshed cookie per extension')
    // The same token, the same signature, better-auth's attributes: byte for byte what sign-up set.
    t.same([...new Set(refreshed)], [signUpCookie], "the refreshed cookie is better-auth's own, Max-Age included")
    const audits = gw.logs.records().filter((r) => r.event === 'session_extended')
    t.equal(audits.length, updates, 'one session_extended audit line per extension')
  })

  await t.test('an idle client is signed out once expiresIn has passed', async (t) => {
    const c = new Client(gw.url)
    t.equal((await c.signUp(uniqueEmail('idle'), PASSWORD)).status, 200)
    t.equal((await c.get('/api/orders')).status, 200)
    const exp = await expiresAtOf(gw, c)
    await eventually(async () => (Date.now() > exp + 50 ? true : undefined), { limitMs: 15_000, what: 'session expired' })
    const r = await c.get('/api/orders')
    t.equal(r.status, 401, r.text)
    t.equal(r.body.reason, 'session_expired')
    t.equal(await updatesOf(gw, c), 0, 'never extended')
  })

  await t.test(`${BURST} concurrent requests of a due session: one UPDATE, every response allowed`, async (t) => {
    const c = new Client(gw.url)
    t.equal((await c.signUp(uniqueEmail('burst'), PASSWORD)).status, 200)
    t.equal((await c.get('/api/orders')).status, 200, 'session and its upstream JWT cached')
    await untilDue(gw, c)
    // Hold the session row so the extension's UPDATE waits: every request
    // arrives while it is still in flight, whatever the machine's speed.
    const locker = new pg.Client({ connectionString: gw.databaseUrl })
    await locker.connect()
    t.teardown(() => locker.end())
    await locker.query('BEGIN')
    await locker.query('SELECT 1 FROM "session" WHERE token = $1 FOR UPDATE', [tokenOf(c)])
    const before = await scrape(gw)
    const pending = Promise.all(Array.from({ length: BURST }, () => new Client(gw.url).get('/api/orders', { headers: { cookie: c.cookieHeader } })))
    const lockerPid = (await locker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number
    await eventually(
      async () => {
        const looked = sumOf(await scrape(gw), 'authgw_session_cache_lookups_total') - sumOf(before, 'authgw_session_cache_lookups_total')
        const blocked = await locker.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [lockerPid])
        return looked >= BURST && blocked.rows[0].n >= 1 ? true : undefined
      },
      { limitMs: 10_000, what: `all ${BURST} requests past the session lookup, the extension waiting for the row` },
    )
    await locker.query('COMMIT')
    const answers = await pending
    t.same(
      answers.map((a) => a.status),
      Array.from({ length: BURST }, () => 200),
    )
    t.equal(await updatesOf(gw, c), 1, 'exactly one UPDATE')
    t.ok(answers.some((a) => sessionCookies(a).length === 1), 'the refreshed cookie reached the client')
    const d = delta(before, await scrape(gw))
    t.equal(d.get('authgw_db_errors_total{operation="session_refresh"}') ?? 0, 0)
  })

  await t.test('a "don\'t remember me" session is never extended (better-auth keeps it a browser-session cookie)', async (t) => {
    const email = uniqueEmail('dont-remember')
    t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)
    const c = new Client(gw.url)
    const signIn = await c.post('/api/auth/sign-in/email', { email, password: PASSWORD, rememberMe: false })
    t.equal(signIn.status, 200)
    t.notMatch(sessionCookies(signIn)[0] ?? '', /Max-Age/, 'a cookie without Max-Age')
    t.ok(c.jar.has('better-auth.dont_remember'), 'and the dont_remember cookie')
    // better-auth gives such a session one day; bring it to the edge of its life.
    await sql(gw.databaseUrl, `UPDATE "session" SET "expiresAt" = now() + interval '3 seconds' WHERE token = $1`, [tokenOf(c)])
    const exp = await expiresAtOf(gw, c)
    const updatesBefore = await updatesOf(gw, c)
    let last: Res | undefined
    while (Date.now() < exp + 1500) {
      last = await c.get('/api/orders')
      t.same(sessionCookies(last), [], 'no refreshed cookie')
      if (last.status !== 200) break
      await sleep(500)
    }
    t.equal(last?.status, 401, 'signed out at its expiry despite the activity')
    t.equal(last?.body?.reason, 'session_expired')
    t.equal(await updatesOf(gw, c), updatesBefore, 'no UPDATE by the gateway')
  })

  await t.test("better-auth's own /api/auth/get-session extends with the same settings", async (t) => {
    const c = new Client(gw.url)
    t.equal((await c.signUp(uniqueEmail('get-session'), PASSWORD)).status, 200)
    await untilDue(gw, c)
    const r = await c.get('/api/auth/get-session')
    t.equal(r.status, 200)
    t.match(sessionCookies(r)[0] ?? '', new RegExp(`; Max-Age=${EXPIRES_IN_S};`))
    t.equal(await updatesOf(gw, c), 1)
    // Just extended by better-auth: the gateway's next request has nothing to do.
    const next = await c.get('/api/orders')
    t.equal(next.status, 200)
    t.same(sessionCookies(next), [])
    t.equal(await updatesOf(gw, c), 1)
  })
})

t.test('configuration: SESSION_UPDATE_AGE_SECONDS must be below SESSION_EXPIRES_IN_SECONDS, the cache TTL below the lifetime', async (t) => {
  const { loadConfig, ConfigError } = await import('../../src/config/load.ts')
  const base = { NODE_ENV: 'test' }
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig({ ...base, ...env })
      return []
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      return err.problems
    }
  }
  t.same(problems({}), [], 'the defaults are valid')
  t.match(loadConfig(base).session, { expiresInSeconds: 604_800, updateAgeSeconds: 86_400 }, "better-auth's defaults")
  t.same(problems({ SESSION_EXPIRES_IN_SECONDS: '60', SESSION_UPDATE_AGE_SECONDS: '0', SESSION_CACHE_TTL_SECONDS: '0' }), [], 'updateAge 0 (every request) is valid')
  t.match(problems({ SESSION_EXPIRES_IN_SECONDS: '3600', SESSION_UPDATE_AGE_SECONDS: '3600' }), [/SESSION_UPDATE_AGE_SECONDS \(3600\) must be less than SESSION_EXPIRES_IN_SECONDS \(3600\)/])
  t.match(problems({ SESSION_EXPIRES_IN_SECONDS: '20', SESSION_UPDATE_AGE_SECONDS: '5' }), [/SESSION_CACHE_TTL_SECONDS \(30\) must be less than SESSION_EXPIRES_IN_SECONDS \(20\)/])
  t.match(problems({ SESSION_EXPIRES_IN_SECONDS: '34560001' }), [/SESSION_EXPIRES_IN_SECONDS must be an integer between 1 and 34560000/])
  t.match(problems({ SESSION_EXPIRES_IN_SECONDS: '0' }), [/SESSION_EXPIRES_IN_SECONDS must be an integer between 1/])
})
