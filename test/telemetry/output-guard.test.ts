// The guard every tap test process loads (test/helpers/output-guard.ts via
// package.json tap.node-arg) can fail: a test file whose assertions all pass
// still fails when the code under test writes a non-JSON line.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

const ROOT = join(import.meta.dirname, '..', '..')
const GUARD = '--import=./test/helpers/output-guard.ts'

function run(mode: string) {
  const r = spawnSync(process.execPath, [GUARD, 'test/fixtures/planted-output.ts', mode], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '' },
    encoding: 'utf8',
    timeout: 180_000, // only keeps a hung child from hanging the file; a loaded CI machine is slow
  })
  const report = r.stderr
    .split('\n')
    .flatMap((l) => {
      try {
        const v = JSON.parse(l) as { outputGuard?: string; lines?: string[] }
        return v.outputGuard ? [v] : []
      } catch {
        return []
      }
    })[0]
  return { status: r.status, stdout: r.stdout, report }
}

t.test('tap loads the guard into every test process', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { tap: { 'node-arg'?: string[] } }
  t.same(pkg.tap['node-arg'], [GUARD])
})

for (const [mode, line] of [
  ['console.log', /^console: planted non-JSON line$/],
  ['better-auth', /^console: .* ERROR \[Better Auth\]: Missing or null Origin$/],
  ['stderr', /^stderr: plain text on stderr$/],
  ['warning', /^stderr: \(node:\d+\) Warning: planted warning$/],
  ['ansi-json', /^console: \{.*\\u001b\[31mERROR/],
] as const) {
  t.test(`a planted ${mode} line fails the file`, async (t) => {
    const r = run(mode)
    t.equal(r.status, 1, 'exit 1 although every assertion passed')
    t.match(r.stdout, /# \{ total: 1, pass: 1 \}/, 'TAP output intact')
    t.match(r.report?.lines?.[0], line)
  })
}

t.test('JSON lines pass', async (t) => {
  const r = run('json')
  t.equal(r.status, 0)
  t.equal(r.report, undefined)
})
