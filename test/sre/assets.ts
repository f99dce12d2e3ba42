// Every PromQL expression the repo ships, loaded from the committed files:
// dashboard targets (with Grafana variables substituted), variable and
// annotation queries, recording rules and alerts. Shared by the static tests
// here and by tests that run the same queries against a live Prometheus.
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { templateQueries } from '../../alerts/src/annotations.ts'
import { buildDashboards } from '../../dashboards/src/build.ts'
import type { Dashboard, Panel, Target } from '../../dashboards/src/grafana.ts'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const DASHBOARDS_DIR = join(REPO_ROOT, 'dashboards')
export const ALERTS_DIR = join(REPO_ROOT, 'alerts')
export const ALERT_TESTS_DIR = join(ALERTS_DIR, 'tests')

/** Values for Grafana's variables when a query leaves Grafana. */
export type Substitutions = {
  job: string
  instance: string
  route: string
  rateInterval: string
  interval: string
  range: string
}

/** `$job` etc. match everything; `$__rate_interval` is 4 × a 15 s scrape interval. */
export const DEFAULT_SUBSTITUTIONS: Substitutions = {
  job: '.+',
  instance: '.+',
  route: '.+',
  rateInterval: '1m',
  interval: '15s',
  range: '5m',
}

const VARIABLES: Record<string, keyof Substitutions> = {
  job: 'job',
  instance: 'instance',
  route: 'route',
  __rate_interval: 'rateInterval',
  __interval: 'interval',
  __range: 'range',
}

/** Replaces `$name` and `${name}` (and `${name:format}`); throws on a variable it does not know. */
export function substituteVariables(expr: string, vars: Partial<Substitutions> = {}): string {
  const values = { ...DEFAULT_SUBSTITUTIONS, ...vars }
  return expr.replace(/\$(?:\{(\w+)(?::\w+)?\}|(\w+))/g, (whole, braced?: string, bare?: string) => {
    const key = VARIABLES[(braced ?? bare) as string]
    if (!key) throw new Error(`unknown Grafana variable ${whole} in ${expr}`)
    return values[key]
  })
}

export type DashboardFile = { file: string; dashboard: Dashboard }

export function loadDashboards(): DashboardFile[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as Dashboard }))
}

/** Panels that carry queries (rows excluded). */
export function queryPanels(d: Dashboard): Panel[] {
  return d.panels.filter((p) => p.type !== 'row')
}

export type DashboardQuery = {
  dashboard: string
  file: string
  panelId: number
  panelTitle: string
  refId: string
  /** As stored in the dashboard, with Grafana variables. */
  rawExpr: string
  /** Ready for Prometheus. */
  expr: string
  instant: boolean
  exemplar: boolean
  /** The query may legitimately return no series (declared in dashboards/src). */
  mayBeEmpty: boolean
  target: Target
}

export function dashboardQueries(vars: Partial<Substitutions> = {}): DashboardQuery[] {
  const declared = new Map(buildDashboards().map((b) => [b.file, new Set(b.mayBeEmpty)]))
  const out: DashboardQuery[] = []
  for (const { file, dashboard } of loadDashboards()) {
    for (const panel of queryPanels(dashboard)) {
      for (const target of panel.targets ?? []) {
        out.push({
          dashboard: dashboard.uid,
          file,
          panelId: panel.id,
          panelTitle: panel.title,
          refId: target.refId,
          rawExpr: target.expr,
          expr: substituteVariables(target.expr, vars),
          instant: target.instant,
          exemplar: target.exemplar,
          mayBeEmpty: declared.get(file)?.has(`${panel.id}/${target.refId}`) ?? false,
          target,
        })
      }
    }
  }
  return out
}

type TemplateVariable = { name: string; type: string; definition?: string; query?: unknown }

export type VariableQuery = { dashboard: string; name: string; rawQuery: string; expr: string }

/** The series selector inside each `label_values(selector, label)` variable query. */
export function variableQueries(vars: Partial<Substitutions> = {}): VariableQuery[] {
  const out: VariableQuery[] = []
  for (const { dashboard } of loadDashboards()) {
    const list = (dashboard.templating as { list: TemplateVariable[] }).list
    for (const v of list.filter((x) => x.type === 'query')) {
      const rawQuery = v.definition ?? ''
      const m = /^label_values\((.+),\s*(\w+)\)$/.exec(rawQuery)
      if (!m?.[1]) throw new Error(`${dashboard.uid}: variable ${v.name} is not label_values(selector, label): ${rawQuery}`)
      out.push({ dashboard: dashboard.uid, name: v.name, rawQuery, expr: substituteVariables(m[1], vars) })
    }
  }
  return out
}

export type AnnotationQuery = { dashboard: string; name: string; rawExpr: string; expr: string }

export function annotationQueries(vars: Partial<Substitutions> = {}): AnnotationQuery[] {
  const out: AnnotationQuery[] = []
  for (const { dashboard } of loadDashboards()) {
    const list = (dashboard.annotations as { list: Array<{ name: string; expr?: string }> }).list
    for (const a of list.filter((x) => x.expr)) {
      out.push({ dashboard: dashboard.uid, name: a.name, rawExpr: a.expr as string, expr: substituteVariables(a.expr as string, vars) })
    }
  }
  return out
}

export type RuleFileGroup = {
  name: string
  interval?: string
  rules: Array<{
    record?: string
    alert?: string
    expr: string
    for?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }>
}

export type RuleFile = { file: string; groups: RuleFileGroup[] }

export function ruleFiles(): string[] {
  return readdirSync(ALERTS_DIR)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort()
}

export function loadRuleFiles(): RuleFile[] {
  return ruleFiles().map((file) => ({
    file,
    groups: (parse(readFileSync(join(ALERTS_DIR, file), 'utf8')) as { groups: RuleFileGroup[] }).groups,
  }))
}

export type RuleExpr = {
  file: string
  group: string
  kind: 'record' | 'alert'
  name: string
  expr: string
  for: string | undefined
  labels: Record<string, string>
  annotations: Record<string, string>
}

/** Every recording rule and alert, in file order. Alerts may repeat a name (tiers). */
export function ruleExpressions(): RuleExpr[] {
  const out: RuleExpr[] = []
  for (const { file, groups } of loadRuleFiles()) {
    for (const g of groups) {
      for (const r of g.rules) {
        out.push({
          file,
          group: g.name,
          kind: r.record ? 'record' : 'alert',
          name: (r.record ?? r.alert) as string,
          expr: r.expr,
          for: r.for,
          labels: r.labels ?? {},
          annotations: r.annotations ?? {},
        })
      }
    }
  }
  return out
}

export const recordingRules = (): RuleExpr[] => ruleExpressions().filter((r) => r.kind === 'record')
export const alertRules = (): RuleExpr[] => ruleExpressions().filter((r) => r.kind === 'alert')
export const alertNames = (): string[] => [...new Set(alertRules().map((r) => r.name))]

/**
 * The queries inside alert annotations (`{{ with printf \`…\` $labels.job | query }}`),
 * with the job filled in (and `session` for a further label argument): Prometheus
 * runs them when the alert is active.
 */
export function annotationTemplateQueries(job = 'authgw'): Array<{ source: string; expr: string }> {
  const out: Array<{ source: string; expr: string }> = []
  for (const r of alertRules()) {
    for (const [key, template] of Object.entries(r.annotations)) {
      const queries = templateQueries(template, job, ['session'])
      queries.forEach((expr, i) => out.push({ source: `${r.file} ${r.name}${r.labels.long ? ` ${r.labels.long}/${r.labels.short}` : ''} ${key} query ${i + 1}`, expr }))
    }
  }
  return out
}

/** Every PromQL expression in dashboards/ and alerts/, ready for Prometheus, with where it came from. */
export function allExpressions(vars: Partial<Substitutions> = {}): Array<{ source: string; expr: string }> {
  return [
    ...annotationTemplateQueries(),
    ...dashboardQueries(vars).map((q) => ({ source: `${q.file} panel ${q.panelId} "${q.panelTitle}" ${q.refId}`, expr: q.expr })),
    ...variableQueries(vars).map((q) => ({ source: `${q.dashboard} variable ${q.name}`, expr: q.expr })),
    ...annotationQueries(vars).map((q) => ({ source: `${q.dashboard} annotation ${q.name}`, expr: q.expr })),
    ...ruleExpressions().map((r) => ({ source: `${r.file} ${r.group} ${r.kind} ${r.name}`, expr: r.expr })),
  ]
}
