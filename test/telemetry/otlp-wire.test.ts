// The real start path: the gateway and the demo upstream each run in their own
// process with `node --import ./src/telemetry/otel-bootstrap.ts`, configured
// only through OTEL_* variables, exporting to an OTLP/HTTP receiver run here.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { BOOTSTRAP, spawnNode } from '../fixtures/node-process.ts'
import { eventually, startOtlpReceiver } from '../fixtures/otlp-receiver.ts'
import { Kind, Status } from '../fixtures/spans.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { TEST_SECRET, freePort } from '../helpers/gateway.ts'

const HEX32 = /^[0-9a-f]{32}$/

t.test('gateway and upstream started with the bootstrap export one trace over OTLP/HTTP (JSON)', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const databaseUrl = await freshDatabaseUrl(t)
  const [gwPort, demoPort, metricsPort] = [await freePort(), await freePort(), await freePort()]
  const gwUrl = `http://127.0.0.1:${gwPort}`
  const otel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  }
  const demo = spawnNode(t, ['--import', BOOTSTRAP, 'src/demo-api/main.ts'], {
    ...otel,
    OTEL_SERVICE_NAME: 'authgw-demo-api',
    PORT: String(demoPort),
    HOST: '127.0.0.1',
    GATEWAY_URL: gwUrl,
  })
  const gw = spawnNode(t, ['--import', BOOTSTRAP, 'src/main.ts'], {
    ...otel,
    DATABASE_URL: databaseUrl,
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: gwUrl,
    UPSTREAM_URL: `http://127.0.0.1:${demoPort}`,
    PORT: String(gwPort),
    HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
    METRICS_HOST: '127.0.0.1',
    DEMO_APP: 'off',
    LOG_LEVEL: 'info',
  })
  await demo.waitForRecord((r) => /listening/i.test(String(r.msg)), 'the demo upstream to listen')
  await gw.waitForRecord((r) => r.msg === 'authgw started', 'the gateway to start')

  const c = new Client(gwUrl)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  t.equal((await c.get('/api/me')).status, 200)
  const token = await c.token()
  const call = await new Client(gwUrl).get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(call.status, 200, call.text)
  // Another client than the one that signed up above (that one would be cookie_not_returned).
  const denied = await new Client(gwUrl).get('/api/me', { headers: { 'user-agent': 'curl/8.5.0' } })
  t.equal(denied.status, 401)

  const requestId = call.headers.get('x-request-id') as string
  const server = await eventually(() => receiver.tree().requestSpan(requestId), 'the gateway request span')
  const client = await eventually(() => receiver.tree().children(server).find((s) => s.kind === Kind.client), 'the upstream client span')
  const upstream = await eventually(() => receiver.spans().find((s) => s.parentSpanId === client.spanId), "the upstream's span")
  const deniedSpan = await eventually(() => receiver.tree().requestSpan(denied.headers.get('x-request-id') as string), 'the denied request span')

  t.equal(server.service, 'authgw', 'OTEL_SERVICE_NAME defaults to authgw')
  t.equal(server.name, 'GET /api/*')
  t.match(server.attributes, { 'authgw.mechanism': 'jwt', 'authgw.outcome': 'allowed', 'http.response.status_code': 200 })
  t.ok(receiver.tree().child(server, 'authgw.jwt.verify'), 'the gateway span tree arrived whole')
  t.equal(upstream.service, 'authgw-demo-api', 'the upstream reports as its own service')
  t.equal(upstream.kind, Kind.server)
  t.equal(upstream.traceId, server.traceId, 'the upstream continued the gateway trace across processes')
  t.match(deniedSpan.attributes, { 'authgw.reason': 'no_credentials', 'http.response.status_code': 401 })
  t.not(deniedSpan.status.code, Status.error)

  const exports = receiver.requests.filter((r) => r.path === '/v1/traces')
  t.ok(exports.length > 0)
  t.ok(exports.every((r) => r.contentType.startsWith('application/json')), 'OTEL_EXPORTER_OTLP_PROTOCOL=http/json is honoured')
  t.notOk(receiver.requests.some((r) => r.path === '/v1/metrics' || r.path === '/v1/logs'), 'traces only: no OTLP metrics or logs')

  t.test('every access line of the run is JSON on stdout and carries its trace id', async (t) => {
    // Access lines are written in batches (at least every 250 ms): wait for the last one.
    const access = await eventually(() => {
      const lines = gw.records().filter((r) => r.msg === 'request')
      return lines.some((r) => r.reqId === denied.headers.get('x-request-id')) && lines
    }, 'the access lines')
    for (const line of gw.stdout) t.doesNotThrow(() => JSON.parse(line), 'stdout line is JSON')
    t.ok(access.length >= 5)
    for (const line of access) t.match(line.trace_id, HEX32, `${line.method} ${line.route} ${line.status} has trace_id`)
    t.equal(access.find((r) => r.reqId === requestId)?.trace_id, server.traceId)
  })
})

t.test('default protocol http/protobuf: the upstream continues a W3C traceparent it is given', async (t) => {
  const receiver = await startOtlpReceiver(t)
  const port = await freePort()
  const demo = spawnNode(t, ['--import', BOOTSTRAP, 'src/demo-api/main.ts'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: 'authgw-demo-api',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    PORT: String(port),
    HOST: '127.0.0.1',
  })
  await demo.waitForRecord((r) => /listening/i.test(String(r.msg)), 'the demo upstream to listen')
  const traceId = randomBytes(16).toString('hex')
  const parentId = randomBytes(8).toString('hex')
  const res = await fetch(`http://127.0.0.1:${port}/api/public/ping`, { headers: { traceparent: `00-${traceId}-${parentId}-01` } })
  t.equal(res.status, 200)
  await res.arrayBuffer()
  const exported = await eventually(
    () => receiver.requests.find((r) => r.path === '/v1/traces' && r.body.includes(Buffer.from(traceId, 'hex'))),
    'a protobuf export carrying the trace id',
  )
  t.equal(exported.contentType, 'application/x-protobuf')
  t.ok(exported.body.includes(Buffer.from(parentId, 'hex')), 'the span names the given parent')
})
