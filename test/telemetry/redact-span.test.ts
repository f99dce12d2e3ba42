// The export-side redaction in tracing-sdk.ts on real SDK spans, and the
// on/off rule of tracingConfigured().
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { redactSpan } from '../../src/telemetry/tracing-sdk.ts'
import { tracingConfigured } from '../../src/telemetry/tracing.ts'

const JWT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ'

function spans(make: (tracer: ReturnType<BasicTracerProvider['getTracer']>) => void): ReadableSpan[] {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  make(provider.getTracer('test'))
  return exporter.getFinishedSpans()
}

t.test('credentials are dropped or masked, query strings stripped, the rest kept', async (t) => {
  const [raw] = spans((tracer) => {
    const s = tracer.startSpan('GET', { kind: SpanKind.CLIENT })
    s.setAttributes({
      'url.full': `http://up.example/api/me?token=${JWT}`,
      'url.path': '/api/me?code=abc',
      'url.query': `?token=${JWT}`,
      'http.request.header.authorization': [`Bearer ${JWT}`],
      'http.request.header.cookie': ['better-auth.session_token=abc'],
      'db.postgresql.values': ['tok-123'],
      'app.password': 'hunter2',
      'authgw.cookie.names': ['better-auth.session_token'],
      'authgw.note': `Bearer ${JWT}`,
      'http.route': '/api/*',
      'http.response.status_code': 200,
    })
    s.addEvent('exception', { 'exception.message': `bad token ${JWT}`, 'exception.type': 'TypeError' })
    s.end()
  })
  const span = redactSpan(raw as ReadableSpan)
  t.same(span.attributes, {
    'url.full': 'http://up.example/api/me',
    'url.path': '/api/me',
    'authgw.cookie.names': ['better-auth.session_token'],
    'authgw.note': '[redacted]',
    'http.route': '/api/*',
    'http.response.status_code': 200,
  })
  t.same(span.events[0]?.attributes, { 'exception.message': '[redacted]', 'exception.type': 'TypeError' })
  t.equal(span.spanContext().traceId, raw?.spanContext().traceId, 'still a span: ids, name and timing intact')
  t.equal(span.name, 'GET')
  t.same(span.endTime, raw?.endTime)
  t.ok(JSON.stringify(raw?.attributes).includes(JWT), 'the source span itself is left alone')
})

t.test('a server span that answered 4xx is not an error; 5xx stays one; client spans untouched', async (t) => {
  const out = spans((tracer) => {
    for (const [kind, status] of [
      [SpanKind.SERVER, 400],
      [SpanKind.SERVER, 503],
      [SpanKind.CLIENT, 401],
    ] as const) {
      const s = tracer.startSpan(`${kind}-${status}`, { kind, attributes: { 'http.response.status_code': status } })
      s.setStatus({ code: SpanStatusCode.ERROR, message: 'failed' })
      s.end()
    }
  }).map(redactSpan)
  t.same(
    out.map((s) => [s.name, s.status.code]),
    [
      [`${SpanKind.SERVER}-400`, SpanStatusCode.UNSET],
      [`${SpanKind.SERVER}-503`, SpanStatusCode.ERROR],
      [`${SpanKind.CLIENT}-401`, SpanStatusCode.ERROR],
    ],
  )
})

t.test('tracingConfigured: an endpoint turns it on, OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none off', async (t) => {
  const endpoint = 'http://collector:4318'
  const cases: Array<[NodeJS.ProcessEnv, boolean]> = [
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'true' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'TRUE ' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'false' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'none' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'otlp' }, true],
  ]
  for (const [env, on] of cases) t.equal(tracingConfigured(env), on, JSON.stringify(env))
})
