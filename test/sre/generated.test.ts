// The committed dashboards, rule files and runbook threshold tables are what
// their generators produce. Fix a failure by running the generator named in
// the message, never by editing the output.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { buildDashboards, renderDashboard } from '../../dashboards/src/build.ts'
import { renderGeneratedTests, renderRuleFiles, renderRunbook, RUNBOOK_FILE } from '../../alerts/src/build.ts'
import { ALERTS_DIR, DASHBOARDS_DIR } from './assets.ts'

t.test('dashboards/*.json match dashboards/src (run `npx node dashboards/src/build.ts`)', async (t) => {
  for (const built of buildDashboards()) {
    const text = readFileSync(join(DASHBOARDS_DIR, built.file), 'utf8')
    t.same(JSON.parse(text), built.dashboard, `${built.file} deep-equals the generated dashboard`)
    t.equal(text, renderDashboard(built), `${built.file} is formatted as the generator writes it`)
  }
})

t.test('alerts/*.yml match alerts/src (run `npx node alerts/src/build.ts`)', async (t) => {
  for (const [file, content] of Object.entries(renderRuleFiles())) {
    const text = readFileSync(join(ALERTS_DIR, file), 'utf8')
    t.same(parse(text), parse(content), `${file} deep-equals the generated rules`)
    t.equal(text, content, `${file} is formatted as the generator writes it`)
  }
})

t.test('runbook threshold tables match alerts/src/thresholds.ts (run `npx node alerts/src/build.ts`)', async (t) => {
  const runbook = readFileSync(join(ALERTS_DIR, RUNBOOK_FILE), 'utf8')
  t.equal(runbook, renderRunbook(runbook))
})

t.test('generated promtool tests match their generators (run `npx node alerts/src/build.ts`)', async (t) => {
  const generated = Object.entries(renderGeneratedTests())
  t.ok(generated.length > 0)
  for (const [file, content] of generated) {
    t.equal(readFileSync(join(ALERTS_DIR, file), 'utf8'), content, `${file} is what alerts/src/quiet-day.ts writes`)
  }
})
