// The synthetic sign-in probe (issue 15) against real gateways on real
// sockets, real better-auth and a real database: a passing run, a failing run
// that moves only the probe's series, a timeout, the unforgeable probe mark,
// the one-prober-per-database lock, and the probe account's password kept
// out of logs and stored encrypted.
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import pino from 'pino'
import t from 'tap'
import type { Test } from 'tap'
import { ProbeAccount } from '../../src/probe/account.ts'
import { PROBE_HEADER, createProbeMark } from '../../src/probe/mark.ts'
import { createProber, probeJwksUrl } from '../../src/probe/prober.ts'
import type { Prober } from '../../src/probe/prober.ts'
import { answerReason } from '../../src/probe/run.ts'
import { probeFailureGuide } from '../../src/reason-guide.ts'
import { ProbeOwnReason, ProbeStep, valuesOf } from '../../src/reasons.ts'
import { createMetrics, createRegistry } from '../../src/telemetry/metrics.ts'
import { SHARED_METHODS, USER_FACING_METHODS } from '../../src/telemetry/probe-traffic.ts'
import { loggerOptions } from '../../src/telemetry/logging.ts'
import { Client } from '../helpers/client.ts'
import { TEST_SECRET, freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { REQUEST_NOISE, delta, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'

// About 15 gateways, each with its own database: 2.5–4.5 min on a loaded 2-core machine.
t.setTimeout(600_000)

const OTHER_SECRET = 'other-secret-Qm8Zr2Wx6Tn4Ls0Vb3Hy7Kd1Pj5Fc9Ge-authgw'
const STEPS = valuesOf(ProbeStep)

/** Series a probe run may move besides its counters: its own histogram buckets and timestamp, and what any request moves without a verdict. */
const PROBE_NOISE = [
  ...REQUEST_NOISE,
  /^authgw_probe_step_duration_seconds_(bucket|sum)/,
  'authgw_probe_last_success_timestamp_seconds',
  // The probe's sign-out evicts its own session and minted JWT from this replica's caches
  // (and tells the others): cache upkeep, shared like the cache lookups, not a user-facing series.
  /^authgw_cache_invalidations_total\{kind="(session|jwt)",origin="local"\}/,
]

function proberFor(t: Test, gw: TestGateway, probe: Partial<TestGateway['config']['probe']> = {}): Prober {
  const config = { ...gw.config, probe: { ...gw.config.probe, intervalSeconds: 3600, ...probe } }
  const prober = createProber(config, {
    pool: gw.pool,
    auth: gw.auth,
    metrics: gw.metrics.probe,
    log: pino(loggerOptions('info'), gw.logs),
    sessionCookie: gw.sessions.cookieNames.sessionToken,
  })
  t.teardown(() => prober.stop())
  return prober
}

async function upstreamAnswering(t: Test, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())) as Promise<void>)
  t.teardown(() => server.closeAllConnections())
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('a probe run passes every step through the public URL and moves only the probe series', async (t) => {
  const gw = await startTestGateway(t)
  const prober = proberFor(t, gw)
  const before = await scrape(gw)
  const linesBefore = gw.logs.accessLines().length
  const result = await prober.tick()
  t.ok(result?.ok, `the run passed: ${JSON.stringify(result)}`)
  t.equal(prober.role, 'prober', 'the only replica takes the probe lock')
  t.same(result?.steps.map((s) => s.step), STEPS, 'every step, in order')
  const after = await scrape(gw)
  const d = delta(before, after)
  const expected: Record<string, number> = {
    [seriesKey('authgw_probe_runs_total', { outcome: 'success' })]: 1,
    [seriesKey('authgw_probe_runs_total', { outcome: 'failure' })]: 0,
    authgw_probe_up: 1,
    // User-facing series that the same calls by a user would move.
    authgw_http_request_duration_seconds_count: 0,
    [seriesKey('authgw_sign_in_attempts_total', { method: 'email', outcome: 'success', reason: 'none' })]: 0,
    [seriesKey('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' })]: 0,
    [seriesKey('authgw_auth_decisions_total', { mechanism: 'jwt', outcome: 'allowed' })]: 0,
    [seriesKey('authgw_tokens_issued_total', { kind: 'jwt', via: 'token_endpoint' })]: 0,
    [seriesKey('authgw_tokens_issued_total', { kind: 'jwt', via: 'gateway_exchange' })]: 0,
    [seriesKey('authgw_tokens_issued_total', { kind: 'session', via: 'sign_in' })]: 0,
    // The probe's sign-out is not a revocation.
    authgw_sessions_revoked_total: 0,
  }
  for (const step of STEPS) expected[seriesKey('authgw_probe_step_duration_seconds_count', { step })] = 1
  // The demo upstream fetches the JWKS to verify the JWT the gateway minted
  // for it: the upstream's own request, once per key cache, not the probe's.
  const upstreamKeyFetch = seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/auth/jwks', status_code: 200 })
  t.same(unexpectedMovements(d, expected, [...PROBE_NOISE, upstreamKeyFetch]), [], 'only the probe series moved')
  t.ok((after.get('authgw_probe_last_success_timestamp_seconds') ?? 0) > Date.now() / 1000 - 60, 'last success is now')

  const all = gw.logs.accessLines().slice(linesBefore)
  t.equal(all.filter((l) => l.probe !== true && l.route === '/api/auth/jwks').length, d.get(upstreamKeyFetch) ?? 0, 'unmarked: the upstream\'s key fetch only')
  const lines = all.filter((l) => l.probe === true)
  t.ok(lines.some((l) => l.route === '/api/auth/jwks'), 'the probe\'s own JWKS fetch (jose, as an external API) is marked')
  t.same(
    lines.map((l) => `${l.method} ${l.route} ${l.status}`).filter((l) => !l.includes('/api/auth/jwks')),
    [
      'POST /api/auth/sign-in/email 200',
      'GET /api/auth/get-session 200',
      'GET /api/* 200',
      'GET /api/auth/token 200',
      'GET /api/* 200',
      'POST /api/auth/sign-out 200',
      'GET /api/auth/get-session 200',
    ],
    'the run as access lines',
  )

  // The password: generated, stored encrypted, in no log line.
  const { password, email } = await new ProbeAccount({ pool: gw.pool, auth: gw.auth, secret: TEST_SECRET }).credentials()
  t.ok(password.length >= 24, 'a generated password')
  const stored = (await gw.pool.query<{ email: string; password: string }>('SELECT email, password FROM authgw_probe_account')).rows
  t.equal(stored.length, 1, 'one probe account')
  t.equal(stored[0]?.email, email)
  t.notOk(stored[0]?.password.includes(password), 'the stored password is not the plain text')
  t.notOk(gw.logs.lines.some((l) => l.includes(password)), 'the password is in no log line')
  const other = new ProbeAccount({ pool: gw.pool, auth: gw.auth, secret: OTHER_SECRET })
  t.not((await other.credentials()).password, password, 'another secret cannot decrypt it (and replaces the account)')

  const again = await prober.tick()
  t.ok(again?.ok === false && again.step === 'sign_in', 'the replaced account fails once on the replica holding the old one')
  t.ok((await prober.tick())?.ok, 'then replaces the account it cannot decrypt and passes again')
})

t.test('a failing probe (the upstream answers 401) moves only the probe series, naming step and reason', async (t) => {
  const upstreamUrl = await upstreamAnswering(t, (_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"nope"}')
  })
  const gw = await startTestGateway(t, { upstreamUrl })
  const prober = proberFor(t, gw)
  const before = await scrape(gw)
  const linesBefore = gw.logs.accessLines().length
  const result = await prober.tick()
  t.match(result, { ok: false, step: 'cookie_call', reason: 'upstream_rejected', status: 401 })
  const after = await scrape(gw)
  const expected: Record<string, number> = {
    [seriesKey('authgw_probe_runs_total', { outcome: 'failure' })]: 1,
    [seriesKey('authgw_probe_runs_total', { outcome: 'success' })]: 0,
    [seriesKey('authgw_probe_failures_total', { step: 'cookie_call', reason: 'upstream_rejected' })]: 1,
    authgw_probe_up: 0,
    authgw_http_request_duration_seconds_count: 0,
    [seriesKey('authgw_unauthorized_total', { source: 'upstream', mechanism: 'session', reason: 'upstream_rejected' })]: 0,
    [seriesKey('authgw_upstream_request_duration_seconds_count', { status_code: '401' })]: 0,
  }
  for (const step of ['sign_in', 'get_session', 'cookie_call']) expected[seriesKey('authgw_probe_step_duration_seconds_count', { step })] = 1
  t.same(unexpectedMovements(delta(before, after), expected, PROBE_NOISE), [], 'only the probe series moved')
  const lines = gw.logs.accessLines().slice(linesBefore)
  const call = lines.find((l) => l.route === '/api/*')
  t.match(call, { probe: true, status: 401, reason: 'upstream_rejected', source: 'upstream' }, 'the failed call is on the access log, marked')
  t.ok(lines.some((l) => l.route === '/api/auth/sign-out' && l.probe === true), 'the failed run signed its session out')
  const failed = gw.logs.records().find((r) => r.event === 'probe_run' && r.outcome === 'failure')
  t.match(failed, { step: 'cookie_call', reason: 'upstream_rejected', status: 401 }, 'one warning line names step and reason')
})

t.test('a step that gets no answer in time fails with timeout', async (t) => {
  const upstreamUrl = await upstreamAnswering(t, () => {
    // Never answers.
  })
  const gw = await startTestGateway(t, { upstreamUrl })
  // Long enough for a sign-in (a password hash) on a loaded machine.
  const prober = proberFor(t, gw, { stepTimeoutMs: 3000 })
  const result = await prober.tick()
  t.match(result, { ok: false, step: 'cookie_call', reason: 'timeout' })
  const after = await scrape(gw)
  t.equal(after.get(seriesKey('authgw_probe_failures_total', { step: 'cookie_call', reason: 'timeout' })), 1)
})

t.test('nothing at PROBE_URL: connect_error at sign_in', async (t) => {
  const gw = await startTestGateway(t)
  const prober = proberFor(t, gw, { url: 'http://127.0.0.1:1' })
  t.match(await prober.tick(), { ok: false, step: 'sign_in', reason: 'connect_error' })
})

t.test('the probe mark cannot be forged: a request with a bad mark is a user request', async (t) => {
  const gw = await startTestGateway(t)
  const good = createProbeMark(TEST_SECRET)
  const forged = [
    ['no mark', undefined],
    ['garbage', 'v1.1.AAAA'],
    ['another secret', createProbeMark(OTHER_SECRET).sign('GET', '/api/me')],
    ['another path', good.sign('GET', '/api/other')],
    ['another method', good.sign('POST', '/api/me')],
    ['too old', good.sign('GET', '/api/me', Date.now() - 5 * 60_000)],
  ] as const
  for (const [name, mark] of forged) {
    const before = await scrape(gw)
    const res = await new Client(gw.url).get('/api/me', { headers: mark === undefined ? {} : { [PROBE_HEADER]: mark } })
    t.equal(res.status, 401, `${name}: 401`)
    t.equal(res.headers.get('x-authgw-reason'), null, `${name}: no reason header for a user`)
    const d = delta(before, await scrape(gw))
    t.equal(d.get(seriesKey('authgw_unauthorized_total', { source: 'gateway', mechanism: 'none', reason: 'no_credentials' })), 1, `${name}: counted as a user's 401`)
    t.equal(gw.logs.accessLines().at(-1)?.probe, undefined, `${name}: not marked on the access line`)
  }
  const before = await scrape(gw)
  const res = await new Client(gw.url).get('/api/me', { headers: { [PROBE_HEADER]: good.sign('GET', '/api/me') } })
  t.equal(res.status, 401, 'a marked request is decided like any other')
  t.equal(res.headers.get('x-authgw-reason'), 'no_credentials', 'and told its reason')
  const d = delta(before, await scrape(gw))
  t.same(unexpectedMovements(d, {}, PROBE_NOISE), [], 'a good mark moves no user-facing series')
  t.equal(gw.logs.accessLines().at(-1)?.probe, true, 'probe: true on its access line')
})

t.test('one prober per database: the lock holder probes, another replica takes over when it stops', async (t) => {
  const a = await startTestGateway(t)
  const b = await startTestGateway(t, { databaseUrl: a.databaseUrl, env: { BETTER_AUTH_URL: a.config.baseUrl } })
  const pa = proberFor(t, a)
  const pb = proberFor(t, b)
  t.ok((await pa.tick())?.ok, 'a probes')
  t.equal(await pb.tick(), undefined, 'b does not run while a holds the lock')
  t.equal(pb.role, 'standby')
  t.equal((await scrape(b)).get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })), 0, 'b counted no run')
  await pa.stop()
  const linesBefore = a.logs.accessLines().length
  const r = await pb.tick()
  t.ok(r?.ok, `b took over and passes with the account a created: ${JSON.stringify(r)}`)
  t.equal(pb.role, 'prober')
  // b's PROBE_URL (its BETTER_AUTH_URL) is a's address, as behind a load
  // balancer: a verifies the mark b signed, with the secret they share.
  const seenByA = a.logs.accessLines().slice(linesBefore).filter((l) => l.route !== '/api/auth/jwks' || l.probe === true)
  t.ok(seenByA.length >= 7, `${seenByA.length} of b's probe requests answered by a`)
  t.same(seenByA.filter((l) => l.probe !== true), [], 'a marked every one of them probe: true')
})

/** A round-robin load balancer: each request to the next target, in turn. */
async function roundRobin(t: Test, port: number, targets: () => string[]): Promise<string> {
  let n = 0
  const lb = createServer((req, res) => {
    const all = targets()
    const target = new URL(all[n++ % all.length] as string)
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    up.on('error', () => res.writeHead(502).end())
    req.pipe(up)
  })
  await new Promise<void>((r) => lb.listen(port, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => lb.close(() => r())))
  t.teardown(() => lb.closeAllConnections())
  return `http://127.0.0.1:${port}`
}

t.test('behind a load balancer, a replica with another secret makes every probe run fail, naming bad_signature', async (t) => {
  const lbPort = await freePort()
  const publicUrl = `http://127.0.0.1:${lbPort}`
  const a = await startTestGateway(t, { env: { BETTER_AUTH_URL: publicUrl } })
  const b = await startTestGateway(t, { databaseUrl: a.databaseUrl, env: { BETTER_AUTH_URL: publicUrl, BETTER_AUTH_SECRET: OTHER_SECRET } })
  await roundRobin(t, lbPort, () => [a.url, b.url])
  const prober = proberFor(t, a)
  const results = []
  for (let i = 0; i < 4; i++) results.push(await prober.tick())
  t.same(results.map((r) => r?.ok), [false, false, false, false], 'every run fails')
  const failures = results.map((r) => (r?.ok === false ? `${r.step} ${r.reason}` : 'passed'))
  t.comment(`failures: ${failures.join(', ')}`)
  t.ok(failures.every((f) => f === 'get_session bad_signature' || f === 'get_session unexpected_answer'), 'the session set on one replica is refused by the other, at get_session')
  t.ok(failures.includes('get_session bad_signature'), 'named bad_signature when the replica that can verify the mark refuses it')
})

t.test('PROBE_INTERVAL_SECONDS starts the probe with the gateway, announced at startup, and close() stops it', async (t) => {
  const gw = await startTestGateway(t, { env: { PROBE_INTERVAL_SECONDS: '3600' } })
  t.ok(gw.prober, 'the gateway runs a prober')
  const startup = gw.logs.records().find((r) => r.event === 'startup')
  t.same(startup?.probe, { interval_seconds: 3600, url: new URL(gw.config.baseUrl).origin, path: '/api/me' }, 'the startup line says where the probe goes')
  const deadline = Date.now() + 30_000
  while (((await scrape(gw)).get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })) ?? 0) < 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200))
  }
  t.equal((await scrape(gw)).get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })), 1, 'the first run passed at startup')
  await gw.close()
  const other = proberFor(t, await startTestGateway(t, { databaseUrl: gw.databaseUrl, env: { BETTER_AUTH_URL: gw.config.baseUrl.replace(/:\d+$/, ':1') } }))
  t.equal(await other.tick().then((r) => (r === undefined ? 'standby' : r.ok ? 'passed' : r.step)), 'sign_in', 'close() released the lock: another replica probes (and finds nothing at the closed address)')
  const off = await startTestGateway(t)
  t.equal(off.prober, undefined, 'off by default')
})

t.test('the loop starts at once and stop() releases the lock', async (t) => {
  const gw = await startTestGateway(t)
  const prober = proberFor(t, gw, { intervalSeconds: 5 })
  prober.start()
  const deadline = Date.now() + 30_000
  let runs = 0
  while (Date.now() < deadline) {
    runs = (await scrape(gw)).get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })) ?? 0
    if (runs >= 1) break
    await new Promise((r) => setTimeout(r, 200))
  }
  t.equal(runs, 1, 'the first run starts at once')
  await prober.stop()
  const other = proberFor(t, await startTestGateway(t, { databaseUrl: gw.databaseUrl, env: { BETTER_AUTH_URL: gw.config.baseUrl } }))
  t.ok((await other.tick())?.ok, 'stop released the lock')
})

t.test('a run cut short by stop() (shutdown) is not counted as a failure', async (t) => {
  const upstreamUrl = await upstreamAnswering(t, () => {
    // Never answers: the run waits at cookie_call.
  })
  const gw = await startTestGateway(t, { upstreamUrl })
  const prober = proberFor(t, gw, { stepTimeoutMs: 60_000 })
  const before = await scrape(gw)
  const running = prober.tick()
  const deadline = Date.now() + 30_000
  while (!gw.logs.accessLines().some((l) => l.probe === true && l.route === '/api/auth/get-session') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
  }
  await prober.stop()
  const result = await running
  t.equal(result?.ok, false, 'the run ended at once')
  const d = delta(before, await scrape(gw))
  t.equal(d.get(seriesKey('authgw_probe_runs_total', { outcome: 'failure' })) ?? 0, 0, 'no failed run counted')
  t.equal(d.get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })) ?? 0, 0, 'nor a success')
})

t.test('probe reasons: the gateway header first, then the body, then the upstream, else unexpected_answer', async (t) => {
  const answer = (status: number, headers: Record<string, string>, body: unknown) => ({ status, headers: new Headers(headers), body })
  t.equal(answerReason(answer(401, { 'x-authgw-reason': 'bad_signature' }, undefined), ProbeStep.cookie_call), 'bad_signature')
  t.equal(answerReason(answer(401, {}, { reason: 'bad_signature' }), ProbeStep.cookie_call), 'bad_signature', 'a replica that could not verify the mark still names its reason in the body')
  t.equal(answerReason(answer(401, {}, { reason: 'missing_bearer' }), ProbeStep.bearer_call), 'upstream_rejected', 'an upstream 401 on a proxied call')
  t.equal(answerReason(answer(401, { 'x-authgw-reason': 'made_up' }, undefined), ProbeStep.sign_in), 'unexpected_answer', 'values outside the closed set are never labels')
  t.equal(answerReason(answer(502, {}, '<html>'), ProbeStep.sign_in), 'unexpected_answer')
  for (const reason of valuesOf(ProbeOwnReason)) t.ok(reason in probeFailureGuide, `${reason} has a guide entry (alert text)`)
})

t.test('every metrics method is either muted for probe requests or shared', async (t) => {
  const m = createMetrics(createRegistry(), { version: 'x', config: { issuer: '', audience: '', jwks_url: '', cookie_prefix: '', secret_fingerprint: '' } })
  const methods = Object.entries(m).filter(([, v]) => typeof v === 'function').map(([k]) => k).sort()
  t.same(methods, [...USER_FACING_METHODS, ...SHARED_METHODS].sort())
})

t.test('a JWKS URL under BETTER_AUTH_URL is fetched through PROBE_URL', async (t) => {
  t.equal(probeJwksUrl('http://localhost:8080/api/auth/jwks', 'http://localhost:8080', 'http://lb:8080'), 'http://lb:8080/api/auth/jwks')
  t.equal(probeJwksUrl('https://keys.example.com/jwks', 'http://localhost:8080', 'http://lb:8080'), 'https://keys.example.com/jwks', 'elsewhere: as configured')
  t.equal(probeJwksUrl('http://localhost:80800/jwks', 'http://localhost:8080', 'http://lb:8080'), 'http://localhost:80800/jwks', 'a prefix is not a path')
})
