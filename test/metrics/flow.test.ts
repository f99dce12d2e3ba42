// The happy path, counted: sign-up → sign-in → 50 cookie calls → /api/auth/token
// → one bearer call moves exactly these series, and not one 401 series.
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { REQUEST_NOISE, delta, parseKey, scrape, seriesKey, sumOf, unexpectedMovements } from '../helpers/metrics.ts'

const CALLS = 50

t.test('sign-up, sign-in, 50 calls, token, bearer call: the counters tell the story', async (t) => {
  // A long session-cache TTL makes the hit/miss split independent of how fast the calls run.
  const gw = await startTestGateway(t, { env: { SESSION_CACHE_TTL_SECONDS: '600' } })
  const before = await scrape(gw)

  const email = uniqueEmail('flow')
  t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)
  const c = new Client(gw.url)
  t.equal((await c.signIn(email, PASSWORD)).status, 200)
  let ok = 0
  for (let i = 0; i < CALLS; i++) if ((await c.get('/api/me')).status === 200) ok++
  t.equal(ok, CALLS, 'every cookie call answered 200')
  const token = await c.token()
  const bearer = await new Client(gw.url).get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(bearer.status, 200, bearer.text)
  t.equal(bearer.body.email, email)

  const after = await scrape(gw)
  const d = delta(before, after)
  const tokens = (kind: string, via: string) => seriesKey('authgw_tokens_issued_total', { kind, via })
  const requests = (method: string, route: string) =>
    seriesKey('authgw_http_request_duration_seconds_count', { method, route, status_code: 200 })
  const expected = {
    [tokens('session', 'sign_up')]: 1,
    [tokens('session', 'sign_in')]: 1,
    [tokens('jwt', 'token_endpoint')]: 1,
    // Minted once for the session, then served from the minter's cache.
    [tokens('jwt', 'gateway_exchange')]: 1,
    [seriesKey('authgw_sign_in_attempts_total', { method: 'email', outcome: 'success', reason: 'none' })]: 1,
    [seriesKey('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' })]: CALLS,
    [seriesKey('authgw_auth_decisions_total', { mechanism: 'jwt', outcome: 'allowed' })]: 1,
    [requests('GET', '/api/*')]: CALLS + 1,
    [requests('POST', '/api/auth/sign-up/email')]: 1,
    [requests('POST', '/api/auth/sign-in/email')]: 1,
    [requests('GET', '/api/auth/token')]: 1,
    // The demo upstream fetches the JWKS once and caches it.
    [requests('GET', '/api/auth/jwks')]: 1,
    [seriesKey('authgw_upstream_request_duration_seconds_count', { status_code: 200 })]: CALLS + 1,
    [seriesKey('authgw_session_cache_lookups_total', { result: 'miss' })]: 1,
    // 49 protected calls after the first, plus /api/auth/token's own session check.
    [seriesKey('authgw_session_cache_lookups_total', { result: 'hit' })]: CALLS - 1 + 1,
    [seriesKey('authgw_jwt_cache_lookups_total', { result: 'miss' })]: 1,
  }
  t.same(
    unexpectedMovements(d, expected, [
      ...REQUEST_NOISE.filter((m) => m !== 'authgw_session_cache_lookups_total' && m !== 'authgw_jwt_cache_lookups_total'),
      'authgw_upstream_request_duration_seconds_bucket',
      'authgw_upstream_request_duration_seconds_sum',
    ]),
    [],
    'exactly the expected series moved, by exactly the expected amounts',
  )
  t.equal(sumOf(after, 'authgw_auth_decisions_total', { outcome: 'allowed' }) - sumOf(before, 'authgw_auth_decisions_total', { outcome: 'allowed' }), CALLS + 1)

  const moved401 = [...d].filter(([k]) => parseKey(k).name === 'authgw_unauthorized_total')
  t.same(moved401, [], 'no authgw_unauthorized_total series moved')
  t.equal(sumOf(after, 'authgw_unauthorized_total'), 0, 'and all of them are still 0')
  t.ok(sumOf(after, 'authgw_http_request_duration_seconds_count', { status_code: 401 }) === 0, 'no request answered 401')
})
