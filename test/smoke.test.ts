import t from 'tap'
import { Registry } from 'prom-client'
import { createMetrics, createRegistry } from '../src/telemetry/metrics.ts'
import { createMetricsRenderer } from '../src/telemetry/metrics-render.ts'
t.test('metrics render', async (t) => {
  const reg = createRegistry()
  const m = createMetrics(reg, { config: { issuer: 'i', audience: 'a', jwks_url: 'j', cookie_prefix: 'better-auth', secret_fingerprint: 'abcd' }, version: '0.1.0' })
  m.unauthorized('gateway', 'jwt', 'expired', { trace_id: '0123456789abcdef0123456789abcdef' })
  m.observeRequest('GET', '/api/*', 200, 0.01, { trace_id: '0123456789abcdef0123456789abcdef' })
  const render = createMetricsRenderer(reg)
  const om = await render('application/openmetrics-text')
  const txt = await render(undefined)
  t.match(om.body, /authgw_unauthorized_total\{source="gateway",mechanism="jwt",reason="expired"\} 1 # \{trace_id=/)
  t.match(txt.body, /authgw_unauthorized_total\{source="gateway",mechanism="jwt",reason="expired"\} 1\n/)
})
