// Debian's Chromium driven by playwright-core: never a downloaded browser. Each
// caller gets its own browser with a fresh profile, so cookies never leak
// between scenarios.
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { chromium } from 'playwright-core'
import type { BrowserContext, Page } from 'playwright-core'
import type { Test } from 'tap'
import { demoApp } from '../../src/web/demo-app.ts'

// CHROMIUM_PATH, when set, is the only candidate.
const CANDIDATES = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser']

/** The Chromium executable, or undefined when this machine has none. */
export const chromiumPath: string | undefined = CANDIDATES.find((p) => existsSync(p))

export const SKIP_NO_CHROMIUM = chromiumPath
  ? false
  : `no Chromium found (looked at ${CANDIDATES.join(', ')}): install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH`

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export type BrowserOptions = {
  /** Extra Chromium switches, e.g. `--host-resolver-rules=…`. */
  args?: string[]
}

/** A headless Chromium with a fresh user-data-dir, closed and removed at teardown. */
export async function launchBrowser(t: Test, opts: BrowserOptions = {}): Promise<BrowserContext> {
  if (!chromiumPath) throw new Error(SKIP_NO_CHROMIUM || 'no Chromium')
  const userDataDir = await mkdtemp(join(tmpdir(), 'authgw-chromium-'))
  t.teardown(() => rm(userDataDir, { recursive: true, force: true }))
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    chromiumSandbox: false,
    args: [...ARGS, ...(opts.args ?? [])],
    viewport: { width: 900, height: 1100 },
    acceptDownloads: false,
  })
  t.teardown(() => context.close())
  context.setDefaultTimeout(15_000)
  return context
}

export type PageWatch = {
  /** Uncaught errors, console errors, and failed loads of the page's own files. */
  problems: string[]
  /** Every URL path under /app/modules/ the browser fetched (the modules it actually imported). */
  modules: Set<string>
}

/**
 * Open the demo page and wait until its script ran (better-auth's client was
 * imported through the import map and the first session check finished).
 */
export async function openDemo(context: BrowserContext, url: string, opts: { newTab?: boolean } = {}): Promise<{ page: Page; watch: PageWatch }> {
  const page = opts.newTab ? await context.newPage() : (context.pages()[0] ?? (await context.newPage()))
  const watch: PageWatch = { problems: [], modules: new Set() }
  const pageOrigin = new URL(url).origin
  page.on('pageerror', (err) => watch.problems.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    // Chromium logs every 4xx fetch as "Failed to load resource"; the 401s are the point here.
    if (msg.type() === 'error' && !/the server responded with a status of 4\d\d/.test(msg.text())) watch.problems.push(`console: ${msg.text()}`)
  })
  page.on('response', (res) => {
    const u = new URL(res.url())
    if (u.origin !== pageOrigin) return
    if (u.pathname.startsWith('/app/modules/')) watch.modules.add(u.pathname)
    if ((u.pathname === '/' || u.pathname.startsWith('/app/')) && res.status() !== 200) watch.problems.push(`${res.status()} ${u.pathname}`)
  })
  await page.goto(url)
  await waitReady(page, watch)
  return { page, watch }
}

/** Wait for the page script to finish its first session check; say why when it never does. */
export async function waitReady(page: Page, watch: PageWatch): Promise<void> {
  try {
    await page.locator('body[data-ready="true"]').waitFor({ timeout: 10_000 })
  } catch (err) {
    throw new Error(`the demo page never became ready: ${watch.problems.join('; ') || 'no error reported'}`, { cause: err })
  }
}

/** Click a button and wait until the element's `data-seq` moved past its value before the click. */
export async function clickAndWait(page: Page, button: string, seqElement: string): Promise<void> {
  const before = Number((await page.locator(seqElement).getAttribute('data-seq')) ?? 0)
  await page.click(button)
  await page.locator(`${seqElement}[data-seq="${before + 1}"]`).waitFor()
}

/** Click "Call GET /api/me" and wait for the call to be recorded in the panel. */
export async function callApi(page: Page): Promise<{ status: string; reason: string; requestId: string; body: string }> {
  const before = Number(await page.locator('#calls').getAttribute('data-count'))
  await page.click('#call-api')
  await page.locator(`#calls[data-count="${before + 1}"]`).waitFor()
  return {
    status: (await page.locator('#status').getAttribute('data-status')) ?? '',
    reason: await page.locator('#reason').innerText(),
    requestId: await page.locator('#request-id').innerText(),
    body: await page.locator('#body').innerText(),
  }
}

export async function fillAccount(page: Page, email: string, password: string): Promise<void> {
  await page.fill('#email', email)
  await page.fill('#password', password)
}

/**
 * The demo page served from its own origin (a plain Fastify with only the demo
 * plugin), talking to the gateway at `gatewayUrl`. Returns the port; the page
 * is reachable as http://127.0.0.1:<port>/ and http://localhost:<port>/.
 */
export async function servePage(t: Test, gatewayUrl: string): Promise<number> {
  const app = Fastify({ logger: false })
  await app.register(demoApp, { gatewayUrl })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return (app.server.address() as AddressInfo).port
}
