// alerts/runbook.md has a section for every alert, every runbook_url anchor
// resolves to one of its headings (GitHub's slug rules), and the panels and
// queries it points on-call at exist and are valid.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pendingSeriesNames } from '../../alerts/src/pending-metrics.ts'
import { RUNBOOK_URL } from '../../alerts/src/thresholds.ts'
import { ALERTS_DIR, alertNames, alertRules, loadDashboards, queryPanels, REPO_ROOT } from './assets.ts'
import { loadContract } from './contract.ts'
import { metricNames, syntaxErrors } from './promql.ts'

const runbook = readFileSync(join(ALERTS_DIR, 'runbook.md'), 'utf8')

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function githubSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

const headings = [...runbook.matchAll(/^#{1,6} (.+)$/gm)].map((m) => m[1] as string)
const slugs = new Set(headings.map(githubSlug))
const sections = new Map<string, string>()
{
  const parts = runbook.split(/^## /m)
  for (const part of parts) {
    const m = /^Alert Name: (\S+)\n/.exec(part)
    if (m?.[1]) sections.set(m[1], part)
  }
}

t.test('githubSlug matches GitHub for the heading style used', async (t) => {
  t.equal(githubSlug('Alert Name: AuthGatewayUnauthorizedSpike'), 'alert-name-authgatewayunauthorizedspike')
  t.equal(githubSlug('Thresholds'), 'thresholds')
})

t.test('runbook_url points at alerts/runbook.md in this repository', async (t) => {
  t.match(RUNBOOK_URL, /^https:\/\/github\.com\/[^/]+\/[^/]+\/blob\/main\/alerts\/runbook\.md$/)
  const path = RUNBOOK_URL.replace(/^https:\/\/github\.com\/[^/]+\/[^/]+\/blob\/main\//, '')
  t.ok(existsSync(join(REPO_ROOT, path)), `${path} exists`)
})

t.test('every runbook_url anchor is a heading of the runbook', async (t) => {
  for (const a of alertRules()) {
    const [base, anchor] = a.annotations.runbook_url?.split('#') ?? []
    t.equal(base, RUNBOOK_URL, `${a.name}: base`)
    t.ok(anchor && slugs.has(anchor), `${a.name}: #${anchor} resolves`)
  }
})

t.test('one section per alert, none for alerts that do not exist', async (t) => {
  t.same([...sections.keys()].sort(), alertNames().sort())
})

t.test('every section has meaning, first look, causes and fixes', async (t) => {
  for (const [name, body] of sections) {
    for (const part of ['**Meaning.**', '**First look.**', '**Likely causes.**', '**Fixes.**']) t.ok(body.includes(part), `${name}: ${part}`)
    const steps = body.slice(body.indexOf('**First look.**'), body.indexOf('**Likely causes.**'))
    t.ok((steps.match(/^\d\. /gm) ?? []).length >= 3, `${name}: at least three first-look steps`)
  }
})

t.test('panels named in the runbook exist', async (t) => {
  const dashboards = new Map(loadDashboards().map(({ dashboard }) => [dashboard.uid, new Set(queryPanels(dashboard).map((p) => p.title))]))
  const uids: Record<string, string> = { Overview: 'authgw-overview', 'Auth debug': 'authgw-auth-debug' }
  const refs = [...runbook.matchAll(/(Overview|Auth debug) → ((?:\*\*[^*]+\*\*(?:, | and |)?)+)/g)]
  t.ok(refs.length > 20, `${refs.length} panel references`)
  for (const ref of refs) {
    const uid = uids[ref[1] as string] as string
    for (const title of [...(ref[2] as string).matchAll(/\*\*([^*]+)\*\*/g)].map((m) => m[1] as string)) {
      t.ok(dashboards.get(uid)?.has(title), `${ref[1]} → ${title}`)
    }
  }
})

t.test('queries in the runbook are valid and use contract series', async (t) => {
  const contract = await loadContract()
  const blocks = [...runbook.matchAll(/```promql\n([\s\S]*?)```/g)].map((m) => (m[1] as string).trim())
  t.ok(blocks.length >= alertNames().length, `${blocks.length} queries`)
  for (const q of blocks) {
    t.same(syntaxErrors(q), [], q)
    for (const name of metricNames(q)) t.ok(contract.seriesNames.has(name) || pendingSeriesNames().has(name), `${name} in ${q}`)
  }
})
