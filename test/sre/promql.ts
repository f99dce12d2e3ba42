// PromQL inspection for the SRE tests, on the Prometheus project's own lezer
// grammar (@prometheus-io/lezer-promql): syntax errors, selectors, metric
// names and the function each selector sits in.
import { parser } from '@prometheus-io/lezer-promql'

type SyntaxNode = ReturnType<typeof parser.parse>['topNode']

export type Matcher = { label: string; op: '=' | '!=' | '=~' | '!~'; value: string }

export type Selector = {
  /** Metric name, or '' for a selector without one. */
  name: string
  matchers: Matcher[]
  /** Range of a matrix selector as written (`5m`, `$__rate_interval` after substitution …), else undefined. */
  range: string | undefined
  /** Function that directly consumes the selector (`rate`, `absent` …), if any. */
  fn: string | undefined
  text: string
}

/** Positions and excerpts of syntax errors; empty when the expression parses. */
export function syntaxErrors(expr: string): string[] {
  const errors: string[] = []
  parser.parse(expr).iterate({
    enter(n) {
      if (n.type.isError) errors.push(`at ${n.from}: ${JSON.stringify(expr.slice(Math.max(0, n.from - 20), n.to + 20))}`)
    },
  })
  return errors
}

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = []
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c)
  return out
}

function unquote(literal: string): string {
  const quote = literal[0]
  const body = literal.slice(1, -1)
  if (quote === '`') return body
  return body.replace(/\\(.)/g, (_, ch: string) => ({ n: '\n', t: '\t', r: '\r' })[ch] ?? ch)
}

function functionName(call: SyntaxNode, src: string): string {
  const id = call.getChild('FunctionIdentifier')
  return id ? src.slice(id.from, id.to) : ''
}

function readSelector(node: SyntaxNode, src: string): Selector {
  let name = ''
  const matchers: Matcher[] = []
  for (const c of children(node)) {
    if (c.name === 'Identifier') name = src.slice(c.from, c.to)
    if (c.name === 'LabelMatchers') {
      for (const m of children(c)) {
        if (!m.name.endsWith('LabelMatcher')) continue
        const labelNode = m.getChild('LabelName') ?? m.getChild('QuotedLabelName')
        const op = m.getChild('MatchOp')
        const value = m.getChild('StringLiteral')
        if (!labelNode || !op || !value) continue
        const label = src.slice(labelNode.from, labelNode.to)
        matchers.push({
          label: labelNode.name === 'QuotedLabelName' ? unquote(label) : label,
          op: src.slice(op.from, op.to) as Matcher['op'],
          value: unquote(src.slice(value.from, value.to)),
        })
      }
    }
  }
  const nameMatcher = matchers.find((m) => m.label === '__name__' && m.op === '=')
  if (!name && nameMatcher) name = nameMatcher.value

  // Walk up: VectorSelector → (MatrixSelector) → (OffsetExpr) → FunctionCallBody → FunctionCall.
  let range: string | undefined
  let up = node.parent
  if (up?.name === 'MatrixSelector') {
    const d = up.getChild('DurationExpr') ?? up.lastChild
    if (d) range = src.slice(d.from, d.to)
    up = up.parent
  }
  while (up && (up.name === 'OffsetExpr' || up.name === 'ParenExpr' || up.name === 'StepInvariantExpr')) up = up.parent
  const fn = up?.name === 'FunctionCallBody' && up.parent ? functionName(up.parent, src) : undefined
  return { name, matchers, range, fn, text: src.slice(node.from, node.to) }
}

/** Every vector selector of `expr`, with its matchers and consuming function. */
export function selectors(expr: string): Selector[] {
  const out: Selector[] = []
  const tree = parser.parse(expr)
  tree.iterate({
    enter(n) {
      if (n.name === 'VectorSelector') out.push(readSelector(n.node, expr))
    },
  })
  return out
}

export function metricNames(expr: string): string[] {
  return [...new Set(selectors(expr).map((s) => s.name).filter((n) => n !== ''))]
}

export type HistogramQuantileUse = { text: string; aggregation: string | undefined; by: string[] }

/** Each `histogram_quantile(φ, x)`: how x is aggregated (op and `by` labels). */
export function histogramQuantiles(expr: string): HistogramQuantileUse[] {
  const out: HistogramQuantileUse[] = []
  parser.parse(expr).iterate({
    enter(n) {
      if (n.name !== 'FunctionCall' || functionName(n.node, expr) !== 'histogram_quantile') return
      const body = n.node.getChild('FunctionCallBody')
      const args = body ? children(body).filter((c) => c.name !== '(' && c.name !== ')' && c.name !== ',') : []
      let arg = args[1]
      while (arg?.name === 'ParenExpr') arg = children(arg).find((c) => c.name !== '(' && c.name !== ')')
      let aggregation: string | undefined
      let by: string[] = []
      if (arg?.name === 'AggregateExpr') {
        const op = arg.getChild('AggregateOp')
        aggregation = op ? expr.slice(op.from, op.to) : undefined
        const modifier = arg.getChild('AggregateModifier')
        if (modifier?.getChild('By')) {
          const labels = modifier.getChild('GroupingLabels')
          by = labels ? children(labels).filter((c) => c.name === 'LabelName').map((c) => expr.slice(c.from, c.to)) : []
        }
      }
      out.push({ text: expr.slice(n.from, n.to), aggregation, by })
    },
  })
  return out
}

/** Values a matcher can select when it is a plain value or an alternation of plain values. */
export function literalValues(m: Matcher): string[] | undefined {
  if (m.op === '=' || m.op === '!=') return [m.value]
  if (/^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$/.test(m.value)) return m.value.split('|')
  return undefined
}
