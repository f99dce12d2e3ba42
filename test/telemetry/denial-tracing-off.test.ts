// TRACE_DENIALS=off: the sampler alone decides (docs/configuration.md). At a
// ratio of 0 no denial may be exported, its access line and its 401 exemplar
// name no trace, and nothing is recorded; a request whose caller asked for
// sampling (traceparent, sampled flag on) is still exported, so the exporter
// is proven to work in the same process.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { InMemorySpanExporter, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base'
import { startTracing } from '../../src/telemetry/tracing-sdk.ts'

// Before anything loads pg: the instrumentation patches it on load.
const exporter = new InMemorySpanExporter()
const handle = await startTracing({ exporter, sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }), env: { TRACE_DENIALS: 'off' } })
if (handle === undefined) throw new Error('tracing did not start')
const { signedSessionCookie, startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')

const N = 50
const SERVER = 1

t.test('with TRACE_DENIALS=off an unsampled denial exports nothing and names no trace', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('denials-off'), PASSWORD)).status, 200)
  await handle.forceFlush()
  exporter.reset()

  const denied: string[] = []
  for (let i = 0; i < N; i++) {
    // A correctly signed cookie over a token that never existed: session_not_found after a database lookup.
    const token = randomBytes(24).toString('base64url')
    const cookie = signedSessionCookie(token)
    const no = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0', cookie } })
    t.equal(no.status, 401)
    denied.push(no.headers.get('x-request-id') as string)
    // And one without any credentials.
    const none = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0' } })
    t.equal(none.status, 401)
    denied.push(none.headers.get('x-request-id') as string)
  }
  // The control: the caller forces sampling, so this denial is exported.
  const traceId = randomBytes(16).toString('hex')
  const forced = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0', traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } })
  t.equal(forced.status, 401)
  await handle.forceFlush()

  const spans = exporter.getFinishedSpans()
  const requestSpans = spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/*')
  const exportedIds = new Set(requestSpans.map((s) => s.attributes['authgw.request_id']))
  t.equal(denied.filter((id) => exportedIds.has(id)).length, 0, `none of the ${denied.length} unsampled denials exported`)
  t.equal(spans.filter((s) => s.spanContext().traceId !== traceId).length, 0, 'no span of any other trace exported')
  t.ok(requestSpans.some((s) => s.spanContext().traceId === traceId && s.attributes['http.response.status_code'] === 401), 'the sampled denial is exported (the exporter works)')

  const lines = gw.logs.accessLines().filter((r) => denied.includes(r.reqId as string))
  t.equal(lines.length, denied.length, 'one access line per denial')
  t.equal(lines.filter((r) => r.trace_id !== undefined).length, 0, 'no unsampled denial access line names a trace')
  const forcedLine = gw.logs.accessLines().find((r) => r.reqId === forced.headers.get('x-request-id'))
  t.equal(forcedLine?.trace_id, traceId, 'the sampled denial access line names its trace')

  const metrics = await (await fetch(`${gw.metricsUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })).text()
  const line = metrics.split('\n').find((l) => l.startsWith('authgw_unauthorized_total{') && l.includes('reason="session_not_found"') && l.includes('source="gateway"'))
  t.ok(line !== undefined, 'the session_not_found denials were counted')
  t.notMatch(line ?? '', /# \{trace_id=/, `the 401 counter carries no exemplar of an unexported trace: ${line}`)
})
