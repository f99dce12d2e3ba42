// The rule files: promtool check and unit tests, a unit test for every alert
// (firing and quiet) and every record, and mixin conventions for alerts.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { RUNBOOK_URL } from '../../alerts/src/thresholds.ts'
import { ALERT_TESTS_DIR, ALERTS_DIR, alertNames, alertRules, loadRuleFiles, recordingRules, ruleFiles } from './assets.ts'
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

t.test('promtool test rules alerts/tests/*.test.yml', { skip: bin ? false : PROMTOOL_MISSING }, async (t) => {
  if (!bin) return
  const run = promtool(bin, ['test', 'rules', ...testFiles.map((f) => join(ALERT_TESTS_DIR, f))])
  t.equal(run.code, 0, run.output)
  t.notMatch(run.output, /FAILED/)
})

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
    t.match(a.annotations.summary, /^[A-Z][^{}]*\.$/, `${where}: summary is a static sentence`)
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
  t.same([...critical].sort(), ['AuthGatewayConfigDrift', 'AuthGatewayErrorBudgetBurn', 'AuthGatewayLatencyBudgetBurn', 'AuthGatewayMetricsAbsent'])
})
