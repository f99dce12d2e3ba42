// What ships: package.json declares exactly what the code imports (runtime
// imports as dependencies, so the image's `npm ci --omit=dev` has them), the
// image installs production dependencies only and runs as a non-root user,
// and the compose stack's production settings pass the same validation the
// gateway applies at startup.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, relative } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { ConfigError, loadConfig } from '../../src/config/load.ts'

const ROOT = join(import.meta.dirname, '..', '..')
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')
const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> }

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    return statSync(join(ROOT, path)).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : []
  })
}

/** Package names a file imports: static, dynamic, and import.meta.resolve. */
function importedPackages(path: string): string[] {
  const source = read(path)
  const specifiers = [...source.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+|\brequire\(\s*|import\.meta\.resolve\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1] as string)
  return specifiers
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string)))
}

// The image runs src/ (gateway, demo upstream) and scripts/ (traffic).
const shipped = [...files('src'), ...files('scripts')]

t.test('every package the shipped code imports is a pinned production dependency', async (t) => {
  const missing: string[] = []
  for (const path of shipped) {
    for (const name of importedPackages(path)) if (pkg.dependencies[name] === undefined) missing.push(`${relative(ROOT, join(ROOT, path))}: ${name}`)
  }
  t.same(missing, [], 'declared under dependencies')
  for (const [name, version] of Object.entries(pkg.dependencies)) t.match(version, /^\d+\.\d+\.\d+(-[\w.]+)?$/, `${name} pinned`)
})

t.test('every production dependency is imported by the shipped code', async (t) => {
  const used = new Set(shipped.flatMap(importedPackages))
  t.same(Object.keys(pkg.dependencies).filter((name) => !used.has(name)), [], 'no unused dependency')
})

t.test('the image: production dependencies only, non-root, listening on every interface', async (t) => {
  const dockerfile = read('Dockerfile')
  const run = dockerfile.split('\n').filter((l) => /^RUN\b.*\bnpm\b/.test(l))
  t.equal(run.length, 1)
  t.match(run[0], /\bnpm ci\b.*--omit=dev/, 'npm ci --omit=dev')
  const lines = dockerfile.split('\n').map((l) => l.trim())
  const user = lines.findLastIndex((l) => l.startsWith('USER '))
  t.ok(user > 0, 'a USER instruction')
  t.notMatch(lines[user], /^USER\s+(root|0)(:|$)/, 'not root')
  t.ok(user < lines.findIndex((l) => l.startsWith('CMD ')), 'before CMD')
  t.match(dockerfile, /^ENV HOST=0\.0\.0\.0$/m, 'HOST set for the container (production requires it)')
  t.match(dockerfile, /^FROM node:24\.\d+\.\d+-/m, 'Node 24 from the base image')
})

type Service = { environment?: Record<string, string | number> }

t.test('the compose gateways pass production validation', async (t) => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> }
  // Compose's ${VAR:-default} with VAR unset.
  const resolve = (v: string | number) => String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')
  for (const name of ['gateway-a', 'gateway-b', 'gateway-c']) {
    const env = Object.fromEntries(Object.entries(compose.services[name]?.environment ?? {}).map(([k, v]) => [k, resolve(v)]))
    t.equal(env.NODE_ENV, 'production')
    try {
      const config = loadConfig(env)
      t.equal(config.host, '0.0.0.0', `${name} listens on every interface of its container`)
    } catch (err) {
      t.fail(`${name}: ${err instanceof ConfigError ? err.problems.join('; ') : String(err)}`)
    }
  }
})
