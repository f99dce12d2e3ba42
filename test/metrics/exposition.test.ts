// The /metrics exposition itself: every fixed series present at 0 from the
// first scrape, lint-clean for promtool, OpenMetrics on request without
// breaking the next classic scrape, served only on the metrics port, and
// bounded whatever clients send.
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import t from 'tap'
import type { Test } from 'tap'
import {
  AuthReason,
  DbOperation,
  JwksRefreshOutcome,
  JwtRefusalReason,
  Mechanism,
  NoCredentialReason,
  Outcome,
  SessionReason,
  SignInReason,
  TokenIssueFailureReason,
  UpstreamFailureReason,
  UpstreamRetryReason,
  UnauthorizedReason,
  valuesOf,
} from '../../src/reasons.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { added, delta, parseExposition, parseKey, removed, scrape, scrapeText, seriesKey, sumOf } from '../helpers/metrics.ts'
import type { Labels } from '../helpers/metrics.ts'

const OPENMETRICS = 'application/openmetrics-text; version=1.0.0'

/** The fixed combinations, written out from reasons.ts rather than taken from metrics.ts. */
function fixedSeries(): Array<[string, Labels]> {
  const out: Array<[string, Labels]> = []
  // mechanism="oauth" series exist only with SSO providers configured (test/oauth/).
  for (const mechanism of valuesOf(Mechanism)) {
    if (mechanism !== Mechanism.oauth) for (const outcome of valuesOf(Outcome)) out.push(['authgw_auth_decisions_total', { mechanism, outcome }])
  }
  const unauthorized = (source: string, mechanism: string, reasons: string[]) => {
    for (const reason of reasons) out.push(['authgw_unauthorized_total', { source, mechanism, reason }])
  }
  unauthorized('gateway', 'session', valuesOf(SessionReason))
  unauthorized('gateway', 'jwt', valuesOf(JwtRefusalReason))
  unauthorized('gateway', 'none', valuesOf(NoCredentialReason))
  unauthorized('auth', 'none', valuesOf(AuthReason))
  unauthorized('auth', 'session', valuesOf(SessionReason))
  unauthorized('auth', 'session', ['auth_disagrees'])
  unauthorized('upstream', 'session', ['upstream_rejected'])
  unauthorized('upstream', 'jwt', ['upstream_rejected'])
  unauthorized('upstream', 'none', ['upstream_rejected'])
  for (const reason of [...valuesOf(SessionReason), 'auth_disagrees']) out.push(['authgw_session_nulls_total', { reason }])
  for (const reason of valuesOf(JwtRefusalReason)) out.push(['authgw_jwt_validation_failures_total', { reason }])
  for (const via of ['sign_in', 'sign_up']) out.push(['authgw_tokens_issued_total', { kind: 'session', via }])
  for (const via of ['token_endpoint', 'jwt_header', 'gateway_exchange']) out.push(['authgw_tokens_issued_total', { kind: 'jwt', via }])
  for (const reason of valuesOf(TokenIssueFailureReason)) out.push(['authgw_token_issue_failures_total', { reason }])
  out.push(['authgw_sign_in_attempts_total', { method: 'email', outcome: 'success', reason: 'none' }])
  for (const reason of valuesOf(SignInReason)) {
    if (reason !== 'none') out.push(['authgw_sign_in_attempts_total', { method: 'email', outcome: 'failure', reason }])
  }
  for (const outcome of valuesOf(JwksRefreshOutcome)) out.push(['authgw_jwks_refreshes_total', { outcome }])
  for (const reason of valuesOf(UpstreamFailureReason)) out.push(['authgw_upstream_failures_total', { reason }])
  for (const reason of valuesOf(UpstreamRetryReason)) out.push(['authgw_upstream_retries_total', { reason }])
  for (const operation of valuesOf(DbOperation)) out.push(['authgw_db_errors_total', { operation }])
  out.push(['authgw_auth_unavailable_total', { mechanism: 'session', reason: 'store_unavailable' }])
  out.push(['authgw_auth_unavailable_total', { mechanism: 'session', reason: 'jwks_unavailable' }])
  out.push(['authgw_auth_unavailable_total', { mechanism: 'jwt', reason: 'jwks_unavailable' }])
  for (const result of ['hit', 'miss']) {
    out.push(['authgw_session_cache_lookups_total', { result }])
    out.push(['authgw_jwt_cache_lookups_total', { result }])
  }
  out.push(['authgw_sessions_revoked_total', {}])
  return out
}

t.test('every fixed reason and outcome series exists at 0 right after startup', async (t) => {
  const gw = await startTestGateway(t)
  const s = await scrape(gw)
  for (const [name, labels] of fixedSeries()) {
    const key = seriesKey(name, labels)
    // startGateway loads the JWKS once before listening.
    const want = key === seriesKey('authgw_jwks_refreshes_total', { outcome: 'success' }) ? 1 : 0
    t.equal(s.get(key), want, key)
  }
  const unauthorized = [...s.keys()].filter((k) => parseKey(k).name === 'authgw_unauthorized_total')
  t.equal(unauthorized.length, fixedSeries().filter(([n]) => n === 'authgw_unauthorized_total').length, 'no other 401 series exist')
  const reasons = new Set<string>(valuesOf(UnauthorizedReason))
  t.same(unauthorized.filter((k) => !reasons.has(parseKey(k).labels.reason ?? '')), [], 'every 401 reason label is in the closed set')
  for (const reason of valuesOf(UnauthorizedReason)) {
    t.ok(unauthorized.some((k) => parseKey(k).labels.reason === reason), `reason ${reason} is pre-created`)
  }
  t.equal(s.get('authgw_jwks_keys'), 1, 'the signing key is loaded')
  t.ok((s.get('authgw_jwks_last_refresh_timestamp_seconds') ?? 0) > 0)
  t.equal(sumOf(s, 'authgw_config_info'), 1)
  t.equal(sumOf(s, 'authgw_build_info'), 1)
})

function promtool(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' })
  return r.error ? undefined : 'promtool'
}

function checkWithPromtool(t: Test, text: string, what: string): void {
  if (!promtool()) {
    t.pass(`promtool check metrics on ${what}`, { skip: 'promtool is not installed (apt-get install -y prometheus provides it)' })
    return
  }
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  t.equal(r.status, 0, `promtool check metrics accepts ${what}`)
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'and reports no lint problems')
}

t.test('content negotiation: OpenMetrics when asked, classic text otherwise, names intact', async (t) => {
  const gw = await startTestGateway(t)
  await fetch(`${gw.url}/api/me`) // a 401, so the request histogram has a series too

  const om = await scrapeText(gw, OPENMETRICS)
  t.equal(om.status, 200)
  t.match(om.contentType, /^application\/openmetrics-text; version=1\.0\.0/)
  t.ok(om.text.endsWith('# EOF\n') || om.text.endsWith('# EOF'), 'ends with # EOF')
  t.equal(om.text.split('\n').filter((l) => l === '# EOF').length, 1, 'exactly one # EOF')
  const omLines = om.text.split('\n')
  t.ok(omLines.includes('# TYPE authgw_unauthorized counter'), 'OpenMetrics names the counter family without _total')
  t.ok(omLines.some((l) => l.startsWith('authgw_unauthorized_total{')), 'and its samples with _total')

  const text = await scrapeText(gw)
  t.match(text.contentType, /^text\/plain; version=0\.0\.4/)
  t.notOk(text.text.includes('# EOF'), 'no # EOF in the classic format')
  const textLines = text.text.split('\n')
  // Regression: prom-client strips `_total` from counter names in place while rendering OpenMetrics.
  t.ok(textLines.includes('# TYPE authgw_unauthorized_total counter'), 'classic scrape after an OpenMetrics one keeps _total')
  const counterTypes = textLines.filter((l) => l.startsWith('# TYPE ') && l.endsWith(' counter')).map((l) => l.split(' ')[2] as string)
  t.ok(counterTypes.length > 10)
  t.same(counterTypes.filter((n) => !n.endsWith('_total')), [], 'every counter family in the classic format ends in _total')
  // Runtime series that may appear between two scrapes (a new GC kind, a resource type) are left out.
  const stable = (text: string) => new Set([...parseExposition(text).keys()].filter((k) => !/^authgw_nodejs_(active_|gc_)/.test(k)))
  t.same(stable(om.text), stable(text.text), 'both formats carry the same series')
  checkWithPromtool(t, text.text, 'the classic exposition rendered right after an OpenMetrics one')

  // Concurrent scrapes in both formats must not see each other's renaming.
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => scrapeText(gw, i % 2 === 0 ? OPENMETRICS : undefined).then((r) => ({ i, ...r }))))
  for (const r of results) {
    if (r.i % 2 === 0) {
      if (!r.text.includes('\n# TYPE authgw_unauthorized counter\n') || !r.text.trimEnd().endsWith('# EOF')) t.fail(`concurrent OpenMetrics scrape ${r.i} is wrong`)
    } else if (!r.text.includes('\n# TYPE authgw_unauthorized_total counter\n') || r.text.includes('# EOF')) {
      t.fail(`concurrent classic scrape ${r.i} is wrong`)
    }
  }
  t.pass('20 concurrent scrapes in alternating formats each got their own format')
})

t.test('/metrics is served only on the metrics port, and the metrics port serves nothing else', async (t) => {
  const gw = await startTestGateway(t)
  for (const accept of [undefined, OPENMETRICS]) {
    const res = await fetch(`${gw.url}/metrics`, { headers: accept ? { accept } : {} })
    const body = await res.text()
    t.ok(res.status === 404 || res.status === 401, `gateway port /metrics answers ${res.status}`)
    t.notOk(body.includes('# TYPE') || body.includes('authgw_'), 'and no metrics')
  }
  for (const [method, path] of [
    ['GET', '/'],
    ['GET', '/healthz'],
    ['GET', '/readyz'],
    ['GET', '/api/me'],
    ['GET', '/api/auth/jwks'],
    ['POST', '/api/auth/sign-in/email'],
    ['GET', '/metrics/extra'],
    ['POST', '/metrics'],
  ] as const) {
    const res = await fetch(`${gw.metricsUrl}${path}`, { method })
    const body = await res.text()
    t.equal(res.status, 404, `metrics port ${method} ${path} → 404`)
    t.notOk(body.includes('# TYPE'), 'no metrics there either')
  }
})

// Every random value carries this marker, so the exposition can be searched for any of them.
const MARK = 'zqlblprobe'
const rnd = (bytes = 6) => MARK + randomBytes(bytes).toString('hex')
const b64u = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
const jwtShaped = (header: Record<string, unknown>) =>
  `${b64u(header)}.${b64u({ sub: rnd(), exp: Math.floor(Date.now() / 1000) + 600 })}.${randomBytes(64).toString('base64url')}`

type Req = { method: string; path: string; headers: Record<string, string>; body?: string }
const get = (path: string, headers: Record<string, string> = {}): Req => ({ method: 'GET', path, headers })

/** One generator per kind of junk a client can send; each picks fresh random values. */
const KINDS: Array<() => Req> = [
  () => get(`/api/${rnd()}/${rnd(3)}?q=${rnd()}`),
  () => get(`/${rnd()}/${rnd(3)}`),
  () => get(`/api/auth/${rnd()}`),
  () => get(`/api/auth/${rnd()}/${rnd(2)}`, { 'sec-fetch-site': 'cross-site' }),
  () => get(`/api/${rnd()}`, { authorization: `Bearer ${rnd(24)}` }),
  () => get(`/api/${rnd()}`, { authorization: `${rnd(2)} ${rnd(16)}` }),
  () => get(`/api/${rnd()}`, { authorization: `Bearer ${'a'.repeat(9000)}${rnd()}` }),
  () => get(`/api/${rnd()}`, { authorization: `Bearer ${jwtShaped({ alg: 'EdDSA', kid: rnd() })}` }),
  () => get(`/api/${rnd()}`, { authorization: `Bearer ${jwtShaped({ alg: rnd(2), kid: rnd() })}` }),
  () => get(`/api/${rnd()}`, { authorization: `Bearer ${jwtShaped({ alg: 'EdDSA', kid: rnd(200) })}` }),
  () => get(`/api/${rnd()}`, { cookie: `${rnd()}=${rnd()}; ${rnd(2)}=${rnd(2)}` }),
  () => get(`/api/${rnd()}`, { cookie: `${rnd()}.session_token=${rnd()}` }),
  () => get(`/api/${rnd()}`, { cookie: `__Secure-${rnd()}=${rnd()}` }),
  () => get(`/api/${rnd()}`, { cookie: `better-auth.session_token=${rnd()}` }),
  () => get(`/api/${rnd()}`, { cookie: `better-auth.session_token=${rnd()}.${randomBytes(32).toString('base64')}` }),
  () => get(`/api/${rnd()}`, { 'sec-fetch-site': rnd() }),
  () => get(`/api/${rnd()}`, { origin: `https://${rnd()}.example` }),
  () => get(`/api/${rnd()}`, { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' }),
  () => get(`/api/${rnd()}`, { 'user-agent': rnd(8) }),
  () => get(`/api/${rnd()}`, { 'user-agent': `node-fetch/${rnd()}` }),
  () => get(`/api/${rnd()}`, { 'user-agent': `okhttp/${rnd()}`, cookie: `better-auth.session_data=${rnd()}` }),
  () => get('/api/auth/token', { cookie: `${rnd()}=${rnd()}` }),
  () => get('/api/auth/token', { cookie: `${rnd()}.session_token=${rnd()}` }),
  () => get(`/api/auth/get-session?${rnd()}=${rnd()}`, { cookie: `better-auth.session_token=${rnd()}` }),
  () => ({ method: 'POST', path: `/api/${rnd()}`, headers: { 'content-type': 'application/json', 'x-request-id': rnd() }, body: `{"${rnd()}":1}` }),
  () => ({ method: 'DELETE', path: `/api/${rnd()}`, headers: { authorization: `Bearer ${jwtShaped({ alg: 'EdDSA', kid: rnd() })}` } }),
  () => ({ method: 'DELETE', path: `/api/auth/${rnd()}`, headers: {} }),
]

async function send(gw: TestGateway, r: Req): Promise<number> {
  // A client of no known kind unless the kind says otherwise (Node's own `node` is a server runtime).
  const res = await fetch(gw.url + r.path, { method: r.method, headers: { 'user-agent': 'curl/8.5.0', ...r.headers }, body: r.body, redirect: 'manual' })
  await res.arrayBuffer()
  return res.status
}

const GC_KINDS = new Set(['major', 'minor', 'incremental', 'weakcb'])
const ACTIVE_BY_TYPE = /^authgw_nodejs_active_(resources|handles|requests)$/
const HISTOGRAM = /^authgw_http_request_duration_seconds_(bucket|sum|count)$/

t.test('10,000 requests with random paths, bearer tokens and cookie names add no series', async (t) => {
  const gw = await startTestGateway(t)
  // One of each kind first, so every (method, route, status) they can reach exists.
  for (const kind of KINDS) await send(gw, kind())
  const before = await scrape(gw)

  const TOTAL = 10_000
  const CONCURRENCY = 50
  let next = 0
  let failures = 0
  const statuses = new Map<number, number>()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < TOTAL) {
        const i = next++
        try {
          const status = await send(gw, (KINDS[i % KINDS.length] as () => Req)())
          statuses.set(status, (statuses.get(status) ?? 0) + 1)
        } catch {
          failures++
        }
      }
    }),
  )
  t.equal(failures, 0, 'every request got an answer')
  t.comment(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)

  const started = performance.now()
  const res = await fetch(`${gw.metricsUrl}/metrics`)
  const text = await res.text()
  const ms = performance.now() - started
  const after = parseExposition(text)
  t.comment(`one full scrape: ${ms.toFixed(1)} ms, ${after.size} series, ${text.length} bytes (reported, not asserted)`)

  t.equal(
    sumOf(after, 'authgw_http_request_duration_seconds_count') - sumOf(before, 'authgw_http_request_duration_seconds_count'),
    TOTAL,
    'every request was counted once',
  )
  const d = delta(before, after)
  for (const [source, mechanism, reason] of [
    ['gateway', 'none', 'no_credentials'],
    ['gateway', 'jwt', 'malformed'],
    ['gateway', 'jwt', 'kid_unknown'],
    ['gateway', 'jwt', 'alg_not_allowed'],
    ['gateway', 'session', 'no_cookie'],
    ['gateway', 'session', 'cross_site_no_cookie'],
    ['gateway', 'session', 'cookie_name_mismatch'],
    ['gateway', 'session', 'malformed_cookie'],
    ['gateway', 'session', 'bad_signature'],
    ['gateway', 'session', 'server_side_no_cookie'],
    ['gateway', 'session', 'session_data_without_token'],
    ['auth', 'session', 'no_cookie'],
    ['auth', 'session', 'cookie_name_mismatch'],
  ] as const) {
    t.ok((d.get(seriesKey('authgw_unauthorized_total', { source, mechanism, reason })) ?? 0) > 0, `the flood reached ${source}/${mechanism}/${reason}`)
  }

  // Node.js runtime gauges by resource type (Timeout, TCPSocketWrap …) come
  // and go with what the process is doing; their values are Node's class names.
  const runtimeGauge = (k: string) => ACTIVE_BY_TYPE.test(parseKey(k).name) && /^[A-Za-z]+$/.test(parseKey(k).labels.type ?? '')
  t.same(removed(before, after).filter((k) => !runtimeGauge(k)), [], 'no series disappeared')
  // The only labels allowed to take a new value: a status code on an existing
  // (method, route) of the request histogram (bounded by HTTP itself), the
  // four GC kinds and the resource types of the Node.js default metrics.
  const routes = new Set(
    [...before.keys()].filter((k) => HISTOGRAM.test(parseKey(k).name)).map((k) => `${parseKey(k).labels.method} ${parseKey(k).labels.route}`),
  )
  const newSeries = added(before, after)
  const unexplained = newSeries.filter((k) => {
    const { name, labels } = parseKey(k)
    if (HISTOGRAM.test(name)) return !(routes.has(`${labels.method} ${labels.route}`) && /^[1-5]\d\d$/.test(labels.status_code ?? ''))
    if (name.startsWith('authgw_nodejs_gc_duration_seconds')) return !GC_KINDS.has(labels.kind ?? '')
    return !runtimeGauge(k)
  })
  t.same(unexplained, [], 'no new series beyond a status code on an existing route')
  t.comment(`series before ${before.size}, after ${after.size}; new (allowed): ${JSON.stringify(newSeries)}`)
  t.notOk(text.includes(MARK), 'no random path, token, kid, cookie name or header value reached the exposition')
  const routeValues = new Set([...after.keys()].map((k) => parseKey(k).labels.route).filter((r) => r !== undefined))
  t.ok(routeValues.size <= 30, `route label has ${routeValues.size} values: ${[...routeValues].join(' ')}`)

  checkWithPromtool(t, text, 'the classic exposition with every series present')
})
