// The README's tables are part of the contract: this test fails when the code
// and the documentation disagree on a reason, a metric, a setting or an error code.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { settings } from '../src/config/schema.ts'
import { ErrorCode } from '../src/errors.ts'
import { guideEntries, guideFor, guidedReasons } from '../src/reason-guide.ts'
import type { GuideKind } from '../src/reason-guide.ts'
import { UnauthorizedReason, UnavailableReason, UpstreamFailureReason } from '../src/reasons.ts'
import { MetricName, createMetrics, createRegistry } from '../src/telemetry/metrics.ts'
import { SharedStateMetricName, createSharedStateMetrics } from '../src/telemetry/shared-state-metrics.ts'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

/** Rows of the first table after a heading: arrays of cells, backticks stripped. */
function table(heading: string): string[][] {
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`README has no "## ${heading}" section`)
  const lines = readme.slice(start).split('\n')
  const first = lines.findIndex((l) => l.startsWith('|'))
  const rows: string[][] = []
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, '')))
  }
  return rows
}

/** Every table of a section (up to the next `## `), as rows of raw cells. */
function sectionTables(heading: string): string[][][] {
  const start = readme.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`README has no "## ${heading}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  const lines = readme.slice(start, end === -1 ? undefined : end).split('\n')
  const out: string[][][] = []
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith('|') || lines[i - 1]?.startsWith('|')) continue
    const rows: string[][] = []
    for (let j = i + 2; lines[j]?.startsWith('|'); j++) rows.push((lines[j] as string).split('|').slice(1, -1).map((c) => c.trim()))
    out.push(rows)
  }
  return out
}

t.test('every closed reason has a guide entry (meaning, likely cause, first check)', async (t) => {
  for (const [kind, reasons] of Object.entries(guidedReasons) as Array<[GuideKind, readonly string[]]>) {
    for (const reason of reasons) {
      const entries = guideEntries(kind).filter((e) => e.reason === reason)
      t.ok(entries.length > 0, `${kind} reason ${reason} has an entry in src/reason-guide.ts`)
      for (const { guide, mechanism } of entries) {
        for (const field of ['meaning', 'cause', 'check'] as const) {
          t.match(guide[field], /^[^|\n]{8,}$/, `${reason}${mechanism ? ` (${mechanism})` : ''}: ${field} is one line of text`)
        }
      }
    }
    t.same(guideEntries(kind).map((e) => e.reason).filter((r) => !reasons.includes(r)), [], `${kind}: no guide entry for a reason that does not exist`)
  }
})

t.test('the reasons tables say what src/reason-guide.ts says', async (t) => {
  const [unauthorized, other] = sectionTables('Reasons')
  const key = (cell: string) => cell.replace(/^`|`$/g, '')
  // | reason | mechanism | source | meaning | likely cause | first check |
  for (const row of unauthorized ?? []) {
    const [reason, mechanism, , meaning, cause, check] = row.map((c) => c ?? '')
    const guide = guideFor('unauthorized', key(reason as string), mechanism)
    t.same([meaning, cause, check], guide ? [guide.meaning, guide.cause, guide.check] : [], `401 table row ${reason} (${mechanism})`)
  }
  t.equal(unauthorized?.length, guideEntries('unauthorized').length, 'one 401 row per guide entry')
  // | reason | mechanism | status | metric | meaning | likely cause | first check |
  for (const row of other ?? []) {
    const [reason, mechanism, , metric, meaning, cause, check] = row.map((c) => c ?? '')
    const kind: GuideKind = metric === '`authgw_auth_unavailable_total`' ? 'unavailable' : 'upstream_failure'
    const guide = guideFor(kind, key(reason as string), mechanism)
    t.same([meaning, cause, check], guide ? [guide.meaning, guide.cause, guide.check] : [], `503/502 table row ${reason} (${mechanism})`)
  }
  t.equal(other?.length, guideEntries('unavailable').length + guideEntries('upstream_failure').length, 'one 503/502 row per guide entry')
})

t.test('reason table lists exactly the closed 401 reason set', async (t) => {
  const documented = new Set(table('Reasons').map((r) => r[0]))
  t.same([...documented].sort(), [...new Set(Object.values(UnauthorizedReason))].sort())
  for (const r of [...Object.values(UnavailableReason), ...Object.values(UpstreamFailureReason)]) {
    t.ok(readme.includes(`\`${r}\``), `${r} is explained`)
  }
})

t.test('metrics table matches the metrics module: names, types and labels', async (t) => {
  const registry = createRegistry()
  createMetrics(registry, { version: 'x', config: { issuer: '', audience: '', jwks_url: '', cookie_prefix: '', secret_fingerprint: '' } })
  createSharedStateMetrics(registry, 'none')
  const rows = table('Metrics')
  t.same(rows.map((r) => r[0]).sort(), [...Object.values(MetricName), ...Object.values(SharedStateMetricName)].sort())
  for (const metric of registry.getMetricsAsArray() as unknown as Array<{ name: string; type: string; labelNames?: string[] }>) {
    const row = rows.find((r) => r[0] === metric.name)
    if (!row) continue
    t.equal(row[1], metric.type, `${metric.name} type`)
    const labels = (row[2] ?? '').split(',').map((l) => l.trim().replace(/`/g, '')).filter(Boolean)
    t.same(labels, metric.labelNames ?? [], `${metric.name} labels`)
  }
})

t.test('configuration table matches the settings schema, defaults included', async (t) => {
  const rows = table('Configuration')
  t.same(rows.map((r) => r[0]), settings.map((s) => s.name))
  for (const s of settings) {
    const row = rows.find((r) => r[0] === s.name)
    t.equal(row?.[1], s.default.replace(/^`|`$/g, ''), `${s.name} default`)
  }
})

t.test('error code table matches src/errors.ts', async (t) => {
  const rows = table('Error codes')
  t.same(rows.map((r) => r[0]).sort(), Object.keys(ErrorCode).sort())
  for (const [code, { status }] of Object.entries(ErrorCode)) {
    const row = rows.find((r) => r[0] === code)
    if (code !== 'AUTHGW_ERR_CONFIG') t.equal(row?.[1], String(status), `${code} status`)
  }
})
