// Four Set-Cookie audit problems that better-auth 1.x never produces, pinned
// against the real library (and through a real gateway) so that the day a
// release changes this, a test fails and the problem gets its real-socket test:
// - samesite_none_without_secure, partitioned_without_secure: better-call's
//   cookie writer adds Secure to every SameSite=None or Partitioned cookie,
//   even when `secure: false` is asked for;
// - max_age_shorter_than_session: the session-token cookie's Max-Age is
//   always `session.expiresIn` (or absent, "don't remember me"), whatever
//   `advanced.cookies.session_token.attributes.maxAge` says;
// - too_large: the session-data cookie (cookie cache) is split into numbered
//   chunks that each stay under 4096 bytes, in every cache strategy, and the
//   gateway's better-auth keeps OAuth state in the database, not in a cookie.
// docs/reasons.md ("Set-Cookie audit") says so; the audit keeps the rules for
// other writers of cookies (test/auth/set-cookie-audit.test.ts).
import { betterAuth } from 'better-auth'
import { memoryAdapter } from 'better-auth/adapters/memory'
import t from 'tap'
import { request } from 'undici'
import { auditSetCookies, parseSetCookie } from '../../src/auth/set-cookie-audit.ts'
import { SetCookieProblem, valuesOf } from '../../src/reasons.ts'
import { docTable } from '../helpers/docs.ts'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { TEST_SECRET, startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape, seriesKey } from '../helpers/metrics.ts'

const BASE = 'http://auth.example.com'
const EXPIRES_IN = 3600
// What the gateway's audit would see on these answers; the scheme is https so
// that only the four problems under test could be found.
const audience = { scheme: 'https', host: 'auth.example.com', sessionTokenName: 'better-auth.session_token', sessionExpiresInSeconds: EXPIRES_IN }
const PINNED = ['samesite_none_without_secure', 'partitioned_without_secure', 'too_large', 'max_age_shorter_than_session']

type Options = Parameters<typeof betterAuth>[0]

function libraryAuth(extra: Partial<Options>) {
  return betterAuth({
    database: memoryAdapter({ user: [], session: [], account: [], verification: [] }),
    secret: TEST_SECRET,
    baseURL: BASE,
    telemetry: { enabled: false },
    logger: { disabled: true },
    emailAndPassword: { enabled: true },
    ...extra,
    session: { expiresIn: EXPIRES_IN, ...extra.session },
  })
}

async function call(auth: ReturnType<typeof libraryAuth>, path: string, body?: unknown, cookie?: string): Promise<{ status: number; setCookie: string[] }> {
  const res = await auth.handler(
    new Request(`${BASE}/api/auth${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', origin: BASE, ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  )
  await res.text()
  return { status: res.status, setCookie: res.headers.getSetCookie() }
}

const signUp = (auth: ReturnType<typeof libraryAuth>, name = 'Pin') => call(auth, '/sign-up/email', { email: uniqueEmail('pin'), password: PASSWORD, name })
const pinnedFindings = (setCookie: string[]) => auditSetCookies(setCookie, audience).filter((f) => PINNED.includes(f.problem))
const cookieNamed = (setCookie: string[], name: string) => setCookie.map((h) => parseSetCookie(h)).find((c) => c?.name === name)

t.test('better-call adds Secure to SameSite=None and Partitioned cookies, even when asked not to', async (t) => {
  for (const attributes of [{ sameSite: 'none' as const }, { partitioned: true }, { sameSite: 'none' as const, partitioned: true }]) {
    const auth = libraryAuth({ advanced: { useSecureCookies: false, defaultCookieAttributes: { ...attributes, secure: false } } })
    const res = await signUp(auth)
    t.equal(res.status, 200)
    t.ok(res.setCookie.length > 0, 'cookies were set')
    for (const header of res.setCookie) t.ok(/; Secure(;|$)/.test(header), `${JSON.stringify(attributes)}: ${header.split('=')[0]} carries Secure`)
    t.same(pinnedFindings(res.setCookie), [], 'neither *_without_secure problem')
  }
})

t.test("the session-token cookie's Max-Age is session.expiresIn, whatever the cookie attributes say", async (t) => {
  const auth = libraryAuth({
    session: { expiresIn: EXPIRES_IN, updateAge: 0 },
    advanced: { cookies: { session_token: { attributes: { maxAge: 60 } } } },
  })
  const up = await signUp(auth)
  t.equal(up.status, 200)
  t.equal(cookieNamed(up.setCookie, 'better-auth.session_token')?.maxAgeSeconds, EXPIRES_IN, 'sign-up: Max-Age = expiresIn, not the attribute')
  const cookie = up.setCookie.map((h) => h.split(';')[0]).join('; ')
  // updateAge 0: getSession extends the session and re-sets the cookie.
  const refreshed = await call(auth, '/get-session', undefined, cookie)
  t.equal(refreshed.status, 200)
  t.equal(cookieNamed(refreshed.setCookie, 'better-auth.session_token')?.maxAgeSeconds, EXPIRES_IN, 'refresh: Max-Age = expiresIn')
  t.same(pinnedFindings([...up.setCookie, ...refreshed.setCookie]), [])

  const email = uniqueEmail('pin-forget')
  await call(auth, '/sign-up/email', { email, password: PASSWORD, name: 'Pin' })
  const forget = await call(auth, '/sign-in/email', { email, password: PASSWORD, rememberMe: false })
  t.equal(forget.status, 200)
  t.equal(cookieNamed(forget.setCookie, 'better-auth.session_token')?.maxAgeSeconds, undefined, '"don\'t remember me": a browser-session cookie, no Max-Age')
  t.same(pinnedFindings(forget.setCookie), [])
})

t.test('the session-data cookie is chunked below 4096 bytes in every cache strategy', async (t) => {
  // A 6000-character name makes the cached session several kilobytes.
  const name = 'N'.repeat(6000)
  for (const strategy of ['compact', 'jwt', 'jwe'] as const) {
    const auth = libraryAuth({ session: { expiresIn: EXPIRES_IN, cookieCache: { enabled: true, maxAge: 300, strategy } } })
    const res = await signUp(auth, name)
    t.equal(res.status, 200)
    const chunks = res.setCookie.map((h) => parseSetCookie(h)).filter((c): c is NonNullable<typeof c> => c !== undefined && c.name.startsWith('better-auth.session_data'))
    t.ok(chunks.length >= 2, `${strategy}: split into ${chunks.length} chunks`)
    for (const c of chunks) t.ok(c.name.length + c.valueLength <= 4096, `${strategy}: ${c.name} is ${c.name.length + c.valueLength} bytes`)
    t.same(pinnedFindings(res.setCookie), [], `${strategy}: no too_large`)
  }
})

// The same facts on the wire: the gateway's settings that come closest to each
// problem (SameSite=None and Partitioned over http, a cookie cache holding a
// large session, a short session extended on every request) move no series.
t.test('through a real gateway: the settings closest to the four problems move none of them', async (t) => {
  const gw = await startTestGateway(t, {
    env: {
      COOKIE_SAME_SITE: 'none',
      COOKIE_PARTITIONED: 'true',
      SESSION_COOKIE_CACHE_MAX_AGE: '300',
      SESSION_EXPIRES_IN_SECONDS: String(EXPIRES_IN),
      SESSION_UPDATE_AGE_SECONDS: '0',
    },
  })
  const origin = gw.config.baseUrl
  const before = await scrape(gw)
  const up = await request(`${gw.url}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, 'user-agent': 'curl/8.5.0' },
    body: JSON.stringify({ email: uniqueEmail('pin-gw'), password: PASSWORD, name: 'N'.repeat(4000) }),
  })
  t.equal(up.statusCode, 200, await up.body.text())
  const upCookies = [up.headers['set-cookie'] ?? []].flat()
  const cookie = upCookies.map((h) => h.split(';')[0]).join('; ')
  const refreshed = await request(`${gw.url}/api/auth/get-session?disableCookieCache=true`, { headers: { cookie, origin, 'user-agent': 'curl/8.5.0' } })
  t.equal(refreshed.statusCode, 200, await refreshed.body.text())
  const refreshedCookies = [refreshed.headers['set-cookie'] ?? []].flat()
  const after = await scrape(gw)

  const all = [...upCookies, ...refreshedCookies]
  t.ok(all.some((h) => h.startsWith('better-auth.session_data.1=')), 'the session-data cookie arrived in chunks')
  for (const header of all) t.ok(/; Secure; SameSite=None; Partitioned$/.test(header), `${header.split('=')[0]}: Secure added to SameSite=None; Partitioned`)
  for (const header of all) {
    const c = parseSetCookie(header)
    t.ok(c !== undefined && c.name.length + c.valueLength <= 4096, `${c?.name} is within 4096 bytes`)
  }
  t.equal(cookieNamed(upCookies, 'better-auth.session_token')?.maxAgeSeconds, EXPIRES_IN, 'sign-up: Max-Age = SESSION_EXPIRES_IN_SECONDS')
  t.equal(cookieNamed(refreshedCookies, 'better-auth.session_token')?.maxAgeSeconds, EXPIRES_IN, 'extension: Max-Age = SESSION_EXPIRES_IN_SECONDS')
  const d = delta(before, after)
  for (const problem of PINNED) t.notOk(d.get(seriesKey('authgw_set_cookie_problems_total', { problem })), `${problem} did not move`)
  t.same(gw.logs.records().filter((r) => r.event === 'set_cookie_problem'), [], 'no set_cookie_problem line (loopback: Secure is kept over http)')
})

// The one better-auth cookie that is not chunked and can grow with the
// request is the OAuth state cookie of the "cookie" state strategy (the
// encrypted callback URLs); with a database better-auth keeps that state in
// the verification table and sets only a small signed `state` cookie.
t.test("the gateway's better-auth keeps OAuth state in the database, so no state cookie grows with the callback URL", async (t) => {
  const gw = await startTestGateway(t)
  const context = await gw.auth.$context
  t.equal(context.oauthConfig.storeStateStrategy, 'database')
})

t.test('docs/reasons.md: one audit row per problem, and "never" exactly on the four pinned here', async (t) => {
  const rows = docTable('docs/reasons.md', 'Set-Cookie audit')
  t.same(rows.map((r) => r[0]).sort(), [...valuesOf(SetCookieProblem)].sort(), 'the rows are the vocabulary')
  t.same(rows.filter((r) => r[3]?.startsWith('never:')).map((r) => r[0]).sort(), [...PINNED].sort())
  t.ok(rows.every((r) => r[3]?.startsWith('never:') || r[3]?.startsWith('yes:')), 'every row says whether better-auth sends it')
})
