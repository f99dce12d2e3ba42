// Two gateways on one database stay coherent in both modes (issue 13): a
// sign-out on one is refused by the other at once (long cache TTL, so only the
// invalidation bus can explain it), a new signing key is picked up by the
// other at once, and the sign-in rate limit holds across both together.
import t from 'tap'
import type { Test } from 'tap'
import pg from 'pg'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, seriesKey } from '../helpers/metrics.ts'
import { machineRedisUrl, redisClient, uniquePrefix } from '../helpers/redis.ts'
import { eventually, recordingUpstream } from '../faults/support.ts'

type Mode = 'redis' | 'postgres'

async function pair(t: Test, mode: Mode, extra: Record<string, string> = {}) {
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const prefix = uniquePrefix(mode)
  // A long cache TTL: within the test, only an invalidation can end a cached session.
  // One issuer and audience, as replicas of one deployment have.
  const env: Record<string, string> = { SESSION_CACHE_TTL_SECONDS: '300', BETTER_AUTH_ISSUER: 'http://authgw.test', BETTER_AUTH_AUDIENCE: 'http://authgw.test', ...(mode === 'redis' ? { REDIS_URL: machineRedisUrl(), REDIS_KEY_PREFIX: prefix } : {}), ...extra }
  const a = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const b = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  return { a, b, databaseUrl, prefix }
}

const orders = (gw: TestGateway, headers: Record<string, string>) => new Client(gw.url).get('/api/orders', { headers })

for (const mode of ['postgres', 'redis'] as const) {
  t.test(`${mode} mode`, async (t) => {
    const { a, b, databaseUrl, prefix } = await pair(t, mode)

    t.test('the mode is named in the startup line and the info metric', async (t) => {
      const startup = a.logs.records().find((r) => r.msg === 'authgw started')
      t.equal(startup?.coherence_mode, mode)
      t.notMatch(JSON.stringify(startup), /:\/\/[^/@]*:[^/@]*@/, 'no credentials in the startup line')
      const s = await scrape(a)
      for (const m of ['redis', 'postgres', 'none']) t.equal(s.get(seriesKey('authgw_coherence_mode_info', { mode: m })), m === mode ? 1 : 0, `mode=${m}`)
      t.equal(s.get('authgw_invalidation_bus_up'), 1, 'bus connected')
      t.equal(s.get('authgw_redis_up'), mode === 'redis' ? 1 : 0)
    })

    t.test('sign-out on A: B refuses the cookie within 1 s, counted as remote with its lag', async (t) => {
      const c = new Client(a.url)
      t.equal((await c.signUp(uniqueEmail(`so-${mode}`), PASSWORD)).status, 200)
      const cookie = { cookie: c.cookieHeader }
      t.equal((await orders(a, cookie)).status, 200)
      t.equal((await orders(b, cookie)).status, 200, 'B has it cached')
      if (mode === 'redis') {
        const token = decodeURIComponent(c.jar.get(a.sessions.cookieNames.sessionToken) ?? '').split('.')[0] as string
        const redis = redisClient(t)
        t.ok(await redis.get(prefix + token), 'better-auth keeps a copy in Redis')
        const db = new pg.Client({ connectionString: databaseUrl })
        await db.connect()
        t.teardown(() => db.end())
        t.equal((await db.query('SELECT 1 FROM "session" WHERE token = $1', [token])).rowCount, 1, 'and the session in PostgreSQL')
      }
      const beforeB = await scrape(b)
      const beforeA = await scrape(a)
      const signedOut = Date.now()
      t.equal((await c.post('/api/auth/sign-out', {})).status, 200)
      const refused = await eventually(async () => {
        const r = await orders(b, cookie)
        return r.status === 401 ? r : undefined
      }, { limitMs: 1000, everyMs: 10, what: 'B refuses the signed-out cookie' })
      t.equal(refused.body.reason, 'session_not_found')
      t.ok(Date.now() - signedOut < 1000, 'within 1 s')
      const db = delta(beforeB, await scrape(b))
      t.equal(db.get(seriesKey('authgw_cache_invalidations_total', { kind: 'session', origin: 'remote' })), 1)
      t.equal(db.get(seriesKey('authgw_cache_invalidations_total', { kind: 'jwt', origin: 'remote' })), 1)
      t.equal(db.get('authgw_invalidation_lag_seconds_count'), 2, 'lag observed per event')
      const da = delta(beforeA, await scrape(a))
      t.equal(da.get(seriesKey('authgw_cache_invalidations_total', { kind: 'session', origin: 'local' })), 1)
      if (mode === 'redis') {
        // The sign-out published over Redis: the command histogram moved (it exists only in redis mode).
        const commands = [...da.entries()].filter(([k]) => k.startsWith('authgw_redis_command_duration_seconds_count'))
        t.ok(commands.reduce((n, [, v]) => n + v, 0) >= 1, `Redis commands timed: ${commands.map(([k, v]) => `${k} +${v}`).join(', ')}`)
      }
    })

    t.test('user deletion on A (better-auth: deleteUser, then deleteUserSessions): B refuses the cookie within 1 s', async (t) => {
      // The gateway leaves better-auth's /delete-user endpoint off; this is the path it takes when on.
      const c = new Client(a.url)
      const signUp = await c.signUp(uniqueEmail(`del-${mode}`), PASSWORD)
      t.equal(signUp.status, 200)
      const cookie = { cookie: c.cookieHeader }
      t.equal((await orders(b, cookie)).status, 200, 'B has it cached')
      const ctx = await a.auth.$context
      const userId = signUp.body.user.id as string
      const started = Date.now()
      await ctx.internalAdapter.deleteUser(userId)
      await ctx.internalAdapter.deleteUserSessions(userId)
      await eventually(async () => ((await orders(b, cookie)).status === 401 ? true : undefined), { limitMs: 1000, everyMs: 10, what: 'B refuses the deleted user' })
      t.ok(Date.now() - started < 1000, 'within 1 s')
    })

    t.test('a key created on A is known to B at once, even inside its unknown-kid cooldown', async (t) => {
      const c = new Client(a.url)
      t.equal((await c.signUp(uniqueEmail(`kid-${mode}`), PASSWORD)).status, 200)
      // A junk kid on B starts B's 30 s cooldown: without the announcement the new key would be kid_unknown there.
      const junk = `${Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'junk' })).toString('base64url')}.e30.AAAA`
      t.equal((await orders(b, { authorization: `Bearer ${junk}` })).status, 401)
      const before = await scrape(b)
      // A new key, as a rotation would create it: the newest key is the signing key.
      const db = new pg.Client({ connectionString: databaseUrl })
      await db.connect()
      t.teardown(() => db.end())
      await db.query('UPDATE jwks SET "expiresAt" = now() - interval \'1 second\'')
      const token = await c.token()
      const kid = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString()).kid as string
      await eventually(async () => (delta(before, await scrape(b)).get(seriesKey('authgw_cache_invalidations_total', { kind: 'jwks', origin: 'remote' })) ? true : undefined), {
        limitMs: 1000,
        everyMs: 10,
        what: 'B hears of the new key',
      })
      const r = await orders(b, { authorization: `Bearer ${token}` })
      t.equal(r.status, 200, `B accepts a token signed with the new key ${kid}: ${r.text}`)
    })
  })
}

t.test('postgres mode: a lost LISTEN connection reconnects and drops the local caches (events may have been missed)', async (t) => {
  const { a, databaseUrl } = await pair(t, 'postgres')
  const c = new Client(a.url)
  t.equal((await c.signUp(uniqueEmail('relisten'), PASSWORD)).status, 200)
  const cookie = { cookie: c.cookieHeader }
  t.equal((await orders(a, cookie)).status, 200)
  const hit = seriesKey('authgw_session_cache_lookups_total', { result: 'hit' })
  const miss = seriesKey('authgw_session_cache_lookups_total', { result: 'miss' })
  const cached = await scrape(a)
  t.equal((await orders(a, cookie)).status, 200)
  t.equal(delta(cached, await scrape(a)).get(hit), 1, 'the session is cached')

  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  t.teardown(() => db.end())
  const killed = await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'authgw-listen' AND datname = current_database()")
  t.equal(killed.rowCount, 2, "both gateways' LISTEN connections cut")
  await eventually(async () => (a.logs.records().some((r) => r.event === 'invalidation_bus_reconnected') ? true : undefined), { limitMs: 10_000, what: 'A reconnected' })
  t.equal((await scrape(a)).get('authgw_invalidation_bus_up'), 1, 'the bus is up again')
  const before = await scrape(a)
  t.equal((await orders(a, cookie)).status, 200)
  t.equal(delta(before, await scrape(a)).get(miss), 1, 'the cache was dropped: the next lookup reads the store')
})

for (const [mode, env] of [
  ['redis', { RATE_LIMIT_STORAGE: 'redis' }],
  ['postgres', { RATE_LIMIT_STORAGE: 'database' }],
] as const) {
  t.test(`${mode} mode: the sign-in limit (3 per 10 s) holds across both replicas together`, async (t) => {
    const { a, b, databaseUrl, prefix } = await pair(t, mode, { AUTH_RATE_LIMIT: 'on', ...env })
    const email = uniqueEmail(`rl-${mode}`)
    t.equal((await new Client(a.url).signUp(email, PASSWORD)).status, 200)
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await new Client((i % 2 === 0 ? a : b).url).signIn(email, 'wrong password 123')).status)
    t.same(statuses, [401, 401, 401, 429], 'the fourth attempt, on B, is refused')
    // better-auth's in-memory limiter is one map per process, which in-process
    // gateways share: the counter must be in the shared store.
    const key = '127.0.0.1|/sign-in/email'
    if (mode === 'redis') {
      t.equal(await redisClient(t).get(prefix + key), '4', 'one counter in Redis for both replicas')
    } else {
      const db = new pg.Client({ connectionString: databaseUrl })
      await db.connect()
      t.teardown(() => db.end())
      const row = await db.query('SELECT count FROM "rateLimit" WHERE key = $1', [key])
      t.equal(row.rows[0]?.count, 3, 'one counter in PostgreSQL for both replicas')
    }
  })
}
