// The multi-replica suite of issue 13, run once per coherence mode
// (redis-mode.test.ts, postgres-mode.test.ts): three gateway processes on one
// database behind HAProxy. Measured lags are printed as one JSON line each
// (`{"measured": ...}`), which the output guard accepts.
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { parseExposition, seriesKey } from '../helpers/metrics.ts'
import type { PrivateRedis } from '../helpers/redis.ts'
import { uniquePrefix } from '../helpers/redis.ts'
import { eventually, recordingUpstream, sleep } from '../faults/support.ts'
import { CHECK_INTERVAL_MS, FALL, startCluster } from './cluster.ts'
import type { Cluster, Replica } from './cluster.ts'

export type Mode = 'redis' | 'postgres'

let ipCounter = 1
/** A simulated client address (HAProxy appends the real one; the gateways trust loopback). */
const nextIp = () => `10.13.${Math.floor(ipCounter / 250)}.${(ipCounter++ % 250) + 1}`

/** A browser-like client of the cluster: its own address, Origin = the public URL. */
function clientOf(cluster: Cluster, base = cluster.url) {
  const c = new Client(base)
  const ip = nextIp()
  const origin = new URL(cluster.url).origin
  const headers = () => ({ 'x-forwarded-for': ip, origin })
  return {
    c,
    ip,
    signUp: (email: string) => c.request('POST', '/api/auth/sign-up/email', { body: { email, password: PASSWORD, name: 'R' }, headers: headers() }),
    signIn: (email: string, password = PASSWORD) => c.request('POST', '/api/auth/sign-in/email', { body: { email, password }, headers: headers() }),
    post: (path: string, body: unknown, via = cluster.url) => new Client(via).request('POST', path, { body, headers: { ...headers(), cookie: c.cookieHeader } }),
  }
}

const status = (url: string, cookie: string) =>
  fetch(`${url}/api/orders`, { headers: { cookie } }).then(
    async (r) => {
      await r.arrayBuffer()
      return r.status
    },
    () => 0,
  )

/** A bearer call: its status and, for a 401, the reason. */
const bearerAnswer = (url: string, jwt: string) =>
  fetch(`${url}/api/orders`, { headers: { authorization: `Bearer ${jwt}` } }).then(
    async (r) => {
      const text = await r.text()
      let reason: string | undefined
      if (r.status === 401) reason = (JSON.parse(text) as { reason?: string }).reason
      return { status: r.status, reason }
    },
    () => ({ status: 0, reason: undefined }),
  )

/** A JWT from /api/auth/token through the load balancer, for this client's session. */
async function tokenOf(cluster: Cluster, u: { c: Client; ip: string }): Promise<string> {
  const r = await fetch(`${cluster.url}/api/auth/token`, { headers: { cookie: u.c.cookieHeader, 'x-forwarded-for': u.ip } })
  const body = (await r.json()) as { token?: string }
  if (r.status !== 200 || body.token === undefined) throw new Error(`token: ${r.status}`)
  return body.token
}

async function metricsOf(r: Replica) {
  return parseExposition(await (await fetch(`${r.metricsUrl}/metrics`)).text())
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

/** Steady load through the load balancer until stopped: every answer counted by status (0 = connection error). */
function steadyLoad(url: string, cookie: string, concurrency: number) {
  const counts = new Map<number, number>()
  const errors = new Map<string, number>()
  let running = true
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      const s = await fetch(`${url}/api/orders`, { headers: { cookie } }).then(
        async (r) => {
          await r.arrayBuffer()
          return r.status
        },
        (err: Error & { cause?: { code?: string; message?: string } }) => {
          const why = err.cause?.code ?? err.cause?.message ?? err.message
          errors.set(why, (errors.get(why) ?? 0) + 1)
          return 0
        },
      )
      counts.set(s, (counts.get(s) ?? 0) + 1)
    }
  })
  return {
    counts,
    errors,
    async stop() {
      running = false
      await Promise.all(workers)
      return counts
    },
  }
}

const failedOf = (counts: Map<number, number>) => [...counts].filter(([s]) => s !== 200).reduce((n, [, v]) => n + v, 0)

export async function replicaSuite(t: Test, mode: Mode, redis?: PrivateRedis): Promise<void> {
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const env: Record<string, string> = {
    // Long: within the suite, only an invalidation can end a cached session elsewhere.
    SESSION_CACHE_TTL_SECONDS: '300',
    AUTH_RATE_LIMIT: 'on',
    AUTH_DELETE_USER: 'on',
    JWKS_ROTATION_INTERVAL_SECONDS: '2',
    SHUTDOWN_DELAY_MS: String(CHECK_INTERVAL_MS * FALL * 2),
    SHUTDOWN_DRAIN_MS: '10000',
    ...(mode === 'redis' ? { REDIS_URL: redis?.url ?? '', REDIS_KEY_PREFIX: uniquePrefix('suite') } : { RATE_LIMIT_STORAGE: 'database' }),
  }
  const cluster = await startCluster(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const [r0, r1, r2] = cluster.replicas as [Replica, Replica, Replica]

  await t.test('every replica runs the expected coherence mode', async (t) => {
    for (const r of cluster.replicas) {
      t.equal(r.logs.find((l) => l.msg === 'authgw started')?.coherence_mode, mode, r.name)
      t.equal((await metricsOf(r)).get(seriesKey('authgw_coherence_mode_info', { mode })), 1)
    }
  })

  await t.test('sign in through HAProxy; 300 calls spread over all replicas: 0 non-200', async (t) => {
    const u = clientOf(cluster)
    const email = uniqueEmail(`lb-${mode}`)
    t.equal((await u.signUp(email)).status, 200)
    const before = await Promise.all(cluster.replicas.map(metricsOf))
    const statuses = new Map<number, number>()
    for (let i = 0; i < 300; i++) {
      const s = await status(cluster.url, u.c.cookieHeader)
      statuses.set(s, (statuses.get(s) ?? 0) + 1)
    }
    t.same([...statuses], [[200, 300]], 'all 300 answered 200')
    const after = await Promise.all(cluster.replicas.map(metricsOf))
    const key = seriesKey('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' })
    const served = after.map((a, i) => (a.get(key) ?? 0) - (before[i]?.get(key) ?? 0))
    t.ok(served.every((n) => n >= 90), `each replica served about a third (${served.join(', ')})`)
  })

  /**
   * One trial: a fresh user, its cookie and its bearer JWT accepted (and so
   * cached) on every replica; `end` ends the session on one replica; then
   * every other replica is polled until it refuses the old cookie and,
   * separately, the old JWT (401 session_revoked). Both lags are reported.
   */
  const lagTrials = async (t: Test, what: string, trials: number, end: (u: ReturnType<typeof clientOf>, email: string, via: Replica) => Promise<number>) => {
    const cookieLags: number[] = []
    const jwtLags: number[] = []
    const wrongReasons: string[] = []
    for (let i = 0; i < trials; i++) {
      const u = clientOf(cluster)
      const email = uniqueEmail(`lag-${mode}`)
      if ((await u.signUp(email)).status !== 200) throw new Error('sign-up failed')
      const cookie = u.c.cookieHeader
      const jwt = await tokenOf(cluster, u)
      // Every replica has the session and the verified JWT cached.
      for (const r of cluster.replicas) {
        if ((await status(r.url, cookie)) !== 200) throw new Error(`${r.name} refused a fresh session`)
        if ((await bearerAnswer(r.url, jwt)).status !== 200) throw new Error(`${r.name} refused a fresh JWT`)
      }
      const via = cluster.replicas[i % 3] as Replica
      const others = cluster.replicas.filter((r) => r !== via)
      const endStatus = await end(u, email, via)
      if (endStatus !== 200) throw new Error(`${what} answered ${endStatus}`)
      const ended = performance.now()
      const [cookieDone, jwtDone] = await Promise.all([
        Promise.all(
          others.map((r) =>
            eventually(async () => ((await status(r.url, cookie)) === 401 ? performance.now() : undefined), { limitMs: 5000, everyMs: 2, what: `${r.name} refuses the cookie after ${what}` }),
          ),
        ),
        Promise.all(
          others.map(async (r) => {
            const refused = await eventually(
              async () => {
                const a = await bearerAnswer(r.url, jwt)
                return a.status === 401 ? { at: performance.now(), reason: a.reason } : undefined
              },
              { limitMs: 5000, everyMs: 2, what: `${r.name} refuses the JWT after ${what}` },
            )
            if (refused.reason !== 'session_revoked') wrongReasons.push(`${r.name}: ${refused.reason}`)
            return refused.at
          }),
        ),
      ])
      cookieLags.push(Math.max(...cookieDone) - ended)
      jwtLags.push(Math.max(...jwtDone) - ended)
    }
    const summary = (lags: number[]) => {
      const sorted = [...lags].sort((a, b) => a - b)
      const round = (n: number) => Math.round(n * 10) / 10
      return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.at(-1) as number) }
    }
    const cookieLag = summary(cookieLags)
    const jwtLag = summary(jwtLags)
    // The JSON line the closing note quotes: the lag until the last other replica refused.
    console.log(JSON.stringify({ measured: 'revocation_lag_ms', mode, what, trials, cookie: cookieLag, jwt: jwtLag }))
    t.same(wrongReasons, [], `${what}: the old JWT is refused with session_revoked`)
    t.ok(cookieLag.p99 < 1000, `${what}: every other replica refuses the old cookie within 1 s (p50 ${cookieLag.p50} ms, p99 ${cookieLag.p99} ms)`)
    t.ok(jwtLag.p99 < 1000, `${what}: every other replica refuses the old JWT within 1 s (p50 ${jwtLag.p50} ms, p99 ${jwtLag.p99} ms)`)
  }

  await t.test('sign-out on one replica: the others refuse the old cookie and the old JWT within 1 s (50 trials)', (t) =>
    lagTrials(t, 'sign-out', 50, async (u, _email, via) => (await u.post('/api/auth/sign-out', {}, via.url)).status),
  )
  await t.test('revoke other sessions on one replica: the others refuse the old cookie and JWT within 1 s', (t) =>
    lagTrials(t, 'revoke-other-sessions', 10, async (u, email, via) => {
      // The session to revoke is the first one; a second sign-in revokes the others.
      const second = clientOf(cluster)
      if ((await second.signIn(email)).status !== 200) return 0
      return (await second.post('/api/auth/revoke-other-sessions', {}, via.url)).status
    }),
  )
  await t.test('change password (revoking other sessions) on one replica: the others refuse the old cookie and JWT within 1 s', (t) =>
    lagTrials(t, 'change-password', 10, async (u, _email, via) => {
      const old = u.c.cookieHeader
      const res = await new Client(via.url).request('POST', '/api/auth/change-password', {
        body: { currentPassword: PASSWORD, newPassword: `${PASSWORD}-new`, revokeOtherSessions: true },
        headers: { 'x-forwarded-for': nextIp(), origin: new URL(cluster.url).origin, cookie: old },
      })
      // The old cookie is what the trial watches.
      u.c.jar.clear()
      for (const [k, v] of old.split('; ').map((p) => p.split('=') as [string, string])) u.c.jar.set(k, v)
      return res.status
    }),
  )
  await t.test('delete user (AUTH_DELETE_USER=on) on one replica: the others refuse the old cookie and JWT within 1 s', (t) =>
    lagTrials(t, 'delete-user', 10, async (u, _email, via) => (await u.post('/api/auth/delete-user', { password: PASSWORD }, via.url)).status),
  )

  await t.test('key rotation every 2 s: tokens minted with each new key are accepted by every replica at once (0 401s)', async (t) => {
    const u = clientOf(cluster)
    t.equal((await u.signUp(uniqueEmail(`rot-${mode}`))).status, 200)
    const kids = new Set<string>()
    let checks = 0
    const refused: string[] = []
    const until = Date.now() + 7000
    // better-auth's rate limiter (on here) allows one client 100 calls of a path per 10 s; on a quiet
    // machine this loop would make more: one token per 90 ms at most, and never more than 80 (several
    // keys still: one per 2 s).
    let tokens = 0
    while (Date.now() < until && tokens++ < 80) {
      const r = await fetch(`${cluster.url}/api/auth/token`, { headers: { cookie: u.c.cookieHeader, 'x-forwarded-for': u.ip } })
      const body = (await r.json()) as { token?: string }
      if (r.status !== 200 || body.token === undefined) {
        refused.push(`token ${r.status}`)
        continue
      }
      kids.add(JSON.parse(Buffer.from(body.token.split('.')[0] as string, 'base64url').toString()).kid as string)
      for (const rep of cluster.replicas) {
        const s = await fetch(`${rep.url}/api/orders`, { headers: { authorization: `Bearer ${body.token}` } })
        checks++
        if (s.status !== 200) refused.push(`${rep.name} ${s.status} ${await s.text()}`)
        else await s.arrayBuffer()
      }
      await sleep(90)
    }
    console.log(JSON.stringify({ measured: 'key_rotation', mode, keys_seen: kids.size, bearer_checks: checks, refused: refused.length }))
    t.ok(kids.size >= 3, `several keys minted during the run (${kids.size})`)
    t.same(refused, [], `0 refusals over ${checks} checks`)
  })

  await t.test('sign-in rate limit 3 per 10 s: the 4th attempt, spread over the replicas, is 429', async (t) => {
    const u = clientOf(cluster)
    const email = uniqueEmail(`rl-${mode}`)
    const statuses: number[] = []
    const before = await Promise.all(cluster.replicas.map(metricsOf))
    for (let i = 0; i < 4; i++) statuses.push((await u.signIn(email, 'wrong password 123')).status)
    const after = await Promise.all(cluster.replicas.map(metricsOf))
    const key = seriesKey('authgw_sign_in_attempts_total', { method: 'email', outcome: 'failure', reason: 'invalid_credentials' })
    const served = after.map((a, i) => (a.get(key) ?? 0) - (before[i]?.get(key) ?? 0))
    console.log(JSON.stringify({ measured: 'rate_limit', mode, statuses, failures_per_replica: served }))
    t.same(statuses, [401, 401, 401, 429])
    t.ok(served.filter((n) => n > 0).length >= 2, `the attempts reached more than one replica (${served.join(', ')})`)
  })

  if (mode === 'redis' && redis !== undefined) {
    await t.test('Redis stopped under traffic, then started: 0 false 401s, 0 5xx; coherence resumes without a gateway restart', async (t) => {
      const u = clientOf(cluster)
      t.equal((await u.signUp(uniqueEmail('redis-stop'))).status, 200)
      const load = steadyLoad(cluster.url, u.c.cookieHeader, 4)
      await sleep(500)
      await redis.stop()
      await eventually(async () => ((await metricsOf(r0)).get('authgw_redis_up') === 0 ? true : undefined), { limitMs: 5000, what: 'Redis down seen' })
      await sleep(2000)
      await redis.start()
      await eventually(async () => ((await Promise.all(cluster.replicas.map(metricsOf))).every((m) => m.get('authgw_invalidation_bus_up') === 1) ? true : undefined), {
        limitMs: 15_000,
        what: 'every replica reconnected',
      })
      await sleep(500)
      const counts = await load.stop()
      console.log(JSON.stringify({ measured: 'redis_outage', mode, statuses: Object.fromEntries(counts) }))
      t.same([...counts.keys()], [200], `only 200s under the outage (${JSON.stringify([...counts])})`)
      await lagTrials(t, 'sign-out after Redis restart', 5, async (v, _e, via) => (await v.post('/api/auth/sign-out', {}, via.url)).status)
    })
  }

  await t.test('kill -9 of one replica under steady load', async (t) => {
    const u = clientOf(cluster)
    t.equal((await u.signUp(uniqueEmail('kill'))).status, 200)
    const CONCURRENCY = 6
    const load = steadyLoad(cluster.url, u.c.cookieHeader, CONCURRENCY)
    await sleep(1000)
    const killedAt = performance.now()
    await r1.kill()
    const down = await eventually(async () => ((await cluster.serverStatus()).get(r1.name)?.startsWith('DOWN') ? performance.now() - killedAt : undefined), {
      limitMs: 10_000,
      everyMs: 20,
      what: 'HAProxy marks the killed replica DOWN',
    })
    await sleep(1500)
    const counts = await load.stop()
    const failed = failedOf(counts)
    console.log(JSON.stringify({ measured: 'kill_9', mode, failed, concurrency: CONCURRENCY, marked_down_ms: Math.round(down), statuses: Object.fromEntries(counts), errors: Object.fromEntries(load.errors) }))
    t.ok(failed <= CONCURRENCY, `failed requests (${failed}) at most the requests in flight (${CONCURRENCY} workers)`)
    t.ok(down <= CHECK_INTERVAL_MS * (FALL + 1) + 500, `HAProxy stopped routing to it within its check interval (${Math.round(down)} ms)`)
    t.ok((counts.get(200) ?? 0) > 0, 'the other replicas served on')
    await r1.start()
    await cluster.waitAllUp()
  })

  await t.test('rolling restart (SIGTERM one at a time, SHUTDOWN_DELAY_MS ≥ the check interval) under load: 0 failed', async (t) => {
    const u = clientOf(cluster)
    t.equal((await u.signUp(uniqueEmail('rolling'))).status, 200)
    const load = steadyLoad(cluster.url, u.c.cookieHeader, 4)
    for (const r of [r0, r1, r2]) {
      const code = await r.terminate()
      t.equal(code, 0, `${r.name} drained and exited 0`)
      await r.start()
      await cluster.waitAllUp()
    }
    const counts = await load.stop()
    console.log(JSON.stringify({ measured: 'rolling_restart', mode, failed: failedOf(counts), statuses: Object.fromEntries(counts), errors: Object.fromEntries(load.errors) }))
    t.equal(failedOf(counts), 0, `0 failed requests (${JSON.stringify([...counts])})`)
  })
}
