// The reference tables in docs/ are part of the contract: this test fails when
// the code and the documentation disagree on a reason, a metric, a setting or an
// error code. It also keeps README.md a front page: small, and linking to every
// reference section that used to live in it, with no link into nothing.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { settings } from '../src/config/schema.ts'
import { ErrorCode } from '../src/errors.ts'
import { guideEntries, guideFor, guidedReasons } from '../src/reason-guide.ts'
import type { GuideKind } from '../src/reason-guide.ts'
import { UnauthorizedReason, UnavailableReason, UpstreamFailureReason } from '../src/reasons.ts'
import { MetricName, createMetrics, createRegistry } from '../src/telemetry/metrics.ts'
import { sharedStateMetrics } from '../src/telemetry/metrics/shared-state.ts'
import { anchors, docPages, docSectionTables, docTable, exists, readDoc, relativeLinks, repoRoot, slug } from './helpers/docs.ts'

// Where each vocabulary's table lives: a page and its `## ` heading.
const REASONS = ['docs/reasons.md', 'Reasons'] as const
const METRICS = ['docs/metrics.md', 'Metrics'] as const
const CONFIGURATION = ['docs/configuration.md', 'Configuration'] as const
const ERROR_CODES = ['docs/error-codes.md', 'Error codes'] as const

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
  const [unauthorized, other] = docSectionTables(...REASONS)
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
  const documented = new Set(docTable(...REASONS).map((r) => r[0]))
  t.same([...documented].sort(), [...new Set(Object.values(UnauthorizedReason))].sort())
  for (const r of [...Object.values(UnavailableReason), ...Object.values(UpstreamFailureReason)]) {
    t.ok(readDoc(REASONS[0]).includes(`\`${r}\``), `${r} is explained in ${REASONS[0]}`)
  }
})

t.test('metrics table matches the metrics module: names, types and labels', async (t) => {
  const registry = createRegistry()
  createMetrics(registry, { version: 'x', config: { issuer: '', audience: '', jwks_url: '', cookie_prefix: '', secret_fingerprint: '' } })
  sharedStateMetrics(registry, 'none')
  const rows = docTable(...METRICS)
  t.same(rows.map((r) => r[0]).sort(), Object.values(MetricName).sort())
  for (const metric of registry.getMetricsAsArray() as unknown as Array<{ name: string; type: string; labelNames?: string[] }>) {
    const row = rows.find((r) => r[0] === metric.name)
    if (!row) continue
    t.equal(row[1], metric.type, `${metric.name} type`)
    const labels = (row[2] ?? '').split(',').map((l) => l.trim().replace(/`/g, '')).filter(Boolean)
    t.same(labels, metric.labelNames ?? [], `${metric.name} labels`)
  }
})

t.test('configuration table matches the settings schema, defaults included', async (t) => {
  const rows = docTable(...CONFIGURATION)
  t.same(rows.map((r) => r[0]), settings.map((s) => s.name))
  for (const s of settings) {
    const row = rows.find((r) => r[0] === s.name)
    t.equal(row?.[1], s.default.replace(/^`|`$/g, ''), `${s.name} default`)
  }
})

t.test('error code table matches src/errors.ts', async (t) => {
  const rows = docTable(...ERROR_CODES)
  t.same(rows.map((r) => r[0]).sort(), Object.keys(ErrorCode).sort())
  for (const [code, { status }] of Object.entries(ErrorCode)) {
    const row = rows.find((r) => r[0] === code)
    if (code !== 'AUTHGW_ERR_CONFIG') t.equal(row?.[1], String(status), `${code} status`)
  }
})

t.test('README.md is a front page: under 10 KB, the two commands first', async (t) => {
  const readme = readDoc('README.md')
  t.ok(Buffer.byteLength(readme) < 10 * 1024, `README.md is ${Buffer.byteLength(readme)} bytes`)
  const firstSection = readme.indexOf('\n## ')
  t.equal(readme.slice(firstSection + 1, readme.indexOf('\n', firstSection + 1)), '## Two commands', 'the first section is the two commands')
  const firstBlock = readme.slice(readme.indexOf('```sh'), readme.indexOf('```', readme.indexOf('```sh') + 5))
  t.match(firstBlock, /^npm ci && npm start\b/m, 'npm ci && npm start')
  t.match(firstBlock, /^npm test\b/m, 'npm test')
})

// The sections of the README before the docs split (issue 17). Each must stay one
// link away from the README: a heading of the README itself, or a link to the
// page and heading it moved to.
/** Former sections that stay on the front page itself. */
const keptInReadme = ['Two commands', 'Walk-through with curl']
const formerReadmeSections = [
  ...keptInReadme,
  'How a request is decided',
  'Reasons',
  'Debugging 401 after sign-in',
  'Metrics',
  'Traces and logs',
  'The whole stack: `docker compose up`',
  'Alerts and dashboards',
  'Benchmark',
  'Configuration',
  'Failure behaviour',
  'Header policy',
  'Error codes',
]

t.test('every former README section is reachable by a link from README.md', async (t) => {
  const readme = readDoc('README.md')
  const links = relativeLinks('README.md')
  for (const heading of formerReadmeSections) {
    if (keptInReadme.includes(heading)) {
      t.ok(readme.includes(`\n## ${heading}\n`), `"${heading}" is still a section of README.md`)
      continue
    }
    const link = links.find((l) => l.anchor === slug(heading) && l.file !== 'README.md')
    t.ok(link, `README.md links to "${heading}" (#${slug(heading)})`)
    if (link) t.ok(exists(link.file) && readDoc(link.file).includes(`\n## ${heading}\n`), `${link.file} has "## ${heading}"`)
  }
})

t.test('every relative link in README.md and docs/ resolves to a file and, with an anchor, to a heading', async (t) => {
  const pages = docPages()
  t.ok(pages.length > 10, `${pages.length} pages checked`)
  let checked = 0
  for (const page of pages) {
    for (const link of relativeLinks(page)) {
      checked++
      if (!exists(link.file)) {
        t.fail(`${page}: ${link.target} (no file ${link.file})`)
        continue
      }
      if (link.anchor === undefined) continue
      t.ok(link.file.endsWith('.md') && anchors(link.file).has(link.anchor), `${page}: ${link.target} names a heading of ${link.file}`)
    }
  }
  t.ok(checked > 20, `${checked} links checked`)
})

t.test('the link checker itself: slugs as GitHub writes them, dead targets noticed', async (t) => {
  t.equal(slug('The whole stack: `docker compose up`'), 'the-whole-stack-docker-compose-up')
  t.equal(slug('Debugging 401 after sign-in'), 'debugging-401-after-sign-in')
  t.equal(slug('Two commands, in detail'), 'two-commands-in-detail')
  t.notOk(anchors('README.md').has('no-such-heading'))
  t.notOk(exists('docs/no-such-page.md'))
})

t.test('comments in src/ point at docs and ADRs that exist, not at issues or files outside the repository', async (t) => {
  const files: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(repoRoot, dir)).sort()) {
      const path = `${dir}/${name}`
      if (statSync(join(repoRoot, path)).isDirectory()) walk(path)
      else if (name.endsWith('.ts')) files.push(path)
    }
  }
  walk('src')
  // Paths in other projects' repositories, named with the project.
  const foreign = new Set(['docs/api/Dispatcher.md'])
  let references = 0
  for (const file of files) {
    const text = readFileSync(join(repoRoot, file), 'utf8')
    for (const m of text.matchAll(/\b(?:docs|test|alerts|bench|dashboards|deploy|examples|scripts)\/[\w./-]+\.(?:md|ts|yml|yaml|json|py)\b/g)) {
      if (foreign.has(m[0])) continue
      references++
      t.ok(exists(m[0]), `${file} names ${m[0]}, which exists`)
    }
    for (const m of text.matchAll(/\bissue ?#?\d+|\bthe [\w-]+ issue\b|\bthe issue\b|\bissue's\b|\/work\/|shared\/notes/gi)) {
      t.fail(`${file}: "${m[0]}" points outside the repository: name the ADR or docs page instead`)
    }
  }
  t.ok(references >= 20, `${references} references checked`)
})

t.test('every repository file README.md and docs/ name exists (src/ moves under refactors)', async (t) => {
  let named = 0
  for (const page of docPages()) {
    const text = readDoc(page)
    for (const m of text.matchAll(/(?<![\w./-])(?:src|test|bench|alerts|dashboards|deploy|examples|scripts|docs)\/[\w./-]+\.(?:ts|md|yml|yaml|json|py)\b/g)) {
      named++
      t.ok(exists(m[0]), `${page} names ${m[0]}, which exists`)
    }
  }
  t.ok(named > 40, `${named} file names checked`)
})

t.test('decision records: MADR sections, a number each rests on, unique numbers, all in the index', async (t) => {
  const records = readdirSync(join(repoRoot, 'docs/adr'))
    .filter((f) => /^\d{4}-[a-z0-9-]+\.md$/.test(f))
    .sort()
  t.ok(records.length >= 8, `${records.length} ADRs (issue 17 asks for at least 8)`)
  const numbers = records.map((f) => f.slice(0, 4))
  t.same(numbers, [...new Set(numbers)], 'no ADR number used twice')
  const index = readDoc('docs/adr/README.md')
  for (const file of records) {
    const text = readDoc(`docs/adr/${file}`)
    const headings = [...text.matchAll(/^## (.+)$/gm)].map((m) => (m[1] as string).toLowerCase())
    for (const section of ['context', 'decision', 'consequences']) {
      t.ok(headings.some((h) => h.startsWith(section)), `${file}: a "${section}" section`)
    }
    t.match(text, /^- Status: \w+/m, `${file}: a status`)
    t.match(text, /\d[\d,.]*\s?(?:µs|ms|s|%|×|x|KiB|MiB)\b|\d[\d,.]* (?:requests|lines|bytes)/, `${file}: rests on a measured number`)
    t.ok(index.includes(`](${file})`), `docs/adr/README.md lists ${file}`)
  }
})
