// Read the reference tables of README.md and docs/*.md, and the links between
// them, so tests can hold a table to the vocabulary in src/ that it documents.
// Point a check at a page and a heading: `docTable('docs/metrics.md', 'Metrics')`.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** A documentation page's text, by path from the repository root (`docs/reasons.md`). */
export function readDoc(path: string): string {
  return readFileSync(join(repoRoot, path), 'utf8')
}

/** The lines of a `## heading` section, up to the next `## ` (or the end of the page). */
export function docSection(path: string, heading: string): string[] {
  const text = readDoc(path)
  const start = text.indexOf(`\n## ${heading}\n`)
  if (start === -1) throw new Error(`${path} has no "## ${heading}" section`)
  const end = text.indexOf('\n## ', start + 1)
  return text.slice(start + 1, end === -1 ? undefined : end).split('\n')
}

function cells(line: string): string[] {
  return line.split('|').slice(1, -1).map((c) => c.trim())
}

/** Every table of a section, as rows of raw cells (backticks kept), header and rule skipped. */
export function docSectionTables(path: string, heading: string): string[][][] {
  const lines = docSection(path, heading)
  const out: string[][][] = []
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith('|') || lines[i - 1]?.startsWith('|')) continue
    const rows: string[][] = []
    for (let j = i + 2; lines[j]?.startsWith('|'); j++) rows.push(cells(lines[j] as string))
    out.push(rows)
  }
  return out
}

/** Rows of the first table of a section, each cell with its enclosing backticks stripped. */
export function docTable(path: string, heading: string): string[][] {
  const [first] = docSectionTables(path, heading)
  if (!first) throw new Error(`${path} "## ${heading}" has no table`)
  return first.map((row) => row.map((c) => c.replace(/^`|`$/g, '')))
}

/** README.md and every Markdown file under docs/, as repository-relative paths. */
export function docPages(): string[] {
  const pages = ['README.md']
  const walk = (dir: string): void => {
    for (const name of readdirSync(join(repoRoot, dir)).sort()) {
      const path = `${dir}/${name}`
      if (statSync(join(repoRoot, path)).isDirectory()) walk(path)
      else if (name.endsWith('.md')) pages.push(path)
    }
  }
  walk('docs')
  return pages
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]*>/g, '')
    .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

/** The anchors of a Markdown page's headings (outside code blocks), duplicates numbered as GitHub does. */
export function anchors(path: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fenced = false
  for (const line of readDoc(path).split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!m) continue
    const base = slug(m[1] as string)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

export type DocLink = { from: string; target: string; file: string; anchor?: string }

/** Relative links (`[text](target)`) of a page, outside code blocks and code spans, resolved against it. */
export function relativeLinks(path: string): DocLink[] {
  const links: DocLink[] = []
  let fenced = false
  for (const line of readDoc(path).split('\n')) {
    if (line.startsWith('```')) fenced = !fenced
    if (fenced) continue
    for (const m of line.replace(/`[^`]*`/g, '``').matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1] as string
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
      const [file, anchor] = target.split('#', 2) as [string, string | undefined]
      const resolved = file === '' ? path : relative(repoRoot, resolve(repoRoot, dirname(path), decodeURIComponent(file)))
      links.push({ from: path, target, file: resolved, ...(anchor === undefined ? {} : { anchor }) })
    }
  }
  return links
}

export function exists(path: string): boolean {
  return existsSync(join(repoRoot, path))
}
