// Tracing off (no SDK started in this process, as without an OTLP endpoint):
// no tracing plugin, no trace ids in the access lines, no exemplars.
import t from 'tap'
import { parseExposition } from '../fixtures/openmetrics.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'

t.test('with tracing off the gateway adds no tracing work', async (t) => {
  const gw = await startTestGateway(t)
  t.notOk(gw.app.hasPlugin('authgw-tracing'), 'no tracing plugin registered')
  t.notOk(gw.app.hasPlugin('@fastify/otel'))
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  t.equal((await c.get('/api/me')).status, 200)
  t.equal((await new Client(gw.url).get('/api/me')).status, 401)

  const access = gw.logs.accessLines()
  t.ok(access.length >= 3)
  for (const line of access) {
    t.notOk('trace_id' in line || 'span_id' in line, `${line.route} ${line.status}: no trace ids`)
  }
  const res = await fetch(`${gw.metricsUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })
  const samples = parseExposition(await res.text())
  t.ok(samples.some((s) => s.name === 'authgw_http_request_duration_seconds_bucket' && s.value > 0))
  t.same(samples.filter((s) => s.exemplar !== undefined && Object.keys(s.exemplar.labels).length > 0), [], 'no exemplars')
})
