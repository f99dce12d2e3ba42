// BETTER_AUTH_URL says https, the browser reaches the gateway over plain
// http: better-auth sets `__Secure-better-auth.session_token; Secure`, which a
// browser refuses on an insecure origin. The startup log warned about it; the
// next protected call is a 401 whose reason is what the gateway can see —
// except on http://localhost, which Chromium treats as a secure context.
import t from 'tap'
import type { Test } from 'tap'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo } from './browser.ts'
import { delta, scrape } from './metrics.ts'

const SECURE_COOKIE = '__Secure-better-auth.session_token'
// A name that is not localhost: Chromium treats http://localhost as a secure
// context (and then keeps Secure cookies), a staging host name it does not.
const HOST = 'authgw.test'

async function httpsConfiguredGateway(t: Test, host: string) {
  const port = await freePort()
  const httpOrigin = `http://${host}:${port}`
  const gw = await startTestGateway(t, {
    port,
    // The http origin is trusted so better-auth's origin check is not what fails here.
    env: { BETTER_AUTH_URL: `https://${host}:${port}`, TRUSTED_ORIGINS: httpOrigin, DEMO_APP: 'on' },
  })
  return { gw, httpOrigin }
}

t.test('https BETTER_AUTH_URL reached over http on a host name: warned at startup, cookie refused, 401', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const { gw, httpOrigin } = await httpsConfiguredGateway(t, HOST)
  assertWarned(t, gw)

  const context = await launchBrowser(t, { args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] })
  const { page, watch } = await openDemo(context, `${httpOrigin}/`)
  const before = await scrape(gw.metricsUrl)
  await fillAccount(page, uniqueEmail('secure'), PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.equal(await page.locator('#auth-result').getAttribute('data-outcome'), 'ok', 'sign-up answered 200')
  const afterUp = await scrape(gw.metricsUrl)
  t.equal(delta(before, afterUp, 'authgw_tokens_issued_total', { kind: 'session', via: 'sign_up' }), 1, 'the gateway issued the session')
  t.same(await context.cookies(httpOrigin), [], 'the browser refused the Secure cookie over http')
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out', 'the page is signed out right after signing up')

  const r = await callApi(page)
  t.equal(r.status, '401')
  // What the gateway can see: no cookie, and no Sec-Fetch-* either, because
  // Chromium sends fetch metadata only to potentially trustworthy origins. But
  // this very browser (address and User-Agent) received a session cookie
  // seconds ago: the classic "401 right after sign-in", cookie_not_returned.
  t.equal(r.reason, 'cookie_not_returned', 'the cookie from the sign-up did not come back')
  const line = gw.logs.accessLines().find((l) => l.reqId === r.requestId)
  t.match(line, { status: 401, reason: 'cookie_not_returned', mechanism: 'session', cookieNames: [] })
  t.type(line?.sinceSignInSeconds, 'number', 'how long after the sign-up')
  t.equal(line?.secFetchSite, undefined, 'no Sec-Fetch-Site over plain http to a host name')
  const after = await scrape(gw.metricsUrl)
  t.equal(delta(afterUp, after, 'authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: 'cookie_not_returned' }), 1)
  t.equal(delta(afterUp, after, 'authgw_unauthorized_total'), 1, 'and no other 401 series')
  t.equal(delta(afterUp, after, 'authgw_session_nulls_total', { reason: 'cookie_not_returned' }), 1, 'counted as a session null, so the cookie alert sees it')
  t.equal(delta(afterUp, after, 'authgw_session_nulls_total'), 1, 'and no other session-null series')
  t.same(watch.problems, [])
})

t.test('the same mismatch on http://localhost works: Chromium treats localhost as secure', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const { gw, httpOrigin } = await httpsConfiguredGateway(t, 'localhost')
  assertWarned(t, gw)
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${httpOrigin}/`)
  const email = uniqueEmail('secure-localhost')
  await fillAccount(page, email, PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.match((await context.cookies(httpOrigin)).find((c) => c.name === SECURE_COOKIE), { secure: true }, 'the Secure cookie is kept on http://localhost')
  const before = await scrape(gw.metricsUrl)
  const r = await callApi(page)
  t.equal(r.status, '200', 'so the mismatch hides on a laptop and shows on the first non-localhost http host')
  t.equal(delta(before, await scrape(gw.metricsUrl), 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 1)
  t.same(watch.problems, [])
})

function assertWarned(t: Test, gw: TestGateway): void {
  const warning = gw.logs.records().find((r) => r.event === 'cookie_scheme_mismatch')
  t.match(warning, { level: 40, base_url: gw.config.baseUrl, listening: 'http', trust_proxy: false }, 'the startup log warned before any sign-in')
  t.equal(gw.sessions.cookieNames.sessionToken, SECURE_COOKIE, 'better-auth uses the __Secure- cookie')
}
