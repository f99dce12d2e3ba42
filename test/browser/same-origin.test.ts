// The demo page served by the gateway itself, in a real Chromium: sign up with
// better-auth's browser client, the session survives a reload, protected calls
// carry the cookie, sign-out ends it. Page and metrics must tell the same story.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { collectBrowserModules } from '../../src/web/browser-modules.ts'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo, waitReady } from './browser.ts'
import { delta, scrape } from './metrics.ts'

const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-output', 'browser')
const PROTECTED_CALLS = 20

t.test('same origin: sign up, reload, 20 protected calls, sign out', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const gw = await startTestGateway(t, { env: { DEMO_APP: 'on' } })
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${gw.url}/`)
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out', 'a fresh browser has no session')

  // The import map and the allow-list are exactly what the browser's module loader asked for.
  const served = collectBrowserModules(['better-auth/client'], join(import.meta.dirname, '..', '..'), '/app/modules')
  t.same([...watch.modules].sort(), [...served.files.keys()].sort(), 'every allow-listed module was imported, nothing else was requested')

  const email = uniqueEmail('browser')
  await fillAccount(page, email, PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.equal(await page.locator('#auth-result').getAttribute('data-outcome'), 'ok', await page.locator('#auth-result').innerText())
  t.equal(await page.locator('#session').getAttribute('data-email'), email, 'signed in right after sign-up')

  const cookies = await context.cookies(gw.url)
  const session = cookies.find((c) => c.name === 'better-auth.session_token')
  t.ok(session, 'the browser stored the session cookie')
  t.match(session, { httpOnly: true, sameSite: 'Lax', secure: false, path: '/' })

  // The claims panel shows the JWT from /api/auth/token.
  await page.locator('#claims[data-status="200"]').waitFor()
  const claims = JSON.parse((await page.locator('#claims').getAttribute('data-claims')) ?? '{}') as Record<string, unknown>
  t.match(claims, { email, iss: gw.config.issuer, aud: gw.config.audience, sub: String, sid: String, exp: Number })

  await page.reload()
  await waitReady(page, watch)
  t.equal(await page.locator('#session').getAttribute('data-email'), email, 'the session survives a reload')

  const before = await scrape(gw.metricsUrl)
  for (let i = 0; i < PROTECTED_CALLS; i++) {
    const r = await callApi(page)
    if (r.status !== '200') t.fail(`call ${i}: ${r.status} ${r.reason} ${r.body}`)
  }
  t.equal(await page.locator('#calls').getAttribute('data-ok'), String(PROTECTED_CALLS), 'the panel counted 20 successful calls')
  t.match(JSON.parse(await page.locator('#body').innerText()), { email }, 'the upstream saw the identity')
  const after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), PROTECTED_CALLS, 'each call was one allowed session decision')
  t.equal(delta(before, after, 'authgw_http_request_duration_seconds_count', { route: '/api/*', status_code: '200' }), PROTECTED_CALLS)
  t.equal(delta(before, after, 'authgw_unauthorized_total'), 0, 'no 401 of any kind')

  await mkdir(SCREENSHOT_DIR, { recursive: true })
  const screenshot = join(SCREENSHOT_DIR, 'demo-after-call.png')
  await page.screenshot({ path: screenshot, fullPage: true })
  t.comment(`screenshot: ${screenshot}`)

  // Sign out in the page: better-auth clears the cookie, the next call has none.
  await clickAndWait(page, '#sign-out', '#auth-result')
  t.equal(await page.locator('#auth-result').getAttribute('data-outcome'), 'ok')
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out')
  t.notOk((await context.cookies(gw.url)).some((c) => c.name === 'better-auth.session_token'), 'sign-out removed the cookie from the browser')

  const beforeOut = await scrape(gw.metricsUrl)
  const out = await callApi(page)
  t.equal(out.status, '401')
  t.equal(out.reason, 'no_cookie', 'a same-origin browser call without the cookie is no_cookie, not no_credentials')
  t.equal(out.requestId, JSON.parse(out.body).requestId, 'the request id header is readable and matches the body')
  const afterOut = await scrape(gw.metricsUrl)
  t.equal(delta(beforeOut, afterOut, 'authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: 'no_cookie' }), 1)
  t.equal(delta(beforeOut, afterOut, 'authgw_session_nulls_total', { reason: 'no_cookie' }), 1)
  const line = gw.logs.accessLines().find((r) => r.reqId === out.requestId)
  t.match(line, { status: 401, reason: 'no_cookie', mechanism: 'session', secFetchSite: 'same-origin', cookieNames: [] }, 'the access log explains the 401')

  // The same browser presenting the signed-out cookie again (another tab, a copy): the row is gone.
  await context.addCookies([session!])
  const stale = await callApi(page)
  t.equal(stale.status, '401')
  t.equal(stale.reason, 'session_not_found', 'a signed-out session is refused at once on this instance')
  const afterStale = await scrape(gw.metricsUrl)
  t.equal(delta(afterOut, afterStale, 'authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: 'session_not_found' }), 1)

  t.same(watch.problems, [], 'no script errors, no failed page loads')
})
