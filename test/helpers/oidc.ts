// The SSO tests' side of a real oidc-provider: start it in its own process,
// walk its login and consent pages as a browser would (cookies, redirects,
// form posts), and stop it mid-flow.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import type { ProviderMode, ProviderOptions, ProviderUser } from '../fixtures/oidc-provider-server.ts'

const SERVER = new URL('../fixtures/oidc-provider-server.ts', import.meta.url).pathname

export const CLIENT_ID = 'authgw-test'
export const CLIENT_SECRET = 'authgw-test-client-secret-Vd3Kq9'
export const USERS: Record<string, ProviderUser> = {
  alice: { email: 'alice@sso.example.test', email_verified: true, name: 'Alice SSO' },
  unverified: { email: 'unverified@sso.example.test', email_verified: false, name: 'Not Verified' },
  bob: { email: 'bob@sso.example.test', email_verified: true, name: 'Bob SSO' },
}

export type RunningProvider = { issuer: string; child: ChildProcess; stderr: string[]; stop(): Promise<void>; setMode(mode: ProviderMode): Promise<void> }

/** A provider whose test client is registered with `redirectUris`. */
export async function startProvider(t: Test, redirectUris: string[], extra: Partial<ProviderOptions> = {}): Promise<RunningProvider> {
  const opts: ProviderOptions = {
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: redirectUris }],
    users: USERS,
    ...extra,
  }
  const child = spawn(process.execPath, [SERVER, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const stderr: string[] = []
  child.stderr?.setEncoding('utf8').on('data', (d: string) => stderr.push(d))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(stop)
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const issuer = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`oidc-provider did not start: ${stderr.join('')}`)), 60_000)
    lines.once('line', (line) => {
      clearTimeout(timer)
      resolve((JSON.parse(line) as { issuer: string }).issuer)
    })
    child.once('exit', (code) => reject(new Error(`oidc-provider exited ${code}: ${stderr.join('')}`)))
  })
  const setMode = async (mode: ProviderMode) => {
    const res = await fetch(`${issuer}/__test/mode`, { method: 'POST', body: JSON.stringify(mode) })
    if (!res.ok) throw new Error(`provider mode: ${res.status}`)
  }
  return { issuer, child, stderr, stop, setMode }
}

/** The OIDC_* environment for a gateway using this provider under `id`. */
export function providerEnv(p: { issuer: string }, id = 'corp', extra: Record<string, string> = {}): Record<string, string> {
  const up = id.toUpperCase()
  return {
    OIDC_PROVIDERS: id,
    [`OIDC_${up}_ISSUER`]: p.issuer,
    [`OIDC_${up}_CLIENT_ID`]: CLIENT_ID,
    [`OIDC_${up}_CLIENT_SECRET`]: CLIENT_SECRET,
    ...extra,
  }
}

/** A user agent at the provider: its own cookie jar, redirects followed by hand. */
export class ProviderAgent {
  readonly jar = new Map<string, string>()

  async #fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.jar.size > 0) headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '))
    const res = await fetch(url, { ...init, headers, redirect: 'manual' })
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';')
      const eq = (pair ?? '').indexOf('=')
      const name = (pair ?? '').slice(0, eq)
      const value = (pair ?? '').slice(eq + 1)
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') this.jar.delete(name)
      else this.jar.set(name, value)
    }
    return res
  }

  /**
   * From the authorization URL to the redirect back to the client: log in as
   * `user`, then consent (or press the provider's own abort link). Returns
   * the URL the provider redirected to (the gateway's callback).
   */
  async authorize(authorizationUrl: string, user: string, consent: 'accept' | 'decline' = 'accept', stopAt?: string): Promise<string> {
    let url = authorizationUrl
    for (let hop = 0; hop < 20; hop++) {
      if (stopAt !== undefined && url.startsWith(stopAt)) return url
      const res = await this.#fetch(url)
      const location = res.headers.get('location')
      if (location !== null) {
        url = new URL(location, url).href
        if (!url.startsWith(new URL(authorizationUrl).origin)) return url
        continue
      }
      const html = await res.text()
      if (res.status !== 200) throw new Error(`provider answered ${res.status} at ${url}: ${html.slice(0, 300)}`)
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
      const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1]
      if (action === undefined || prompt === undefined) throw new Error(`no interaction form at ${url}: ${html.slice(0, 300)}`)
      const submit = new URL(action.replace(/&amp;/g, '&'), url).href
      let next: Response
      if (prompt === 'consent' && consent === 'decline') {
        // The provider's own "Cancel" link on its consent page.
        const abort = /href="([^"]*\/abort)"/.exec(html)?.[1]
        next = await this.#fetch(abort !== undefined ? new URL(abort.replace(/&amp;/g, '&'), url).href : `${submit}/abort`)
      } else {
        const body = prompt === 'login' ? new URLSearchParams({ prompt, login: user, password: 'any' }) : new URLSearchParams({ prompt })
        next = await this.#fetch(submit, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      }
      const loc = next.headers.get('location')
      if (loc === null) throw new Error(`interaction ${prompt} answered ${next.status} without a redirect`)
      url = new URL(loc, submit).href
      if (!url.startsWith(new URL(authorizationUrl).origin)) return url
    }
    throw new Error('too many redirects at the provider')
  }
}

/** An upstream that records the Authorization header of every request it answers (200). */
export async function recordingUpstream(t: Test): Promise<{ url: string; authorizations: string[] }> {
  const { createServer } = await import('node:http')
  const authorizations: string[] = []
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization ?? '')
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, authorizations }
}
