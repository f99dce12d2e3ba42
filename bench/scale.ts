// How cost grows with the number of distinct credentials (issue 16): req/s,
// gateway CPU per request and cache hit ratios for 1, 1,000 and 100,000
// distinct sessions and JWTs, plus memory: heap bytes per cached session and
// per verify-once entry, and RSS with 100,000 sessions and 100,000 JWTs live
// in the caches. Called by run.ts after the main table (or alone:
// `npm run bench:scale`).
//
// 100,000 sign-ups through better-auth would take hours of password hashing,
// so the credentials are made the way better-auth makes them: session rows
// inserted into its own table and their cookies signed with the secret
// (HMAC-SHA256, better-call's format); JWTs signed with the deployment's own
// signing key (decrypted from the jwks table with better-auth's
// symmetricDecrypt), with the issuer, audience and claims of a real token
// fetched from the gateway.
import { createHmac } from 'node:crypto'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { symmetricDecrypt } from 'better-auth/crypto'
import { SignJWT, decodeJwt, importJWK } from 'jose'
import pg from 'pg'
import type { Job, JobResult } from './loadgen.ts'

export type ScaleGateway = { origin: string; metricsUrl: string; pid: number }

export type ScaleContext = {
  databaseUrl: string
  secret: string
  /** One real cookie header (`name=value`) and one real JWT, as the gateway issued them. */
  sampleCookie: string
  sampleJwt: string
  /** Starts a gateway with extra env and node args; the heap probe writes to heapFile. */
  startGateway(id: string, env: Record<string, string>, nodeArgs: string[]): Promise<ScaleGateway>
  /** The gateway the main table ran on (default cache sizes). */
  defaultGateway: ScaleGateway
  runJob(job: Job): Promise<JobResult>
  /** pids sampled around each job besides the gateway's */
  rigPids: Record<string, number>
  clkTck: number
  path: string
  connections: number
  seconds: number
  log(msg: string): void
  heapFile: string
  sizes: number[]
  /** Seconds the scaling part may still take; the largest size shrinks to what its measured fill rate allows. */
  budgetSeconds: number
}

export type ScaleRow = {
  credentials: 'jwt' | 'session'
  distinct: number
  cache: string
  rps: number
  gatewayCpuUsPerRequest: number
  hitRatio: number
  non2xx: number
  /** filling pass: every credential once (first sight: signature check or store lookup + mint) */
  fill?: { seconds: number; rps: number; gatewayCpuUsPerRequest: number }
}

export type ScaleResult = {
  rows: ScaleRow[]
  memory: {
    bytesPerSession: number
    bytesPerJwt: number
    sessionsAdded: number
    jwtsAdded: number
    rssMiB: number
    peakRssMiB: number
    heapUsedMiB: number
    /** V8 heap reserved, and memory outside it that V8 knows of (Buffers, ArrayBuffers) */
    heapTotalMiB: number
    externalMiB: number
    liveSessions: number
    liveJwts: number
    rssAtStartMiB: number
  }
  /** Why the largest size was smaller than asked, if it was. */
  shrunk?: string
}

// better-auth's session lifetime at the gateways' default SESSION_EXPIRES_IN_SECONDS.
const SESSION_EXPIRES_IN_SECONDS = 604_800

// Caches 5 % larger than the largest count: at exactly the count, one foreign entry (the
// gateway's own, a warm-up's) evicts the least recent credential, which is the next one a
// cyclic load asks for, and from then on every request misses (measured: 0.0 % hits).
const CACHE_ENV = (max: number) => ({
  SESSION_CACHE_MAX_ENTRIES: String(Math.ceil(max * 1.05)),
  JWT_CACHE_MAX_ENTRIES: String(Math.ceil(max * 1.05)),
  // Long enough that every session filled at the start of the pass is still cached at its end: "active".
  SESSION_CACHE_TTL_SECONDS: '900',
})

export async function runScale(ctx: ScaleContext): Promise<ScaleResult> {
  const max = Math.max(...ctx.sizes)
  const t0 = Date.now()
  const started = t0
  const creds = await makeCredentials(ctx, max)
  ctx.log(`scale: ${max} sessions inserted and signed, ${max} JWTs signed (${((Date.now() - t0) / 1000).toFixed(1)} s)`)

  if (existsSync(ctx.heapFile)) rmSync(ctx.heapFile)
  const gw = await ctx.startGateway('scale', CACHE_ENV(max), ['--expose-gc', '--import', './bench/heap-probe.ts'])
  const heap = async () => readHeap(gw.pid, ctx.heapFile)
  const counts = (which: 'jwt' | 'session', g: ScaleGateway) => cacheCounts(g.metricsUrl, which)

  const rssMiB = () => {
    const status = readFileSync(`/proc/${gw.pid}/status`, 'utf8')
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 }
  }
  const rssAtStart = rssMiB().rss
  const rows: ScaleRow[] = []
  const measure = async (g: ScaleGateway, which: 'jwt' | 'session', headers: Array<Record<string, string>>, cache: string, fill: boolean | NonNullable<ScaleRow['fill']>) => {
    let filled: ScaleRow['fill'] = typeof fill === 'object' ? fill : undefined
    if (fill === true) {
      const f = await ctx.runJob({ kind: 'sweep', origin: g.origin, path: ctx.path, headers, connections: ctx.connections, warmupSeconds: 0, seconds: 0, pids: { gateway: g.pid } })
      filled = { seconds: f.wallSeconds, rps: f.rps, gatewayCpuUsPerRequest: cpuUs(f, ctx.clkTck) }
    }
    const before = await counts(which, g)
    const r = await ctx.runJob({ kind: 'closed', engine: 'undici', origin: g.origin, path: ctx.path, headers, connections: ctx.connections, warmupSeconds: 1, seconds: ctx.seconds, pids: { gateway: g.pid, ...ctx.rigPids } })
    const after = await counts(which, g)
    const hits = after.hits - before.hits
    const misses = after.misses - before.misses
    const row: ScaleRow = {
      credentials: which,
      distinct: headers.length,
      cache,
      rps: r.rps,
      gatewayCpuUsPerRequest: cpuUs(r, ctx.clkTck),
      hitRatio: hits + misses > 0 ? hits / (hits + misses) : NaN,
      non2xx: Object.entries(r.status).reduce((n, [c, k]) => (c.startsWith('2') ? n : n + k), 0) + r.errors,
      fill: filled,
    }
    rows.push(row)
    ctx.log(
      `scale ${which.padEnd(7)} ${String(headers.length).padStart(6)} distinct (${cache}): ${Math.round(row.rps)} req/s, ${row.gatewayCpuUsPerRequest.toFixed(0)} µs/req, hit ratio ${fmtPct(row.hitRatio)}` +
        (filled ? `; fill ${filled.seconds.toFixed(1)} s at ${filled.gatewayCpuUsPerRequest.toFixed(0)} µs/req` : '') +
        (row.non2xx > 0 ? `  !! ${row.non2xx} non-2xx/errors` : ''),
    )
    return row
  }

  // Heap growth per entry, from the largest fill that added at least 1,000 entries.
  let sessionHeap = { delta: NaN, added: 0 }
  let jwtHeap = { delta: NaN, added: 0 }
  const fillMeasured = async (which: 'jwt' | 'session', headers: Array<Record<string, string>>, cache: string) => {
    const weigh = headers.length >= 1000
    const h0 = weigh ? await heap() : undefined
    const m0 = weigh ? await counts(which, gw) : undefined
    await measure(gw, which, headers, cache, true)
    if (!h0 || !m0) return
    const h1 = await heap()
    // Entries added = cache misses since before the fill (each miss stores one entry).
    const added = (await counts(which, gw)).misses - m0.misses
    if (added >= 1000) {
      const r = { delta: h1.heapUsed - h0.heapUsed, added }
      if (which === 'jwt') jwtHeap = r
      else sessionHeap = r
    }
  }
  let shrunk: string | undefined
  let largest = 0
  for (const asked of ctx.sizes) {
    if (asked === max && rows.length > 0) {
      largest = await fillLargest(asked)
      if (largest < asked) shrunk = `${asked.toLocaleString('en-US')} distinct credentials did not fit the run's time budget at the measured first-sight rate, so ${largest.toLocaleString('en-US')} were used`
      continue
    }
    largest = asked
    await fillMeasured('jwt', creds.jwt.slice(0, asked), `${Math.ceil(max * 1.05).toLocaleString('en-US')} entries`)
    await fillMeasured('session', creds.cookie.slice(0, asked), `${Math.ceil(max * 1.05).toLocaleString('en-US')} entries`)
  }

  // The largest size is filled in steps of a tenth, JWTs then sessions, each step timed: the
  // next step is taken only while it (at the last step's rate) and the measurements after it
  // still fit the time budget. The first step's rate is predicted from the previous size's
  // fill, which overstates it (a warming JIT).
  async function fillLargest(n: number): Promise<number> {
    const step = Math.max(1000, Math.ceil(n / 10 / 1000) * 1000)
    const fixed = 2 * (ctx.seconds + 3) + 2 * (ctx.seconds + 2) + 10
    const perCred = (which: 'jwt' | 'session') => {
      const r = [...rows].reverse().find((x) => x.credentials === which && x.fill && x.distinct > 1)
      return r?.fill ? r.fill.seconds / r.distinct : 0
    }
    let stepSeconds = step * (perCred('jwt') + perCred('session'))
    const sums = { jwt: { seconds: 0, cpuUs: 0, requests: 0, heap: 0, added: 0 }, session: { seconds: 0, cpuUs: 0, requests: 0, heap: 0, added: 0 } }
    let filled = 0
    const sweep = async (which: 'jwt' | 'session', headers: Array<Record<string, string>>) => {
      const m0 = await counts(which, gw)
      const h0 = await heap()
      const f = await ctx.runJob({ kind: 'sweep', origin: gw.origin, path: ctx.path, headers, connections: ctx.connections, warmupSeconds: 0, seconds: 0, pids: { gateway: gw.pid } })
      const h1 = await heap()
      const sum = sums[which]
      sum.seconds += f.wallSeconds
      sum.cpuUs += ((f.cpuTicks.gateway ?? NaN) / ctx.clkTck) * 1e6
      sum.requests += f.requests
      sum.heap += h1.heapUsed - h0.heapUsed
      sum.added += (await counts(which, gw)).misses - m0.misses
      return f.wallSeconds
    }
    while (filled < n) {
      const left = ctx.budgetSeconds - (Date.now() - started) / 1000 - fixed
      if (stepSeconds > left) {
        ctx.log(`scale: the next ${step.toLocaleString('en-US')} credentials would take ≈ ${Math.round(stepSeconds)} s; ${Math.max(0, Math.round(left))} s left: stopping at ${filled.toLocaleString('en-US')}`)
        break
      }
      const next = Math.min(n, filled + step)
      const t = (await sweep('jwt', creds.jwt.slice(filled, next))) + (await sweep('session', creds.cookie.slice(filled, next)))
      stepSeconds = t * (step / (next - filled))
      filled = next
      ctx.log(`scale: ${filled.toLocaleString('en-US')} JWTs and sessions filled (last step ${t.toFixed(1)} s)`)
    }
    if (filled === 0) return largest
    for (const which of ['jwt', 'session'] as const) {
      const sum = sums[which]
      if (sum.added >= 1000) {
        const r = { delta: sum.heap, added: sum.added }
        if (which === 'jwt') jwtHeap = r
        else sessionHeap = r
      }
      const fill = { seconds: sum.seconds, rps: sum.requests / sum.seconds, gatewayCpuUsPerRequest: sum.cpuUs / sum.requests }
      await measure(gw, which, (which === 'jwt' ? creds.jwt : creds.cookie).slice(0, filled), `${Math.ceil(max * 1.05).toLocaleString('en-US')} entries`, fill)
    }
    return filled
  }
  const rss = rssMiB()
  const finalHeap = await heap()

  // The same credentials on the main gateway's default cache size (10,000 entries), cycled
  // without a fill: past the bound an LRU under cyclic access misses every time.
  await measure(ctx.defaultGateway, 'jwt', creds.jwt.slice(0, largest), 'default size, no fill', false)
  await measure(ctx.defaultGateway, 'session', creds.cookie.slice(0, largest), 'default size, no fill', false)

  rmSync(ctx.heapFile, { force: true })
  return {
    rows,
    memory: {
      bytesPerSession: sessionHeap.delta / sessionHeap.added,
      bytesPerJwt: jwtHeap.delta / jwtHeap.added,
      sessionsAdded: sessionHeap.added,
      jwtsAdded: jwtHeap.added,
      rssMiB: rss.rss,
      peakRssMiB: rss.peak,
      heapUsedMiB: finalHeap.heapUsed / 2 ** 20,
      heapTotalMiB: finalHeap.heapTotal / 2 ** 20,
      externalMiB: finalHeap.external / 2 ** 20,
      liveSessions: largest,
      liveJwts: largest,
      rssAtStartMiB: rssAtStart,
    },
    shrunk,
  }
}

const fmtPct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '–')
const cpuUs = (r: JobResult, clkTck: number) => (r.requests > 0 ? (((r.cpuTicks.gateway ?? NaN) / clkTck) * 1e6) / r.requests : NaN)

async function cacheCounts(metricsUrl: string, which: 'jwt' | 'session'): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`${metricsUrl}/metrics`)).text()
  const name = which === 'jwt' ? 'authgw_jwt_cache_lookups_total' : 'authgw_session_cache_lookups_total'
  const read = (result: string) => Number(new RegExp(`^${name}\\{result="${result}"\\} (\\S+)`, 'm').exec(text)?.[1] ?? NaN)
  return { hits: read('hit'), misses: read('miss') }
}

/** Ask the gateway's heap probe for a post-GC reading and wait for it (an event, not a sleep of fixed length). */
async function readHeap(pid: number, file: string): Promise<{ heapUsed: number; heapTotal: number; external: number; rss: number }> {
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { seq: number }).seq : 0
  process.kill(pid, 'SIGUSR2')
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    try {
      const now = JSON.parse(readFileSync(file, 'utf8')) as { seq: number; heapUsed: number; heapTotal: number; external: number; rss: number }
      if (now.seq > previous) return now
    } catch {
      // not written yet, or mid-write
    }
  }
  throw new Error('heap probe did not answer within 30 s')
}

async function makeCredentials(ctx: ScaleContext, n: number): Promise<{ cookie: Array<Record<string, string>>; jwt: Array<Record<string, string>> }> {
  const client = new pg.Client({ connectionString: ctx.databaseUrl })
  await client.connect()
  try {
    // Sessions: spread over the users that signed up, as better-auth creates them at sign-in:
    // expiring after its expiresIn (SESSION_EXPIRES_IN_SECONDS, default 7 days), so no
    // extension is due for a day (SESSION_UPDATE_AGE_SECONDS). With a 1-day expiry each first
    // sight also paid an extension through better-auth (getSession, a write, a Set-Cookie).
    const { rows } = await client.query<{ token: string }>(
      `WITH u AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS n FROM "user")
       INSERT INTO "session" (id, token, "userId", "expiresAt", "createdAt", "updatedAt")
       SELECT 'bench-scale-' || g, md5(random()::text || g) || md5(g::text || random()::text), u.id, now() + make_interval(secs => $2::int), now(), now()
       FROM generate_series(1, $1::int) g JOIN u ON u.k = g % u.n
       RETURNING token`,
      [n, SESSION_EXPIRES_IN_SECONDS],
    )
    const cookieName = ctx.sampleCookie.slice(0, ctx.sampleCookie.indexOf('='))
    const cookie = rows.map(({ token }) => {
      const signature = createHmac('sha256', ctx.secret).update(token).digest('base64')
      return { cookie: `${cookieName}=${encodeURIComponent(`${token}.${signature}`)}` }
    })

    const { rows: keys } = await client.query<{ id: string; privateKey: string; alg: string | null }>('SELECT id, "privateKey", alg FROM jwks ORDER BY "createdAt" DESC LIMIT 1')
    const key = keys[0]
    if (!key) throw new Error('scale: no signing key in the jwks table')
    const data = JSON.parse(key.privateKey) as string
    const jwk = JSON.parse(await symmetricDecrypt({ key: ctx.secret, data })) as Record<string, unknown>
    const alg = key.alg ?? 'EdDSA'
    const privateKey = await importJWK(jwk, alg)
    const sample = decodeJwt(ctx.sampleJwt)
    const { rows: users } = await client.query<{ id: string; email: string; name: string }>('SELECT id, email, name FROM "user" ORDER BY id')
    const iat = Math.floor(Date.now() / 1000)
    const jwt: Array<Record<string, string>> = []
    for (let i = 0; i < n; i++) {
      // The session row 'bench-scale-<i+1>' and its user: a bearer JWT whose session is gone is refused.
      const u = users[(i + 1) % users.length] as { id: string; email: string; name: string }
      // A distinct token per i: `jti` differs, so each is a new verify-once entry.
      const token = await new SignJWT({ email: u.email, name: u.name, sid: `bench-scale-${i + 1}` })
        .setProtectedHeader({ alg, kid: key.id, typ: 'JWT' })
        .setIssuer(sample.iss as string)
        .setAudience(sample.aud as string | string[])
        .setSubject(u.id)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 3600)
        .setJti(`bench-scale-${i}`)
        .sign(privateKey)
      jwt.push({ authorization: `Bearer ${token}` })
    }
    return { cookie, jwt }
  } finally {
    await client.end()
  }
}
