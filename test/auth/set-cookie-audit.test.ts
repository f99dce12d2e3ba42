// The Set-Cookie audit (docs/reasons.md, "Set-Cookie audit"): a real sign-up
// through a real gateway whose COOKIE_* settings or Host make better-auth's
// session cookie one the browser will drop; exactly that problem's series
// moves by one, one set_cookie_problem line names it (never the value), and
// the sign-up's access line carries it. Host is sent with undici.request,
// which (unlike fetch) lets a test name it.
import t from 'tap'
import type { Test } from 'tap'
import { request } from 'undici'
import { cookieProblems, parseSetCookie } from '../../src/auth/set-cookie-audit.ts'
import { SetCookieProblem, valuesOf } from '../../src/reasons.ts'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'

type Case = { problem: string; how: string; env?: (port: number) => Record<string, string>; host?: (port: number) => string }

const cases: Case[] = [
  { problem: 'domain_public_suffix', how: 'COOKIE_DOMAIN=co.uk, reached as app.co.uk', env: () => ({ COOKIE_DOMAIN: 'co.uk' }), host: (p) => `app.co.uk:${p}` },
  { problem: 'domain_not_host_suffix', how: 'COOKIE_DOMAIN=example.com, reached as 127.0.0.1', env: () => ({ COOKIE_DOMAIN: 'example.com' }) },
  { problem: 'domain_ip', how: 'COOKIE_DOMAIN=10.0.0.1, reached as 127.0.0.1', env: () => ({ COOKIE_DOMAIN: '10.0.0.1' }) },
  {
    problem: 'secure_over_http',
    how: 'an https BETTER_AUTH_URL reached over plain http on a host name',
    env: (p) => ({ BETTER_AUTH_URL: `https://authgw.test:${p}` }),
    host: (p) => `authgw.test:${p}`,
  },
  // better-call adds Secure to SameSite=None and Partitioned cookies, so over
  // plain http on a host name they fail as secure_over_http, not as *_without_secure.
  {
    problem: 'secure_over_http',
    how: 'COOKIE_SAME_SITE=none with an http BETTER_AUTH_URL on a host name (better-call adds Secure)',
    env: (p) => ({ BETTER_AUTH_URL: `http://authgw.test:${p}`, COOKIE_SAME_SITE: 'none' }),
    host: (p) => `authgw.test:${p}`,
  },
  {
    problem: 'secure_over_http',
    how: 'COOKIE_PARTITIONED=true with an http BETTER_AUTH_URL on a host name (better-call adds Secure)',
    env: (p) => ({ BETTER_AUTH_URL: `http://authgw.test:${p}`, COOKIE_PARTITIONED: 'true' }),
    host: (p) => `authgw.test:${p}`,
  },
]

async function signUp(gw: TestGateway, host: string | undefined) {
  const origin = new URL(gw.config.baseUrl).origin
  const res = await request(`${gw.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, 'user-agent': 'curl/8.5.0', ...(host ? { host } : {}) },
    body: JSON.stringify({ email: uniqueEmail('audit'), password: PASSWORD, name: 'Audit' }),
  })
  const text = await res.body.text()
  const setCookie = res.headers['set-cookie']
  return { status: res.statusCode, text, requestId: String(res.headers['x-request-id']), setCookie: Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [] }
}

for (const c of cases) {
  t.test(`${c.problem}: ${c.how}`, async (t: Test) => {
    const port = await freePort()
    const gw = await startTestGateway(t, { port, env: c.env?.(port) ?? {} })
    const before = await scrape(gw)
    const res = await signUp(gw, c.host?.(port))
    const after = await scrape(gw)
    t.equal(res.status, 200, res.text)
    t.ok(res.setCookie.length > 0, 'better-auth set the session cookie')
    const expected = {
      [seriesKey('authgw_set_cookie_problems_total', { problem: c.problem })]: 1,
      [seriesKey('authgw_tokens_issued_total', { kind: 'session', via: 'sign_up' })]: 1,
      [seriesKey('authgw_http_request_duration_seconds_count', { method: 'POST', route: '/api/auth/sign-up/email', status_code: 200 })]: 1,
    }
    t.same(unexpectedMovements(delta(before, after), expected), [], 'exactly the expected series moved')
    const lines = gw.logs.records().filter((r) => r.event === 'set_cookie_problem' && r.reqId === res.requestId)
    t.equal(lines.length, 1, 'one set_cookie_problem line')
    t.match(lines[0], { problem: c.problem, cookie: gw.sessions.cookieNames.sessionToken, level: 40 })
    const value = (res.setCookie[0] ?? '').split(';')[0]?.split('=')[1] ?? ''
    t.ok(value.length > 10 && !JSON.stringify(gw.logs.records()).includes(value), 'the cookie value is in no log line')
    const access = gw.logs.accessLines().find((r) => r.reqId === res.requestId)
    t.match(access, { status: 200, setCookieProblems: [c.problem] }, "the sign-up's access line carries the problem")
  })
}

t.test('a sound configuration: no problem, no line', async (t) => {
  const gw = await startTestGateway(t)
  const before = await scrape(gw)
  const res = await signUp(gw, undefined)
  t.equal(res.status, 200, res.text)
  const d = delta(before, await scrape(gw))
  for (const problem of valuesOf(SetCookieProblem)) t.notOk(d.get(seriesKey('authgw_set_cookie_problems_total', { problem })), `${problem} did not move`)
  t.equal(gw.logs.records().filter((r) => r.event === 'set_cookie_problem').length, 0)
})

t.test('the startup audit warns once per problem of the configured cookie', async (t) => {
  const port = await freePort()
  const gw = await startTestGateway(t, { port, env: { BETTER_AUTH_URL: `http://authgw.test:${port}`, COOKIE_SAME_SITE: 'none', COOKIE_DOMAIN: 'example.com' } })
  const startup = gw.logs.records().filter((r) => r.event === 'set_cookie_problem' && r.at === 'startup')
  t.same(startup.map((r) => r.problem).sort(), ['domain_not_host_suffix', 'secure_over_http'])
  for (const r of startup) t.match(r, { level: 40, host: 'authgw.test' })
})

// better-auth 1.7 never sends these four (it chunks large cookies, sets
// Max-Age to the session lifetime, and better-call adds Secure to SameSite=None
// and Partitioned): test/auth/better-auth-cookie-facts.test.ts pins that against
// the real library and a real gateway; here the rules are checked on the parser.
t.test('too_large, max_age_shorter_than_session and the *_without_secure problems on Set-Cookie values', async (t) => {
  const audience = { scheme: 'https', host: 'auth.example.com', sessionTokenName: '__Secure-better-auth.session_token', sessionExpiresInSeconds: 604800 }
  const big = parseSetCookie(`__Secure-better-auth.session_data=${'a'.repeat(4100)}; Path=/; Secure; HttpOnly; SameSite=Lax`)
  t.same(big && cookieProblems(big, audience), ['too_large'])
  const short = parseSetCookie('__Secure-better-auth.session_token=abc.def; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax')
  t.same(short && cookieProblems(short, audience), ['max_age_shorter_than_session'])
  const full = parseSetCookie('__Secure-better-auth.session_token=abc.def; Max-Age=604800; Path=/; Secure; HttpOnly; SameSite=Lax')
  t.same(full && cookieProblems(full, audience), [], 'the session lifetime is fine')
  const http = { ...audience, scheme: 'http', host: 'auth.example.com', sessionTokenName: 'better-auth.session_token' }
  const none = parseSetCookie('better-auth.session_token=abc.def; Max-Age=604800; Path=/; HttpOnly; SameSite=None')
  t.same(none && cookieProblems(none, http), ['samesite_none_without_secure'])
  const chips = parseSetCookie('better-auth.session_token=abc.def; Max-Age=604800; Path=/; HttpOnly; SameSite=Lax; Partitioned')
  t.same(chips && cookieProblems(chips, http), ['partitioned_without_secure'])
  const deletion = parseSetCookie('better-auth.session_token=; Max-Age=0; Path=/; Domain=co.uk; SameSite=None')
  t.same(deletion && cookieProblems(deletion, audience), [], 'a deletion stores nothing and is not audited')
})

t.test('a session extension on the protected API is audited too', async (t) => {
  const port = await freePort()
  // updateAge 1 s: the next /api/* call a second after sign-up extends the session and re-sets the cookie.
  const gw = await startTestGateway(t, {
    port,
    env: { BETTER_AUTH_URL: `https://authgw.test:${port}`, SESSION_EXPIRES_IN_SECONDS: '3600', SESSION_UPDATE_AGE_SECONDS: '1' },
  })
  const host = `authgw.test:${port}`
  const up = await signUp(gw, host)
  t.equal(up.status, 200, up.text)
  const cookie = (up.setCookie.find((c) => c.startsWith(`${gw.sessions.cookieNames.sessionToken}=`)) ?? '').split(';')[0] as string
  t.ok(cookie, 'the session cookie')
  await new Promise((r) => setTimeout(r, 2_000))
  const before = await scrape(gw)
  const res = await request(`${gw.url}/api/me`, { headers: { host, cookie, 'user-agent': 'curl/8.5.0' } })
  await res.body.text()
  const after = await scrape(gw)
  t.equal(res.statusCode, 200)
  t.ok(res.headers['set-cookie'], 'the extension re-set the cookie')
  t.equal(delta(before, after).get(seriesKey('authgw_set_cookie_problems_total', { problem: 'secure_over_http' })), 1, 'secure_over_http moved by one')
  const access = gw.logs.accessLines().find((r) => r.reqId === res.headers['x-request-id'])
  t.match(access, { status: 200, route: '/api/*', setCookieProblems: ['secure_over_http'] })
})
