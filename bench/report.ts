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
    /** unexpected non-2xx (401s are expected on a load with planned denials) */
    non2xx: number
    errors: number
    /** share of 401 answers */
    deniedShare: number
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

export type Budget = { variant: string; what: string; limit: string; value: number; held: boolean | undefined; note?: string; unit?: string }

/** Answers that are neither 2xx nor, on a load with planned denials, 401. */
const unexpected = (m: Measurement, denials: boolean) => Object.entries(m.status).reduce((n, [code, c]) => (code.startsWith('2') || (denials && code === '401') ? n : n + c), 0)
const count401 = (m: Measurement) => m.status['401'] ?? 0

export function summarise(
  variants: Array<{ id: string; label: string; deniedShare?: number }>,
  measurements: Measurement[],
  baselineId: string,
  openRate: number | undefined,
): VariantSummary[] {
  const base = (round: number, kind: 'closed' | 'open') => measurements.find((m) => m.variant === baselineId && m.round === round && m.kind === kind)
  return variants.map(({ id, label, deniedShare }) => {
    const denials = (deniedShare ?? 0) > 0
    const non2xx = (m: Measurement) => unexpected(m, denials)
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
        deniedShare: closed.reduce((n, m) => n + count401(m), 0) / Math.max(1, closed.reduce((n, m) => n + m.requests, 0)),
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
    if (s.closed.non2xx > 0 || s.closed.errors > 0) s.notes.push(`closed loop: ${s.closed.non2xx} unexpected non-2xx, ${s.closed.errors} errors`)
    if (denials) s.notes.push(`${pct(s.closed.deniedShare)} of the answers were 401 (planned: ${pct(deniedShare ?? 0)})`)
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

/**
 * The order of one round: the variants rotated by the round number, so no
 * variant always runs first or last (machine drift and warm caches spread
 * over all of them).
 */
export function roundOrder<T>(variants: readonly T[], round: number): T[] {
  const n = variants.length
  return variants.map((_, i) => variants[(i + round - 1) % n] as T)
}

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

/** A ratio budget (variant ÷ ref, paired by round) and/or an added-p99 budget (variant − ref, open loop). */
export type BudgetRule = { variant: string; ref: string; minRatio?: number; maxAddedP99Ms?: number; label?: string }

export type Paired = {
  /** throughput ratio over every round */
  ratio: Stat
  /** the same over rounds where neither measurement was disturbed */
  clean: Stat & { pairs: number }
  /** ref's CPU per request ÷ the variant's: the throughput ratio on a saturated, undisturbed core */
  cpuRatio: Stat
}

/** Pair a variant's closed-loop measurements with the reference's of the same round. */
export function pairedRatio(measurements: Measurement[], variant: string, ref: string): Paired {
  const all: number[] = []
  const clean: number[] = []
  const cpu: number[] = []
  for (const m of measurements) {
    if (m.variant !== variant || m.kind !== 'closed') continue
    const b = measurements.find((x) => x.variant === ref && x.kind === 'closed' && x.round === m.round)
    if (!b) continue
    all.push(m.rps / b.rps)
    if (!disturbed(m) && !disturbed(b)) clean.push(m.rps / b.rps)
    cpu.push(b.gatewayCpuUsPerRequest / m.gatewayCpuUsPerRequest)
  }
  return { ratio: stat(all), clean: { ...stat(clean), pairs: clean.length }, cpuRatio: stat(cpu) }
}

export type Verdict = 'PASS' | 'MISS' | 'n/a'
export const verdictOf = (held: boolean | undefined): Verdict => (held === undefined ? 'n/a' : held ? 'PASS' : 'MISS')

/**
 * Throughput budgets are decided on the undisturbed rounds' throughput ratio;
 * when every round was disturbed by other work on the machine, on the CPU
 * ratio (CPU per request does not depend on how much of the core the gateway
 * got). A budget whose variant did not run properly (tracing inactive, errors)
 * or whose subject this build lacks (`unavailable`) is n/a, never a PASS.
 */
export function checkBudgets(
  summaries: VariantSummary[],
  measurements: Measurement[],
  rules: BudgetRule[],
  opts: { tracingActive?: (variant: string) => boolean | undefined; unavailable?: (variant: string) => string | undefined } = {},
): Budget[] {
  const out: Budget[] = []
  for (const r of rules) {
    const s = summaries.find((x) => x.id === r.variant)
    const ref = summaries.find((x) => x.id === r.ref)
    const missing = opts.unavailable?.(r.variant)
    const invalid =
      missing ??
      (!s || !ref
        ? 'not measured in this run'
        : opts.tracingActive?.(r.variant) === false
          ? 'tracing was not active (no spans reached the sink): not a valid measurement'
          : s.closed.non2xx > 0 || s.closed.errors > 0
            ? 'unexpected non-2xx answers or errors during the run'
            : undefined)
    if (r.minRatio !== undefined) {
      const what = `${r.label ?? r.variant} throughput ÷ ${r.ref}`
      const limit = `≥ ${r.minRatio.toFixed(2)}`
      if (invalid || !s || !ref) {
        out.push({ variant: r.variant, what, limit, value: NaN, held: undefined, note: invalid })
      } else {
        const p = pairedRatio(measurements, r.variant, r.ref)
        if (p.clean.pairs > 0) {
          out.push({ variant: r.variant, what, limit, value: p.clean.median, held: p.clean.median >= r.minRatio, note: `${p.clean.pairs} undisturbed round(s); CPU ratio ${n2(p.cpuRatio.median)}` })
        } else {
          out.push({
            variant: r.variant,
            what,
            limit,
            value: p.cpuRatio.median,
            held: Number.isFinite(p.cpuRatio.median) ? p.cpuRatio.median >= r.minRatio : undefined,
            note: `every round disturbed by other work: decided on the CPU ratio; throughput ratio ${n2(p.ratio.median)}`,
          })
        }
      }
    }
    if (r.maxAddedP99Ms !== undefined) {
      const what = `${r.label ?? r.variant} added open-loop p99 over ${r.ref}${s?.open ? ` at ${s.open.rate} req/s` : ''}`
      const limit = `≤ ${r.maxAddedP99Ms} ms`
      if (invalid || !s?.open || !ref?.open) {
        out.push({ variant: r.variant, what, limit, value: NaN, held: undefined, note: invalid ?? 'no open-loop measurement' })
        continue
      }
      const added = pairedAddedP99(measurements, r.variant, r.ref)
      const openErrors = s.open.non2xx > 0 || s.open.errors > 0 || s.open.dropped > 0
      if (ref.open.dropped > 0 || ref.open.errors > 0) {
        // The reference itself could not keep up with the offered rate: the rig or the machine
        // failed, and no p99 at this point says anything about the variant.
        out.push({ variant: r.variant, what, limit, value: added.all.median, held: undefined, note: `the reference ${r.ref} itself left ${ref.open.dropped} requests unanswered at this rate: not a valid latency point` })
      } else if (openErrors) {
        out.push({ variant: r.variant, what, limit, value: added.all.median, held: false, note: 'errors, unexpected non-2xx or unanswered requests in the open loop' })
      } else if (added.clean.pairs > 0) {
        out.push({ variant: r.variant, what, limit, value: added.clean.median, held: added.clean.median <= r.maxAddedP99Ms, note: `${added.clean.pairs} undisturbed round(s)` })
      } else {
        // Open-loop latency on a core others hold is their scheduling, not the gateway's: no verdict.
        out.push({
          variant: r.variant,
          what,
          limit,
          value: added.all.median,
          held: undefined,
          note: 'every round disturbed by other work on the machine: median over all rounds shown, no verdict',
        })
      }
    }
  }
  return out
}

/** Per-round p99 of the variant minus the reference's, open loop. */
export function pairedAddedP99(measurements: Measurement[], variant: string, ref: string): { all: Stat; clean: Stat & { pairs: number } } {
  const all: number[] = []
  const clean: number[] = []
  for (const m of measurements) {
    if (m.variant !== variant || m.kind !== 'open') continue
    const b = measurements.find((x) => x.variant === ref && x.kind === 'open' && x.round === m.round)
    if (!b) continue
    all.push(m.latencyMs.p99 - b.latencyMs.p99)
    if (!disturbed(m) && !disturbed(b)) clean.push(m.latencyMs.p99 - b.latencyMs.p99)
  }
  return { all: stat(all), clean: { ...stat(clean), pairs: clean.length } }
}

/** An absolute budget (memory, scrape time): value against an upper limit; NaN is n/a. */
export function limitBudget(variant: string, what: string, value: number, max: number, unit: string, note?: string): Budget {
  return { variant, what, limit: `≤ ${max} ${unit}`, value, held: Number.isFinite(value) ? value <= max : undefined, note, unit }
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
      const value = !Number.isFinite(b.value) ? '–' : b.unit ? `${b.value.toFixed(b.value >= 100 ? 0 : 2)} ${b.unit}` : b.what.includes('p99') ? `${signed(b.value, 2)} ms` : n2(b.value)
      return `- **${verdictOf(b.held)}** ${b.what} ${b.limit}: ${value}${b.note ? ` (${b.note})` : ''}`
    })
    .join('\n')
}
