// Parse the Prometheus text exposition from the gateway's metrics listener so
// browser scenarios can assert what was counted, series by series.
export type Sample = { name: string; labels: Record<string, string>; value: number }

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/gy

export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = LINE.exec(line)
    if (!m) throw new Error(`unparseable exposition line: ${line}`)
    const labels: Record<string, string> = {}
    const body = m[2] ?? ''
    LABEL.lastIndex = 0
    let consumed = 0
    for (let l = LABEL.exec(body); l !== null; l = LABEL.exec(body)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
      consumed = LABEL.lastIndex
    }
    if (consumed !== body.length) throw new Error(`unparseable labels: ${line}`)
    samples.push({ name: m[1] as string, labels, value: parseValue(m[3] as string) })
  }
  return samples
}

function parseValue(v: string): number {
  if (v === '+Inf' || v === 'Inf') return Infinity
  if (v === '-Inf') return -Infinity
  return Number(v)
}

export class MetricsSnapshot {
  readonly samples: Sample[]
  constructor(samples: Sample[]) {
    this.samples = samples
  }
  /** Sum of every series of `name` whose labels include `match` (0 when none). */
  value(name: string, match: Record<string, string> = {}): number {
    let sum = 0
    for (const s of this.samples) {
      if (s.name !== name) continue
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value
    }
    return sum
  }
}

export async function scrape(metricsUrl: string): Promise<MetricsSnapshot> {
  const res = await fetch(`${metricsUrl}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`)
  return new MetricsSnapshot(parseExposition(await res.text()))
}

/** How much each series moved between two snapshots. */
export function delta(before: MetricsSnapshot, after: MetricsSnapshot, name: string, match: Record<string, string> = {}): number {
  return after.value(name, match) - before.value(name, match)
}
