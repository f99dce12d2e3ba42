// The /metrics renderer works around two things prom-client 15 does
// (docs/adr/0011-metrics-render-both-formats.md). These tests pin both: when
// prom-client changes underneath, one fails and says what to revisit.
import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { createMetrics, createRegistry, MetricName } from '../../src/telemetry/metrics.ts'
import { createMetricsRenderer } from '../../src/telemetry/metrics-render.ts'

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0'
const TRACE = '0123456789abcdef0123456789abcdef'

function gatewayRegistry() {
  const registry = createRegistry()
  const metrics = createMetrics(registry, { config: { issuer: 'i', audience: 'a', jwks_url: 'j', cookie_prefix: 'p', secret_fingerprint: 'f' }, version: 'v' })
  return { registry, metrics }
}

t.test('prom-client still renames counters in place when it renders OpenMetrics (the renderer restores them)', async (t) => {
  const registry = new (Registry as unknown as new (c: string) => Registry)(Registry.OPENMETRICS_CONTENT_TYPE)
  const counter = new Counter({ name: 'canary_things_total', help: 'h', registers: [registry] })
  await registry.metrics()
  t.equal(
    (counter as unknown as { name: string }).name,
    'canary_things',
    'if this fails, prom-client stopped mutating counter names (prometheus/client_js#829?): drop the name restore in metrics-render.ts and update ADR 0011',
  )
})

t.test('prom-client still ties the text format to the registry (setContentType switches it)', async (t) => {
  const registry = new (Registry as unknown as new (c: string) => Registry)(Registry.OPENMETRICS_CONTENT_TYPE)
  const setter = (registry as unknown as { setContentType?: unknown }).setContentType
  t.type(setter, 'function', 'Registry#setContentType exists')
  ;(registry as unknown as { setContentType(c: string): void }).setContentType(Registry.PROMETHEUS_CONTENT_TYPE)
  t.equal(registry.contentType, Registry.PROMETHEUS_CONTENT_TYPE)
  t.notMatch(await registry.metrics(), /# EOF/, 'classic text has no # EOF')
})

t.test('both formats, interleaved and concurrent, keep every counter name and the exemplars only in OpenMetrics', async (t) => {
  const { registry, metrics } = gatewayRegistry()
  const render = createMetricsRenderer(registry)
  metrics.unauthorized('gateway', 'jwt', 'expired', { trace_id: TRACE })
  const accepts = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? OPENMETRICS : 'text/plain'))
  const results = await Promise.all(accepts.map((a) => render(a)))
  results.forEach((r, i) => {
    const om = i % 2 === 0
    t.equal(r.contentType, om ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE, `render ${i}: content type`)
    t.match(r.body, /^authgw_unauthorized_total\{source="gateway",mechanism="jwt",reason="expired"\} 1/m, `render ${i}: sample name keeps _total`)
    if (om) {
      t.match(r.body, /^# TYPE authgw_unauthorized counter$/m, `render ${i}: OpenMetrics family name`)
      t.match(r.body, new RegExp(`reason="expired"\\} 1 # \\{trace_id="${TRACE}"\\}`), `render ${i}: exemplar`)
      t.match(r.body, /# EOF\n$/, `render ${i}: ends with # EOF`)
    } else {
      t.match(r.body, /^# TYPE authgw_unauthorized_total counter$/m, `render ${i}: classic family name`)
      t.notMatch(r.body, /trace_id=/, `render ${i}: no exemplars in classic text`)
    }
  })
  const names = registry.getMetricsAsArray().map((m) => m.name)
  t.ok(names.includes(MetricName.unauthorized), 'the registered name is restored after rendering')
  t.equal(registry.contentType, Registry.OPENMETRICS_CONTENT_TYPE, 'the registry is OpenMetrics again (exemplars keep being accepted)')
})
