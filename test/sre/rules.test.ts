// The rule files: promtool check rules, a unit test (run by .ci/run) for every alert
// (firing and quiet) and every record, and mixin conventions for alerts.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { spawnSync } from 'node:child_process'
import { RUNBOOK_URL } from '../../alerts/src/thresholds.ts'
import { guideEntries } from '../../src/reason-guide.ts'
import { ALERT_TESTS_DIR, ALERTS_DIR, alertNames, alertRules, loadRuleFiles, recordingRules, REPO_ROOT, ruleExpressions, ruleFiles } from './assets.ts'
import { selectors } from './promql.ts'
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts'

type AlertTest = { eval_time: string; alertname: string; exp_alerts?: unknown[] }
type UnitTestFile = {
  rule_files: string[]
  group_eval_order?: string[]
  tests: Array<{ name?: string; alert_rule_test?: AlertTest[]; promql_expr_test?: Array<{ expr: string }> }>
}

const testFiles = readdirSync(ALERT_TESTS_DIR).filter((f) => f.endsWith('.test.yml')).sort()
const unitTests = testFiles.map((file) => ({ file, doc: parse(readFileSync(join(ALERT_TESTS_DIR, file), 'utf8')) as UnitTestFile }))
const bin = findPromtool()

t.test('rule files and unit tests exist', async (t) => {
  t.same(ruleFiles(), ['authgw.alerts.yml', 'authgw.rules.yml'])
  t.ok(testFiles.length >= 4, testFiles.join(', '))
})

t.test('promtool check rules alerts/*.yml', { skip: bin ? false : PROMTOOL_MISSING }, async (t) => {
  if (!bin) return
  const run = promtool(bin, ['check', 'rules', ...ruleFiles().map((f) => join(ALERTS_DIR, f))])
  t.equal(run.code, 0, run.output)
})

// The unit tests themselves run once, in .ci/run (`promtool test rules
// alerts/tests/*.test.yml`), where promtool's own multi-line FAILED report is
// printed as is; here tap flattened it into one test name. This file checks
// that the unit tests exist and cover every alert and record.

// Without group_eval_order promtool runs the groups in random order, and an
// alert sees a record from this cycle or the last one: flaky `for` timings.
t.test('every unit test file evaluates records before alerts', async (t) => {
  const files = loadRuleFiles()
  const groupsOf = (file: string) => files.find((f) => f.file === file)?.groups.map((g) => g.name) ?? []
  const order = [...groupsOf('authgw.rules.yml'), ...groupsOf('authgw.alerts.yml')]
  for (const { file, doc } of unitTests) {
    t.ok(doc.rule_files.every((r) => r.startsWith('../')), `${file}: rule_files relative to the test file`)
    t.same(doc.group_eval_order, order, `${file}: group_eval_order`)
  }
})

t.test('every alert has a firing and a quiet unit test', async (t) => {
  const cases = unitTests.flatMap(({ doc }) => doc.tests.flatMap((x) => x.alert_rule_test ?? []))
  for (const name of alertNames()) {
    const mine = cases.filter((c) => c.alertname === name)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${name} fires in a test`)
    t.ok(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${name} stays quiet in a test`)
  }
  for (const c of cases) t.ok(alertNames().includes(c.alertname), `tested alert ${c.alertname} exists`)
})

t.test('every recording rule has a promql_expr_test', async (t) => {
  const exprs = unitTests.flatMap(({ doc }) => doc.tests.flatMap((x) => x.promql_expr_test ?? []).map((e) => e.expr))
  for (const r of recordingRules()) {
    const windows = r.name.match(/ratio_rate(5m|30m|1h|2h|6h|1d|3d)$/)
    const covered = exprs.some((e) => e.includes(r.name) || (windows !== null && e.includes(r.name.replace(/\d+[mhd]$/, '(5m|30m|1h|2h|6h|1d|3d)'))))
    t.ok(covered, r.name)
  }
})

t.test('recording rule names follow level:metric:operations', async (t) => {
  for (const r of recordingRules()) {
    t.match(r.name, /^[a-z_]+:authgw_[a-z0-9_]+:(ratio_)?(rate|increase)\d+[mhd]$/, r.name)
    t.notMatch(r.name, /_total:/, `${r.name} drops _total under rate`)
  }
})

t.test('alerts follow the mixin conventions', async (t) => {
  const groups = loadRuleFiles().find((f) => f.file === 'authgw.alerts.yml')?.groups.map((g) => g.name)
  t.same(groups, ['authgw.slo', 'authgw.alerts'])
  for (const a of alertRules()) {
    const where = `${a.name}${a.labels.long ? ` ${a.labels.long}/${a.labels.short}` : ''}${a.labels.field ? ` ${a.labels.field}` : ''}`
    t.match(a.name, /^AuthGateway[A-Z][A-Za-z]+$/, `${where}: name`)
    t.ok(['critical', 'warning', 'info'].includes(a.labels.severity ?? ''), `${where}: severity ${a.labels.severity}`)
    t.match(a.for, /^\d+[mh]$/, `${where}: for`)
    t.same(Object.keys(a.annotations).sort(), ['description', 'runbook_url', 'summary'], `${where}: annotations`)
    // One sentence: it may name the dominant reason through a template (issue 15), but starts and ends as prose.
    t.match(a.annotations.summary, /^[A-Z][^\n]*\.$/, `${where}: summary is one sentence`)
    // absent() has no labels or value to show.
    if (!a.expr.startsWith('absent(')) t.match(a.annotations.description, /\{\{ \$(labels|value)/, `${where}: description is templated`)
    t.equal(a.annotations.runbook_url, `${RUNBOOK_URL}#alert-name-${a.name.toLowerCase()}`, `${where}: runbook_url`)
    if (a.group === 'authgw.slo') {
      t.ok(a.labels.long && a.labels.short && a.labels.slo, `${where}: burn-rate labels`)
      t.notMatch(a.expr, /unauthorized|401/, `${where}: SLO alerts do not count 401s`)
    }
  }
  const security = alertRules().filter((a) => a.labels.team === 'security')
  t.same(security.map((a) => a.name), ['AuthGatewaySignInFailureSurge'], 'credential stuffing goes to security')
  for (const a of security) t.not(a.labels.severity, 'critical', 'security alerts do not page')
  const critical = new Set(alertRules().filter((a) => a.labels.severity === 'critical').map((a) => a.name))
  t.same([...critical].sort(), [
    'AuthGatewayConfigDrift',
    'AuthGatewayErrorBudgetBurn',
    'AuthGatewayLatencyBudgetBurn',
    'AuthGatewayMetricsAbsent',
    'AuthGatewayProbeFailing',
    'AuthGatewayUnauthorizedOutage',
  ])
})

/** Series whose `reason` (or the 5xx behind them) an on-call engineer needs named. */
const REASON_SERIES = /authgw_unauthorized|authgw_session_nulls|authgw_jwt_validation_failures|authgw_auth_unavailable|authgw_upstream_failures|authgw_probe_failures|authgw_slo_errors|store_unavailable/

t.test('every 401/503 alert names the dominant reason, its likely cause and first check, and links the runbook', async (t) => {
  const guideTexts = guideEntries().map((e) => e.guide.cause)
  const reasonAlerts = alertRules().filter((a) => REASON_SERIES.test(a.expr))
  t.same(
    [...new Set(reasonAlerts.map((a) => a.name))].sort(),
    [
      'AuthGatewayErrorBudgetBurn',
      'AuthGatewayJwksUnavailable',
      'AuthGatewayJwtClaimMismatch',
      'AuthGatewayJwtExpiredSurge',
      'AuthGatewayJwtKeyMismatch',
      'AuthGatewayProbeFailing',
      'AuthGatewaySessionBadSignature',
      'AuthGatewaySessionCookieMissing',
      'AuthGatewayStoreUnavailable',
      'AuthGatewayUnauthorizedOutage',
      'AuthGatewayUnauthorizedSpike',
      'AuthGatewayUpstreamFailures',
    ],
    'the alerts on 401, 503 and upstream-failure series',
  )
  for (const a of reasonAlerts) {
    const where = `${a.name}${a.labels.long ? ` ${a.labels.long}/${a.labels.short}` : ''}`
    const { summary = '', description = '' } = a.annotations
    // The reason is a template variable, a label, or (single-reason alerts) the literal value.
    t.match(summary, /\$reason|\$labels\.reason|bad_signature|store_unavailable|jwks_unavailable/, `${where}: summary names the reason`)
    t.match(summary, /humanizePercentage|of requests/, `${where}: summary gives a share`)
    t.match(description, /Likely cause: .+ First check: /, `${where}: description gives the likely cause and first check`)
    t.ok(guideTexts.some((cause) => description.includes(cause)), `${where}: the cause comes from src/reason-guide.ts`)
    t.ok(description.endsWith(` Runbook: ${a.annotations.runbook_url}`), `${where}: description ends with the runbook link`)
  }
})

const seconds = (d: string) => Number(d.slice(0, -1)) * { s: 1, m: 60, h: 3600, d: 86400 }[d.slice(-1) as 's' | 'm' | 'h' | 'd']

// A rate over days of raw series reads every sample of every series in the
// window at every evaluation; the same window over a recorded per-job 5m rate
// reads one series. Raw windows stop at an hour.
t.test('no rule reads raw series over more than an hour', async (t) => {
  const recorded = new Set(recordingRules().map((r) => r.name))
  let long = 0
  for (const r of ruleExpressions()) {
    for (const s of selectors(r.expr)) {
      if (s.range === undefined) continue
      const raw = !recorded.has(s.name)
      if (seconds(s.range) > 3600) {
        long++
        t.notOk(raw, `${r.kind} ${r.name}: ${s.text}[${s.range}] reads a recorded series, not raw ones`)
      }
    }
  }
  t.ok(long >= 8, `${long} windows over an hour, all on recorded series`)
})

t.test('the check above catches a 1d rate of raw series', async (t) => {
  const [s] = selectors('sum by (job) (rate(authgw_http_request_duration_seconds_count{job="authgw"}[1d]))')
  t.equal(s?.range, '1d')
  t.equal(seconds(s?.range ?? '0s'), 86400)
})

// A share of little traffic swings on a handful of events: every ratio alert
// also requires a count or a rate of its own events.
t.test('every ratio alert has a minimum-traffic condition', async (t) => {
  const ratio = alertRules().filter((a) => /ratio_rate|\/ on|\/\n|group_left/.test(a.expr))
  t.ok(ratio.length >= 10, `${ratio.length} ratio alerts`)
  for (const a of ratio) {
    const where = `${a.name}${a.labels.long ? ` ${a.labels.long}/${a.labels.short}` : ''}`
    const floor = /\* \d+ >= \d+|:rate\w+ >=? [\d.]+|\) > [\d.]+\nand on \(job\)/.test(a.expr)
    t.ok(floor, `${where}: has a count floor (… * seconds >= n) or a rate floor`)
  }
})

// The routing tree of deploy/alertmanager/alertmanager.yml, asked with amtool
// (prometheus-alertmanager): pages reach the pager, security its receiver.
const amtool = spawnSync('amtool', ['--version'], { encoding: 'utf8' }).status === 0
t.test('alert labels route to the receivers the runbook promises (amtool)', { skip: amtool ? false : 'amtool not found: apt-get install prometheus-alertmanager' }, async (t) => {
  const config = join(REPO_ROOT, 'deploy', 'alertmanager', 'alertmanager.yml')
  for (const a of alertRules()) {
    const labels = Object.entries({ alertname: a.name, job: 'authgw', ...a.labels }).map(([k, v]) => `${k}=${v}`)
    const run = spawnSync('amtool', ['config', 'routes', 'test', `--config.file=${config}`, ...labels], { encoding: 'utf8' })
    const receiver = run.stdout.trim()
    const want = a.labels.team === 'security' ? 'security' : a.labels.severity === 'critical' ? 'pager' : 'tickets'
    t.equal(receiver, want, `${labels.join(' ')} → ${want}`)
  }
})
