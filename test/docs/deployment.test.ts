// The Kubernetes example of docs/deployment.md is the file deploy/kubernetes/authgw.yaml,
// and it would run: every variable is a setting of the gateway (or a standard
// OTEL_* one the docs name), the whole environment passes the gateway's own
// configuration check in production, secrets come from a Secret, the probes are
// /healthz and /readyz on the gateway's port (and a real gateway answers them
// there), and Service and ServiceMonitor reach the pods' named ports.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { loadConfig } from '../../src/config/load.ts'
import { settings } from '../../src/config/schema.ts'
import { docSection, readDoc, repoRoot } from '../helpers/docs.ts'
import { TEST_SECRET, startTestGateway } from '../helpers/gateway.ts'

type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }
type Port = { name: string; containerPort: number }
type Probe = { httpGet: { path: string; port: string | number } }
type Container = { name: string; ports: Port[]; env: EnvVar[]; startupProbe: Probe; livenessProbe: Probe; readinessProbe: Probe }
type Labels = Record<string, string>
type Resource = { apiVersion: string; kind: string; metadata: { name: string; labels?: Labels }; spec: Record<string, unknown> }

const MANIFEST = 'deploy/kubernetes/authgw.yaml'
const manifestText = readFileSync(join(repoRoot, MANIFEST), 'utf8')
const documents = parseAllDocuments(manifestText)
const resources = documents.map((d) => d.toJS() as Resource)
const byKind = (kind: string): Resource => {
  const r = resources.find((x) => x.kind === kind)
  if (!r) throw new Error(`${MANIFEST} has no ${kind}`)
  return r
}

t.test('the manifest parses: a Deployment, a Service and a ServiceMonitor', async (t) => {
  t.same(documents.flatMap((d) => d.errors.map((e) => e.message)), [], 'no YAML errors')
  t.same(resources.map((r) => `${r.apiVersion} ${r.kind}`), ['apps/v1 Deployment', 'v1 Service', 'monitoring.coreos.com/v1 ServiceMonitor'])
})

t.test('docs/deployment.md shows the manifest as it is in the repository', async (t) => {
  const lines = docSection('docs/deployment.md', 'Kubernetes')
  const start = lines.indexOf('```yaml')
  const end = lines.indexOf('```', start + 1)
  t.ok(start !== -1 && end !== -1, 'a yaml block under "## Kubernetes"')
  t.equal(lines.slice(start + 1, end).join('\n') + '\n', manifestText, `the block equals ${MANIFEST}`)
  t.ok(readDoc('docs/deployment.md').includes(`](../${MANIFEST})`), 'and links to the file')
})

const deployment = byKind('Deployment')
const podSpec = (deployment.spec.template as { spec: { containers: Container[]; terminationGracePeriodSeconds: number }; metadata: { labels: Labels } }).spec
const podLabels = (deployment.spec.template as { metadata: { labels: Labels } }).metadata.labels
const container = podSpec.containers[0] as Container
const env = new Map(container.env.map((e) => [e.name, e]))
const value = (name: string) => env.get(name)?.value

t.test('every variable is a gateway setting or a standard OpenTelemetry variable the docs name', async (t) => {
  const known = new Set(settings.map((s) => s.name))
  const tracingDoc = readDoc('docs/tracing-and-logs.md')
  for (const { name } of container.env) {
    if (name.startsWith('OTEL_')) t.ok(tracingDoc.includes(`\`${name}\``), `${name} is documented in docs/tracing-and-logs.md`)
    else t.ok(known.has(name), `${name} is in src/config/schema.ts`)
  }
  t.equal(env.size, container.env.length, 'no variable twice')
})

t.test('secrets come from a Secret, never from a literal', async (t) => {
  // Per-provider names (OIDC_<ID>_CLIENT_SECRET) are templates: SSO is not configured in the example.
  for (const s of settings.filter((s) => s.secret && !s.name.includes('<'))) {
    const e = env.get(s.name)
    t.ok(e, `${s.name} is set`)
    t.equal(e?.value, undefined, `${s.name} has no literal value`)
    t.ok(e?.valueFrom?.secretKeyRef?.key, `${s.name} comes from a secretKeyRef`)
  }
})

t.test('the environment passes the gateway configuration check, in production', async (t) => {
  const vars: Record<string, string> = {}
  for (const e of container.env) {
    // Secret values stand in for what the Secret would hold.
    if (e.name === 'DATABASE_URL') vars[e.name] = 'postgres://authgw:pw@postgres:5432/authgw'
    else if (e.name === 'BETTER_AUTH_SECRET') vars[e.name] = TEST_SECRET
    else if (e.value !== undefined) vars[e.name] = e.value
  }
  t.equal(vars.NODE_ENV, 'production')
  let problems: unknown = []
  try {
    const config = loadConfig(vars)
    t.equal(config.port, 3000)
    t.equal(config.metricsPort, 9464)
    t.ok(config.baseUrl?.startsWith('https://'), 'an https BETTER_AUTH_URL (TLS ends at the ingress)')
    t.not(config.trustProxy, false, 'TRUST_PROXY is set, so X-Forwarded-Proto from the ingress is believed')
  } catch (err) {
    problems = (err as { problems?: unknown }).problems ?? String(err)
  }
  t.same(problems, [], 'loadConfig reports no problem')
})

t.test('ports and probes are the gateway\'s own', async (t) => {
  const ports = new Map(container.ports.map((p) => [p.name, p.containerPort]))
  t.equal(ports.get('http'), Number(value('PORT')), 'port "http" is PORT')
  t.equal(ports.get('metrics'), Number(value('METRICS_PORT')), 'port "metrics" is METRICS_PORT')
  t.same(container.livenessProbe.httpGet, { path: '/healthz', port: 'http' })
  t.same(container.startupProbe.httpGet, { path: '/healthz', port: 'http' })
  t.same(container.readinessProbe.httpGet, { path: '/readyz', port: 'http' })
  const grace = podSpec.terminationGracePeriodSeconds * 1000
  t.ok(grace > Number(value('SHUTDOWN_DELAY_MS')) + Number(value('SHUTDOWN_DRAIN_MS')), 'the grace period covers the shutdown delay and the drain')

  // The probe paths answer 200 on the gateway's own listener.
  const gw = await startTestGateway(t)
  for (const path of ['/healthz', '/readyz']) {
    const res = await fetch(`${gw.url}${path}`)
    t.equal(res.status, 200, `${path} answers 200 on a ready gateway`)
  }
})

t.test('the Service and the ServiceMonitor reach the pods', async (t) => {
  const service = byKind('Service')
  const monitor = byKind('ServiceMonitor')
  const selector = (service.spec as { selector: Labels }).selector
  for (const [k, v] of Object.entries(selector)) t.equal(podLabels[k], v, `Service selects pod label ${k}`)
  const matchLabels = (deployment.spec.selector as { matchLabels: Labels }).matchLabels
  for (const [k, v] of Object.entries(matchLabels)) t.equal(podLabels[k], v, `Deployment selector matches pod label ${k}`)
  const servicePorts = (service.spec as { ports: Array<{ name: string; targetPort: string }> }).ports
  const containerPorts = new Set(container.ports.map((p) => p.name))
  for (const p of servicePorts) t.ok(containerPorts.has(p.targetPort), `Service port ${p.name} targets container port ${p.targetPort}`)
  const monitorSpec = monitor.spec as { selector: { matchLabels: Labels }; endpoints: Array<{ port: string; path: string; interval: string }> }
  for (const [k, v] of Object.entries(monitorSpec.selector.matchLabels)) t.equal(service.metadata.labels?.[k], v, `ServiceMonitor selects Service label ${k}`)
  const [endpoint] = monitorSpec.endpoints
  t.ok(servicePorts.some((p) => p.name === endpoint?.port && p.targetPort === 'metrics'), 'scrapes the metrics port')
  t.equal(endpoint?.path, '/metrics')
  t.ok(Number.parseInt(endpoint?.interval ?? '', 10) <= 20, 'scrape interval at most 20 s (the 1m alert windows)')
  t.equal(service.metadata.name, 'authgw', 'job="authgw", as the alert rules select')
})
