// Just enough of Grafana's classic dashboard JSON (schemaVersion 39) to build
// the gateway's dashboards without an SDK: panels, targets, variables and an
// auto-layout on the 24-column grid.

export const SCHEMA_VERSION = 39

/** Every panel and target points at the dashboard's datasource variable. */
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const

/** Matchers every target carries, so the job and instance pickers apply everywhere. */
export const SCOPE = 'job=~"$job",instance=~"$instance"'

/** `metric{job=~"$job",instance=~"$instance",…}` */
export function sel(metric: string, ...matchers: string[]): string {
  return `${metric}{${[SCOPE, ...matchers].join(',')}}`
}

/** `rate(metric{…}[$__rate_interval])` */
export function rate(metric: string, ...matchers: string[]): string {
  return `rate(${sel(metric, ...matchers)}[$__rate_interval])`
}

/** `increase(metric{…}[$__rate_interval])` */
export function increase(metric: string, ...matchers: string[]): string {
  return `increase(${sel(metric, ...matchers)}[$__rate_interval])`
}

/** p-quantile of a histogram, aggregated by `le` (and `by`) before the quantile. */
export function quantile(q: number, histogram: string, by: string[] = [], ...matchers: string[]): string {
  return `histogram_quantile(${q}, sum by (${['le', ...by].join(', ')}) (${rate(`${histogram}_bucket`, ...matchers)}))`
}

// Metrics created with `enableExemplars` in src/telemetry/metrics.ts; their
// range queries ask Grafana for exemplars (test/sre/dashboards.test.ts checks the list).
export const EXEMPLAR_METRICS = [
  'authgw_http_request_duration_seconds_bucket',
  'authgw_unauthorized_total',
  'authgw_jwt_validation_failures_total',
  'authgw_token_issue_failures_total',
  'authgw_upstream_failures_total',
  'authgw_auth_unavailable_total',
  'authgw_oauth_callbacks_total',
] as const

export type TargetSpec = {
  expr: string
  legend?: string
  instant?: boolean
  format?: 'time_series' | 'table' | 'heatmap'
  /** The query may legitimately return nothing (e.g. before the first JWKS refresh). */
  mayBeEmpty?: boolean
}

export type PanelType = 'timeseries' | 'stat' | 'table' | 'heatmap'

export type PanelSpec = {
  type: PanelType
  title: string
  description: string
  unit: string
  targets: Array<TargetSpec | string>
  w?: number
  h?: number
  /** timeseries: stack the series (for parts of a whole). */
  stack?: boolean
  /** stat: [value, color] steps after a green base. */
  thresholds?: Array<[number, string]>
  min?: number
  max?: number
  decimals?: number
  /** table: keep the Value column (rates); info tables (`*_info`) show labels only. */
  tableValue?: boolean
}

export type Target = {
  datasource: typeof DATASOURCE
  editorMode: 'code'
  expr: string
  exemplar: boolean
  format: 'time_series' | 'table' | 'heatmap'
  instant: boolean
  legendFormat: string
  range: boolean
  refId: string
}

export type Panel = Record<string, unknown> & {
  id: number
  type: string
  title: string
  gridPos: { h: number; w: number; x: number; y: number }
  targets?: Target[]
}

export type Dashboard = Record<string, unknown> & { uid: string; title: string; panels: Panel[] }

function target(spec: TargetSpec | string, i: number): Target {
  const s = typeof spec === 'string' ? { expr: spec } : spec
  const instant = s.instant ?? false
  return {
    datasource: DATASOURCE,
    editorMode: 'code',
    expr: s.expr,
    exemplar: !instant && EXEMPLAR_METRICS.some((m) => s.expr.includes(`${m}{`)),
    format: s.format ?? (instant ? 'table' : 'time_series'),
    instant,
    legendFormat: s.legend ?? '__auto',
    range: !instant,
    refId: String.fromCharCode(65 + i),
  }
}

function thresholdSteps(steps: Array<[number, string]> = []) {
  return {
    mode: 'absolute',
    steps: [{ color: 'green', value: null }, ...steps.map(([value, color]) => ({ color, value }))],
  }
}

function panelBody(p: PanelSpec): Record<string, unknown> {
  const defaults: Record<string, unknown> = { unit: p.unit, thresholds: thresholdSteps(p.thresholds) }
  if (p.min !== undefined) defaults.min = p.min
  if (p.max !== undefined) defaults.max = p.max
  if (p.decimals !== undefined) defaults.decimals = p.decimals
  switch (p.type) {
    case 'timeseries':
      return {
        fieldConfig: {
          defaults: {
            ...defaults,
            color: { mode: 'palette-classic' },
            custom: {
              drawStyle: 'line',
              fillOpacity: p.stack ? 30 : 10,
              lineWidth: 1,
              showPoints: 'never',
              spanNulls: false,
              stacking: { group: 'A', mode: p.stack ? 'normal' : 'none' },
            },
          },
          overrides: [],
        },
        options: {
          legend: { calcs: ['mean', 'max'], displayMode: 'table', placement: 'bottom', showLegend: true, sortBy: 'Max', sortDesc: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
      }
    case 'stat':
      return {
        fieldConfig: { defaults: { ...defaults, color: { mode: 'thresholds' } }, overrides: [] },
        options: {
          colorMode: 'value',
          graphMode: 'area',
          justifyMode: 'auto',
          orientation: 'auto',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          textMode: 'auto',
        },
      }
    case 'table':
      return {
        fieldConfig: { defaults: { ...defaults, custom: { align: 'auto', cellOptions: { type: 'auto' } } }, overrides: [] },
        options: { cellHeight: 'sm', showHeader: true },
        transformations: [
          { id: 'organize', options: { excludeByName: { Time: true, __name__: true, ...(p.tableValue ? {} : { Value: true }) } } },
        ],
      }
    case 'heatmap':
      return {
        fieldConfig: { defaults: { ...defaults }, overrides: [] },
        options: {
          calculate: false,
          cellGap: 1,
          color: { mode: 'scheme', scheme: 'Oranges', steps: 64 },
          exemplars: { color: 'rgba(255,0,255,0.7)' },
          legend: { show: true },
          rowsFrame: { layout: 'auto' },
          tooltip: { show: true, yHistogram: false },
          yAxis: { axisPlacement: 'left', unit: p.unit },
        },
      }
  }
}

export type RowSpec = { row: string; panels: PanelSpec[] }

export type BuiltDashboard = {
  dashboard: Dashboard
  /** `${panelId}/${refId}` of the targets that may legitimately return no series. */
  mayBeEmpty: string[]
}

/** Lays rows out top to bottom and panels left to right, wrapping at 24 columns. */
export function layoutPanels(rows: RowSpec[]): { panels: Panel[]; mayBeEmpty: string[] } {
  const panels: Panel[] = []
  const mayBeEmpty: string[] = []
  let id = 1
  let y = 0
  for (const r of rows) {
    panels.push({ id: id++, type: 'row', title: r.row, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] })
    y += 1
    let x = 0
    let rowHeight = 0
    for (const p of r.panels) {
      const w = p.w ?? 12
      const h = p.h ?? 8
      if (x + w > 24) {
        y += rowHeight
        x = 0
        rowHeight = 0
      }
      const panelId = id++
      const targets = p.targets.map(target)
      p.targets.forEach((t, i) => {
        if (typeof t !== 'string' && t.mayBeEmpty) mayBeEmpty.push(`${panelId}/${targets[i]?.refId}`)
      })
      panels.push({
        id: panelId,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource: DATASOURCE,
        gridPos: { h, w, x, y },
        ...panelBody(p),
        targets,
      })
      x += w
      rowHeight = Math.max(rowHeight, h)
    }
    y += rowHeight
  }
  return { panels, mayBeEmpty }
}

function queryVariable(name: string, label: string, query: string, description: string) {
  return {
    allValue: '.+',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    datasource: DATASOURCE,
    definition: query,
    description,
    hide: 0,
    includeAll: true,
    label,
    multi: true,
    name,
    options: [],
    // The classic string form: every Grafana version since 7 migrates it to its own editor model.
    query,
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
    type: 'query',
  }
}

export type DashboardSpec = {
  uid: string
  title: string
  description: string
  tags: string[]
  links: Array<{ title: string; uid: string }>
  /** Extra query variables after datasource, job and instance. */
  variables?: Array<{ name: string; label: string; query: string; description: string }>
  rows: RowSpec[]
}

export function dashboard(spec: DashboardSpec): BuiltDashboard {
  const { panels, mayBeEmpty } = layoutPanels(spec.rows)
  const dashboard: Dashboard = {
    annotations: {
      list: [
        {
          builtIn: 1,
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
          name: 'Annotations & Alerts',
          type: 'dashboard',
        },
        {
          datasource: DATASOURCE,
          enable: true,
          expr: `changes(${sel('authgw_process_start_time_seconds')}[$__rate_interval]) > 0`,
          hide: false,
          iconColor: 'rgba(255, 152, 48, 1)',
          name: 'Gateway restarts',
          step: '1m',
          titleFormat: 'restart',
          textFormat: '{{instance}}',
        },
      ],
    },
    description: spec.description,
    editable: false,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: spec.links.map((l) => ({
      asDropdown: false,
      icon: 'dashboard',
      includeVars: true,
      keepTime: true,
      tags: [],
      targetBlank: false,
      title: l.title,
      tooltip: '',
      type: 'link',
      url: `/d/${l.uid}`,
    })),
    panels,
    refresh: '30s',
    schemaVersion: SCHEMA_VERSION,
    tags: spec.tags,
    templating: {
      list: [
        {
          current: { selected: false, text: 'Prometheus', value: 'prometheus' },
          description: 'Prometheus that scrapes the gateway (provisioned with uid "prometheus").',
          hide: 0,
          includeAll: false,
          label: 'Data source',
          multi: false,
          name: 'datasource',
          options: [],
          query: 'prometheus',
          refresh: 1,
          regex: '',
          skipUrlSync: false,
          type: 'datasource',
        },
        queryVariable('job', 'job', 'label_values(authgw_build_info, job)', 'Scrape job of the gateway.'),
        queryVariable('instance', 'instance', 'label_values(authgw_build_info{job=~"$job"}, instance)', 'Gateway replicas.'),
        ...(spec.variables ?? []).map((v) => queryVariable(v.name, v.label, v.query, v.description)),
      ],
    },
    time: { from: 'now-1h', to: 'now' },
    timepicker: {},
    timezone: 'browser',
    title: spec.title,
    uid: spec.uid,
    version: 1,
    weekStart: '',
  }
  return { dashboard, mayBeEmpty }
}
