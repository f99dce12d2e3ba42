// The demo page on another origin calling the gateway, in a real Chromium.
// http://127.0.0.1:<port> and http://localhost:<port> are different sites, so
// the page there is cross-site to a gateway at http://localhost:<port>; the
// same page on http://localhost:<other port> is cross-origin but same-site.
// better-auth's session cookie is SameSite=Lax: a browser neither stores it
// from a cross-site fetch response nor sends it on a cross-site fetch.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { Test } from 'tap'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo, servePage } from './browser.ts'
import { delta, scrape } from './metrics.ts'

const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-output', 'browser')
const COOKIE = 'better-auth.session_token'
const UNAUTHORIZED = 'authgw_unauthorized_total'
const crossSite = { source: 'gateway', mechanism: 'session', reason: 'cross_site_no_cookie' }
const notReturned = { source: 'gateway', mechanism: 'session', reason: 'cookie_not_returned' }

type Setup = { gw: TestGateway; gatewayUrl: string; trustedCrossSite: string; sameSite: string; untrusted: string }

/** A gateway at http://localhost:<p1> trusting one cross-site and one same-site page origin, and an untrusted page. */
async function setup(t: Test): Promise<Setup> {
  const port = await freePort()
  const gatewayUrl = `http://localhost:${port}`
  const crossPort = await servePage(t, gatewayUrl)
  const untrustedPort = await servePage(t, gatewayUrl)
  const trustedCrossSite = `http://127.0.0.1:${crossPort}`
  // The same page server reached by name: cross-origin, same site.
  const sameSite = `http://localhost:${crossPort}`
  const gw = await startTestGateway(t, {
    port,
    env: { BETTER_AUTH_URL: gatewayUrl, DEMO_APP: 'on', TRUSTED_ORIGINS: `${trustedCrossSite},${sameSite}` },
  })
  return { gw, gatewayUrl, trustedCrossSite, sameSite, untrusted: `http://127.0.0.1:${untrustedPort}` }
}

t.test('the demo page on other origins', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  // One gateway for the three scenarios; each has its own browser and user.
  const pages = await setup(t)
  // The untrusted page first: once this browser (same address and
  // User-Agent) signed up, its cookie-less calls are cookie_not_returned.
  await t.test('cross-site, untrusted origin: CORS hides the answer the gateway still counted', (t) => crossSiteUntrusted(t, pages))
  await t.test('cross-site, trusted origin: Lax cookies are neither stored nor sent', (t) => crossSiteTrusted(t, pages))
  await t.test('cross-origin but same-site, trusted origin: the Lax cookie works', (t) => sameSiteOtherOrigin(t, pages))
})

async function crossSiteTrusted(t: Test, { gw, gatewayUrl, trustedCrossSite }: Setup) {
  const context = await launchBrowser(t)
  const cross = await openDemo(context, `${trustedCrossSite}/`)
  const email = uniqueEmail('cross')

  // Sign-up from the cross-site page succeeds at the server, but Chromium
  // refuses a SameSite=Lax cookie on a cross-site response.
  const beforeUp = await scrape(gw.metricsUrl)
  await fillAccount(cross.page, email, PASSWORD)
  await clickAndWait(cross.page, '#sign-up', '#auth-result')
  t.equal(await cross.page.locator('#auth-result').getAttribute('data-outcome'), 'ok', 'sign-up answered 200 through CORS')
  t.equal(delta(beforeUp, await scrape(gw.metricsUrl), 'authgw_tokens_issued_total', { kind: 'session', via: 'sign_up' }), 1, 'the gateway issued a session')
  t.same(await context.cookies(gatewayUrl), [], 'the browser did not store the Lax cookie from a cross-site response')
  t.equal(await cross.page.locator('#session').getAttribute('data-state'), 'signed-out', 'the page sees no session right after a successful sign-up')

  // This browser received a session cookie seconds ago and calls without
  // one: cookie_not_returned outranks cross_site_no_cookie, and
  // the access line keeps the cross-site detail that explains it.
  let before = await scrape(gw.metricsUrl)
  const first = await callApi(cross.page)
  t.equal(first.status, '401')
  t.equal(first.reason, 'cookie_not_returned', 'the page can read the reason: the origin is trusted')
  t.equal(first.requestId, JSON.parse(first.body).requestId, 'x-request-id is exposed to the trusted origin')
  let after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, UNAUTHORIZED, notReturned), 1, 'authgw_unauthorized_total{reason="cookie_not_returned"} moved')
  t.equal(delta(before, after, UNAUTHORIZED), 1, 'and no other 401 series')
  t.equal(delta(before, after, 'authgw_session_nulls_total', { reason: 'cookie_not_returned' }), 1)
  t.equal(delta(before, after, 'authgw_session_nulls_total'), 1, 'and no other session-null series')
  t.match(
    gw.logs.accessLines().find((r) => r.reqId === first.requestId),
    { status: 401, reason: 'cookie_not_returned', secFetchSite: 'cross-site', origin: trustedCrossSite, cookieNames: [], clientKind: 'browser' },
    'the access log names the page origin and Sec-Fetch-Site',
  )

  // Sign in on the gateway's own page (same site, top level): now the browser has the cookie ...
  const own = await openDemo(context, `${gatewayUrl}/`, { newTab: true })
  await fillAccount(own.page, email, PASSWORD)
  await clickAndWait(own.page, '#sign-in', '#auth-result')
  t.equal(await own.page.locator('#session').getAttribute('data-email'), email, 'signed in on the gateway origin')
  const jar = await context.cookies(gatewayUrl)
  t.match(jar.find((c) => c.name === COOKIE), { sameSite: 'Lax', httpOnly: true }, 'the browser holds the Lax session cookie for the gateway')
  t.equal((await callApi(own.page)).status, '200', 'and it works same-site')

  // ... yet still does not send it on the cross-site page's fetch, credentials or not.
  before = await scrape(gw.metricsUrl)
  const second = await callApi(cross.page)
  t.equal(second.status, '401')
  t.equal(second.reason, 'cookie_not_returned', 'Lax: the cookie exists but is not sent on a cross-site fetch')
  after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, UNAUTHORIZED, notReturned), 1)
  t.match(gw.logs.accessLines().find((r) => r.reqId === second.requestId), { secFetchSite: 'cross-site' })
  t.equal(delta(before, after, 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 0)
  t.same([...cross.watch.problems, ...own.watch.problems], [])

  await mkdir(SCREENSHOT_DIR, { recursive: true })
  await cross.page.screenshot({ path: join(SCREENSHOT_DIR, 'cross-site-401.png'), fullPage: true })
}

async function crossSiteUntrusted(t: Test, { gw, untrusted }: Setup) {
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${untrusted}/`)

  // A plain GET needs no preflight: it reaches the gateway, the browser hides the 401.
  const before = await scrape(gw.metricsUrl)
  const r = await callApi(page)
  t.equal(r.status, 'network-error', 'the page cannot read the response')
  t.match(await page.locator('#error').innerText(), /TRUSTED_ORIGINS/, 'the page points at TRUSTED_ORIGINS')
  const after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, UNAUTHORIZED, crossSite), 1, 'the gateway answered and counted cross_site_no_cookie')

  // A JSON sign-up needs a preflight, which gets no CORS headers: nothing reaches better-auth.
  await fillAccount(page, uniqueEmail('untrusted'), PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.equal(await page.locator('#auth-result').getAttribute('data-status'), '0', 'sign-up failed in the browser (no readable response)')
  const afterUp = await scrape(gw.metricsUrl)
  t.equal(delta(after, afterUp, 'authgw_tokens_issued_total', { via: 'sign_up' }), 0, 'no account was created')
  t.equal(delta(after, afterUp, 'authgw_http_request_duration_seconds_count', { method: 'POST' }), 0, 'the POST was never sent')
  t.ok(
    watch.problems.some((p) => /blocked by CORS policy/.test(p)),
    'Chromium reports the CORS block in the console',
  )
}

async function sameSiteOtherOrigin(t: Test, { gw, gatewayUrl, sameSite }: Setup) {
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${sameSite}/`)
  const email = uniqueEmail('samesite')
  await fillAccount(page, email, PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.equal(await page.locator('#session').getAttribute('data-email'), email, 'signed in through CORS with credentials')
  t.ok((await context.cookies(gatewayUrl)).some((c) => c.name === COOKIE), 'the cookie was stored from a same-site response')
  await page.locator('#claims[data-status="200"]').waitFor()
  t.match(JSON.parse((await page.locator('#claims').getAttribute('data-claims')) ?? '{}'), { email, iss: gw.config.issuer })

  const before = await scrape(gw.metricsUrl)
  const r = await callApi(page)
  t.equal(r.status, '200', 'the cookie went along with the same-site fetch')
  t.match(JSON.parse(r.body), { email })
  const after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 1)
  t.equal(delta(before, after, UNAUTHORIZED), 0)
  t.same(watch.problems, [])
}
