// Parse the gateway's /metrics exposition (Prometheus text 0.0.4 or
// OpenMetrics) into `name{sorted labels}` → value, and diff two scrapes, so
// tests assert on numbers rather than grepped strings.

/** Canonical series key: `name` or `name{a="x",b="y"}` with labels sorted by name. */
export type Scrape = Map<string, number>

export type Labels = Record<string, string | number>

export function seriesKey(name: string, labels: Labels = {}): string {
  const names = Object.keys(labels).sort()
  if (names.length === 0) return name
  return `${name}{${names.map((n) => `${n}=${JSON.stringify(String(labels[n]))}`).join(',')}}`
}

/** Name and labels of a canonical key (the inverse of seriesKey). */
export function parseKey(key: string): { name: string; labels: Record<string, string> } {
  const brace = key.indexOf('{')
  if (brace === -1) return { name: key, labels: {} }
  const { labels } = parseLabels(key, brace)
  return { name: key.slice(0, brace), labels }
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/

function parseLabels(line: string, open: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {}
  let i = open + 1
  while (true) {
    while (line[i] === ' ' || line[i] === ',') i++
    if (line[i] === '}') return { labels, end: i + 1 }
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))
    if (!m) throw new Error(`bad label name at ${i}: ${line}`)
    const name = m[0]
    i += name.length
    if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`bad label ${name}: ${line}`)
    i += 2
    let value = ''
    while (line[i] !== '"') {
      if (i >= line.length) throw new Error(`unterminated label value: ${line}`)
      if (line[i] === '\\') {
        const next = line[i + 1]
        value += next === 'n' ? '\n' : next
        i += 2
      } else {
        value += line[i]
        i++
      }
    }
    i++
    if (name in labels) throw new Error(`duplicate label ${name}: ${line}`)
    labels[name] = value
  }
}

// Case-insensitive like Prometheus's parser (and OpenMetrics' ABNF): prom-client writes `Nan`.
function parseValue(s: string): number {
  const lower = s.toLowerCase()
  if (lower === '+inf' || lower === 'inf') return Number.POSITIVE_INFINITY
  if (lower === '-inf') return Number.NEGATIVE_INFINITY
  if (lower === 'nan') return Number.NaN
  const v = Number(s)
  if (s === '' || Number.isNaN(v)) throw new Error(`bad sample value ${JSON.stringify(s)}`)
  return v
}

/** Every sample of an exposition. Exemplars and timestamps are dropped; a duplicate series throws. */
export function parseExposition(text: string): Scrape {
  const out: Scrape = new Map()
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd()
    if (line === '' || line.startsWith('#')) continue
    const m = NAME.exec(line)
    if (!m) throw new Error(`bad sample line: ${line}`)
    const name = m[0]
    let labels: Record<string, string> = {}
    let rest = line.slice(name.length)
    if (rest.startsWith('{')) {
      const parsed = parseLabels(line, name.length)
      labels = parsed.labels
      rest = line.slice(parsed.end)
    }
    // OpenMetrics exemplar: `value [ts] # {labels} value [ts]`.
    const hash = rest.indexOf(' # ')
    if (hash !== -1) rest = rest.slice(0, hash)
    const [value] = rest.trim().split(/\s+/)
    const key = seriesKey(name, labels)
    if (out.has(key)) throw new Error(`duplicate series ${key}`)
    out.set(key, parseValue(value ?? ''))
  }
  return out
}

export type MetricsSource = { metricsUrl: string }

export async function scrapeText(gw: MetricsSource, accept?: string): Promise<{ text: string; contentType: string; status: number }> {
  const res = await fetch(`${gw.metricsUrl}/metrics`, { headers: accept ? { accept } : {} })
  return { text: await res.text(), contentType: res.headers.get('content-type') ?? '', status: res.status }
}

/** Scrape the metrics listener as Prometheus does (classic text format). */
export async function scrape(gw: MetricsSource): Promise<Scrape> {
  const { text, status } = await scrapeText(gw)
  if (status !== 200) throw new Error(`/metrics answered ${status}`)
  return parseExposition(text)
}

/** after − before for every series whose value changed (a series missing on one side counts as 0). */
export function delta(before: Scrape, after: Scrape): Map<string, number> {
  const out = new Map<string, number>()
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const a = after.get(key) ?? 0
    const b = before.get(key) ?? 0
    if (Object.is(a, b)) continue
    if (Number.isNaN(a) && Number.isNaN(b)) continue
    out.set(key, a - b)
  }
  return out
}

/** Series present in `after` but not in `before`. */
export function added(before: Scrape, after: Scrape): string[] {
  return [...after.keys()].filter((k) => !before.has(k)).sort()
}

/** Series present in `before` but gone from `after`. */
export function removed(before: Scrape, after: Scrape): string[] {
  return [...before.keys()].filter((k) => !after.has(k)).sort()
}

/** Sum of every series of `name` whose labels include `match`. */
export function sumOf(s: Scrape, name: string, match: Labels = {}): number {
  let total = 0
  for (const [key, v] of s) {
    const p = parseKey(key)
    if (p.name !== name) continue
    if (Object.entries(match).every(([k, want]) => p.labels[k] === String(want))) total += v
  }
  return total
}

export type SeriesMatcher = string | RegExp | ((key: string) => boolean)

const matches = (m: SeriesMatcher, key: string): boolean =>
  typeof m === 'string' ? key === m || parseKey(key).name === m : m instanceof RegExp ? m.test(key) : m(key)

/**
 * Series that change on any request and carry no verdict: default process and
 * Node.js metrics, the pool gauge, cache hit/miss counters, and the request
 * histogram's buckets and sum (tests assert its `_count` explicitly).
 */
export const REQUEST_NOISE: SeriesMatcher[] = [
  /^authgw_process_/,
  /^authgw_nodejs_/,
  'authgw_db_pool_connections',
  'authgw_session_cache_lookups_total',
  'authgw_jwt_cache_lookups_total',
  'authgw_http_request_duration_seconds_bucket',
  'authgw_http_request_duration_seconds_sum',
]

/**
 * Compare a delta with the exact movements expected. Every expected key must
 * have moved by exactly its value (0 means "must not move"); every other
 * changed series must be matched by `allow`. Returns human-readable problems.
 */
export function unexpectedMovements(d: Map<string, number>, expected: Record<string, number>, allow: SeriesMatcher[] = REQUEST_NOISE): string[] {
  const problems: string[] = []
  for (const [key, want] of Object.entries(expected)) {
    const got = d.get(key) ?? 0
    if (got !== want) problems.push(`${key} moved by ${got}, expected ${want}`)
  }
  for (const [key, got] of d) {
    if (key in expected) continue
    if (allow.some((m) => matches(m, key))) continue
    problems.push(`${key} moved by ${got}, expected no change`)
  }
  return problems
}
