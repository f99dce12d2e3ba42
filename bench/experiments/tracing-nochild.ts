// Experiment: src/telemetry/tracing.ts with inSpan() creating no child span;
// the attributes land on the active (request) span instead, so a request has
// one gateway span (plus the upstream client span unless that is off too).
import type { Attributes, Span } from '@opentelemetry/api'
import { activeSpan } from '../../src/telemetry/tracing.ts'

export * from '../../src/telemetry/tracing.ts'

export async function inSpan<T>(_name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  const span = activeSpan()
  if (span?.isRecording()) span.setAttributes(attributes)
  return fn(span)
}
