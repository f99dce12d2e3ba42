// Every denial and every 5xx keeps its trace whatever the sampling ratio
// (docs/adr/0040-trace-every-denial.md). The configured sampler still decides
// first; a span it would drop is recorded anyway but not flagged sampled, and
// its trace is held until the request span ends. Then the answer is known:
// a 401, 403 or 5xx (or a span saying outcome denied/error) exports the held
// trace as sampled; anything else is dropped as the sampler wanted.
import { TraceFlags } from '@opentelemetry/api'
import type { Context, Link, SpanKind, Attributes, SpanContext } from '@opentelemetry/api'
import { SamplingDecision } from '@opentelemetry/sdk-trace-base'
import type { ReadableSpan, Sampler, SamplingResult, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { LRUCache } from 'lru-cache'
import { Attr } from './attributes.ts'

/** Records what the inner sampler would drop, so the request's outcome can still keep it. */
export class RecordUnsampledSampler implements Sampler {
  readonly #inner: Sampler
  constructor(inner: Sampler) {
    this.#inner = inner
  }
  shouldSample(context: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    const r = this.#inner.shouldSample(context, traceId, name, kind, attributes, links)
    return r.decision === SamplingDecision.NOT_RECORD ? { ...r, decision: SamplingDecision.RECORD } : r
  }
  toString(): string {
    return `RecordUnsampled{${this.#inner.toString()}}`
  }
}

/** Whether a finished request span's trace must be kept: a denial or a server error. */
export function keepsTrace(span: ReadableSpan): boolean {
  const status = span.attributes[Attr.httpStatus]
  if (typeof status === 'number' && (status === 401 || status === 403 || status >= 500)) return true
  const outcome = span.attributes[Attr.outcome]
  return outcome === 'denied' || outcome === 'error'
}

// Bounds: traces waiting for their request span, and spans per trace.
const MAX_PENDING_TRACES = 4096
const MAX_SPANS_PER_TRACE = 128
const PENDING_TTL_MS = 5 * 60_000

/** A sampled view of a recorded span: the batch processor exports only sampled spans. */
function asSampled(span: ReadableSpan): ReadableSpan {
  const ctx = span.spanContext()
  const sampled: SpanContext = { ...ctx, traceFlags: ctx.traceFlags | TraceFlags.SAMPLED }
  return Object.create(span, { spanContext: { value: () => sampled } }) as ReadableSpan
}

/** In front of the exporting processor: holds unsampled traces until their local root span ends. */
export class OutcomeSpanProcessor implements SpanProcessor {
  readonly #next: SpanProcessor
  readonly #pending = new LRUCache<string, ReadableSpan[]>({ max: MAX_PENDING_TRACES, ttl: PENDING_TTL_MS })
  constructor(next: SpanProcessor) {
    this.#next = next
  }
  onStart(span: Span, parentContext: Context): void {
    this.#next.onStart(span, parentContext)
  }
  onEnd(span: ReadableSpan): void {
    const ctx = span.spanContext()
    if ((ctx.traceFlags & TraceFlags.SAMPLED) !== 0) return this.#next.onEnd(span)
    const parent = span.parentSpanContext
    const localRoot = parent === undefined || parent.isRemote === true
    const held = this.#pending.get(ctx.traceId)
    if (!localRoot) {
      if (held === undefined) this.#pending.set(ctx.traceId, [span])
      else if (held.length < MAX_SPANS_PER_TRACE) held.push(span)
      return
    }
    this.#pending.delete(ctx.traceId)
    if (!keepsTrace(span) && !(held ?? []).some(keepsTrace)) return
    for (const s of held ?? []) this.#next.onEnd(asSampled(s))
    this.#next.onEnd(asSampled(span))
  }
  forceFlush(): Promise<void> {
    return this.#next.forceFlush()
  }
  shutdown(): Promise<void> {
    this.#pending.clear()
    return this.#next.shutdown()
  }
}
