// COOKIE_SAME_SITE=none in a real Chromium, over real TLS: a self-signed
// certificate (openssl, in the test) on a TLS-terminating front that forwards
// to the gateway with X-Forwarded-Proto under TRUST_PROXY, as a load balancer
// does. The demo page lives on another site (app.shop.test against
// api.authgw.test, both mapped to 127.0.0.1 by --host-resolver-rules;
// --ignore-certificate-errors accepts the self-signed certificate).
// - over https, better-auth's `SameSite=None; Secure` cookie is stored and
//   sent on the page's credentialed calls from a sibling subdomain: 200;
// - from another site Chromium blocks it as a third-party cookie unless it is
//   also Partitioned (COOKIE_PARTITIONED, CHIPS): then 200 again;
// - over plain http the same setting fails in the browser, and the audit names
//   it: better-call adds `Secure` to every SameSite=None cookie, so what the
//   browser refuses is a Secure cookie over http (`secure_over_http`), never a
//   SameSite=None cookie without Secure (`samesite_none_without_secure`,
//   pinned as unreachable in test/auth/set-cookie-audit.test.ts).
import type { Page } from 'playwright-core'
import t from 'tap'
import type { Test } from 'tap'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo, servePage } from './browser.ts'
import { delta, scrape } from './metrics.ts'
import { selfSignedCertificate, startTlsFront } from './tls-front.ts'

const API = 'api.authgw.test'
const APP = 'app.shop.test'
const RESOLVE = `--host-resolver-rules=MAP *.authgw.test 127.0.0.1, MAP *.shop.test 127.0.0.1`
const PROBLEMS = 'authgw_set_cookie_problems_total'

type HttpsCase = { page: string; env: Record<string, string> }

/** Gateway and demo page behind one TLS front; a fresh Chromium signs up on the page. */
async function signUpOverHttps(t: Test, c: HttpsCase) {
  const tls = await selfSignedCertificate(t, [API, c.page])
  const gatewayPort = await freePort()
  const frontPort = await freePort()
  const gatewayUrl = `https://${API}:${frontPort}`
  const pageUrl = `https://${c.page}:${frontPort}`
  const pagePort = await servePage(t, gatewayUrl)
  const gw = await startTestGateway(t, {
    port: gatewayPort,
    env: { BETTER_AUTH_URL: gatewayUrl, COOKIE_SAME_SITE: 'none', TRUST_PROXY: '127.0.0.1', TRUSTED_ORIGINS: pageUrl, ...c.env },
  })
  t.same(gw.logs.records().filter((r) => r.event === 'set_cookie_problem' || r.event === 'cookie_scheme_mismatch'), [], 'the startup audit is content')
  t.equal(await startTlsFront(t, tls, { [API]: gatewayPort, [c.page]: pagePort }, frontPort), frontPort)

  const context = await launchBrowser(t, { args: [RESOLVE, '--ignore-certificate-errors'] })
  const { page, watch } = await openDemo(context, `${pageUrl}/`)
  const email = uniqueEmail('samesite-none')
  await fillAccount(page, email, PASSWORD)
  const before = await scrape(gw.metricsUrl)
  await clickAndWait(page, '#sign-up', '#auth-result')
  const after = await scrape(gw.metricsUrl)
  t.equal(await page.locator('#auth-result').getAttribute('data-outcome'), 'ok', 'sign-up answered 200 through CORS')
  t.equal(delta(before, after, 'authgw_tokens_issued_total', { kind: 'session', via: 'sign_up' }), 1)
  t.equal(delta(before, after, PROBLEMS), 0, 'the audit found nothing wrong: https as the browser sees it (X-Forwarded-Proto under TRUST_PROXY)')
  const stored = (await context.cookies(gatewayUrl)).find((cookie) => cookie.name === '__Secure-better-auth.session_token')
  return { gw, page, watch, email, pageUrl, stored }
}

async function callWithCredentials(t: Test, gw: TestGateway, page: Page) {
  const before = await scrape(gw.metricsUrl)
  const r = await callApi(page)
  const after = await scrape(gw.metricsUrl)
  return { r, d: (name: string, match: Record<string, string> = {}) => delta(before, after, name, match), line: gw.logs.accessLines().find((l) => l.reqId === r.requestId) }
}

t.test('COOKIE_SAME_SITE=none over https, page on a sibling subdomain: stored and sent, 200', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const s = await signUpOverHttps(t, { page: 'app.authgw.test', env: {} })
  t.match(s.stored, { sameSite: 'None', secure: true, httpOnly: true }, 'Chromium stored the SameSite=None; Secure cookie')
  t.equal(await s.page.locator('#session').getAttribute('data-email'), s.email, 'the page sees its session')
  const { r, d, line } = await callWithCredentials(t, s.gw, s.page)
  t.equal(r.status, '200', 'the credentialed call carries the cookie')
  t.equal(d('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 1)
  t.equal(d('authgw_unauthorized_total'), 0)
  t.match(line, { status: 200, mechanism: 'session' })
  t.same(s.watch.problems, [])
})

// Chromium 156 blocks third-party cookies by default: SameSite=None alone no
// longer carries a session to a page on another site. The gateway cannot see
// the blocking (the audit stays quiet); the next call says what it can.
t.test('COOKIE_SAME_SITE=none over https, page on another site: Chromium blocks it as a third-party cookie', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const s = await signUpOverHttps(t, { page: APP, env: {} })
  t.equal(s.stored, undefined, 'not stored: a third-party cookie')
  const { r, d, line } = await callWithCredentials(t, s.gw, s.page)
  t.equal(r.status, '401')
  t.equal(r.reason, 'cookie_not_returned')
  t.equal(d('authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: 'cookie_not_returned' }), 1)
  t.equal(d('authgw_unauthorized_total'), 1, 'and no other 401 series')
  t.match(line, { status: 401, secFetchSite: 'cross-site', origin: s.pageUrl }, 'the access line keeps the cross-site detail')
  t.same(s.watch.problems, [])
})

t.test('COOKIE_SAME_SITE=none with COOKIE_PARTITIONED over https, page on another site: a partitioned cookie, 200', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const s = await signUpOverHttps(t, { page: APP, env: { COOKIE_PARTITIONED: 'true' } })
  t.match(s.stored, { sameSite: 'None', secure: true, httpOnly: true, partitionKey: 'https://shop.test' }, "stored in the page's partition (CHIPS)")
  t.equal(await s.page.locator('#session').getAttribute('data-email'), s.email, 'the page sees its session')
  const { r, d, line } = await callWithCredentials(t, s.gw, s.page)
  t.equal(r.status, '200', 'the cross-site credentialed call carries the cookie')
  t.equal(d('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 1)
  t.equal(d('authgw_unauthorized_total'), 0)
  t.match(line, { status: 200, mechanism: 'session' })
  t.same(s.watch.problems, [])
})

t.test('COOKIE_SAME_SITE=none over plain http: Chromium drops the cookie, the audit moves by exactly one', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const port = await freePort()
  const gatewayUrl = `http://${API}:${port}`
  const gw = await startTestGateway(t, { port, env: { BETTER_AUTH_URL: gatewayUrl, COOKIE_SAME_SITE: 'none', DEMO_APP: 'on' } })
  t.same(
    gw.logs.records().filter((r) => r.event === 'set_cookie_problem' && r.at === 'startup').map((r) => r.problem),
    ['secure_over_http'],
    'the startup audit warned (outside production; production refuses this setting)',
  )
  const context = await launchBrowser(t, { args: [RESOLVE] })
  const { page, watch } = await openDemo(context, `${gatewayUrl}/`)
  await fillAccount(page, uniqueEmail('samesite-none-http'), PASSWORD)
  const before = await scrape(gw.metricsUrl)
  await clickAndWait(page, '#sign-up', '#auth-result')
  const after = await scrape(gw.metricsUrl)
  t.equal(await page.locator('#auth-result').getAttribute('data-outcome'), 'ok', 'sign-up answered 200')
  t.same(await context.cookies(gatewayUrl), [], 'Chromium refused the cookie')
  t.equal(delta(before, after, PROBLEMS, { problem: 'secure_over_http' }), 1, 'secure_over_http moved by one')
  t.equal(delta(before, after, PROBLEMS), 1, 'and no other problem series (samesite_none_without_secure included)')
  const line = gw.logs.records().find((r) => r.event === 'set_cookie_problem' && r.at !== 'startup')
  t.match(line, { problem: 'secure_over_http', cookie: 'better-auth.session_token', host: API, scheme: 'http' })

  const r = await callApi(page)
  t.equal(r.status, '401')
  t.equal(r.reason, 'cookie_not_returned', 'the next call names the dropped cookie')
  t.same(watch.problems, [])
})
