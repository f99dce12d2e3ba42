// docs/sso.md's reasons table says what src/reason-guide.ts says, one row per
// closed SSO reason; its configuration table names every OIDC_* setting.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { settings } from '../../src/config/schema.ts'
import { oauthGuide } from '../../src/reason-guide.ts'
import { OAuthCallbackReason, valuesOf } from '../../src/reasons.ts'

const doc = readFileSync(new URL('../../docs/sso.md', import.meta.url), 'utf8')

function table(heading: string): string[][] {
  const start = doc.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`docs/sso.md has no "## ${heading}"`)
  const lines = doc.slice(start).split('\n')
  const first = lines.findIndex((l) => l.startsWith('|'))
  const rows: string[][] = []
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break
    rows.push(line.split('|').slice(1, -1).map((c) => c.trim()))
  }
  return rows
}

t.test('the reasons table is the guide, one row per closed reason', async (t) => {
  const rows = table('Reasons')
  t.same(
    rows.map((r) => (r[0] ?? '').replace(/`/g, '')),
    valuesOf(OAuthCallbackReason).filter((r) => r !== OAuthCallbackReason.none),
  )
  for (const [reason, meaning, cause, check] of rows.map((r) => [r[0], r[2], r[3], r[4]])) {
    const g = oauthGuide[(reason ?? '').replace(/`/g, '') as keyof typeof oauthGuide]
    t.same([meaning, cause, check], [g.meaning, g.cause, g.check], `${reason}`)
  }
})

t.test('the configuration table names every OIDC_* setting', async (t) => {
  const documented = table('Configuration').map((r) => (r[0] ?? '').replace(/`/g, ''))
  t.same(documented, settings.filter((s) => s.name.startsWith('OIDC_')).map((s) => s.name))
})

t.test('the debugging table has a row for every reason', async (t) => {
  const text = table('Debugging SSO').map((r) => r[1]).join(' ')
  for (const reason of valuesOf(OAuthCallbackReason).filter((r) => r !== OAuthCallbackReason.none)) {
    t.ok(text.includes(`\`${reason}\``), reason)
  }
})
