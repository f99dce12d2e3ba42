// COOKIE_DOMAIN in a real Chromium: the demo page on app.authgw.test calls the
// gateway on api.authgw.test (both mapped to 127.0.0.1 through
// --host-resolver-rules; same site, other origins). Chromium sends fetch
// metadata (Sec-Fetch-*) only to potentially trustworthy origins, so both
// plain-http test origins are declared secure with
// --unsafely-treat-insecure-origin-as-secure (no TLS needed: the cookie is
// not Secure over http).
// - a fetch without `credentials: "include"` is credentials_omitted;
// - signed up through the page, the cookie is stored for Domain=authgw.test,
//   sent on the page's credentialed calls, and visible to a third subdomain.
import t from 'tap'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo, servePage } from './browser.ts'
import { delta, scrape } from './metrics.ts'

const DOMAIN = 'authgw.test'
const COOKIE = 'better-auth.session_token'

t.test('COOKIE_DOMAIN: a page on a sibling subdomain, credentials omitted and then included', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const port = await freePort()
  const gatewayUrl = `http://api.${DOMAIN}:${port}`
  const pagePort = await servePage(t, gatewayUrl)
  const pageUrl = `http://app.${DOMAIN}:${pagePort}`
  const gw = await startTestGateway(t, {
    port,
    env: { BETTER_AUTH_URL: gatewayUrl, COOKIE_DOMAIN: DOMAIN, TRUSTED_ORIGINS: pageUrl },
  })
  t.same(gw.logs.records().filter((r) => r.event === 'set_cookie_problem'), [], 'the startup cookie audit is content')
  const context = await launchBrowser(t, {
    args: [`--host-resolver-rules=MAP *.${DOMAIN} 127.0.0.1`, `--unsafely-treat-insecure-origin-as-secure=${gatewayUrl},${pageUrl}`],
  })
  const { page, watch } = await openDemo(context, `${pageUrl}/`)

  // A fetch that does not ask for credentials, before this browser ever signed in.
  let before = await scrape(gw.metricsUrl)
  const omitted = await page.evaluate(async (url) => {
    const res = await fetch(`${url}/api/me`)
    return { status: res.status, body: await res.json() }
  }, gatewayUrl)
  let after = await scrape(gw.metricsUrl)
  t.equal(omitted.status, 401)
  t.equal(omitted.body.reason, 'credentials_omitted', 'a same-site fetch without credentials: "include"')
  t.equal(delta(before, after, 'authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: 'credentials_omitted' }), 1)
  t.equal(delta(before, after, 'authgw_unauthorized_total'), 1, 'and no other 401 series')
  t.equal(delta(before, after, 'authgw_session_nulls_total', { reason: 'credentials_omitted' }), 1)
  t.match(gw.logs.accessLines().find((r) => r.reqId === omitted.body.requestId), { secFetchSite: 'same-site', secFetchMode: 'cors', origin: pageUrl })

  // Sign up through the page (credentials: "include"): the cookie covers every subdomain.
  const email = uniqueEmail('subdomain')
  await fillAccount(page, email, PASSWORD)
  before = await scrape(gw.metricsUrl)
  await clickAndWait(page, '#sign-up', '#auth-result')
  after = await scrape(gw.metricsUrl)
  t.equal(await page.locator('#session').getAttribute('data-email'), email, 'signed in from the sibling subdomain')
  t.equal(delta(before, after, 'authgw_set_cookie_problems_total'), 0, 'the audit found nothing wrong with the cookie')
  const stored = (await context.cookies(gatewayUrl)).find((c) => c.name === COOKIE)
  t.match(stored, { domain: `.${DOMAIN}`, sameSite: 'Lax', httpOnly: true }, 'stored for the parent domain')
  t.ok((await context.cookies(`http://other.${DOMAIN}:${port}`)).some((c) => c.name === COOKIE), 'a third subdomain would receive it too')

  before = await scrape(gw.metricsUrl)
  const ok = await callApi(page)
  after = await scrape(gw.metricsUrl)
  t.equal(ok.status, '200', 'the credentialed same-site call carries the Domain cookie')
  t.equal(delta(before, after, 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), 1)
  t.same(watch.problems, [])
})
