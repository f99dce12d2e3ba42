// The demo page teaches, in a real Chromium: a 401's reason comes with its
// meaning and what to check, from src/reason-guide.ts as served to the page
// (not a copy), and a link to the docs; times are readable; sign-out clears
// the last results; Enter in the form signs in.
import t from 'tap'
import { guideFor } from '../../src/reason-guide.ts'
import { REASONS_DOCS_URL } from '../../src/web/demo-app.ts'
import { PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { SKIP_NO_CHROMIUM, callApi, clickAndWait, fillAccount, launchBrowser, openDemo } from './browser.ts'

t.test('the demo page explains reasons, clears on sign-out, signs in on Enter', { skip: SKIP_NO_CHROMIUM }, async (t) => {
  const gw = await startTestGateway(t, { env: { DEMO_APP: 'on' } })
  const context = await launchBrowser(t)
  const { page, watch } = await openDemo(context, `${gw.url}/`)

  // A same-origin call without a session: no_cookie, explained.
  const denied = await callApi(page)
  t.equal(denied.status, '401')
  t.equal(denied.reason, 'no_cookie')
  const guide = guideFor('unauthorized', 'no_cookie', 'session')
  t.ok(guide, 'the guide has no_cookie')
  t.equal(await page.locator('#reason-meaning').innerText(), `${guide?.meaning}.`, 'one sentence of meaning, from the guide')
  t.equal(await page.locator('#reason-fix').innerText(), `Likely cause: ${guide?.cause}. Check: ${guide?.check}.`, 'and what to check, from the guide')
  t.equal(await page.locator('#reason-docs').getAttribute('href'), `${REASONS_DOCS_URL}#debugging-401-after-sign-in`, 'linked to its docs section')

  // Sign up, then the token's times are readable.
  const email = uniqueEmail('teach')
  await fillAccount(page, email, PASSWORD)
  await clickAndWait(page, '#sign-up', '#auth-result')
  t.equal(await page.locator('#session').getAttribute('data-email'), email)
  await page.locator('#claims[data-status="200"]').waitFor()
  t.match(await page.locator('#claims-times').innerText(), /^Issued .+ \((now|\d+ min ago)\), expires .+ \(in 1[45] min\)\.$/, 'iat and exp as times, not epoch seconds')

  const ok = await callApi(page)
  t.equal(ok.status, '200')
  t.equal(await page.locator('#reason-meaning').innerText(), '', 'no explanation on a 200')

  // Sign-out clears the last results.
  await clickAndWait(page, '#sign-out', '#auth-result')
  t.equal(await page.locator('#session').getAttribute('data-state'), 'signed-out')
  t.equal(await page.locator('#status').getAttribute('data-status'), '', 'status cleared')
  t.equal(await page.locator('#body').innerText(), '', 'body cleared')
  t.equal(await page.locator('#request-id').innerText(), '', 'request id cleared')
  t.equal(await page.locator('#claims-times').innerText(), '', 'token times cleared')

  // Enter in the password field signs in.
  const before = Number((await page.locator('#auth-result').getAttribute('data-seq')) ?? 0)
  await page.focus('#password')
  await page.keyboard.press('Enter')
  await page.locator(`#auth-result[data-seq="${before + 1}"]`).waitFor()
  t.equal(await page.locator('#auth-result').getAttribute('data-action'), 'sign-in')
  t.equal(await page.locator('#session').getAttribute('data-email'), email, 'signed in by pressing Enter')
  t.same(watch.problems, [])
})
