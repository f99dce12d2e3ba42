// The example Python API (examples/python-api: FastAPI, PyJWT, prometheus_client
// from Debian's packages) as authgw's real upstream: a cookie call reaches it
// and answers the identity; a gateway whose BETTER_AUTH_AUDIENCE differs from
// the API's shows upstream_rejected at the gateway and audience_mismatch at
// the API for the same request id and trace id. And the two verifiers, fed the
// same tokens, name the same reason.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHmac, generateKeyPairSync, sign as cryptoSign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { startInProcessTracing } from '../fixtures/in-process-tracing.ts'
import { Kind } from '../fixtures/spans.ts'
import { REPO_ROOT } from '../fixtures/node-process.ts'
import { pythonProblem, runPython, RUNTIME_PACKAGES, startPythonApi, TEST_PACKAGES } from './python-api.ts'

// Before anything loads pg: the instrumentation patches it on load.
const tracing = await startInProcessTracing()
const { freePort, startTestGateway } = await import('../helpers/gateway.ts')
const { Client, PASSWORD, uniqueEmail } = await import('../helpers/client.ts')
const { freshDatabaseUrl } = await import('../helpers/database.ts')
const { delta, scrape } = await import('../helpers/metrics.ts')
const { JwtReason, valuesOf } = await import('../../src/reasons.ts')
const { JwksStore } = await import('../../src/auth/jwks.ts')
const { JwtVerifier } = await import('../../src/auth/jwt.ts')

const UPSTREAM_REJECTED = 'authgw_unauthorized_total{mechanism="session",reason="upstream_rejected",source="upstream"}'
const API_AUDIENCE_MISMATCH = 'api_jwt_validation_failures_total{reason="audience_mismatch"}'
const API_UNAUTHORIZED_AUDIENCE = 'api_unauthorized_total{reason="audience_mismatch"}'
/** API series a request moves whatever its outcome. */
const apiNoise = (key: string) => key.startsWith('api_http_request_duration_seconds') || key.startsWith('process_') || key.startsWith('python_gc_')

t.test('CI installs the packages and runs the pytest suite', async (t) => {
  const ci = readFileSync(`${REPO_ROOT}/.ci/run`, 'utf8')
  const install = /apt-get install(?:[^\n]*\\\n)*[^\n]*/.exec(ci)?.[0] ?? ''
  for (const pkg of [...RUNTIME_PACKAGES, ...TEST_PACKAGES]) t.match(install, new RegExp(`\\s${pkg}(\\s|$)`), `.ci/run installs ${pkg}`)
  t.match(ci, /^\/usr\/bin\/python3 -m pytest examples\/python-api\b/m, '.ci/run runs the suite with Debian\'s interpreter')
})

const problem = pythonProblem()
// Not a skip: CI installs the packages (.ci/run), so their absence is a failure.
if (problem !== undefined) t.fail(`examples/python-api cannot run: ${problem}`)
else {
  t.test('the Python API behind a real gateway', async (t) => {
    const databaseUrl = await freshDatabaseUrl(t)
    const apiPort = await freePort()
    const apiUrl = `http://127.0.0.1:${apiPort}`
    const a = await startTestGateway(t, { databaseUrl, upstreamUrl: apiUrl })
    const api = await startPythonApi(t, apiPort, {
      JWKS_URL: `${a.url}/api/auth/jwks`,
      JWT_ISSUER: a.config.issuer,
      JWT_AUDIENCE: a.config.audience,
    })
    const apiMetrics = { metricsUrl: api.url }

    const client = new Client(a.url)
    const email = uniqueEmail('python-api')
    const signUp = await client.signUp(email, PASSWORD, 'Ada Py')
    t.equal(signUp.status, 200, 'sign-up through the gateway')

    t.test('a cookie call reaches the API and answers the identity it verified', async (t) => {
      const before = await scrape(apiMetrics)
      const res = await client.get('/api/me')
      t.equal(res.status, 200, res.text)
      t.match(res.body, { id: signUp.body.user.id, email, name: 'Ada Py', issuer: a.config.issuer })
      const reqId = res.headers.get('x-request-id') as string
      const line = await api.requestLine(reqId)
      t.match(line, { status: 200, route: '/api/me', outcome: 'allowed', user: signUp.body.user.id, alg: 'EdDSA' })
      const moved = [...delta(before, await scrape(apiMetrics)).keys()].filter((k) => !apiNoise(k))
      t.same(moved, [], 'no failure counter moved')
    })

    t.test('audience drift: upstream_rejected at the gateway, audience_mismatch at the API, one request id', async (t) => {
      // Same database and secret, so the same signing keys; same issuer; only
      // the audience differs, as after a half-rolled-out config change.
      const b = await startTestGateway(t, {
        databaseUrl,
        upstreamUrl: apiUrl,
        env: { BETTER_AUTH_ISSUER: a.config.issuer, BETTER_AUTH_AUDIENCE: 'https://other-api.example.test' },
      })
      const onB = new Client(b.url)
      t.equal((await onB.signIn(email, PASSWORD)).status, 200)
      const gwBefore = await scrape(b)
      const apiBefore = await scrape(apiMetrics)
      await tracing.reset()

      const res = await onB.get('/api/me')
      t.equal(res.status, 401, res.text)

      // The gateway's side: its access line names the request id the on-call engineer starts from.
      const gw = delta(gwBefore, await scrape(b))
      t.equal(gw.get(UPSTREAM_REJECTED), 1, UPSTREAM_REJECTED)
      const gwLine = await waitFor(() => b.logs.accessLines().find((r) => r.path === '/api/me'), 'the gateway access line')
      t.match(gwLine, { status: 401, reason: 'upstream_rejected', source: 'upstream', mechanism: 'session' })
      const reqId = gwLine.reqId as string
      t.equal(res.headers.get('x-request-id'), reqId, 'the client sees that request id')
      t.match(res.body, { error: 'unauthorized', reason: 'audience_mismatch', requestId: reqId }, "the API's answer reaches the client")

      // The API's side, found by the same request id.
      const apiLine = await api.requestLine(reqId)
      t.match(apiLine, { status: 401, outcome: 'denied', reason: 'audience_mismatch', route: '/api/me', kid: String, alg: 'EdDSA' })
      const moved = delta(apiBefore, await scrape(apiMetrics))
      t.equal(moved.get(API_AUDIENCE_MISMATCH), 1, API_AUDIENCE_MISMATCH)
      t.equal(moved.get(API_UNAUTHORIZED_AUDIENCE), 1, API_UNAUTHORIZED_AUDIENCE)
      t.same([...moved.keys()].filter((k) => !apiNoise(k)).sort(), [API_AUDIENCE_MISMATCH, API_UNAUTHORIZED_AUDIENCE].sort(), 'nothing else moved')

      // And the same trace: the API's parent span is the gateway's upstream call.
      t.match(gwLine.trace_id, /^[0-9a-f]{32}$/, 'the gateway traced the request')
      t.equal(apiLine.trace_id, gwLine.trace_id, 'one trace id on both lines')
      const tree = await tracing.tree()
      const requestSpan = tree.requestSpan(reqId)
      const hop = requestSpan && tree.children(requestSpan).find((s) => s.kind === Kind.client)
      t.ok(hop, "the gateway's client span for the upstream call")
      t.equal(apiLine.parent_span_id, hop?.spanId, "the API's parent_span_id is that span")
    })

    t.test('every line the API wrote is JSON and carries no token', async (t) => {
      const records = api.records() // throws on a non-JSON line
      t.ok(records.length >= 4)
      t.same(api.stderr, [])
      t.ok(records.some((r) => r.logger === 'uvicorn.error'), "uvicorn's own lines are among them")
      const token = await client.token()
      await client.get('/api/me', { headers: { authorization: `Bearer ${token}` }, cookies: false })
      const signature = token.split('.')[2] as string
      t.notOk(api.stdout.some((l) => l.includes(signature)), 'no JWT signature in the output')
    })
  })

  t.test('the gateway and the API name the same reason for the same token', async (t) => {
    const pythonReasons = JSON.parse(runPython('import json; from upstream_api.reasons import JWT_REASONS; print(json.dumps(JWT_REASONS))')) as string[]
    t.same([...pythonReasons].sort(), valuesOf(JwtReason).sort(), 'one closed set: upstream_api/reasons.py JWT_REASONS = src/reasons.ts JwtReason')

    const ISSUER = 'http://gateway.example.test'
    const AUDIENCE = 'http://gateway.example.test'
    const ed = generateKeyPairSync('ed25519')
    const rs = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const impostor = generateKeyPairSync('ed25519')
    const keys = [
      { ...ed.publicKey.export({ format: 'jwk' }), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
      { ...rs.publicKey.export({ format: 'jwk' }), kid: 'rs-1', alg: 'RS256', use: 'sig' },
    ]
    const jwksServer = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys }))
    })
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise((resolve) => jwksServer.close(resolve)))
    const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks`

    const store = new JwksStore({ fetchKeys: async () => keys, refreshIntervalSeconds: 300, cooldownSeconds: 30 })
    await store.refresh()
    const gateway = new JwtVerifier({ jwks: store, issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA', 'RS256'], cacheMaxEntries: 100 })
    const api = await startPythonApi(t, await freePort(), { JWKS_URL: jwksUrl, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, JWT_ALGORITHMS: 'EdDSA,RS256' })

    const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
    const now = Math.floor(Date.now() / 1000)
    const claims = { sub: 'user-1', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600 }
    // Signed by hand (not jose): some cases are tokens no JWT library would produce.
    const sign = (payload: unknown, header: Record<string, unknown>, key: KeyObject | string) => {
      const input = `${b64(header)}.${b64(payload)}`
      const signature =
        typeof key === 'string'
          ? createHmac('sha256', key).update(input).digest()
          : cryptoSign(header.alg === 'RS256' ? 'sha256' : null, Buffer.from(input), key)
      return `${input}.${signature.toString('base64url')}`
    }
    const edToken = (payload: unknown, header: Record<string, unknown> = {}) => sign(payload, { alg: 'EdDSA', kid: 'ed-1', ...header }, ed.privateKey)
    const without = (name: string) => Object.fromEntries(Object.entries(claims).filter(([k]) => k !== name))
    const valid = edToken(claims)
    const [h, p, s] = valid.split('.') as [string, string, string]

    const cases: Array<[string, string, string]> = [
      ['valid EdDSA', valid, 'ok'],
      ['valid RS256', sign(claims, { alg: 'RS256', kid: 'rs-1' }, rs.privateKey), 'ok'],
      ['opaque token', 'opaque-session-token', 'malformed'],
      ['two parts', `${h}.${p}`, 'malformed'],
      ['payload not JSON', edToken('not json'), 'malformed'],
      ['no sub', edToken(without('sub')), 'malformed'],
      ['exp not a number', edToken({ ...claims, exp: 'soon' }), 'malformed'],
      ['unknown crit', edToken(claims, { crit: ['x-ext'], 'x-ext': 1 }), 'malformed'],
      ['over 8192 characters', edToken({ ...claims, pad: 'x'.repeat(9000) }), 'malformed'],
      ['alg none', `${b64({ alg: 'none', kid: 'ed-1' })}.${p}.`, 'alg_not_allowed'],
      ['HS256', sign(claims, { alg: 'HS256', kid: 'ed-1' }, 'a-shared-secret-of-32-bytes-long!'), 'alg_not_allowed'],
      ['RS256 on the EdDSA key', sign(claims, { alg: 'RS256', kid: 'ed-1' }, rs.privateKey), 'alg_not_allowed'],
      ['unknown kid', edToken(claims, { kid: 'rotated-away' }), 'kid_unknown'],
      ['no kid', sign(claims, { alg: 'EdDSA' }, ed.privateKey), 'kid_unknown'],
      ['another key, same kid', sign(claims, { alg: 'EdDSA', kid: 'ed-1' }, impostor.privateKey), 'bad_signature'],
      ['tampered payload', `${h}.${b64({ ...claims, sub: 'admin' })}.${s}`, 'bad_signature'],
      ['expired', edToken({ ...claims, exp: now - 60 }), 'expired'],
      ['nbf in the future', edToken({ ...claims, nbf: now + 600 }), 'not_yet_valid'],
      ['other issuer', edToken({ ...claims, iss: 'http://preview.example.test' }), 'issuer_mismatch'],
      ['no iss', edToken(without('iss')), 'issuer_mismatch'],
      ['other audience', edToken({ ...claims, aud: 'http://other-api.example.test' }), 'audience_mismatch'],
      ['no aud', edToken(without('aud')), 'audience_mismatch'],
    ]
    t.same(new Set(cases.map(([, , r]) => r)), new Set(['ok', ...valuesOf(JwtReason)]), 'a case for every reason')
    for (const [label, token, expected] of cases) {
      const g = await gateway.verify(token)
      const gatewayReason = g.ok ? 'ok' : g.reason
      const res = await fetch(`${api.url}/api/me`, { headers: { authorization: `Bearer ${token}` } })
      const body = (await res.json()) as { reason?: string }
      const apiReason = res.status === 200 ? 'ok' : res.status === 401 ? body.reason : `status ${res.status}`
      t.equal(gatewayReason, expected, `${label}: gateway`)
      t.equal(apiReason, gatewayReason, `${label}: the API agrees`)
    }
  })
}

async function waitFor<T>(probe: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
