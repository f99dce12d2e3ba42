// Redis lost under two gateways (issue 13, faults): valid sessions stay 200
// (reads fall back to PostgreSQL), nothing answers 5xx, /readyz stays ready,
// the metrics say degraded, the sign-in limit falls back per ADR 0030, a
// sign-out during the outage is repaired in Redis, and once Redis is back
// coherence resumes without restarting a gateway. A private redis-server:
// the machine's is never stopped.
import t from 'tap'
import { Redis } from 'ioredis'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, seriesKey } from '../helpers/metrics.ts'
import { startPrivateRedis, uniquePrefix } from '../helpers/redis.ts'
import { eventually, recordingUpstream } from '../faults/support.ts'

const TTL_SECONDS = 2

t.test('Redis stopped and started under two gateways', async (t) => {
  const redis = await startPrivateRedis(t)
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const prefix = uniquePrefix('faults')
  const env = {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: prefix,
    SESSION_CACHE_TTL_SECONDS: String(TTL_SECONDS),
    AUTH_RATE_LIMIT: 'on',
    BETTER_AUTH_ISSUER: 'http://authgw.test',
    BETTER_AUTH_AUDIENCE: 'http://authgw.test',
  }
  const a = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const b = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const orders = (gw: TestGateway, cookie: string) => new Client(gw.url).get('/api/orders', { headers: { cookie } })

  const email = uniqueEmail('redis-down')
  const stay = new Client(a.url)
  t.equal((await stay.signUp(email, PASSWORD)).status, 200)
  const leave = new Client(a.url)
  t.equal((await leave.signIn(email, PASSWORD)).status, 200)
  const leaveToken = decodeURIComponent(leave.jar.get(a.sessions.cookieNames.sessionToken) ?? '').split('.')[0] as string
  for (const gw of [a, b]) {
    t.equal((await orders(gw, stay.cookieHeader)).status, 200)
    t.equal((await orders(gw, leave.cookieHeader)).status, 200)
  }
  const beforeA = await scrape(a)

  await redis.stop()
  await eventually(async () => ((await scrape(a)).get('authgw_redis_up') === 0 ? true : undefined), { limitMs: 5000, what: 'A notices Redis is gone' })

  t.test('during the outage', async (t) => {
    const statuses = new Map<number, number>()
    const deadline = Date.now() + (TTL_SECONDS + 1) * 1000
    // Past the cache TTL, so lookups really go to the store.
    while (Date.now() < deadline) {
      for (const gw of [a, b]) {
        const s = (await orders(gw, stay.cookieHeader)).status
        statuses.set(s, (statuses.get(s) ?? 0) + 1)
      }
    }
    t.same([...statuses.keys()], [200], `a valid session: only 200s (${JSON.stringify([...statuses])})`)
    for (const gw of [a, b]) {
      const ready = await new Client(gw.url).get('/readyz')
      t.equal(ready.status, 200, '/readyz stays ready')
    }
    const s = await scrape(b)
    t.equal(s.get('authgw_redis_up'), 0, 'authgw_redis_up says degraded')
    t.equal(s.get('authgw_invalidation_bus_up'), 0, 'the bus is down')

    // Sign-out while Redis is away: PostgreSQL ends it; the Redis delete is owed.
    t.equal((await leave.post('/api/auth/sign-out', {})).status, 200, 'sign-out works without Redis')
    t.equal((await orders(a, leave.cookieHeader)).status, 401, 'A refuses at once')
    t.ok((a.shared.storage?.pendingDeletes ?? 0) > 0, 'the Redis delete is remembered for repair')
    await eventually(async () => ((await orders(b, leave.cookieHeader)).status === 401 ? true : undefined), {
      limitMs: (TTL_SECONDS + 2) * 1000,
      what: 'B refuses within its cache TTL (no bus)',
    })

    // The sign-in limit without its store: credential routes limited per replica (ADR 0030).
    const other = uniqueEmail('rl')
    const codes: number[] = []
    for (let i = 0; i < 4; i++) codes.push((await new Client(a.url).signIn(other, 'wrong password 123')).status)
    t.same(codes, [401, 401, 401, 429], 'still limited on this replica')
    const d = delta(beforeA, await scrape(a))
    t.ok((d.get(seriesKey('authgw_rate_limit_store_failures_total', { policy: 'local_limit' })) ?? 0) >= 4, 'counted as local_limit')
    t.ok((d.get(seriesKey('authgw_redis_errors_total', { operation: 'rate_limit' })) ?? 0) >= 4, 'and as a Redis error')
    const fiveHundreds = [...d.entries()].filter(([k, v]) => k.startsWith('authgw_http_request_duration_seconds_count') && /status_code="5/.test(k) && v > 0)
    t.same(fiveHundreds, [], 'no 5xx at all')
  })

  t.test('after Redis is back', async (t) => {
    await redis.start()
    await eventually(async () => ((await scrape(b)).get('authgw_invalidation_bus_up') === 1 && (await scrape(a)).get('authgw_redis_up') === 1 ? true : undefined), {
      limitMs: 10_000,
      what: 'both reconnect',
    })
    await eventually(async () => (a.shared.storage?.pendingDeletes === 0 ? true : undefined), { limitMs: 5000, what: 'owed deletes repaired' })
    const check = new Redis(redis.url)
    t.teardown(() => check.disconnect())
    t.equal(await check.get(prefix + leaveToken), null, 'no stale copy of the signed-out session')
    t.ok(a.logs.records().some((r) => r.event === 'invalidation_bus_reconnected'), 'A logged the reconnect (caches dropped)')

    // Coherence resumes: a sign-out on A reaches B at once again.
    const c = new Client(a.url)
    t.equal((await c.signIn(email, PASSWORD)).status, 200)
    t.equal((await orders(b, c.cookieHeader)).status, 200)
    const started = Date.now()
    t.equal((await c.post('/api/auth/sign-out', {})).status, 200)
    await eventually(async () => ((await orders(b, c.cookieHeader)).status === 401 ? true : undefined), { limitMs: 1000, everyMs: 10, what: 'B refuses within 1 s' })
    t.ok(Date.now() - started < 1000)
    t.equal((await orders(b, stay.cookieHeader)).status, 200, 'the other session is still fine')
  })
})
