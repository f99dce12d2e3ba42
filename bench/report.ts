// Statistics over rounds, budget checks, and the Markdown table.
import type { JobResult } from './loadgen.ts'

export type Measurement = {
  round: number
  variant: string
  kind: 'closed' | 'open'
  rps: number
  requests: number
  latencyMs: JobResult['latency']
  status: Record<string, number>
  errors: number
  dropped: number
  sendLagP99Ms?: number
  /** gateway CPU per answered request, µs */
  gatewayCpuUsPerRequest: number
  /** gateway CPU / wall time (1.0 = its core was saturated) */
  gatewayUtilisation: number
  /** load generator + upstream + OTLP sink CPU / wall time on the rig core */
  rigUtilisation: number
  /** CPU of the benchmark database's backends per request, µs (when the server runs on this machine) */
  dbCpuUsPerRequest: number
  /** share of the gateway core / rig core busy with work that was neither ours nor our database's */
  foreignGatewayCore: number
  foreignRigCore: number
  /** hypervisor steal share on those cores */
  steal: number
  /** how many times this measurement was taken (repeated when other work disturbed it) */
  attempts: number
  cpuTicks: Record<string, number>
  /** OTLP export requests the sink received during the job (tracing variants) */
  otlpExports?: number
  otlpBytes?: number
  cache?: { hits: number; misses: number }
}

export type Stat = { median: number; min: number; max: number }

/**
 * Whether other work on the machine spoilt a measurement. Closed loop: the gateway
 * must have had its core (≤ 7 % taken by others) and been the bottleneck (≥ 85 % busy).
 * Open loop: both cores mostly ours, since latency suffers from either being taken.
 */
export function disturbed(m: Pick<Measurement, 'kind' | 'foreignGatewayCore' | 'foreignRigCore' | 'gatewayUtilisation' | 'dbCpuUsPerRequest'>): boolean {
  if (!Number.isFinite(m.foreignGatewayCore)) return false // not pinned: nothing to tell
  // A path that queries the database per request shares the machine with it by design.
  const dbBound = m.dbCpuUsPerRequest > 10
  if (m.kind === 'closed') return m.foreignGatewayCore > 0.07 || (!dbBound && m.gatewayUtilisation < 0.85)
  return m.foreignGatewayCore > 0.05 || m.foreignRigCore > 0.15
}

export function stat(values: number[]): Stat {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN }
  const mid = Math.floor(v.length / 2)
  const median = v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2
  return { median, min: v[0] as number, max: v[v.length - 1] as number }
}

export type VariantSummary = {
  id: string
  label: string
  rounds: number
  closed: {
    rps: Stat
    /** per-round throughput ratio to the baseline measured in the same round */
    ratio: Stat
    /** the same over rounds where neither measurement was disturbed by other work */
    cleanRatio: Stat & { pairs: number }
    p50Ms: Stat
    p99Ms: Stat
    gatewayCpuUsPerRequest: Stat
    addedCpuUsPerRequest: Stat
    /** per-round baseline CPU/request ÷ this CPU/request: the throughput ratio on a saturated, undisturbed core */
    cpuRatio: Stat
    dbCpuUsPerRequest: Stat
    gatewayUtilisation: Stat
    rigUtilisation: Stat
    foreignGatewayCore: Stat
    foreignRigCore: Stat
    non2xx: number
    errors: number
  }
  open?: {
    rate: number
    rps: Stat
    p50Ms: Stat
    p99Ms: Stat
    p999Ms: Stat
    /** per-round p99 minus the baseline's p99 in the same round */
    addedP99Ms: Stat
    cleanAddedP99Ms: Stat & { pairs: number }
    gatewayCpuUsPerRequest: Stat
    sendLagP99Ms: Stat
    non2xx: number
    errors: number
    dropped: number
  }
  otlpExports?: number
  cacheHitRatio?: number
  notes: string[]
}

export type Budget = { variant: string; what: string; limit: string; value: number; held: boolean | undefined; note?: string }

const non2xx = (m: Measurement) => Object.entries(m.status).reduce((n, [code, c]) => (code.startsWith('2') ? n : n + c), 0)

export function summarise(
  variants: Array<{ id: string; label: string }>,
  measurements: Measurement[],
  baselineId: string,
  openRate: number | undefined,
): VariantSummary[] {
  const base = (round: number, kind: 'closed' | 'open') => measurements.find((m) => m.variant === baselineId && m.round === round && m.kind === kind)
  return variants.map(({ id, label }) => {
    const closed = measurements.filter((m) => m.variant === id && m.kind === 'closed')
    const open = measurements.filter((m) => m.variant === id && m.kind === 'open')
    const paired = (ms: Measurement[], kind: 'closed' | 'open', f: (m: Measurement, b: Measurement) => number, cleanOnly = false) =>
      ms.flatMap((m) => {
        const b = base(m.round, kind)
        if (!b || (cleanOnly && (disturbed(m) || disturbed(b)))) return []
        return [f(m, b)]
      })
    const withPairs = (values: number[]) => ({ ...stat(values), pairs: values.length })
    const s: VariantSummary = {
      id,
      label,
      rounds: closed.length,
      closed: {
        rps: stat(closed.map((m) => m.rps)),
        ratio: stat(paired(closed, 'closed', (m, b) => m.rps / b.rps)),
        cleanRatio: withPairs(paired(closed, 'closed', (m, b) => m.rps / b.rps, true)),
        p50Ms: stat(closed.map((m) => m.latencyMs.p50)),
        p99Ms: stat(closed.map((m) => m.latencyMs.p99)),
        gatewayCpuUsPerRequest: stat(closed.map((m) => m.gatewayCpuUsPerRequest)),
        addedCpuUsPerRequest: stat(paired(closed, 'closed', (m, b) => m.gatewayCpuUsPerRequest - b.gatewayCpuUsPerRequest)),
        cpuRatio: stat(paired(closed, 'closed', (m, b) => b.gatewayCpuUsPerRequest / m.gatewayCpuUsPerRequest)),
        dbCpuUsPerRequest: stat(closed.map((m) => m.dbCpuUsPerRequest)),
        gatewayUtilisation: stat(closed.map((m) => m.gatewayUtilisation)),
        rigUtilisation: stat(closed.map((m) => m.rigUtilisation)),
        foreignGatewayCore: stat(closed.map((m) => m.foreignGatewayCore)),
        foreignRigCore: stat(closed.map((m) => m.foreignRigCore)),
        non2xx: closed.reduce((n, m) => n + non2xx(m), 0),
        errors: closed.reduce((n, m) => n + m.errors, 0),
      },
      notes: [],
    }
    if (open.length > 0 && openRate !== undefined) {
      s.open = {
        rate: openRate,
        rps: stat(open.map((m) => m.rps)),
        p50Ms: stat(open.map((m) => m.latencyMs.p50)),
        p99Ms: stat(open.map((m) => m.latencyMs.p99)),
        p999Ms: stat(open.map((m) => m.latencyMs.p999)),
        addedP99Ms: stat(paired(open, 'open', (m, b) => m.latencyMs.p99 - b.latencyMs.p99)),
        cleanAddedP99Ms: withPairs(paired(open, 'open', (m, b) => m.latencyMs.p99 - b.latencyMs.p99, true)),
        gatewayCpuUsPerRequest: stat(open.map((m) => m.gatewayCpuUsPerRequest)),
        sendLagP99Ms: stat(open.map((m) => m.sendLagP99Ms ?? NaN)),
        non2xx: open.reduce((n, m) => n + non2xx(m), 0),
        errors: open.reduce((n, m) => n + m.errors, 0),
        dropped: open.reduce((n, m) => n + m.dropped, 0),
      }
    }
    const exports = [...closed, ...open].map((m) => m.otlpExports).filter((x): x is number => x !== undefined)
    if (exports.length > 0) s.otlpExports = exports.reduce((a, b) => a + b, 0)
    const caches = closed.map((m) => m.cache).filter((c): c is { hits: number; misses: number } => c !== undefined)
    if (caches.length > 0) {
      const hits = caches.reduce((n, c) => n + c.hits, 0)
      const misses = caches.reduce((n, c) => n + c.misses, 0)
      if (hits + misses > 0) s.cacheHitRatio = hits / (hits + misses)
    }
    if (s.closed.non2xx > 0 || s.closed.errors > 0) s.notes.push(`closed loop: ${s.closed.non2xx} non-2xx, ${s.closed.errors} errors`)
    if (s.open && (s.open.non2xx > 0 || s.open.errors > 0 || s.open.dropped > 0)) {
      s.notes.push(`open loop: ${s.open.non2xx} non-2xx, ${s.open.errors} errors, ${s.open.dropped} dropped/unanswered`)
    }
    const spoilt = [...closed, ...open].filter(disturbed)
    if (spoilt.length > 0) {
      const worst = Math.max(...spoilt.map((m) => m.foreignGatewayCore))
      s.notes.push(`${spoilt.length} of ${closed.length + open.length} measurements disturbed by other work on the machine (up to ${pct(worst)} of the gateway core taken); verdicts use undisturbed rounds only`)
    }
    if (s.closed.rigUtilisation.max > 0.9) s.notes.push(`rig core busy (${pct(s.closed.rigUtilisation.max)}): load generator may limit throughput`)
    return s
  })
}

/** How far the CPU ratio must be from a throughput limit to decide without an undisturbed pair. */
const CPU_DECISION_MARGIN = 0.1

/**
 * p99 waiting time of an M/D/1 queue (Poisson arrivals, fixed service time) at load rho:
 * the tail decays as e^(-θt) with θ solving rho·(e^(θD) − 1) = θD, so p99 ≈ ln(rho / 0.01) / θ.
 */
export function md1P99WaitUs(rho: number, serviceUs: number): number {
  if (rho >= 1) return Infinity
  if (rho <= 0.01) return 0
  // Solve rho·(e^x − 1) = x for x > 0 by bisection.
  let lo = 1e-9
  let hi = 50
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2
    if (rho * (Math.exp(mid) - 1) > mid) hi = mid
    else lo = mid
  }
  return (Math.log(rho / 0.01) / lo) * serviceUs
}

export function checkBudgets(
  summaries: VariantSummary[],
  rules: Array<{ variant: string; minRatio?: number; maxAddedP99Ms?: number }>,
  tracingActive: (variant: string) => boolean | undefined,
  baselineId = 'a',
): Budget[] {
  const out: Budget[] = []
  const baseline = summaries.find((x) => x.id === baselineId)?.closed.gatewayCpuUsPerRequest.median
  for (const r of rules) {
    const s = summaries.find((x) => x.id === r.variant)
    if (!s) continue
    const inactive = tracingActive(r.variant) === false
    const errors = s.closed.non2xx > 0 || s.closed.errors > 0
    const why = (pairs: number, cpuNote?: string) =>
      inactive
        ? 'tracing was not active (no spans reached the sink): not a valid measurement'
        : errors
          ? 'errors or non-2xx answers during the run'
          : pairs === 0
            ? `no round where both this variant and the baseline ran undisturbed by other work${cpuNote ?? ''}`
            : undefined
    if (r.minRatio !== undefined) {
      const c = s.closed.cleanRatio
      const cpu = s.closed.cpuRatio.median
      let note = why(c.pairs, `; all rounds: ${s.closed.ratio.median.toFixed(2)}`)
      let held: boolean | undefined = note === undefined ? c.median >= r.minRatio : undefined
      let value = c.pairs > 0 ? c.median : s.closed.ratio.median
      // Without an undisturbed pair, the CPU ratio still decides when it is clearly on one side.
      if (held === undefined && !inactive && !errors && Math.abs(cpu - r.minRatio) >= CPU_DECISION_MARGIN) {
        held = cpu >= r.minRatio
        value = cpu
        note = `decided on the CPU ratio (${cpu.toFixed(2)}, ≥ ${CPU_DECISION_MARGIN} from the limit): no round where this variant and the baseline both ran undisturbed; throughput ratio over all rounds ${s.closed.ratio.median.toFixed(2)}`
      }
      out.push({
        variant: r.variant,
        what: `throughput ratio to baseline (${c.pairs} undisturbed round${c.pairs === 1 ? '' : 's'})`,
        limit: `≥ ${r.minRatio.toFixed(2)}`,
        value,
        held,
        note,
      })
    }
    if (r.maxAddedP99Ms !== undefined && s.open) {
      const c = s.open.cleanAddedP99Ms
      const openErrors = s.open.non2xx > 0 || s.open.errors > 0
      let note = why(c.pairs) ?? (openErrors ? 'errors or non-2xx answers in the open loop' : undefined)
      let held: boolean | undefined = note === undefined ? c.median <= r.maxAddedP99Ms && s.open.dropped === 0 : undefined
      // A gateway whose CPU per request cannot serve the offered rate on a whole core queues
      // without bound: its p99 at that rate misses whatever the machine was doing.
      const serviceUs = s.closed.gatewayCpuUsPerRequest.median
      const capacity = 1e6 / serviceUs
      const rho = s.open.rate / capacity
      if (held === undefined && !inactive && !errors && capacity < s.open.rate) {
        held = false
        note = `over capacity: ${Math.round(capacity)} req/s at ${Math.round(serviceUs)} µs CPU per request on a whole core is less than the offered ${s.open.rate} req/s, so the queue grows without bound`
      } else if (held === undefined && !inactive && !errors && baseline) {
        // Near capacity, queueing alone decides: estimate both p99s as an M/D/1 queue with the
        // measured CPU per request as service time, and miss only when the estimate is far out.
        const estimate = md1P99WaitUs(rho, serviceUs) - md1P99WaitUs(s.open.rate / (1e6 / baseline), baseline)
        if (estimate > 2 * r.maxAddedP99Ms * 1000) {
          held = false
          note = `near capacity (${Math.round(rho * 100)} % of a whole core at ${Math.round(serviceUs)} µs CPU per request): queueing alone adds ≈ ${(estimate / 1000).toFixed(1)} ms at p99 (M/D/1 estimate), more than twice the limit`
        }
      }
      out.push({
        variant: r.variant,
        what: `added p99 at ${s.open.rate} req/s, 50 % of baseline (${c.pairs} undisturbed round${c.pairs === 1 ? '' : 's'})`,
        limit: `≤ ${r.maxAddedP99Ms} ms`,
        value: c.pairs > 0 ? c.median : s.open.addedP99Ms.median,
        held,
        note,
      })
    }
  }
  return out
}

const pct = (x: number) => `${Math.round(x * 100)} %`
const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const n2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–')
const signed = (x: number, digits: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(digits)}` : '–')

export function markdownTable(summaries: VariantSummary[], baselineId: string): string {
  const lines = [
    '| variant | req/s median (min–max) | ratio to (a), undisturbed rounds | p50 / p99 ms (closed) | open loop p50 / p99 ms | added p99 ms (open) | gateway CPU µs/req (added) | CPU ratio | other work on gw core (max) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for (const s of summaries) {
    const c = s.closed
    const r = c.cleanRatio.pairs > 0 ? c.cleanRatio : c.ratio
    const ratio = s.id === baselineId ? '1.00' : `${n2(r.median)} (${n2(r.min)}–${n2(r.max)})${c.cleanRatio.pairs > 0 ? '' : ' †'}`
    const open = s.open ? `${n2(s.open.p50Ms.median)} / ${n2(s.open.p99Ms.median)}` : '–'
    const added = s.open && s.id !== baselineId ? (s.open.cleanAddedP99Ms.pairs > 0 ? signed(s.open.cleanAddedP99Ms.median, 2) : `${signed(s.open.addedP99Ms.median, 2)} †`) : '–'
    const cpu = s.id === baselineId ? n0(c.gatewayCpuUsPerRequest.median) : `${n0(c.gatewayCpuUsPerRequest.median)} (${signed(c.addedCpuUsPerRequest.median, 0)})`
    const cpuRatio = s.id === baselineId ? '1.00' : n2(c.cpuRatio.median)
    lines.push(
      `| ${s.id}: ${s.label} | ${n0(c.rps.median)} (${n0(c.rps.min)}–${n0(c.rps.max)}) | ${ratio} | ${n2(c.p50Ms.median)} / ${n2(c.p99Ms.median)} | ${open} | ${added} | ${cpu} | ${cpuRatio} | ${pct(c.foreignGatewayCore.max)} |`,
    )
  }
  return lines.join('\n')
}

export function budgetLines(budgets: Budget[]): string {
  return budgets
    .map((b) => {
      const verdict = b.held === undefined ? 'NOT DECIDED' : b.held ? 'held' : 'MISSED'
      const value = b.what.startsWith('added') ? `${signed(b.value, 2)} ms` : n2(b.value)
      return `- ${b.variant}, ${b.what} ${b.limit}: ${value} → **${verdict}**${b.note ? ` (${b.note})` : ''}`
    })
    .join('\n')
}
