// otel-bootstrap.ts as `node --import` runs it: on only with an OTLP endpoint,
// off (nothing of the SDK even loaded) without one or with OTEL_SDK_DISABLED,
// the sampler from OTEL_TRACES_SAMPLER, buffered spans exported at a natural
// exit, and an unreachable collector harmless.
import t from 'tap'
import { BOOTSTRAP, spawnNode } from '../fixtures/node-process.ts'
import { startOtlpReceiver } from '../fixtures/otlp-receiver.ts'
import type { OtlpReceiver } from '../fixtures/otlp-receiver.ts'
import { freePort } from '../helpers/gateway.ts'
import type { Test } from 'tap'

type Report = { enabled: boolean; sdkLoaded: boolean; instrumentationLoaded: boolean; ids?: { trace_id: string; span_id: string } }

async function run(t: Test, env: Record<string, string>): Promise<{ report: Report; code: number | null }> {
  const p = spawnNode(t, ['--import', BOOTSTRAP, 'test/fixtures/report-tracing.ts'], env)
  const code = await p.exited
  const line = p.stdout.find((l) => l.startsWith('{"enabled"'))
  if (line === undefined) throw new Error(`no report (exit ${code}): ${p.stderr.join('\n')}`)
  return { report: JSON.parse(line) as Report, code }
}

const fixtureSpans = (receiver: OtlpReceiver) => receiver.spans().filter((s) => s.name === 'fixture.span')

t.test('no OTLP endpoint: tracing off and the SDK never loaded', async (t) => {
  const { report, code } = await run(t, {})
  t.equal(code, 0)
  t.same(report, { enabled: false, sdkLoaded: false, instrumentationLoaded: false })
})

t.test('an OTLP endpoint turns tracing on; buffered spans are exported at a natural exit', async (t) => {
  const receiver = await startOtlpReceiver(t)
  // The default 5 s batch delay is longer than the fixture lives: only the exit flush can deliver.
  const { report, code } = await run(t, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })
  t.equal(code, 0)
  t.match(report, { enabled: true, sdkLoaded: true })
  const spans = fixtureSpans(receiver)
  t.equal(spans.length, 1)
  t.equal(spans[0]?.traceId, report.ids?.trace_id, 'log correlation ids are the span ids')
  t.equal(spans[0]?.service, 'authgw')
  t.match(spans[0]?.resource, { 'service.name': 'authgw' })
})

t.test('OTEL_SERVICE_NAME and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT are honoured', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const { code } = await run(t, {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_SERVICE_NAME: 'authgw-eu-1',
  })
  t.equal(code, 0)
  t.equal(fixtureSpans(receiver)[0]?.service, 'authgw-eu-1')
})

t.test('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none win over an endpoint', async (t) => {
  const receiver = await startOtlpReceiver(t)
  for (const off of [{ OTEL_SDK_DISABLED: 'true' }, { OTEL_TRACES_EXPORTER: 'none' }] as Array<Record<string, string>>) {
    const { report } = await run(t, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, ...off })
    t.same(report, { enabled: false, sdkLoaded: false, instrumentationLoaded: false }, JSON.stringify(off))
  }
  t.equal(receiver.requests.length, 0)
})

t.test('OTEL_TRACES_SAMPLER: an unsampled trace exports nothing and correlates no log line', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const { report } = await run(t, {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0',
  })
  t.equal(report.enabled, true)
  t.equal(report.ids, undefined, 'no trace_id for an unsampled span')
  t.same(fixtureSpans(receiver), [])
})

t.test('an unreachable collector does not break the exit', async (t) => {
  const { report, code } = await run(t, {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`,
    // Bounds the retries of the exit flush.
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
  })
  t.equal(report.enabled, true)
  t.equal(code, 0)
})
