// The gateway's own spans. When the SDK was not started (no OTLP endpoint),
// `tracingEnabled()` is false and no span objects are created at all.
import { SpanStatusCode, context, trace } from '@opentelemetry/api'
import type { Attributes, Span } from '@opentelemetry/api'
import { Attr } from './attributes.ts'

const TRACING_FLAG = Symbol.for('authgw.tracing.enabled')

/** Set by otel-bootstrap.ts once the SDK runs. */
export function markTracingEnabled(): void {
  ;(globalThis as Record<symbol, unknown>)[TRACING_FLAG] = true
}

export function tracingEnabled(): boolean {
  return (globalThis as Record<symbol, unknown>)[TRACING_FLAG] === true
}

const tracer = () => trace.getTracer('authgw')

/** Run fn inside a child span of the active one; a thrown error marks the span as an error. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return fn(undefined)
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR })
      span.setAttribute(Attr.errorType, err instanceof Error ? ((err as Error & { code?: string }).code ?? err.name) : 'unknown')
      throw err
    } finally {
      span.end()
    }
  })
}

/** trace_id/span_id of the active span when it is sampled. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  if (!tracingEnabled()) return undefined
  const span = trace.getSpan(context.active())
  const sc = span?.spanContext()
  if (!sc || (sc.traceFlags & 1) === 0) return undefined
  return { trace_id: sc.traceId, span_id: sc.spanId }
}

export function activeSpan(): Span | undefined {
  if (!tracingEnabled()) return undefined
  return trace.getSpan(context.active())
}
