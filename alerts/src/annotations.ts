// Go-template pieces of the alert annotations that name the cause: a query
// for the dominant reason (run by Prometheus when the alert is active, so it
// costs nothing while all is well), and an if-chain that picks that reason's
// meaning, likely cause and first check from src/reason-guide.ts, the source
// the docs/reasons.md tables are checked against.
//
// The dominant reason is looked up in the annotation, not carried as a label:
// an alert's labels are its identity, and a reason label that flips between
// two close reasons would restart `for` on every flip (a 50/50 mix would
// never fire).
import { guideEntries, probeFailureGuide } from '../../src/reason-guide.ts'
import type { GuideKind, ReasonGuide } from '../../src/reason-guide.ts'

export type ReasonCase = { reason: string; mechanism?: string; guide: ReasonGuide }

/** Guide entries of `kind`, optionally only these reasons. */
export function cases(kind: GuideKind, reasons?: readonly string[]): ReasonCase[] {
  return guideEntries(kind)
    .filter((e) => reasons === undefined || reasons.includes(e.reason))
    .map(({ reason, mechanism, guide }) => (mechanism === undefined ? { reason, guide } : { reason, mechanism, guide }))
}

/** The probe's own failure reasons, ahead of the gateway's. */
export function probeCases(): ReasonCase[] {
  return Object.entries(probeFailureGuide).map(([reason, guide]) => ({ reason, guide }))
}

/** One reason's text: what it means, the likely cause, the first check. */
export function guideText(g: ReasonGuide): string {
  return `Meaning: ${g.meaning}. Likely cause: ${g.cause}. First check: ${g.check}.`
}

const NO_GUIDE = 'No guide entry for this reason: see the reasons tables in docs/reasons.md.'

/**
 * `{{ if … }}text{{ else if … }}…{{ else }}fallback{{ end }}` over `$reason`
 * (and `$mechanism` where a reason's text differs by mechanism). The first
 * case of a (reason, mechanism) wins.
 */
export function guideChain(all: ReasonCase[], fallback = NO_GUIDE): string {
  const seen = new Set<string>()
  const list = all.filter((c) => {
    const key = `${c.mechanism ?? '*'}/${c.reason}`
    if (seen.has(key) || seen.has(`*/${c.reason}`)) return false
    seen.add(key)
    return true
  })
  if (list.length === 0) return fallback
  const parts = list.map((c, i) => {
    const cond = c.mechanism === undefined ? `eq $reason "${c.reason}"` : `and (eq $mechanism "${c.mechanism}") (eq $reason "${c.reason}")`
    return `{{ ${i === 0 ? 'if' : 'else if'} ${cond} }}${guideText(c.guide)}`
  })
  return `${parts.join('')}{{ else }}${fallback}{{ end }}`
}

/**
 * Runs `query` (PromQL with `%[1]q` where the alert's job goes) and, when it
 * returns a series, renders `body` with `$reason`, `$mechanism` (empty when
 * the series has none), `$share` (its value) and `$top` (the series) set;
 * otherwise `fallback`.
 */
export function withDominant(query: string, body: string, fallback = ''): string {
  if (query.includes('`')) throw new Error(`a template query cannot contain a backquote: ${query}`)
  return (
    `{{ with printf \`${query}\` $labels.job | query }}{{ with first . }}` +
    '{{ $top := . }}{{ $reason := label "reason" . }}{{ $mechanism := label "mechanism" . }}{{ $share := value . }}' +
    `${body}{{ end }}{{ else }}${fallback}{{ end }}`
  )
}

/** Renders `body` with `$reason` and `$mechanism` bound to fixed values or to label templates. */
export function withReason(reason: string, mechanism: string, body: string): string {
  return `{{ $reason := ${reason} }}{{ $mechanism := ${mechanism} }}${body}`
}

/**
 * A query template's value, formatted and wrapped in `before`/`after`, or
 * `fallback` when the query returns nothing. `%[1]q` is the alert's job;
 * `%[2]q`… are the further `args` (label templates).
 */
export function queryValue(
  query: string,
  format: string,
  opts: { fallback?: string; args?: readonly string[]; before?: string; after?: string } = {},
): string {
  if (query.includes('`')) throw new Error(`a template query cannot contain a backquote: ${query}`)
  const args = ['$labels.job', ...(opts.args ?? [])].join(' ')
  return (
    `{{ with printf \`${query}\` ${args} | query }}${opts.before ?? ''}{{ . | first | value | ${format} }}${opts.after ?? ''}` +
    `{{ else }}${opts.fallback ?? ''}{{ end }}`
  )
}

/** The PromQL of every `printf \`…\`` query in a template, with `%[1]q` as `job` and further arguments as `args`. */
export function templateQueries(template: string, job: string, args: readonly string[] = []): string[] {
  return [...template.matchAll(/printf `([^`]*)`/g)].map((m) =>
    (m[1] as string).replace(/%\[(\d)\]q/g, (_, i: string) => JSON.stringify(Number(i) === 1 ? job : (args[Number(i) - 2] ?? 'x'))),
  )
}
