// grafana/dashboard-linter's rules (docs/index.md) as tests, plus the checks
// peers learned the hard way: histogram_quantile over sum by (le), exemplars
// on the exemplar-carrying metrics, no overlapping panels.
import t from 'tap'
import { EXEMPLAR_METRICS, SCHEMA_VERSION } from '../../dashboards/src/grafana.ts'
import { dashboardQueries, loadDashboards, queryPanels, substituteVariables, variableQueries } from './assets.ts'
import { loadContract } from './contract.ts'
import { histogramQuantiles, selectors, syntaxErrors } from './promql.ts'

const dashboards = loadDashboards()
const COUNTER_SUFFIX = /_(total|count|sum|bucket)$/
const RANGE_FUNCTIONS = new Set(['rate', 'irate', 'increase'])
const RATE_INTERVAL_MARK = '7777s'

t.test('there are dashboards to lint', async (t) => {
  t.same(dashboards.map((d) => d.file), ['authgw-auth-debug.json', 'authgw-overview.json'])
})

for (const { file, dashboard: d } of dashboards) {
  t.test(`${file}: dashboard settings`, async (t) => {
    t.equal(d.editable, false, 'editable: false (provisioned, changed in code)')
    t.equal(d.id, null, 'id: null')
    t.match(d.uid, /^[a-z0-9-]{8,40}$/, 'stable uid of 8-40 chars')
    t.equal(d.schemaVersion, SCHEMA_VERSION, 'schemaVersion')
    t.ok(typeof d.title === 'string' && d.title.startsWith('Auth Gateway / '), 'title')
    t.ok(typeof d.description === 'string' && d.description.length > 0, 'description')
  })

  t.test(`${file}: template variables`, async (t) => {
    const list = (d.templating as { list: Array<Record<string, unknown>> }).list
    const datasources = list.filter((v) => v.type === 'datasource')
    t.equal(datasources.length, 1, 'exactly one datasource variable')
    t.equal(datasources[0]?.name, 'datasource')
    t.equal(datasources[0]?.query, 'prometheus')
    for (const name of ['job', 'instance']) {
      const v = list.find((x) => x.name === name)
      t.ok(v, `${name} variable`)
      if (!v) continue
      t.equal(v.type, 'query', `${name} is a query variable`)
      t.same(v.datasource, { type: 'prometheus', uid: '${datasource}' }, `${name} uses the datasource variable`)
      t.equal(v.multi, true, `${name} is multi-select`)
      t.equal(v.includeAll, true, `${name} includes All`)
      t.equal(v.allValue, '.+', `${name} All is .+`)
      t.equal(v.refresh, 2, `${name} refreshes on time-range change`)
    }
    t.equal(list[1]?.name, 'job', 'job comes right after the datasource')
    t.equal(list[2]?.name, 'instance', 'then instance')
  })

  t.test(`${file}: layout`, async (t) => {
    const ids = d.panels.map((p) => p.id)
    t.equal(new Set(ids).size, ids.length, 'unique panel ids')
    for (const p of d.panels) {
      const g = p.gridPos
      t.ok(g.x >= 0 && g.w > 0 && g.h > 0 && g.x + g.w <= 24, `"${p.title}" fits the 24-column grid (${JSON.stringify(g)})`)
    }
    for (const [i, a] of d.panels.entries()) {
      for (const b of d.panels.slice(i + 1)) {
        const overlap =
          a.gridPos.x < b.gridPos.x + b.gridPos.w &&
          b.gridPos.x < a.gridPos.x + a.gridPos.w &&
          a.gridPos.y < b.gridPos.y + b.gridPos.h &&
          b.gridPos.y < a.gridPos.y + a.gridPos.h
        if (overlap) t.fail(`"${a.title}" overlaps "${b.title}"`)
      }
    }
  })

  t.test(`${file}: panels`, async (t) => {
    for (const p of queryPanels(d)) {
      const fieldConfig = p.fieldConfig as { defaults: { unit?: string } }
      t.same(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `"${p.title}" uses \${datasource}`)
      t.ok(p.title.trim().length > 0, `panel ${p.id} has a title`)
      t.ok(typeof p.description === 'string' && p.description.trim().length > 0, `"${p.title}" has a description`)
      t.ok(fieldConfig.defaults.unit, `"${p.title}" has a unit`)
      t.ok((p.targets ?? []).length > 0, `"${p.title}" has targets`)
      for (const target of p.targets ?? []) {
        t.same(target.datasource, { type: 'prometheus', uid: '${datasource}' }, `"${p.title}" ${target.refId} uses \${datasource}`)
      }
    }
  })
}

t.test('every target', async (t) => {
  const contract = await loadContract()
  const exemplarMetrics = contract.metrics.filter((m) => m.exemplars).map((m) => (m.type === 'histogram' ? `${m.name}_bucket` : m.name))
  t.same([...EXEMPLAR_METRICS].sort(), exemplarMetrics.sort(), 'EXEMPLAR_METRICS lists the metrics created with enableExemplars')

  for (const q of dashboardQueries()) {
    const where = `${q.file} "${q.panelTitle}" ${q.refId}`
    t.same(syntaxErrors(q.expr), [], `${where} parses`)
    // Keep the picker variables as written and mark $__rate_interval with a duration no one writes by hand.
    const lint = substituteVariables(q.rawExpr, { job: '$job', instance: '$instance', route: '$route', rateInterval: RATE_INTERVAL_MARK })
    const sels = selectors(lint)
    t.ok(sels.length > 0, `${where} selects series`)
    for (const s of sels) {
      const has = (label: string) => s.matchers.some((m) => m.label === label && m.op === '=~' && m.value === `$${label}`)
      t.ok(has('job') && has('instance'), `${where}: ${s.text} has job=~"$job" and instance=~"$instance"`)
      if (s.range !== undefined) t.equal(s.range, RATE_INTERVAL_MARK, `${where}: ${s.name} uses [$__rate_interval]`)
      if (COUNTER_SUFFIX.test(s.name)) {
        t.ok(s.fn && RANGE_FUNCTIONS.has(s.fn), `${where}: counter ${s.name} only inside rate/irate/increase (got ${s.fn ?? 'none'})`)
      }
    }
    for (const h of histogramQuantiles(q.expr)) {
      t.ok(h.aggregation === 'sum' && h.by.includes('le'), `${where}: histogram_quantile over sum by (le …): ${h.text}`)
    }
    const onExemplarMetric = sels.some((s) => (EXEMPLAR_METRICS as readonly string[]).includes(s.name))
    t.equal(q.exemplar, onExemplarMetric && !q.instant, `${where}: exemplar is ${onExemplarMetric && !q.instant}`)
  }
})

t.test('variable queries select existing series with valid PromQL', async (t) => {
  const contract = await loadContract()
  for (const v of variableQueries()) {
    t.same(syntaxErrors(v.expr), [], `${v.dashboard} $${v.name} parses`)
    for (const s of selectors(v.expr)) t.ok(contract.seriesNames.has(s.name), `${v.dashboard} $${v.name} selects ${s.name}`)
  }
  t.throws(() => substituteVariables('rate(x[$__unknown])'), /unknown Grafana variable/)
})
