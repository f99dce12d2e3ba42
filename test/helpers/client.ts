// A minimal HTTP client with a cookie jar, talking to a gateway over real sockets.
export type Res = { status: number; headers: Headers; body: any; text: string }

/** The User-Agent of the test client: no known browser, server runtime or mobile stack. */
export const TEST_CLIENT_UA = 'authgw-test-client/1'

export class Client {
  readonly base: string
  readonly jar = new Map<string, string>()
  constructor(base: string) {
    this.base = base
  }

  get cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
  }

  async request(method: string, path: string, opts: { body?: unknown; headers?: Record<string, string>; cookies?: boolean } = {}): Promise<Res> {
    // Node's fetch says `User-Agent: node`, a server runtime (docs/reasons.md:
    // server_side_no_cookie); the test client names itself instead.
    const headers: Record<string, string> = { 'user-agent': TEST_CLIENT_UA, ...opts.headers }
    if (opts.cookies !== false && this.jar.size > 0 && headers.cookie === undefined) headers.cookie = this.cookieHeader
    let body: string | undefined
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body)
      headers['content-type'] ??= 'application/json'
    }
    if (method !== 'GET' && method !== 'HEAD') headers.origin ??= new URL(this.base).origin
    const res = await fetch(this.base + path, { method, headers, body, redirect: 'manual' })
    for (const c of res.headers.getSetCookie()) {
      const [pair, ...attrs] = c.split(';')
      const eq = (pair as string).indexOf('=')
      const name = (pair as string).slice(0, eq).trim()
      const value = (pair as string).slice(eq + 1).trim()
      const expired = attrs.some((a) => /max-age=0/i.test(a.trim())) || value === ''
      if (expired) this.jar.delete(name)
      else this.jar.set(name, value)
    }
    const text = await res.text()
    let parsed: unknown = undefined
    try {
      parsed = text === '' ? undefined : JSON.parse(text)
    } catch {
      parsed = undefined
    }
    return { status: res.status, headers: res.headers, body: parsed, text }
  }

  get(path: string, opts?: { headers?: Record<string, string>; cookies?: boolean }) {
    return this.request('GET', path, opts)
  }
  post(path: string, body: unknown, opts?: { headers?: Record<string, string>; cookies?: boolean }) {
    return this.request('POST', path, { ...opts, body })
  }

  async signUp(email: string, password: string, name = 'Test User'): Promise<Res> {
    return this.post('/api/auth/sign-up/email', { email, password, name })
  }
  async signIn(email: string, password: string): Promise<Res> {
    return this.post('/api/auth/sign-in/email', { email, password })
  }
  async token(): Promise<string> {
    const r = await this.get('/api/auth/token')
    if (r.status !== 200) throw new Error(`token: ${r.status} ${r.text}`)
    return r.body.token as string
  }
}

let n = 0
export const uniqueEmail = (tag = 'user') => `${tag}-${process.pid}-${Date.now()}-${n++}@example.test`
export const PASSWORD = 'correct horse battery staple 42'
