// The ES modules a browser needs to run a package unbundled: walk the import
// graph from the entry, resolving bare specifiers through each package's
// `exports` with browser conditions. The result is both the page's import map
// and the allow-list of files the demo app serves — nothing else under
// node_modules is reachable.
import { readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'

export type BrowserModules = {
  importMap: { imports: Record<string, string> }
  /** URL path → file contents. */
  files: ReadonlyMap<string, Buffer>
}

type PackageJson = { exports?: unknown; module?: string; main?: string }

// https://nodejs.org/api/packages.html#conditional-exports — key order in the
// package decides, this set only says which keys a browser matches.
const CONDITIONS = new Set(['browser', 'import', 'module', 'default'])

// Bundled ESM puts every static import and re-export at the start of a line.
const STATIC_IMPORT = /^[ \t]*(?:import[ \t]*["']([^"'\n]+)["']|(?:import|export)\b[^;"'`]*?\bfrom[ \t]*["']([^"'\n]+)["'])/gm
const DYNAMIC_IMPORT = /\bimport\(\s*["']([^"'\n]+)["']\s*\)/g
// What every bundler's `define` does: browsers have no `process` (nanostores
// reads process.env.NODE_ENV when it creates a store).
const NODE_ENV = /(?<![\w$.])process\.env\.NODE_ENV\b/g

export class BrowserModuleError extends Error {}

/**
 * @param entries bare specifiers the page imports, e.g. `better-auth/client`
 * @param root project directory whose node_modules holds them
 * @param urlPrefix URL path the files are served under, e.g. `/app/modules`
 */
export function collectBrowserModules(entries: string[], root: string, urlPrefix: string): BrowserModules {
  const nodeModules = join(resolve(root), 'node_modules')
  const files = new Map<string, Buffer>()
  const imports: Record<string, string> = {}
  const visited = new Set<string>()

  const urlOf = (file: string): string => {
    const rel = relative(nodeModules, file)
    if (rel.startsWith('..') || !/\.(m?js)$/.test(rel)) throw new BrowserModuleError(`refusing to serve ${file}`)
    return `${urlPrefix}/${rel.split(sep).join('/')}`
  }

  const mapBare = (specifier: string, fromDir: string): string => {
    const file = resolveBare(specifier, fromDir, nodeModules)
    const url = urlOf(file)
    const mapped = imports[specifier]
    // One flat import map: two copies of a package would need `scopes`.
    if (mapped !== undefined && mapped !== url) throw new BrowserModuleError(`${specifier} resolves to both ${mapped} and ${url}`)
    imports[specifier] = url
    return file
  }

  const walk = (file: string): void => {
    if (visited.has(file)) return
    visited.add(file)
    const text = readFileSync(file, 'utf8').replace(NODE_ENV, '"production"')
    files.set(urlOf(file), Buffer.from(text, 'utf8'))
    const specifiers = [...text.matchAll(STATIC_IMPORT)].map((m) => (m[1] ?? m[2]) as string)
    for (const m of text.matchAll(DYNAMIC_IMPORT)) specifiers.push(m[1] as string)
    for (const spec of specifiers) {
      if (spec.startsWith('./') || spec.startsWith('../')) walk(resolve(dirname(file), spec))
      else if (spec.startsWith('/') || /^[a-z][a-z0-9+.-]*:/i.test(spec)) throw new BrowserModuleError(`${file} imports ${spec}`)
      else walk(mapBare(spec, dirname(file)))
    }
  }

  for (const entry of entries) walk(mapBare(entry, root))
  return { importMap: { imports }, files }
}

function resolveBare(specifier: string, fromDir: string, nodeModules: string): string {
  const parts = specifier.split('/')
  const nameLength = specifier.startsWith('@') ? 2 : 1
  const name = parts.slice(0, nameLength).join('/')
  const subpath = ['.', ...parts.slice(nameLength)].join('/')
  // Node's lookup: the nearest node_modules/<name> going up, never above the project.
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name)
    let pkg: PackageJson | undefined
    try {
      pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as PackageJson
    } catch {
      pkg = undefined
    }
    if (pkg !== undefined) {
      const target = resolveExports(pkg, subpath)
      if (target === undefined || !target.startsWith('./')) throw new BrowserModuleError(`${specifier}: no browser export for ${subpath}`)
      return join(pkgDir, target)
    }
    if (dir === dirname(nodeModules) || dirname(dir) === dir) throw new BrowserModuleError(`${specifier}: package ${name} not found`)
  }
}

function resolveExports(pkg: PackageJson, subpath: string): string | undefined {
  const exp = pkg.exports
  if (exp === undefined || exp === null) {
    if (subpath !== '.') return undefined
    const main = pkg.module ?? pkg.main ?? 'index.js'
    return main.startsWith('./') ? main : `./${main}`
  }
  const isSubpathMap = typeof exp === 'object' && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith('.'))
  if (!isSubpathMap) return subpath === '.' ? pickTarget(exp, '') : undefined
  const map = exp as Record<string, unknown>
  if (subpath in map) return pickTarget(map[subpath], '')
  for (const [key, value] of Object.entries(map)) {
    const star = key.indexOf('*')
    if (star === -1) continue
    const prefix = key.slice(0, star)
    const suffix = key.slice(star + 1)
    if (subpath.startsWith(prefix) && subpath.endsWith(suffix) && subpath.length >= key.length - 1) {
      return pickTarget(value, subpath.slice(prefix.length, subpath.length - suffix.length))
    }
  }
  return undefined
}

function pickTarget(target: unknown, star: string): string | undefined {
  if (typeof target === 'string') return target.replaceAll('*', star)
  if (Array.isArray(target)) {
    for (const t of target) {
      const r = pickTarget(t, star)
      if (r !== undefined) return r
    }
    return undefined
  }
  if (target !== null && typeof target === 'object') {
    for (const [condition, value] of Object.entries(target)) {
      if (!CONDITIONS.has(condition)) continue
      const r = pickTarget(value, star)
      if (r !== undefined) return r
    }
  }
  return undefined
}
