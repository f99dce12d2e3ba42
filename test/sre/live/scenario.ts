// Scripted traffic through real gateways for the live Prometheus test: a
// "normal" mix (cookie and bearer calls, token mints, session checks, sign-ins
// right and wrong, a brute-forcing client that hits the rate limiter,
// sign-outs, anonymous calls, calls with a signed-out session's cookie,
// probes) and a "spike" of bearer JWTs with a bad signature. Every response is checked against what its kind must get, so
// the test knows exactly what the gateways counted.
import { Client, PASSWORD, uniqueEmail } from '../../helpers/client.ts'
import type { Res } from '../../helpers/client.ts'

/** What one simulated user holds after signing up. */
export type User = { email: string; cookie: string; jwt: string }

export type Kind = {
  name: string
  /** /healthz: outside every request denominator of the rules. */
  probe?: boolean
  /** Answered 401 with a reason the spike alert counts (neither no_credentials nor invalid_credentials). */
  unexpected401?: boolean
  /** HTTP requests one `send` makes (default 1). */
  requests?: number
  send(base: string): Promise<Res>
  /** Whether the response is the one this kind must get; else a description. */
  check(res: Res): true | string
}

export type Tally = {
  byKind: Map<string, number>
  /** Requests other than probes, i.e. what `route!~"/healthz|/readyz"` counts. */
  nonProbe: number
  unexpected401: number
  problems: string[]
}

let ipCounter = 0
/**
 * A fresh client address (198.18.0.0/15, benchmarking), sent as
 * X-Forwarded-For (TRUST_PROXY). better-auth limits per address and path, and
 * its window restarts only 10 s after the last allowed request, so a steady
 * stream from one address is eventually limited: every request to
 * /api/auth/* comes from its own address, except the brute-force client's.
 */
export const freshIp = (): string => {
  ipCounter++
  return `198.18.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`
}

const xff = (ip: string) => ({ 'x-forwarded-for': ip })

export async function signUpUsers(base: string, n: number): Promise<User[]> {
  const users: User[] = []
  for (let i = 0; i < n; i++) {
    const ip = freshIp()
    const email = uniqueEmail('live')
    const c = new Client(base)
    const up = await c.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Live User' }, { headers: xff(ip) })
    if (up.status !== 200) throw new Error(`sign-up ${email}: ${up.status} ${up.text}`)
    const tok = await c.get('/api/auth/token', { headers: xff(ip) })
    if (tok.status !== 200) throw new Error(`token ${email}: ${tok.status} ${tok.text}`)
    users.push({ email, cookie: c.cookieHeader, jwt: tok.body.token as string })
  }
  return users
}

/**
 * Cookies of sessions that were signed out before any protected call, so no
 * replica holds them in its session cache: every call with one is 401
 * session_not_found.
 */
export async function signedOutCookies(base: string, n: number): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < n; i++) {
    const ip = freshIp()
    const c = new Client(base)
    const up = await c.post('/api/auth/sign-up/email', { email: uniqueEmail('gone'), password: PASSWORD, name: 'Gone User' }, { headers: xff(ip) })
    if (up.status !== 200) throw new Error(`sign-up: ${up.status} ${up.text}`)
    const cookie = c.cookieHeader
    const out = await c.post('/api/auth/sign-out', {}, { headers: xff(ip) })
    if (out.status !== 200) throw new Error(`sign-out: ${out.status} ${out.text}`)
    cookies.push(cookie)
  }
  return cookies
}

/** better-auth's sign-in limiter window (3 attempts per 10 s per address). */
const RATE_LIMIT_WINDOW_MS = 10_000

const status = (want: number) => (res: Res): true | string => (res.status === want ? true : `status ${res.status}, expected ${want}: ${res.text.slice(0, 200)}`)

const denied = (reason: string) => (res: Res): true | string =>
  res.status === 401 && res.body?.reason === reason ? true : `expected 401 ${reason}, got ${res.status}: ${res.text.slice(0, 200)}`

/** A real token of `user` whose payload was edited after signing: reason bad_signature. */
export function tamperedJwt(user: User, n: number): string {
  const [h, p, s] = user.jwt.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
  const edited = Buffer.from(JSON.stringify({ ...claims, email: `admin-${n}@example.test` })).toString('base64url')
  return `${h}.${edited}.${s}`
}

/** The normal mix, one kind per slot; round-robin over users. */
export function normalKinds(users: User[], signedOut: string[]): Kind[] {
  let u = 0
  const next = () => users[u++ % users.length] as User
  const get = (path: string, headers: Record<string, string>) => (base: string) => new Client(base).get(path, { headers, cookies: false })
  const cookieMe: Kind = {
    name: 'cookie GET /api/me',
    send: (base) => {
      const user = next()
      return get('/api/me', { cookie: user.cookie })(base)
    },
    check: status(200),
  }
  const bearerMe: Kind = {
    name: 'bearer GET /api/me',
    send: (base) => get('/api/me', { authorization: `Bearer ${next().jwt}` })(base),
    check: status(200),
  }
  // Another User-Agent than the test client that signed the users in: within
  // FRESH_SIGN_IN_WINDOW_SECONDS that one's cookie-less calls are cookie_not_returned.
  const anonMe: Kind = { name: 'anonymous GET /api/me', send: get('/api/me', { 'user-agent': 'curl/8.5.0' }), check: denied('no_credentials') }
  let g = 0
  const goneMe: Kind = {
    name: 'GET /api/me with a signed-out session cookie',
    unexpected401: true,
    send: (base) => get('/api/me', { cookie: signedOut[g++ % signedOut.length] as string })(base),
    check: denied('session_not_found'),
  }
  const session: Kind = {
    name: 'GET /api/auth/get-session with cookie',
    send: (base) => {
      const user = next()
      return get('/api/auth/get-session', { cookie: user.cookie, ...xff(freshIp()) })(base)
    },
    check: (res) => (res.status === 200 && res.body?.session ? true : `expected a session, got ${res.status}: ${res.text.slice(0, 200)}`),
  }
  const anonSession: Kind = {
    name: 'GET /api/auth/get-session without cookie',
    send: (base) => get('/api/auth/get-session', xff(freshIp()))(base),
    check: (res) => (res.status === 200 && res.text.trim() === 'null' ? true : `expected null, got ${res.status}: ${res.text.slice(0, 200)}`),
  }
  const token: Kind = {
    name: 'GET /api/auth/token',
    send: (base) => {
      const user = next()
      return get('/api/auth/token', { cookie: user.cookie, ...xff(freshIp()) })(base)
    },
    check: (res) => (res.status === 200 && typeof res.body?.token === 'string' ? true : `expected a token, got ${res.status}: ${res.text.slice(0, 200)}`),
  }
  const probe: Kind = { name: 'GET /healthz', probe: true, send: get('/healthz', {}), check: status(200) }
  // 11 slots: 4 cookie, 2 bearer, 1 anonymous (401 no_credentials), 1 signed-out cookie (401 session_not_found),
  // 3 better-auth endpoints; plus one probe.
  return [cookieMe, bearerMe, cookieMe, session, cookieMe, anonMe, bearerMe, token, cookieMe, goneMe, anonSession, probe]
}

/** Sign-ins and sign-outs, slower than the rest (password hashing; better-auth allows 3 sign-ins per 10 s per IP). */
export function signInKinds(users: User[], publicOrigin: string): Kind[] {
  let u = 0
  const bruteIp = '192.0.2.66'
  // Replicas behind one public URL: browsers send its origin, whichever replica answers.
  const headers = (ip: string) => ({ ...xff(ip), origin: publicOrigin })
  const signIn = (ip: string, email: string, password: string) => (base: string) =>
    new Client(base).post('/api/auth/sign-in/email', { email, password }, { headers: headers(ip) })
  const right: Kind = {
    name: 'sign-in, right password',
    send: (base) => {
      const user = users[u++ % users.length] as User
      return signIn(freshIp(), user.email, PASSWORD)(base)
    },
    check: status(200),
  }
  const wrong: Kind = {
    name: 'sign-in, wrong password',
    send: (base) => signIn(freshIp(), (users[0] as User).email, 'not the password')(base),
    check: status(401),
  }
  // One client guessing from one address, four times in a row at one
  // replica: the limiter (3 per 10 s) answers one of them 429, the fourth
  // unless its window ended during the four (an earlier one was the 429, or
  // a loaded machine hashed the passwords for longer than the window).
  const guesses = new WeakMap<Res, { statuses: number[]; tookMs: number }>()
  const brute: Kind = {
    name: 'sign-in, 4 guesses in a row from one address',
    requests: 4,
    send: async (base) => {
      const started = Date.now()
      const statuses: number[] = []
      let last: Res | undefined
      for (let i = 0; i < 4; i++) {
        last = await signIn(bruteIp, (users[0] as User).email, `guess-${i}`)(base)
        statuses.push(last.status)
        if (i < 3 && last.status !== 401 && last.status !== 429) return last
      }
      guesses.set(last as Res, { statuses, tookMs: Date.now() - started })
      return last as Res
    },
    check: (res) => {
      const g = guesses.get(res)
      if (res.status === 401 && g && (g.statuses.includes(429) || g.tookMs > RATE_LIMIT_WINDOW_MS)) return true
      return res.status === 429 ? true : `statuses ${JSON.stringify(g?.statuses)} in ${g?.tookMs} ms: no 429 within the limiter's window; last: ${res.text.slice(0, 200)}`
    },
  }
  const churn: Kind = {
    name: 'sign-in then sign-out',
    requests: 2,
    send: async (base) => {
      const ip = freshIp()
      const c = new Client(base)
      const r = await c.post('/api/auth/sign-in/email', { email: (users[1 % users.length] as User).email, password: PASSWORD }, { headers: headers(ip) })
      if (r.status !== 200) return r
      return c.post('/api/auth/sign-out', {}, { headers: headers(ip) })
    },
    check: status(200),
  }
  // 12 slots: a burst of guesses and one wrong password keep failures well
  // under a sign-in per second (AuthGatewaySignInFailureSurge's floor).
  return [right, brute, right, churn, right, wrong, right, churn, right, right, churn, right]
}

export function spikeKinds(users: User[]): Kind[] {
  let n = 0
  return [
    {
      name: 'bearer GET /api/me with a tampered JWT',
      unexpected401: true,
      send: (base) => new Client(base).get('/api/me', { headers: { authorization: `Bearer ${tamperedJwt(users[n % users.length] as User, n++)}` }, cookies: false }),
      check: denied('bad_signature'),
    },
  ]
}

export function newTally(): Tally {
  return { byKind: new Map(), nonProbe: 0, unexpected401: 0, problems: [] }
}

export type Stream = { stop(): Promise<void> }

/**
 * Sends `perSecond` requests, cycling through `kinds` and over `bases`, in
 * 100 ms ticks, with at most `maxInFlight` outstanding; each response is
 * checked and counted into every tally given.
 */
export function stream(bases: string[], kinds: Kind[], perSecond: number, tallies: Tally[], maxInFlight = 64): Stream {
  let stopped = false
  let k = 0
  let credit = 1
  const inflight = new Set<Promise<void>>()
  const one = async (kind: Kind, base: string) => {
    let verdict: true | string
    try {
      verdict = kind.check(await kind.send(base))
    } catch (err) {
      verdict = `request failed: ${(err as Error).message}`
    }
    for (const t of tallies) {
      t.byKind.set(kind.name, (t.byKind.get(kind.name) ?? 0) + 1)
      if (!kind.probe) t.nonProbe += kind.requests ?? 1
      if (kind.unexpected401 && verdict === true) t.unexpected401++
      if (verdict !== true && t.problems.length < 20) t.problems.push(`${kind.name} via ${base}: ${verdict}`)
    }
  }
  const loop = (async () => {
    let last = Date.now()
    while (!stopped) {
      const now = Date.now()
      // A saturated gateway slows the stream instead of piling up a backlog.
      credit = Math.min(credit + ((now - last) / 1000) * perSecond, Math.max(1, perSecond / 5))
      last = now
      while (credit >= 1 && inflight.size < maxInFlight) {
        credit--
        // When the cycle of kinds is a multiple of the replicas, shift by one
        // replica each cycle so that every kind reaches every replica.
        const shift = kinds.length % bases.length === 0 ? Math.floor(k / kinds.length) : 0
        const base = bases[(k + shift) % bases.length] as string
        const p = one(kinds[k++ % kinds.length] as Kind, base)
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      await Promise.all([...inflight])
    },
  }
}
