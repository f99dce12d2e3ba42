// Single sign-on in a real Chromium: the demo page's "Sign in with corp", the
// provider's own login and consent pages (oidc-provider), back on the page
// signed in, 20 protected calls 200, the upstream receives a gateway JWT for
// the provider's user (naming the provider), sign-out ends it.
import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import { USERS, providerEnv, recordingUpstream, startProvider } from '../helpers/oidc.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, launchBrowser, openDemo, waitReady } from './browser.ts'
import { delta, scrape } from './metrics.ts'

const PROTECTED_CALLS = 20

t.test('SSO through the provider login page, 20 protected calls, sign out', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const provider = await startProvider(t, [`${base}/api/auth/callback/corp`])
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { port, upstreamUrl: upstream.url, env: { ...providerEnv(provider), DEMO_APP: 'on' } })
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${base}/`)
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out')
  t.equal(await page.locator('#sso-corp').innerText(), 'Sign in with corp', 'the demo page offers the provider')

  const before = await scrape(gw.metricsUrl)
  await page.click('#sso-corp')
  // The provider's own pages: login, then consent.
  await page.waitForURL((u) => u.origin === provider.issuer)
  await page.fill('input[name="login"]', 'alice')
  await page.fill('input[name="password"]', 'any password')
  await page.click('button[type="submit"]')
  await page.locator('button[autofocus]').waitFor()
  await page.click('button[autofocus]')
  await page.waitForURL((u) => u.origin === base)
  await waitReady(page, watch)
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-in', 'back on the page, signed in')
  t.equal(await page.locator('#session').getAttribute('data-email'), USERS.alice?.email)
  const cookie = (await context.cookies(base)).find((c) => c.name === 'better-auth.session_token')
  t.match(cookie, { httpOnly: true, sameSite: 'Lax' }, 'the same session cookie as email sign-in')

  for (let i = 0; i < PROTECTED_CALLS; i++) {
    const r = await callApi(page)
    if (r.status !== '200') t.fail(`call ${i}: ${r.status} ${r.reason} ${r.body}`)
  }
  t.equal(await page.locator('#calls').getAttribute('data-ok'), String(PROTECTED_CALLS), '20 protected calls answered 200')
  const after = await scrape(gw.metricsUrl)
  t.equal(delta(before, after, 'authgw_oauth_redirects_total', { provider: 'corp' }), 1, 'one redirect to the provider')
  t.equal(delta(before, after, 'authgw_oauth_callbacks_total', { provider: 'corp', outcome: 'success', reason: 'none' }), 1, 'one successful callback')
  t.equal(delta(before, after, 'authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' }), PROTECTED_CALLS)

  const bearer = upstream.authorizations.at(-1)?.replace(/^Bearer /, '') ?? ''
  const { payload } = await jwtVerify(bearer, createRemoteJWKSet(new URL(`${base}/api/auth/jwks`)), { issuer: base, audience: base })
  t.equal(payload.email, USERS.alice?.email, 'the upstream verified a gateway JWT for the linked user')
  t.equal(payload.idp, 'corp', 'naming the provider')

  await clickAndWait(page, '#sign-out', '#auth-result')
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out', 'signed out')
  t.equal((await callApi(page)).status, '401', 'the next call is refused')
  // oidc-provider's development pages import Google Fonts, unreachable here.
  const problems = watch.problems.filter((p) => !p.includes('net::ERR_NAME_NOT_RESOLVED'))
  t.same(problems, [], 'no page errors')
})
