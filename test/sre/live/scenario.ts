// Scripted traffic through real gateways for the live Prometheus test: a
// "normal" mix (cookie and bearer calls, token mints, session checks, sign-ins
// right and wrong, a brute-forcing client that hits the rate limiter,
// sign-outs, anonymous calls, probes) and a "spike" of bearer JWTs with a
// bad signature. Every response is checked against what its kind must get, so
// the test knows exactly what the gateways counted.
import { Client, PASSWORD, uniqueEmail } from '../../helpers/client.ts'
import type { Res } from '../../helpers/client.ts'

/** What one simulated user holds after signing up. */
export type User = { email: string; cookie: string; jwt: string }

export type Kind = {
  name: string
  /** /healthz: outside every request denominator of the rules. */
  probe?: boolean
  /** Answered 401 with a reason the spike alert counts (not invalid_credentials). */
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
export function normalKinds(users: User[]): Kind[] {
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
  const anonMe: Kind = { name: 'anonymous GET /api/me', unexpected401: true, send: get('/api/me', {}), check: denied('no_credentials') }
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
  // 10 slots: 40 % cookie, 20 % bearer, 10 % anonymous (401 no_credentials), 30 % better-auth endpoints; plus one probe.
  return [cookieMe, bearerMe, cookieMe, session, cookieMe, anonMe, bearerMe, token, cookieMe, anonSession, probe]
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
  // replica: the limiter (3 per 10 s) answers the fourth 429 whatever came before.
  const brute: Kind = {
    name: 'sign-in, 4 guesses in a row from one address',
    requests: 4,
    send: async (base) => {
      let last: Res | undefined
      for (let i = 0; i < 4; i++) {
        last = await signIn(bruteIp, (users[0] as User).email, `guess-${i}`)(base)
        if (i < 3 && last.status !== 401 && last.status !== 429) return last
      }
      return last as Res
    },
    check: status(429),
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
