// The load generator, a child process of run.ts pinned to its own core (with
// the upstream). One job at a time over IPC:
// - closed: autocannon, fixed connections, no pipelining (capacity);
// - open: a constant-rate schedule over an undici Pool, latency measured from
//   each request's scheduled send time (corrects coordinated omission).
//   autocannon's own rate limit sends each second's quota in a burst and keeps
//   latencies in whole milliseconds, too coarse for a 1 ms budget.
// Around the measured phase it reads utime+stime of the given pids from
// /proc/<pid>/stat, so CPU and request counts cover exactly the same window.
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'
import { Pool } from 'undici'

export type Job = {
  /** sweep: every header set exactly once, `connections` at a time (fills the caches with N distinct credentials) */
  kind: 'closed' | 'open' | 'sweep'
  /** Origin, e.g. http://127.0.0.1:3000 */
  origin: string
  path: string
  /** One header set per credential; requests cycle through them. */
  headers: Array<Record<string, string>>
  connections: number
  warmupSeconds: number
  seconds: number
  /** open only: requests per second */
  rate?: number
  /**
   * closed only: 'undici' runs the closed loop over an undici Pool instead of
   * autocannon (which keeps a serialised copy of every header set per
   * connection: too much for 100,000 distinct credentials). Each request takes
   * the next header set of one shared cycle, so N sets are each used once per N requests.
   */
  engine?: 'autocannon' | 'undici'
  /** Processes whose CPU time is sampled around the measured phase. */
  pids: Record<string, number>
}

export type LatencySummary = { p50: number; p90: number; p99: number; p999: number; max: number; mean: number }

export type JobResult = {
  kind: Job['kind']
  requests: number
  wallSeconds: number
  rps: number
  /** milliseconds */
  latency: LatencySummary
  status: Record<string, number>
  errors: number
  /** open only: requests still unanswered when the drain time ran out, or never sent because too many were in flight */
  dropped: number
  /** open only: how late the schedule ran, p99 of (actual send − scheduled send), ms */
  sendLagP99?: number
  /** CPU ticks (utime+stime) used by each sampled process during the measured phase */
  cpuTicks: Record<string, number>
}

type Msg = { id: number; job: Job }

function cpuTicks(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return Number(rest[11]) + Number(rest[12])
  } catch {
    return NaN // gone (e.g. a database backend that closed)
  }
}

/**
 * Per-process ticks, plus per-CPU busy/steal/total ticks from /proc/stat
 * (keys `cpuN.busy`, `cpuN.steal`, `cpuN.total`): other work on the machine
 * shows up as busy time on a core that our processes did not use.
 */
function sample(pids: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, pid] of Object.entries(pids)) out[name] = cpuTicks(pid)
  out.loadgen = cpuTicks(process.pid)
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^(cpu\d+) (.*)$/.exec(line)
    if (!m) continue
    const [user, nice, system, idle, iowait, irq, softirq, steal] = (m[2] as string).trim().split(/\s+/).map(Number) as number[]
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)
    out[`${m[1]}.busy`] = busy
    out[`${m[1]}.steal`] = steal ?? 0
    out[`${m[1]}.total`] = busy + (idle ?? 0) + (iowait ?? 0) + (steal ?? 0)
  }
  return out
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of Object.keys(a)) out[k] = (b[k] ?? 0) - (a[k] ?? 0)
  return out
}

class Samples {
  #buf = new Float64Array(1 << 16)
  #n = 0
  add(v: number): void {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2)
      next.set(this.#buf)
      this.#buf = next
    }
    this.#buf[this.#n++] = v
  }
  get count(): number {
    return this.#n
  }
  summary(): LatencySummary {
    const n = this.#n
    if (n === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, max: NaN, mean: NaN }
    const s = this.#buf.slice(0, n).sort()
    const at = (q: number) => s[Math.min(n - 1, Math.ceil(q * n) - 1)] as number
    let sum = 0
    for (let i = 0; i < n; i++) sum += s[i] as number
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), max: s[n - 1] as number, mean: sum / n }
  }
}

async function closedPhase(job: Job, seconds: number, record: boolean): Promise<{ latencies: Samples; status: Record<string, number>; errors: number; requests: number; wall: number }> {
  const latencies = new Samples()
  const status: Record<string, number> = {}
  let requests = 0
  let errors = 0
  const started = performance.now()
  const instance = autocannon({
    url: job.origin + job.path,
    connections: job.connections,
    pipelining: 1,
    duration: seconds,
    // Static requests are serialised once and then cycled through per connection.
    requests: job.headers.map((headers) => ({ method: 'GET' as const, path: job.path, headers })),
  })
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    requests++
    if (record) latencies.add(responseTime)
    status[statusCode] = (status[statusCode] ?? 0) + 1
  })
  instance.on('reqError', () => {
    errors++
  })
  await instance
  return { latencies, status, errors, requests, wall: (performance.now() - started) / 1000 }
}

/** A closed loop over an undici Pool: `connections` workers, each sending its next request when the last one answered. */
async function undiciClosedPhase(pool: Pool, job: Job, seconds: number, record: boolean, cursor: { next: number }) {
  const latencies = new Samples()
  const status: Record<string, number> = {}
  let requests = 0
  let errors = 0
  const n = job.headers.length
  const started = performance.now()
  const end = started + seconds * 1000
  const worker = async () => {
    while (performance.now() < end) {
      const headers = job.headers[cursor.next++ % n]
      const t = performance.now()
      try {
        const res = await pool.request({ method: 'GET', path: job.path, headers })
        await res.body.dump()
        status[res.statusCode] = (status[res.statusCode] ?? 0) + 1
        requests++
        if (record) latencies.add(performance.now() - t)
      } catch {
        errors++
      }
    }
  }
  await Promise.all(Array.from({ length: job.connections }, worker))
  return { latencies, status, errors, requests, wall: (performance.now() - started) / 1000 }
}

async function runClosed(job: Job): Promise<JobResult> {
  if (job.engine === 'undici') {
    const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 })
    const cursor = { next: 0 }
    try {
      if (job.warmupSeconds > 0) await undiciClosedPhase(pool, job, job.warmupSeconds, false, cursor)
      const before = sample(job.pids)
      const r = await undiciClosedPhase(pool, job, job.seconds, true, cursor)
      const after = sample(job.pids)
      return { kind: 'closed', requests: r.requests, wallSeconds: r.wall, rps: r.requests / r.wall, latency: r.latencies.summary(), status: r.status, errors: r.errors, dropped: 0, cpuTicks: diff(before, after) }
    } finally {
      await pool.destroy()
    }
  }
  if (job.warmupSeconds > 0) await closedPhase(job, job.warmupSeconds, false)
  const before = sample(job.pids)
  const r = await closedPhase(job, job.seconds, true)
  const after = sample(job.pids)
  return {
    kind: 'closed',
    requests: r.requests,
    wallSeconds: r.wall,
    rps: r.requests / r.wall,
    latency: r.latencies.summary(),
    status: r.status,
    errors: r.errors,
    dropped: 0,
    cpuTicks: diff(before, after),
  }
}

const MAX_IN_FLIGHT = 4096
const DRAIN_MS = 5000

async function openPhase(pool: Pool, job: Job, seconds: number, record: boolean) {
  const rate = job.rate as number
  const total = Math.round(rate * seconds)
  const interval = 1000 / rate
  const latencies = new Samples()
  const lags = new Samples()
  const status: Record<string, number> = {}
  let errors = 0
  let dropped = 0
  let inFlight = 0
  let done = 0
  const n = job.headers.length
  let release: () => void = () => undefined
  const finished = new Promise<void>((r) => {
    release = r
  })
  const complete = () => {
    inFlight--
    done++
    if (done + dropped === total) release()
  }
  const fire = (i: number, scheduled: number) => {
    if (inFlight >= MAX_IN_FLIGHT) {
      dropped++
      if (done + dropped === total) release()
      return
    }
    inFlight++
    if (record) lags.add(performance.now() - scheduled)
    pool
      .request({ method: 'GET', path: job.path, headers: job.headers[i % n] })
      .then(async (res) => {
        await res.body.dump()
        if (record) latencies.add(performance.now() - scheduled)
        status[res.statusCode] = (status[res.statusCode] ?? 0) + 1
      })
      .catch(() => {
        errors++
      })
      .finally(complete)
  }
  const t0 = performance.now()
  let i = 0
  await new Promise<void>((resolveSent) => {
    const tick = () => {
      const now = performance.now()
      while (i < total && t0 + i * interval <= now) {
        fire(i, t0 + i * interval)
        i++
      }
      if (i < total) setTimeout(tick, 1)
      else resolveSent()
    }
    tick()
  })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    release()
  }, DRAIN_MS)
  await finished
  clearTimeout(timer)
  const wall = (performance.now() - t0) / 1000
  const unanswered = timedOut ? total - done - dropped : 0
  return { latencies, lags, status, errors, requests: done, dropped: dropped + unanswered, wall }
}

async function runOpen(job: Job): Promise<JobResult> {
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 })
  try {
    if (job.warmupSeconds > 0) await openPhase(pool, job, job.warmupSeconds, false)
    const before = sample(job.pids)
    const r = await openPhase(pool, job, job.seconds, true)
    const after = sample(job.pids)
    return {
      kind: 'open',
      requests: r.requests,
      wallSeconds: r.wall,
      rps: r.requests / r.wall,
      latency: r.latencies.summary(),
      status: r.status,
      errors: r.errors,
      dropped: r.dropped,
      sendLagP99: r.lags.summary().p99,
      cpuTicks: diff(before, after),
    }
  } finally {
    await pool.destroy()
  }
}

async function runSweep(job: Job): Promise<JobResult> {
  const pool = new Pool(job.origin, { connections: job.connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const latencies = new Samples()
  const status: Record<string, number> = {}
  let errors = 0
  let next = 0
  const before = sample(job.pids)
  const started = performance.now()
  const worker = async () => {
    while (next < job.headers.length) {
      const headers = job.headers[next++]
      const t = performance.now()
      try {
        const res = await pool.request({ method: 'GET', path: job.path, headers })
        await res.body.dump()
        status[res.statusCode] = (status[res.statusCode] ?? 0) + 1
        latencies.add(performance.now() - t)
      } catch {
        errors++
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: job.connections }, worker))
  } finally {
    await pool.destroy()
  }
  const wall = (performance.now() - started) / 1000
  const after = sample(job.pids)
  const requests = latencies.count
  return { kind: 'sweep', requests, wallSeconds: wall, rps: requests / wall, latency: latencies.summary(), status, errors, dropped: 0, cpuTicks: diff(before, after) }
}

process.on('message', (msg: Msg) => {
  const run = msg.job.kind === 'sweep' ? runSweep(msg.job) : msg.job.kind === 'closed' ? runClosed(msg.job) : runOpen(msg.job)
  run.then(
    (result) => process.send?.({ id: msg.id, result }),
    (err: unknown) => process.send?.({ id: msg.id, error: err instanceof Error ? err.stack : String(err) }),
  )
})
process.on('disconnect', () => process.exit(0))
process.send?.({ ready: true })
