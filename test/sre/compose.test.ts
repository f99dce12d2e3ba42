// The compose stack and deploy/ configs, checked without a Docker engine:
// `docker compose config -q` where the plugin exists, and always a parse of
// every file with assertions that the pieces point at each other (ports,
// service names, uids, mounted paths) and at files that exist in the repo.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { alertRules, REPO_ROOT } from './assets.ts'
import { findPromtool, promtool, PROMTOOL_MISSING } from './promtool.ts'
import { RUNTIME_PACKAGES } from '../examples/python-api.ts'

type Service = {
  image?: string
  build?: string | { context: string }
  command?: string[]
  entrypoint?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  profiles?: string[]
  depends_on?: string[] | Record<string, unknown>
  healthcheck?: unknown
}

const read = (path: string) => readFileSync(join(REPO_ROOT, path), 'utf8')
const yaml = <T>(path: string) => parse(read(path), { merge: true }) as T
const compose = yaml<{ name: string; services: Record<string, Service>; volumes: Record<string, unknown> }>('docker-compose.yml')
const services = compose.services
const svc = (name: string): Service => services[name] ?? {}

const tap = t

function assertExists(t: Pick<typeof tap, 'ok'>, path: string, what: string) {
  t.ok(existsSync(join(REPO_ROOT, path)), `${what}: ${path} exists`)
}

// A check whose tool is missing is reported as skipped (with why), never as a pass.
const COMPOSE_MISSING =
  spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'no `docker compose` plugin here; the structural checks below still run'
// Debian's docker-compose (Compose v1, a Python package that .ci/run installs) validates the same file
// against the Compose schema, except the top-level `name` key, a Compose v2 addition that v1 rejects:
// it reads the file without that one line (the `services` test below pins the name itself).
const COMPOSE_V1_MISSING =
  spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0
    ? false
    : 'no docker-compose (Debian: apt-get install docker-compose); the structural checks below still run'
const AMTOOL_MISSING =
  spawnSync('amtool', ['--version'], { encoding: 'utf8' }).error === undefined ? false : 'amtool not installed (Debian: apt-get install prometheus-alertmanager)'
const PROFILES = [[], ['--profile', 'secret-mismatch'], ['--profile', 'python-api']]

t.test('docker compose config -q', { skip: COMPOSE_MISSING }, async (t) => {
  for (const profile of PROFILES) {
    const r = spawnSync('docker', ['compose', ...profile, 'config', '-q'], { cwd: REPO_ROOT, encoding: 'utf8' })
    t.equal(r.status, 0, `docker compose ${profile.join(' ')} config -q: ${r.stderr}`)
  }
})

t.test('docker-compose (v1) config -q, without the v2-only name key', { skip: COMPOSE_V1_MISSING }, async (t) => {
  const withoutName = read('docker-compose.yml').replace(/^name: .*\n/m, '')
  t.not(withoutName, read('docker-compose.yml'), 'the name line was found and left out')
  const check = (file: string, profile: string[]) =>
    spawnSync('docker-compose', ['--project-directory', '.', '-p', 'authgw', '-f', '-', ...profile, 'config', '-q'], { cwd: REPO_ROOT, encoding: 'utf8', input: file })
  for (const profile of PROFILES) {
    const r = check(withoutName, profile)
    t.equal(r.status, 0, `docker-compose ${profile.join(' ')} config -q: ${r.stderr}`)
  }
  // The validator is live: the same file with one unknown option is refused.
  const broken = check(withoutName.replace(/^ {2}redis:\n/m, '  redis:\n    not_an_option: 1\n'), [])
  t.not(broken.status, 0, 'an unknown service option is refused')
  t.match(broken.stderr, /not_an_option/)
})

t.test('services', async (t) => {
  t.equal(compose.name, 'authgw')
  t.same(
    Object.keys(services).sort(),
    [
      'alertmanager', 'demo-api', 'gateway-a', 'gateway-b', 'gateway-c', 'grafana', 'lb', 'otel-collector',
      'postgres', 'prometheus', 'python-api', 'redis', 'tempo', 'tempo-init', 'traffic',
    ].sort(),
  )
  for (const [name, s] of Object.entries(services)) {
    t.ok(s.image, `${name} names its image`)
    t.match(s.image ?? '', /^[^:]+:[^:]+$/, `${name} image has a tag`)
    t.notMatch(s.image ?? '', /:latest$/, `${name} image is pinned`)
    if (s.build !== undefined) t.equal(s.image, name === 'python-api' ? 'authgw-python-api:dev' : 'authgw:dev', `${name} builds the local image`)
    if (name === 'gateway-c') t.same(s.profiles, ['secret-mismatch'], 'gateway-c only under the secret-mismatch profile')
    else if (name === 'python-api') t.same(s.profiles, ['python-api'], 'python-api only under the python-api profile')
    else t.equal(s.profiles, undefined, `${name} runs by default`)
  }
})

t.test('published ports', async (t) => {
  t.same(svc('lb').ports, ['8080:8080'])
  t.same(svc('prometheus').ports, ['9090:9090'])
  t.same(svc('alertmanager').ports, ['9093:9093'])
  t.same(svc('grafana').ports, ['3001:3000'])
})

t.test('gateways', async (t) => {
  const expected = {
    BETTER_AUTH_URL: 'http://localhost:8080',
    // The demo API unless AUTHGW_UPSTREAM_URL picks another (the python-api profile).
    UPSTREAM_URL: '${AUTHGW_UPSTREAM_URL:-http://demo-api:4000}',
    PORT: '3000',
    METRICS_PORT: '9464',
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector:4318',
    NODE_ENV: 'production',
    // The sign-in probe (issue 15), through the load balancer.
    PROBE_INTERVAL_SECONDS: '15',
    PROBE_URL: 'http://lb:8080',
  }
  for (const name of ['gateway-a', 'gateway-b', 'gateway-c']) {
    const s = svc(name)
    t.equal(s.build, '.', `${name} is built from the Dockerfile`)
    t.same(s.command, ['node', '--import', './src/telemetry/otel-bootstrap.ts', 'src/main.ts'], `${name} command`)
    t.match(s.environment ?? {}, expected, `${name} environment`)
    t.match(s.environment?.DATABASE_URL ?? '', /^postgres:\/\/[^@]+@postgres:5432\//, `${name} DATABASE_URL points at the postgres service`)
    t.ok(s.healthcheck, `${name} has a health check`)
  }
  const secret = (name: string) => svc(name).environment?.BETTER_AUTH_SECRET
  t.ok(secret('gateway-a'), 'a secret is set')
  t.equal(secret('gateway-a'), secret('gateway-b'), 'gateway-a and gateway-b share the secret')
  t.not(secret('gateway-c'), secret('gateway-a'), 'gateway-c has another secret')
  assertExists(t, 'src/main.ts', 'gateway entry')
  assertExists(t, 'src/telemetry/otel-bootstrap.ts', 'gateway --import')
})

t.test('demo API and traffic', async (t) => {
  const demo = svc('demo-api')
  t.same(demo.command, ['node', 'src/demo-api/main.ts'])
  t.match(demo.environment ?? {}, { PORT: '4000', ISSUER: 'http://localhost:8080', AUDIENCE: 'http://localhost:8080' })
  t.match(demo.environment?.JWKS_URL ?? '', /^http:\/\/(lb:8080|gateway-a:3000)\/api\/auth\/jwks$/)
  assertExists(t, 'src/demo-api/main.ts', 'demo API entry')

  const traffic = svc('traffic')
  t.same(traffic.command, ['node', 'scripts/traffic.ts'])
  t.equal(traffic.environment?.GATEWAY_URL, 'http://lb:8080')
  t.match(traffic.environment?.SCENARIO ?? '', /^\$\{SCENARIO:-normal\}$/, 'SCENARIO defaults to normal')
  assertExists(t, 'scripts/traffic.ts', 'traffic generator')
})

t.test('python API (profile python-api)', async (t) => {
  const api = svc('python-api')
  t.equal(api.build, './examples/python-api', 'built from its own Dockerfile')
  const env = api.environment ?? {}
  const publicUrl = svc('gateway-a').environment?.BETTER_AUTH_URL
  t.equal(env.JWT_ISSUER, publicUrl, "JWT_ISSUER is the gateways' issuer (the origin of BETTER_AUTH_URL)")
  t.equal(env.JWT_AUDIENCE, publicUrl, "JWT_AUDIENCE is the gateways' audience")
  t.match(env.JWKS_URL ?? '', /^http:\/\/(lb:8080|gateway-a:3000)\/api\/auth\/jwks$/)
  t.same(Object.keys(api.depends_on ?? {}).sort(), ['gateway-a', 'gateway-b', 'lb'], 'starts after the gateways: it fetches the JWKS at start-up')
  const port = env.PORT
  t.match(read('docker-compose.yml'), `AUTHGW_UPSTREAM_URL=http://python-api:${port} docker compose --profile python-api`, 'the header routes the gateways to its port')
  t.match(JSON.stringify(api.healthcheck), `http://127.0.0.1:${port}/readyz`, 'health-checked on its readiness route')
  // Only settings the service documents (its README's configuration table).
  const documented = new Set([...read('examples/python-api/README.md').matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]))
  t.ok(documented.has('JWKS_URL'), 'the README has a configuration table')
  for (const name of Object.keys(env)) t.ok(documented.has(name), `${name} is a documented setting`)

  const dockerfile = read('examples/python-api/Dockerfile')
  t.match(dockerfile, /^FROM debian:12\.\d+-slim$/m, 'pinned Debian bookworm base (the packages CI tests with)')
  const install = /apt-get install [^\n]*/.exec(dockerfile)?.[0] ?? ''
  for (const pkg of RUNTIME_PACKAGES) t.match(install, new RegExp(`\\b${pkg}\\b`), `installs ${pkg}`)
  t.notMatch(dockerfile, /\bpip\b/, 'no PyPI')
  t.match(dockerfile, /^USER \d+$/m, 'runs as a non-root user')
  t.match(dockerfile, /^CMD \["python3", "-m", "upstream_api"\]$/m)
  for (const m of dockerfile.matchAll(/^COPY (.+) \S+$/gm)) {
    for (const source of (m[1] as string).split(/\s+/)) assertExists(t, `examples/python-api/${source}`, 'COPY source')
  }
})

t.test('every bind mount exists in the repo', async (t) => {
  let count = 0
  for (const [name, s] of Object.entries(services)) {
    for (const v of s.volumes ?? []) {
      const [source] = v.split(':')
      if (!source?.startsWith('./')) {
        t.ok(source && source in (compose.volumes ?? {}), `${name}: named volume ${source} is declared`)
        continue
      }
      count++
      assertExists(t, source.slice(2), `${name} mounts ${source}`)
    }
  }
  t.ok(count >= 8, `${count} bind mounts`)
})

t.test('Dockerfile', async (t) => {
  const dockerfile = read('Dockerfile')
  t.match(dockerfile, /^FROM node:24\.\d+\.\d+-bookworm-slim$/m, 'pinned node:24 bookworm-slim base')
  t.match(dockerfile, /^RUN npm ci\b/m, 'npm ci')
  t.match(dockerfile, /^RUN npm ci.*--omit=dev/m, 'production dependencies only (Node 24 comes from the base image)')
  t.match(dockerfile, /^USER (node|\d+)$/m, 'runs as a non-root user')
  t.notMatch(dockerfile, /^USER root$/m)
  for (const m of dockerfile.matchAll(/^COPY (.+) \S+$/gm)) {
    for (const source of (m[1] as string).split(/\s+/)) {
      assertExists(t, source, 'COPY source')
      if (source === 'scripts') assertExists(t, 'scripts/traffic.ts', 'COPY source')
    }
  }
})

type PromConfig = {
  global: { scrape_interval: string; evaluation_interval: string }
  rule_files: string[]
  alerting: { alertmanagers: Array<{ static_configs: Array<{ targets: string[] }> }> }
  scrape_configs: Array<{ job_name: string; static_configs?: Array<{ targets: string[] }>; dns_sd_configs?: Array<{ names: string[]; port: number }> }>
}

t.test('prometheus', async (t) => {
  const config = yaml<PromConfig>('deploy/prometheus/prometheus.yml')
  const p = svc('prometheus')
  t.ok(p.command?.includes('--enable-feature=exemplar-storage'), 'exemplar storage on')
  t.ok(p.command?.includes('--web.enable-remote-write-receiver'), 'Tempo can remote-write span metrics')
  t.ok(p.volumes?.includes('./alerts:/etc/prometheus/alerts:ro'), 'rules mounted from ./alerts')
  t.same(config.rule_files, ['/etc/prometheus/alerts/*.yml'], 'rule_files load the mounted rules (tests/ excluded)')
  const job = config.scrape_configs.find((s) => s.job_name === 'authgw')
  const metricsPort = svc('gateway-a').environment?.METRICS_PORT
  t.same(job?.static_configs?.[0]?.targets, [`gateway-a:${metricsPort}`, `gateway-b:${metricsPort}`], 'job authgw scrapes both replicas')
  t.same(job?.dns_sd_configs?.[0]?.names, ['gateway-c'], 'gateway-c is discovered when its profile runs')
  t.equal(job?.dns_sd_configs?.[0]?.port, Number(metricsPort))
  t.same(config.alerting.alertmanagers[0]?.static_configs[0]?.targets, ['alertmanager:9093'])
})

t.test('promtool check config', { skip: findPromtool() ? false : PROMTOOL_MISSING }, async (t) => {
  const run = promtool(findPromtool() as string, ['check', 'config', join(REPO_ROOT, 'deploy/prometheus/prometheus.yml')])
  t.equal(run.code, 0, run.output)
})

type Route = { receiver?: string; matchers?: string[]; continue?: boolean; routes?: Route[] }

/** The receiver Alertmanager picks for `labels` (first matching child route, no `continue`). */
function routeFor(route: Route, labels: Record<string, string>): string | undefined {
  for (const child of route.routes ?? []) {
    const matches = (child.matchers ?? []).every((m) => {
      const parsed = /^(\w+)(=~|!=|!~|=)"(.*)"$/.exec(m)
      if (!parsed) throw new Error(`unsupported matcher ${m}`)
      const [, label, op, value] = parsed as unknown as [string, string, string, string]
      const actual = labels[label] ?? ''
      const re = new RegExp(`^(?:${value})$`)
      return op === '=' ? actual === value : op === '!=' ? actual !== value : op === '=~' ? re.test(actual) : !re.test(actual)
    })
    if (matches) return routeFor(child, labels) ?? child.receiver
  }
  return route.receiver
}

t.test('alertmanager routes every alert by its labels', async (t) => {
  const config = yaml<{ route: Route; receivers: Array<{ name: string }> }>('deploy/alertmanager/alertmanager.yml')
  const receivers = new Set(config.receivers.map((r) => r.name))
  for (const a of alertRules()) {
    const receiver = routeFor(config.route, { alertname: a.name, ...a.labels })
    const expected = a.labels.team === 'security' ? 'security' : a.labels.severity === 'critical' ? 'pager' : 'tickets'
    t.equal(receiver, expected, `${a.name} ${JSON.stringify(a.labels)} -> ${expected}`)
    t.ok(receiver && receivers.has(receiver), `${receiver} is declared`)
  }
})

t.test('amtool check-config', { skip: AMTOOL_MISSING }, async (t) => {
  const r = spawnSync('amtool', ['check-config', join(REPO_ROOT, 'deploy/alertmanager/alertmanager.yml')], { encoding: 'utf8' })
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`)
})

t.test('grafana provisioning', async (t) => {
  const ds = yaml<{ datasources: Array<{ uid: string; type: string; url: string; jsonData?: Record<string, unknown> }> }>(
    'deploy/grafana/provisioning/datasources/datasources.yaml',
  )
  const prometheus = ds.datasources.find((d) => d.uid === 'prometheus')
  const tempo = ds.datasources.find((d) => d.uid === 'tempo')
  t.equal(prometheus?.type, 'prometheus')
  t.equal(prometheus?.url, 'http://prometheus:9090')
  t.equal(tempo?.type, 'tempo')
  t.equal(tempo?.url, 'http://tempo:3200')
  t.same(prometheus?.jsonData?.exemplarTraceIdDestinations, [{ name: 'trace_id', datasourceUid: 'tempo' }], 'exemplars link trace_id to Tempo')
  const scrape = yaml<PromConfig>('deploy/prometheus/prometheus.yml').global.scrape_interval
  t.equal(prometheus?.jsonData?.timeInterval, scrape, 'timeInterval = scrape_interval (feeds $__rate_interval)')

  const providers = yaml<{ providers: Array<{ type: string; folderUid: string; options: { path: string }; allowUiUpdates: boolean; disableDeletion: boolean }> }>(
    'deploy/grafana/provisioning/dashboards/authgw.yaml',
  ).providers
  t.equal(providers.length, 1)
  const provider = providers[0]
  t.equal(provider?.type, 'file')
  t.equal(provider?.allowUiUpdates, false)
  t.equal(provider?.disableDeletion, true)
  t.ok(svc('grafana').volumes?.includes(`./dashboards:${provider?.options.path}:ro`), 'the provider path is the mounted ./dashboards')
  t.ok(svc('grafana').volumes?.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'))
  t.match(svc('grafana').environment ?? {}, { GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' })
  const home = svc('grafana').environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? ''
  t.ok(home.startsWith(`${provider?.options.path}/`) && existsSync(join(REPO_ROOT, 'dashboards', home.split('/').pop() ?? '')), 'home dashboard exists')
})

t.test('traces flow gateway -> collector -> tempo', async (t) => {
  const collector = yaml<{
    receivers: { otlp: { protocols: { http: { endpoint: string } } } }
    exporters: Record<string, { endpoint: string }>
    service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } }
  }>('deploy/otel-collector/config.yaml')
  t.equal(collector.receivers.otlp.protocols.http.endpoint, '0.0.0.0:4318', 'OTLP/HTTP on 4318, as OTEL_EXPORTER_OTLP_ENDPOINT says')
  const exporter = collector.service.pipelines.traces.exporters[0] as string
  t.equal(collector.exporters[exporter]?.endpoint, 'tempo:4317', 'exports to Tempo over OTLP/gRPC')
  t.ok(svc('otel-collector').volumes?.includes('./deploy/otel-collector/config.yaml:/etc/otelcol-contrib/config.yaml:ro'))

  const tempo = yaml<{
    server: { http_listen_port: number }
    distributor: { receivers: { otlp: { protocols: { grpc: { endpoint: string } } } } }
    metrics_generator: { storage: { remote_write: Array<{ url: string; send_exemplars: boolean }> } }
  }>('deploy/tempo/tempo.yaml')
  t.equal(tempo.server.http_listen_port, 3200)
  t.equal(tempo.distributor.receivers.otlp.protocols.grpc.endpoint, '0.0.0.0:4317')
  t.same(tempo.metrics_generator.storage.remote_write, [{ url: 'http://prometheus:9090/api/v1/write', send_exemplars: true }])
})

t.test('shared state: Redis, used by every gateway replica (issue 13)', async (t) => {
  t.match(svc('redis').image ?? '', /^redis:\d+\.\d+\.\d+/, 'a pinned Redis image')
  for (const g of ['gateway-a', 'gateway-b']) t.equal(svc(g).environment?.REDIS_URL, 'redis://redis:6379', `${g} uses it`)
})

t.test('load balancer', async (t) => {
  const cfg = read('deploy/haproxy/haproxy.cfg')
  t.match(cfg, /^\s*bind :8080$/m, 'listens on 8080')
  const port = svc('gateway-a').environment?.PORT
  for (const g of ['gateway-a', 'gateway-b', 'gateway-c']) t.match(cfg, new RegExp(`^\\s*server ${g} ${g}:${port}$`, 'm'), `${g} in the pool`)
  t.match(cfg, /http-check send meth GET uri \/readyz/, 'health-checks the gateways on readiness (a draining replica leaves the pool)')
  t.match(cfg, /init-addr [a-z,]*none/, 'a missing replica does not stop HAProxy')
  // The gateways trust exactly this hop (docs/deployment.md, "TLS termination and TRUST_PROXY").
  for (const g of ['gateway-a', 'gateway-b']) {
    t.equal(svc(g).environment?.TRUST_PROXY, '1', `${g} believes one proxy hop`)
    t.notOk(svc(g).ports, `${g} publishes no port: every request comes through the load balancer`)
  }
  t.match(cfg, /^\s*option forwardfor$/m, 'appends the client address to X-Forwarded-For')
  t.match(cfg, /^\s*http-request set-header X-Forwarded-Proto \S+$/m, 'sets X-Forwarded-Proto itself')
  t.match(cfg, /^\s*http-request del-header X-Forwarded-Host$/m, 'drops a client-sent X-Forwarded-Host')
})
