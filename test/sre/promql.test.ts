// Every PromQL expression in dashboards/ and alerts/ is valid: parsed with
// Prometheus' lezer grammar, then (where promtool exists) compiled by
// Prometheus 2.42 itself as recording rules.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import { allExpressions } from './assets.ts'
import { syntaxErrors } from './promql.ts'
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts'

const expressions = allExpressions()

t.test('expressions were found', async (t) => {
  t.ok(expressions.length > 100, `${expressions.length} expressions`)
})

t.test('every expression parses (lezer-promql)', async (t) => {
  for (const { source, expr } of expressions) t.same(syntaxErrors(expr), [], source)
})

const bin = findPromtool()

t.test('every expression compiles in promtool check rules', { skip: bin ? false : PROMTOOL_MISSING }, async (t) => {
  if (!bin) return
  const dir = mkdtempSync(join(tmpdir(), 'authgw-promql-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'expressions.yml')
  const rules = expressions.map((e, i) => ({ record: `authgw_sre_check:expr_${i}`, expr: e.expr }))
  writeFileSync(file, stringify({ groups: [{ name: 'every-expression', rules }] }, { lineWidth: 0 }))
  const run = promtool(bin, ['check', 'rules', file])
  t.equal(run.code, 0, run.output)
  t.match(run.output, `SUCCESS: ${rules.length} rules found`)
})
