// Every denial keeps its trace at parentbased_traceidratio 0.01
// (docs/adr/0040-trace-every-denial.md): 100 denied requests export 100
// request spans, each with its child spans and the trace id its access line
// and its 401 exemplar name; 100 allowed requests follow the sampler (about
// one exported).
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { InMemorySpanExporter, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base'
import { startTracing } from '../../src/telemetry/tracing-sdk.ts'

// Before anything loads pg: the instrumentation patches it on load.
const exporter = new InMemorySpanExporter()
const handle = await startTracing({ exporter, sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0.01) }), env: {} })
if (handle === undefined) throw new Error('tracing did not start')
const { signedSessionCookie, startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')

const N = 100
const SERVER = 1

t.test('at ratio 0.01 every denial is exported and allowed requests follow the sampler', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('sampled'), PASSWORD)).status, 200)
  await handle.forceFlush()
  exporter.reset()

  const denied: string[] = []
  const allowed: string[] = []
  for (let i = 0; i < N; i++) {
    // A correctly signed cookie over a token that never existed: session_not_found after a database lookup.
    const token = randomBytes(24).toString('base64url')
    const cookie = signedSessionCookie(token)
    const no = await new Client(gw.url).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0', cookie } })
    t.equal(no.status, 401)
    denied.push(no.headers.get('x-request-id') as string)
    const yes = await c.get('/api/me')
    t.equal(yes.status, 200)
    allowed.push(yes.headers.get('x-request-id') as string)
  }
  await handle.forceFlush()
  const spans = exporter.getFinishedSpans()
  const requestSpans = spans.filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/api/*')
  const byId = new Map(requestSpans.map((s) => [s.attributes['authgw.request_id'], s]))

  const deniedTraces = denied.map((id) => byId.get(id)).filter((s) => s !== undefined)
  t.equal(deniedTraces.length, N, `all ${N} denials exported`)
  for (const s of deniedTraces) t.equal(s.attributes['http.response.status_code'], 401)
  const withChild = deniedTraces.filter((root) => spans.some((s) => s.spanContext().traceId === root.spanContext().traceId && s !== root))
  t.equal(withChild.length, N, 'each with its child spans (the session check and its query)')

  const allowedExported = allowed.filter((id) => byId.has(id)).length
  t.comment(`allowed requests exported: ${allowedExported} of ${N} (ratio 0.01)`)
  // Binomial(100, 0.01): P(X > 8) < 1e-6.
  t.ok(allowedExported <= 8, `allowed requests follow the sampler: ${allowedExported} of ${N}`)

  // The access line and the 401 exemplar of a denial name the exported trace.
  const exported = new Set(spans.map((s) => s.spanContext().traceId))
  const lines = gw.logs.accessLines().filter((r) => denied.includes(r.reqId as string))
  t.equal(lines.length, N)
  t.equal(lines.filter((r) => typeof r.trace_id === 'string' && exported.has(r.trace_id as string)).length, N, 'every denial access line names its exported trace')
  const metrics = await (await fetch(`${gw.metricsUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })).text()
  const line = metrics.split('\n').find((l) => l.startsWith('authgw_unauthorized_total{') && l.includes('reason="session_not_found"') && l.includes('source="gateway"'))
  const exemplar = /# \{trace_id="([0-9a-f]{32})"\}/.exec(line ?? '')
  t.ok(exemplar && exported.has(exemplar[1] as string), `the 401 counter's exemplar resolves to an exported trace: ${line}`)
})
