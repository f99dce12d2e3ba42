// The benchmark's verdict logic (bench/report.ts) on hand-made measurements:
// PASS/MISS/n/a for ratio, p99 and absolute budgets, and the interleaving of
// rounds. No timing, no processes: the numbers are given, the verdicts checked.
import t from 'tap'
import { budgetLines, checkBudgets, disturbed, limitBudget, pairedRatio, roundOrder, summarise, verdictOf } from '../../bench/report.ts'
import type { BudgetRule, Measurement } from '../../bench/report.ts'

const latency = (p99: number) => ({ p50: p99 / 2, p90: p99 * 0.8, p99, p999: p99 * 1.5, max: p99 * 2, mean: p99 / 2 })

/** A measurement; clean (undisturbed) unless `foreign` takes part of the gateway core. */
function m(variant: string, round: number, rps: number, cpuUs: number, opts: { kind?: 'closed' | 'open'; p99?: number; foreign?: number; status?: Record<string, number> } = {}): Measurement {
  const kind = opts.kind ?? 'closed'
  return {
    round,
    variant,
    kind,
    rps,
    requests: rps * 8,
    latencyMs: latency(opts.p99 ?? 1),
    status: opts.status ?? { 200: rps * 8 },
    errors: 0,
    dropped: 0,
    gatewayCpuUsPerRequest: cpuUs,
    gatewayUtilisation: kind === 'closed' ? 0.99 : 0.5,
    rigUtilisation: 0.5,
    dbCpuUsPerRequest: 0,
    foreignGatewayCore: opts.foreign ?? 0,
    foreignRigCore: 0,
    steal: 0,
    attempts: 1,
    cpuTicks: {},
  }
}

const variants = [
  { id: 'a', label: 'lean' },
  { id: 'b', label: 'jwt' },
  { id: 'e1', label: 'trace 1 %' },
]

t.test('interleaving: each round rotates the order, every variant once per round, each in every position', async (t) => {
  const ids = ['a', 'b', 'c', 'd']
  const rounds = [1, 2, 3, 4].map((r) => roundOrder(ids, r))
  t.same(rounds[0], ['a', 'b', 'c', 'd'], 'round 1 keeps the declared order')
  t.same(rounds[1], ['b', 'c', 'd', 'a'], 'round 2 starts one later')
  for (const order of rounds) t.same([...order].sort(), ids, 'every variant exactly once')
  for (let pos = 0; pos < ids.length; pos++) {
    t.same(new Set(rounds.map((o) => o[pos])).size, ids.length, `position ${pos} is held by a different variant each round`)
  }
})

t.test('a ratio budget passes or misses on the undisturbed rounds, paired by round', async (t) => {
  // Round 2's reference is slow; pairing by round keeps b's ratio at 0.9 in every round.
  const ms = [m('a', 1, 10_000, 50), m('b', 1, 9_000, 55), m('a', 2, 8_000, 50), m('b', 2, 7_200, 55), m('a', 3, 10_000, 50), m('b', 3, 9_000, 56)]
  const p = pairedRatio(ms, 'b', 'a')
  t.equal(p.clean.pairs, 3)
  t.equal(Number(p.clean.median.toFixed(3)), 0.9)
  const summaries = summarise(variants, ms, 'a', undefined)
  const pass = checkBudgets(summaries, ms, [{ variant: 'b', ref: 'a', minRatio: 0.9 }])
  t.equal(verdictOf(pass[0]?.held), 'PASS', '0.90 ≥ 0.90')
  const miss = checkBudgets(summaries, ms, [{ variant: 'b', ref: 'a', minRatio: 0.95 }])
  t.equal(verdictOf(miss[0]?.held), 'MISS', '0.90 < 0.95')
  t.match(budgetLines(miss), /\*\*MISS\*\* b throughput ÷ a ≥ 0\.95: 0\.90/)
})

t.test('a budget against another variant (tracing ÷ untraced JWT) uses that variant as the reference', async (t) => {
  const ms = [m('a', 1, 10_000, 50), m('b', 1, 8_000, 60), m('e1', 1, 7_800, 62)]
  const budgets = checkBudgets(summarise(variants, ms, 'a', undefined), ms, [{ variant: 'e1', ref: 'b', minRatio: 0.95 }])
  t.equal(Number(budgets[0]?.value.toFixed(3)), 0.975)
  t.equal(budgets[0]?.held, true)
})

t.test('every round disturbed: decided on the CPU ratio, and said so', async (t) => {
  const busy = 0.3
  t.ok(disturbed(m('a', 1, 1, 1, { foreign: busy })), 'others on the gateway core disturb a closed-loop measurement')
  // Throughput says 1.0 (both starved alike), CPU per request says 50/80 = 0.625.
  const ms = [m('a', 1, 5_000, 50, { foreign: busy }), m('b', 1, 5_000, 80, { foreign: busy })]
  const [b] = checkBudgets(summarise(variants, ms, 'a', undefined), ms, [{ variant: 'b', ref: 'a', minRatio: 0.9 }])
  t.equal(b?.held, false, 'MISS on the CPU ratio although the throughput ratio is 1.0')
  t.equal(b?.value, 0.625)
  t.match(b?.note, /CPU ratio/)
})

t.test('n/a is never a pass: unavailable subjects, inactive tracing, unexpected errors', async (t) => {
  const ms = [m('a', 1, 10_000, 50), m('b', 1, 9_500, 52), m('e1', 1, 9_400, 53)]
  const summaries = summarise(variants, ms, 'a', undefined)
  const rules: BudgetRule[] = [
    { variant: 'b', ref: 'a', minRatio: 0.9 },
    { variant: 'e1', ref: 'b', minRatio: 0.95 },
    { variant: 'd-redis', ref: 'a', minRatio: 0.5 },
  ]
  const out = checkBudgets(summaries, ms, rules, {
    tracingActive: (id) => (id === 'e1' ? false : undefined),
    unavailable: (id) => (id === 'd-redis' ? 'n/a: no redis coherence mode' : undefined),
  })
  t.same(
    out.map((b) => verdictOf(b.held)),
    ['PASS', 'n/a', 'n/a'],
  )
  t.match(out[1]?.note, /tracing was not active/)
  t.match(out[2]?.note, /redis/)
  t.match(budgetLines(out), /\*\*n\/a\*\* d-redis/)

  const errs = [m('a', 1, 10_000, 50), m('b', 1, 9_500, 52, { status: { 200: 70_000, 502: 6_000 } })]
  const [e] = checkBudgets(summarise(variants, errs, 'a', undefined), errs, [{ variant: 'b', ref: 'a', minRatio: 0.9 }])
  t.equal(e?.held, undefined, 'a 502 during the run voids the ratio')
})

t.test('planned denials: 401 is expected on a denied load, anything else is not', async (t) => {
  const ms = [m('a', 1, 10_000, 50), m('b10', 1, 9_000, 55, { status: { 200: 64_800, 401: 7_200 } })]
  const [s] = summarise([{ id: 'b10', label: 'denied', deniedShare: 0.1 }], ms, 'a', undefined)
  t.equal(s?.closed.non2xx, 0)
  t.equal(s?.closed.deniedShare, 0.1)
  const [plain] = summarise([{ id: 'b10', label: 'no denials planned' }], ms, 'a', undefined)
  t.equal(plain?.closed.non2xx, 7_200, 'without a plan the same 401s are unexpected')
})

t.test('added p99 at 50 %: paired by round, ≤ limit passes', async (t) => {
  const open = (v: string, r: number, p99: number) => m(v, r, 5_000, 50, { kind: 'open', p99 })
  const ms = [m('a', 1, 10_000, 50), m('b', 1, 9_500, 52), open('a', 1, 2.0), open('b', 1, 2.6), m('a', 2, 10_000, 50), m('b', 2, 9_500, 52), open('a', 2, 9.0), open('b', 2, 10.5)]
  const summaries = summarise(variants, ms, 'a', 5_000)
  const [, p99] = checkBudgets(summaries, ms, [{ variant: 'b', ref: 'a', minRatio: 0.9, maxAddedP99Ms: 1 }])
  // Per round: +0.6 and +1.5 → median +1.05 ms.
  t.equal(Number(p99?.value.toFixed(2)), 1.05)
  t.equal(verdictOf(p99?.held), 'MISS')
})

t.test('added p99 is n/a when the reference itself could not hold the rate', async (t) => {
  const open = (v: string, p99: number, dropped: number) => ({ ...m(v, 1, 5_000, 50, { kind: 'open', p99 }), dropped })
  const ms = [m('a', 1, 10_000, 50), m('b', 1, 9_500, 52), open('a', 3000, 900), open('b', 4000, 1200)]
  const [, p99] = checkBudgets(summarise(variants, ms, 'a', 5_000), ms, [{ variant: 'b', ref: 'a', minRatio: 0.9, maxAddedP99Ms: 1 }])
  t.equal(verdictOf(p99?.held), 'n/a')
  t.match(p99?.note, /reference a itself left 900 requests unanswered/)
})

t.test('added p99 with every round disturbed is n/a, whatever its value', async (t) => {
  const busy = { foreign: 0.5 }
  const open = (v: string, p99: number) => m(v, 1, 500, 50, { kind: 'open', p99, ...busy })
  const ms = [m('a', 1, 10_000, 50, busy), m('b', 1, 9_500, 52, busy), open('a', 900), open('b', 500)]
  const [, p99] = checkBudgets(summarise(variants, ms, 'a', 500), ms, [{ variant: 'b', ref: 'a', minRatio: 0.9, maxAddedP99Ms: 1 }])
  t.equal(p99?.value, -400)
  t.equal(verdictOf(p99?.held), 'n/a', 'a negative added p99 on a taken core is no PASS')
})

t.test('absolute budgets: memory and scrape time', async (t) => {
  t.equal(verdictOf(limitBudget('memory', 'RSS', 250, 300, 'MiB').held), 'PASS')
  t.equal(verdictOf(limitBudget('memory', 'RSS', 300.5, 300, 'MiB').held), 'MISS')
  t.equal(verdictOf(limitBudget('scrape', 'scrape', Number.NaN, 10, 'ms').held), 'n/a', 'not measured is n/a')
  t.match(budgetLines([limitBudget('scrape', '/metrics scrape', 4.25, 10, 'ms')]), /\*\*PASS\*\* \/metrics scrape ≤ 10 ms: 4\.25 ms/)
})
