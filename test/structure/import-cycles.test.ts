// src/ has no import cycle, type-only imports included: a cycle means two
// modules each own part of the other's concern (shared types belong in a
// module of their own, as auth/auth-state.ts does for decision.ts and tracing.ts).
import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src')

/** Every .ts file under dir. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') ? [path] : []
  })
}

// `import … from './x.ts'`, `import './x.ts'`, `export … from './x.ts'`, `import('./x.ts')`.
const IMPORT = /(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|\n)\s*import\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g

/** The relative imports of a file, resolved to absolute paths. */
export function relativeImports(file: string, text: string): string[] {
  const out: string[] = []
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3]
    if (spec !== undefined) out.push(resolve(dirname(file), spec))
  }
  return out
}

/** Every elementary cycle found by a depth-first search, each as a list of files starting at its smallest member. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles = new Map<string, string[]>()
  const state = new Map<string, 'active' | 'done'>()
  const stack: string[] = []
  const visit = (node: string) => {
    state.set(node, 'active')
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'active') {
        const cycle = stack.slice(stack.indexOf(next))
        const start = cycle.indexOf([...cycle].sort()[0] as string)
        const canonical = [...cycle.slice(start), ...cycle.slice(0, start)]
        cycles.set(canonical.join(' -> '), canonical)
      } else if (state.get(next) === undefined && graph.has(next)) {
        visit(next)
      }
    }
    stack.pop()
    state.set(node, 'done')
  }
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node)
  return [...cycles.values()]
}

t.test('the cycle finder finds what it should (so a pass below means something)', async (t) => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ])
  t.same(findCycles(g), [['a', 'b', 'c']])
  t.same(findCycles(new Map([['a', ['b']], ['b', []]])), [])
  t.same(
    relativeImports('/r/src/x.ts', "import type { A } from './a.ts'\nexport { B } from '../b.ts'\nimport './c.ts'\nconst d = await import('./d.ts')\nimport pino from 'pino'\n"),
    ['/r/src/a.ts', '/r/b.ts', '/r/src/c.ts', '/r/src/d.ts'],
  )
})

t.test('src/ has no import cycle', async (t) => {
  const files = sourceFiles(SRC)
  t.ok(files.length > 30, `read ${files.length} files under src/`)
  const graph = new Map(files.map((f) => [f, relativeImports(f, readFileSync(f, 'utf8'))]))
  const edges = [...graph.values()].reduce((n, e) => n + e.length, 0)
  t.ok(edges > 50, `found ${edges} relative imports`)
  const cycles = findCycles(graph).map((c) => [...c, c[0]].map((f) => relative(SRC, f as string)).join(' -> '))
  t.same(cycles, [], 'no module imports itself through others')
})
