// Soak: the real gateway (src/main.ts, its own process) under a steady mixed
// load at ~70 % of a capacity measured first, for SOAK_MINUTES (default 5).
// Traffic: valid session cookies, valid bearer JWTs, and ~10 % intended
// denials (no credentials, a garbage cookie, a tampered JWT, an unknown kid).
// Reports errors beyond those denials (must be 0), RSS growth, event-loop
// delay (p99, max) and the metric series count before and after.
// Not part of `npm test`. Run: SOAK_MINUTES=5 npx node bench/soak.ts
// Loopback only: the gateway, its upstream and the load all run on this machine.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createHistogram } from 'node:perf_hooks'
import pg from 'pg'
import { Pool } from 'undici'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'

const ROOT = join(import.meta.dirname, '..')
const MINUTES = Number(process.env.SOAK_MINUTES ?? 5)
const LOAD_FRACTION = Number(process.env.SOAK_LOAD_FRACTION ?? 0.7)
const USERS = 20
const CONNECTIONS = 64
const CAPACITY_SECONDS = 10
const SAMPLE_EVERY_MS = 10_000
const DENIAL_SHARE = 0.1
/** The only 401 reasons the soak provokes on purpose. */
const INTENDED_DENIALS = new Set(['no_credentials', 'malformed_cookie', 'bad_signature', 'kid_unknown'])

type Req = { kind: 'cookie' | 'jwt' | 'denial'; path: string; headers: Record<string, string> }

const cleanups: Array<() => Promise<unknown>> = []
async function cleanup() {
  for (const c of cleanups.reverse()) await c().catch(() => undefined)
}
process.once('SIGINT', () => {
  void cleanup().then(() => process.exit(130))
})

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
  })
}

async function database(): Promise<string> {
  const admin = process.env.DATABASE_URL
  if (admin) {
    const name = `authgw_soak_${randomBytes(4).toString('hex')}`
    const exec = async (sql: string) => {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      await c.query(sql).finally(() => c.end())
    }
    await exec(`CREATE DATABASE ${name}`)
    cleanups.push(() => exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    const u = new URL(admin)
    u.pathname = `/${name}`
    return u.toString()
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'authgw-soak-pg-'))
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
  const db = await startEmbeddedPostgres({ dataDir })
  cleanups.push(() => db.stop())
  return db.url
}

function child(name: string, args: string[], env: Record<string, string>, stdout: 'pipe' | 'ignore'): ChildProcess {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', stdout, 'pipe'] })
  let err = ''
  proc.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000)
  })
  let stopping = false
  proc.once('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${name} exited unexpectedly (${code ?? signal}): ${err}\n`)
      void cleanup().then(() => process.exit(1))
    }
  })
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        stopping = true
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
        proc.once('exit', () => resolve())
        proc.kill('SIGTERM')
        setTimeout(() => proc.kill('SIGKILL'), 15_000).unref()
      }),
  )
  return proc
}

async function startUpstream(): Promise<string> {
  const proc = child('upstream', ['bench/upstream.ts'], {}, 'pipe')
  const line = await new Promise<string>((resolve) => createInterface({ input: proc.stdout! }).once('line', resolve))
  return `http://127.0.0.1:${line.trim()}`
}

async function startGateway(databaseUrl: string, upstreamUrl: string) {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const proc = child(
    'gateway',
    ['src/main.ts'],
    {
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      BETTER_AUTH_SECRET: randomBytes(32).toString('base64url'),
      BETTER_AUTH_URL: `http://127.0.0.1:${port}`,
      UPSTREAM_URL: upstreamUrl,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      DEMO_APP: 'off',
      // The soak creates its users from one address; brute-force limits are tested elsewhere.
      AUTH_RATE_LIMIT: 'off',
      // Tokens must outlive the run.
      JWT_EXPIRATION_SECONDS: String(Math.max(900, Math.ceil(MINUTES * 60) + 600)),
      LOG_LEVEL: 'info',
    },
    // One access line per request is part of the cost being soaked; nobody reads it here.
    'ignore',
  )
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) return { url, metricsUrl: `http://127.0.0.1:${metricsPort}`, pid: proc.pid as number }
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error('gateway not ready within 60 s')
}

async function makeUsers(url: string): Promise<{ cookies: string[]; jwts: string[] }> {
  const cookies: string[] = []
  const jwts: string[] = []
  for (let i = 0; i < USERS; i++) {
    const res = await fetch(`${url}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: url },
      body: JSON.stringify({ email: `soak-${i}-${randomBytes(4).toString('hex')}@example.test`, password: 'correct horse battery staple 42', name: `Soak ${i}` }),
    })
    if (res.status !== 200) throw new Error(`sign-up: ${res.status} ${await res.text()}`)
    const session = res.headers.getSetCookie().find((c) => c.split('=')[0]!.endsWith('.session_token'))
    if (!session) throw new Error('no session cookie')
    const cookie = session.split(';')[0]!
    cookies.push(cookie)
    const tok = await fetch(`${url}/api/auth/token`, { headers: { cookie } })
    jwts.push(((await tok.json()) as { token: string }).token)
  }
  return { cookies, jwts }
}

function mix(cookies: string[], jwts: string[]): () => Req {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const sessionName = cookies[0]!.split('=')[0]!
  const tampered = (() => {
    const [h, p, s] = jwts[0]!.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>
    return `${h}.${b64({ ...claims, sub: 'someone-else' })}.${s}`
  })()
  const denials: Array<Record<string, string>> = [
    {},
    { cookie: `${sessionName}=not-a-signed-value` },
    { authorization: `Bearer ${tampered}` },
    { authorization: `Bearer ${b64({ alg: 'EdDSA', kid: 'soak-unknown-kid' })}.${b64({ sub: 'x', exp: 4102444800 })}.${randomBytes(64).toString('base64url')}` },
  ]
  let i = 0
  return (): Req => {
    i++
    const r = Math.random()
    if (r < DENIAL_SHARE) return { kind: 'denial', path: '/api/orders', headers: denials[i % denials.length]! }
    const u = i % USERS
    return r < DENIAL_SHARE + (1 - DENIAL_SHARE) / 2
      ? { kind: 'cookie', path: `/api/orders/${u}`, headers: { cookie: cookies[u]! } }
      : { kind: 'jwt', path: `/api/orders/${u}`, headers: { authorization: `Bearer ${jwts[u]!}` } }
  }
}

type Tally = {
  sent: number
  /** Scheduled but not sent: the gateway fell so far behind that 4096 requests were in flight. */
  notSent: number
  done: number
  byStatus: Map<string, number>
  transportErrors: Map<string, number>
  latency: ReturnType<typeof createHistogram>
}

const newTally = (): Tally => ({ sent: 0, notSent: 0, done: 0, byStatus: new Map(), transportErrors: new Map(), latency: createHistogram() })

function send(pool: Pool, next: () => Req, tally: Tally, scheduledAt: number): Promise<void> {
  const r = next()
  tally.sent++
  return pool.request({ method: 'GET', path: r.path, headers: r.headers }).then(
    async (res) => {
      await res.body.dump()
      tally.done++
      const key = `${r.kind} ${res.statusCode}`
      tally.byStatus.set(key, (tally.byStatus.get(key) ?? 0) + 1)
      tally.latency.record(Math.max(1, Math.round((performance.now() - scheduledAt) * 1e6)))
    },
    (err: Error & { code?: string }) => {
      tally.done++
      const key = `${r.kind} ${err.code ?? err.name}`
      tally.transportErrors.set(key, (tally.transportErrors.get(key) ?? 0) + 1)
    },
  )
}

/** Closed loop: CONNECTIONS requests always in flight, for `seconds`. */
async function capacity(pool: Pool, next: () => Req, seconds: number): Promise<number> {
  const tally = newTally()
  const end = performance.now() + seconds * 1000
  const worker = async () => {
    while (performance.now() < end) await send(pool, next, tally, performance.now())
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: CONNECTIONS }, worker))
  return tally.done / ((performance.now() - started) / 1000)
}

/** Open loop at `rate` req/s; latency counts from each request's scheduled time. */
async function steady(pool: Pool, next: () => Req, rate: number, seconds: number, tally: Tally, onTick: () => Promise<void>): Promise<Tally> {
  const inflight = new Set<Promise<void>>()
  const started = performance.now()
  let scheduled = 0
  let nextSample = started + SAMPLE_EVERY_MS
  let dropped = 0
  while (performance.now() - started < seconds * 1000) {
    const now = performance.now()
    const due = Math.floor(((now - started) / 1000) * rate)
    for (; scheduled < due; scheduled++) {
      const at = started + (scheduled / rate) * 1000
      if (inflight.size >= 4 * CONNECTIONS * 16) {
        dropped++
        continue
      }
      const p = send(pool, next, tally, at).finally(() => inflight.delete(p))
      inflight.add(p)
    }
    if (now >= nextSample) {
      nextSample += SAMPLE_EVERY_MS
      await onTick()
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  await Promise.all(inflight)
  tally.notSent = dropped
  return tally
}

type Sample = { t: number; rssBytes: number; lagP99: number; lagMax: number; answered: number }

async function metricsText(metricsUrl: string): Promise<string> {
  return (await fetch(`${metricsUrl}/metrics`)).text()
}

function series(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const sp = line.lastIndexOf(' ')
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)))
  }
  return out
}

const value = (s: Map<string, number>, key: string) => s.get(key) ?? Number.NaN

function unauthorizedByReason(s: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [k, v] of s) {
    if (!k.startsWith('authgw_unauthorized_total{')) continue
    const reason = /reason="([^"]*)"/.exec(k)?.[1] ?? '?'
    out.set(reason, (out.get(reason) ?? 0) + v)
  }
  return out
}

const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

async function main() {
  const log = (msg: string) => process.stdout.write(`${msg}\n`)
  log(`authgw soak: ${MINUTES} min at ${Math.round(LOAD_FRACTION * 100)} % of measured capacity, ${Math.round(DENIAL_SHARE * 100)} % intended denials`)
  const databaseUrl = await database()
  const upstreamUrl = await startUpstream()
  const gw = await startGateway(databaseUrl, upstreamUrl)
  log(`gateway pid ${gw.pid} at ${gw.url}, metrics ${gw.metricsUrl}`)
  const { cookies, jwts } = await makeUsers(gw.url)
  const next = mix(cookies, jwts)
  const pool = new Pool(gw.url, { connections: CONNECTIONS, pipelining: 1, keepAliveTimeout: 60_000 })
  cleanups.push(() => pool.close())

  await capacity(pool, next, 3) // warm-up: JIT, caches, pools
  const cap = await capacity(pool, next, CAPACITY_SECONDS)
  const rate = Math.max(1, Math.floor(cap * LOAD_FRACTION))
  log(`capacity (closed loop, ${CONNECTIONS} connections, ${CAPACITY_SECONDS} s): ${Math.round(cap)} req/s → soak rate ${rate} req/s`)

  // Baseline after warm-up; the first scrape also resets the event-loop histogram.
  await metricsText(gw.metricsUrl)
  const before = series(await metricsText(gw.metricsUrl))
  const samples: Sample[] = []
  const tally = newTally()
  const sample = async () => {
    const s = series(await metricsText(gw.metricsUrl))
    samples.push({
      answered: tally.done,
      t: Date.now(),
      rssBytes: value(s, 'authgw_process_resident_memory_bytes'),
      lagP99: value(s, 'authgw_nodejs_eventloop_lag_p99_seconds'),
      lagMax: value(s, 'authgw_nodejs_eventloop_lag_max_seconds'),
    })
  }
  await sample()
  const started = Date.now()
  await steady(pool, next, rate, MINUTES * 60, tally, sample)
  const wall = (Date.now() - started) / 1000
  await sample()
  const after = series(await metricsText(gw.metricsUrl))

  // What went wrong beyond the intended denials.
  const unexpected: string[] = []
  for (const [key, n] of tally.byStatus) {
    const [kind, status] = key.split(' ') as [string, string]
    if (kind === 'denial' ? status !== '401' : status !== '200') unexpected.push(`${n} × ${key}`)
  }
  for (const [key, n] of tally.transportErrors) unexpected.push(`${n} × ${key}`)
  const reasonsBefore = unauthorizedByReason(before)
  const reasonsAfter = unauthorizedByReason(after)
  const denialReasons: string[] = []
  for (const [reason, v] of reasonsAfter) {
    const d = v - (reasonsBefore.get(reason) ?? 0)
    if (d === 0) continue
    denialReasons.push(`${reason}=${d}`)
    if (!INTENDED_DENIALS.has(reason)) unexpected.push(`${d} × 401 ${reason} (not an intended denial)`)
  }

  const rss = samples.map((s) => s.rssBytes)
  const runtime = /^authgw_(nodejs|process)_/
  const countSeries = (s: Map<string, number>, all: boolean) => [...s.keys()].filter((k) => all || !runtime.test(k)).length
  const newSeries = [...after.keys()].filter((k) => !before.has(k))
  const lat = tally.latency

  log('')
  const windows = samples.slice(1).map((x, i) => (x.answered - samples[i]!.answered) / ((x.t - samples[i]!.t) / 1000))
  log(`duration            ${wall.toFixed(0)} s, ${tally.done} requests, ${(tally.done / wall).toFixed(0)} req/s (target ${rate})`)
  log(`rate per window     min ${pct(windows, 0).toFixed(0)}, median ${pct(windows, 0.5).toFixed(0)}, max ${Math.max(...windows).toFixed(0)} req/s`)
  log(`shortfall           ${tally.notSent === 0 ? 'none' : `${tally.notSent} scheduled requests not sent (4096 already in flight: the gateway fell behind the target rate)`}`)
  log(`answers             ${[...tally.byStatus].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`)
  log(`denial reasons      ${denialReasons.join(', ') || 'none'}`)
  log(`errors              ${unexpected.length === 0 ? '0' : unexpected.join('; ')}`)
  log(`latency (scheduled) p50 ${(lat.percentile(50) / 1e6).toFixed(2)} ms, p99 ${(lat.percentile(99) / 1e6).toFixed(2)} ms, max ${(lat.max / 1e6).toFixed(1)} ms`)
  log(`RSS                 start ${mb(rss[0]!)}, end ${mb(rss.at(-1)!)}, max ${mb(Math.max(...rss))}, growth ${mb(rss.at(-1)! - rss[0]!)} (${samples.length} samples, every ${SAMPLE_EVERY_MS / 1000} s)`)
  const p99s = samples.slice(1).map((s) => s.lagP99)
  log(`event-loop delay    p99 per ${SAMPLE_EVERY_MS / 1000} s window: median ${ms(pct(p99s, 0.5))}, worst ${ms(Math.max(...p99s))}; max ${ms(Math.max(...samples.slice(1).map((s) => s.lagMax)))}`)
  log(`metric series       before ${countSeries(before, true)} (${countSeries(before, false)} without runtime), after ${countSeries(after, true)} (${countSeries(after, false)} without runtime)`)
  const newOwn = newSeries.filter((k) => !runtime.test(k))
  log(`new series          ${newOwn.length === 0 ? 'none' : newOwn.join(', ')} (+${newSeries.length - newOwn.length} runtime series, e.g. a GC kind seen for the first time)`)
  return unexpected.length === 0 && newOwn.length === 0 && tally.notSent === 0 ? 0 : 1
}

const code = await main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`)
  return 2
})
await cleanup()
process.exit(code)
