// docs/reasons.md: the precedence between the missing-cookie reasons, what the log
// line keeps when one outranks another, and the bearer failure that hides a
// good cookie. Real gateway, real sockets, real database.
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'

const COOKIE = 'better-auth.session_token'
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'

const line = (gw: TestGateway, res: Res) => gw.logs.accessLines().find((r) => r.reqId === res.headers.get('x-request-id'))

/** Sign up as a client with this User-Agent; returns its cookie jar. */
async function signUpAs(gw: TestGateway, ua: string): Promise<Client> {
  const c = new Client(gw.url)
  const res = await c.post('/api/auth/sign-up/email', { email: uniqueEmail('diag'), password: PASSWORD, name: 'T' }, { headers: { 'user-agent': ua } })
  if (res.status !== 200) throw new Error(`sign-up: ${res.status} ${res.text}`)
  return c
}

/** One denied /api/me; exactly its session reason's series move. */
async function deniedOnce(t: Test, gw: TestGateway, headers: Record<string, string>, reason: string, mechanism = 'session'): Promise<Res> {
  const before = await scrape(gw)
  const res = await new Client(gw.url).get('/api/me', { headers })
  const after = await scrape(gw)
  t.equal(res.status, 401, res.text)
  t.equal(res.body?.reason, reason, `reason ${reason}`)
  const expected: Record<string, number> = {
    [seriesKey('authgw_unauthorized_total', { source: 'gateway', mechanism, reason })]: 1,
    [seriesKey('authgw_auth_decisions_total', { mechanism, outcome: 'denied' })]: 1,
    [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/*', status_code: 401 })]: 1,
  }
  if (mechanism === 'session') expected[seriesKey('authgw_session_nulls_total', { reason })] = 1
  if (mechanism === 'jwt') expected[seriesKey('authgw_jwt_validation_failures_total', { reason })] = 1
  t.same(unexpectedMovements(delta(before, after), expected), [], 'exactly the expected series moved')
  return res
}

t.test('missing-cookie precedence', async (t) => {
  const gw = await startTestGateway(t)

  await t.test('cookie_not_returned outranks cross_site_no_cookie and keeps the cross-site detail', async (t) => {
    const ua = `${BROWSER_UA} cross`
    await signUpAs(gw, ua)
    const res = await deniedOnce(t, gw, { 'user-agent': ua, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors', origin: 'https://app.example.net' }, 'cookie_not_returned')
    t.match(line(gw, res), { reason: 'cookie_not_returned', secFetchSite: 'cross-site', origin: 'https://app.example.net', clientKind: 'browser', cookieNames: [] })
    t.type(line(gw, res)?.sinceSignInSeconds, 'number', 'seconds since the sign-in')
  })

  await t.test('cookie_not_returned outranks credentials_omitted', async (t) => {
    const ua = `${BROWSER_UA} same-site`
    await signUpAs(gw, ua)
    await deniedOnce(t, gw, { 'user-agent': ua, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' }, 'cookie_not_returned')
  })

  await t.test('another User-Agent from the same address is another client', async (t) => {
    await signUpAs(gw, `${BROWSER_UA} first`)
    await deniedOnce(t, gw, { 'user-agent': `${BROWSER_UA} second`, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' }, 'credentials_omitted')
  })

  await t.test('credentials_omitted outranks cross_site_no_cookie only where it applies; cross-site stays cross-site', async (t) => {
    await deniedOnce(t, gw, { 'user-agent': `${BROWSER_UA} x`, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' }, 'cross_site_no_cookie')
    // A same-origin fetch sends cookies by default: an empty jar, not an omission.
    await deniedOnce(t, gw, { 'user-agent': `${BROWSER_UA} y`, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }, 'no_cookie')
  })

  await t.test('after sign-out the client is no longer "just signed in"', async (t) => {
    const ua = `${BROWSER_UA} signout`
    const c = await signUpAs(gw, ua)
    const out = await c.post('/api/auth/sign-out', {}, { headers: { 'user-agent': ua } })
    t.equal(out.status, 200, out.text)
    await deniedOnce(t, gw, { 'user-agent': ua, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' }, 'no_cookie')
  })

  await t.test('an Origin that differs from Host without Sec-Fetch-Site is not cross-site evidence', async (t) => {
    await deniedOnce(t, gw, { 'user-agent': 'curl/8.5.0', origin: 'https://elsewhere.example' }, 'no_credentials', 'none')
  })

  await t.test('a server runtime that forwards other cookies passes on a browser jar without the session cookie: no_cookie', async (t) => {
    await deniedOnce(t, gw, { 'user-agent': 'Next.js Middleware', cookie: 'theme=dark' }, 'no_cookie')
    await deniedOnce(t, gw, { 'user-agent': 'Next.js Middleware' }, 'server_side_no_cookie')
  })
})

t.test('FRESH_SIGN_IN_WINDOW_SECONDS=0 turns cookie_not_returned and fresh_session_not_found off', async (t) => {
  const gw = await startTestGateway(t, { env: { FRESH_SIGN_IN_WINDOW_SECONDS: '0' } })
  const ua = `${BROWSER_UA} off`
  await signUpAs(gw, ua)
  await deniedOnce(t, gw, { 'user-agent': ua, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' }, 'credentials_omitted')
})

t.test('a bearer failure while a valid session cookie is present says alsoHadSessionCookie', async (t) => {
  const gw = await startTestGateway(t)
  const c = await signUpAs(gw, 'diagnosis-bearer/1')
  const cookie = `${COOKIE}=${c.jar.get(COOKIE)}`
  const res = await deniedOnce(t, gw, { authorization: 'Bearer not-a-jwt', cookie }, 'malformed', 'jwt')
  t.match(line(gw, res), { reason: 'malformed', mechanism: 'jwt', alsoHadSessionCookie: true })
  // The same bearer without the cookie, or with a cookie that is not valid: no flag.
  const alone = await deniedOnce(t, gw, { authorization: 'Bearer not-a-jwt' }, 'malformed', 'jwt')
  t.notOk(line(gw, alone)?.alsoHadSessionCookie)
  const bad = await deniedOnce(t, gw, { authorization: 'Bearer not-a-jwt', cookie: `${COOKIE}=x.y` }, 'malformed', 'jwt')
  t.notOk(line(gw, bad)?.alsoHadSessionCookie)
})

t.test('duplicate_session_cookie: the first value is honoured, as better-auth does', async (t) => {
  const gw = await startTestGateway(t)
  const a = await signUpAs(gw, 'diagnosis-dup/1')
  const good = `${COOKIE}=${a.jar.get(COOKIE)}`
  // A valid first value wins even with a junk second one (no 401 at all).
  const ok = await new Client(gw.url).get('/api/me', { headers: { cookie: `${good}; ${COOKIE}=junk` } })
  t.equal(ok.status, 200, ok.text)
  const res = await deniedOnce(t, gw, { cookie: `${COOKIE}=junk; ${good}` }, 'duplicate_session_cookie')
  t.match(line(gw, res), { sessionCookieCount: 2, firstCookieReason: 'malformed_cookie' })
})

t.test('COOKIE_PREFIX: better-auth names the cookie, the gateway reads it under that name', async (t) => {
  const gw = await startTestGateway(t, { env: { COOKIE_PREFIX: 'shop' } })
  t.equal(gw.sessions.cookieNames.sessionToken, 'shop.session_token')
  const c = await signUpAs(gw, 'diagnosis-prefix/1')
  const value = c.jar.get('shop.session_token')
  t.ok(value, 'the sign-up set shop.session_token')
  t.equal((await new Client(gw.url).get('/api/me', { headers: { cookie: `shop.session_token=${value}` } })).status, 200, 'accepted under the prefix')
  // The same value under the default name: another prefix's cookie.
  await deniedOnce(t, gw, { cookie: `better-auth.session_token=${value}` }, 'cookie_name_mismatch')
})
