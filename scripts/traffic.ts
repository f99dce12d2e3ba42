// Traffic for the compose stack: steady normal traffic, plus on demand one
// failure scenario so every panel and alert can be seen working.
//   GATEWAY_URL   the load balancer (default http://localhost:8080)
//   SCENARIO      normal | expired | forged | bad-cookie | wrong-audience | secret-mismatch
//   RATE          requests per second of normal traffic (default 20)
//   FAILURE_SHARE share of requests that carry the scenario's failure (default 0.3)
//   OTHER_GATEWAY_URL  a gateway with another secret (secret-mismatch) or another
//                      audience (wrong-audience); compose's gateway-c.
const env = process.env
const gateway = env.GATEWAY_URL ?? 'http://localhost:8080'
const scenario = env.SCENARIO ?? 'normal'
const rate = Number(env.RATE ?? 20)
const failureShare = Number(env.FAILURE_SHARE ?? 0.3)
const other = env.OTHER_GATEWAY_URL

type Session = { cookie: string; token: string; tokenAt: number }

async function signUp(base: string, i: number): Promise<Session> {
  const email = `traffic-${Date.now()}-${i}@example.test`
  const res = await fetch(`${base}/api/auth/sign-up/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: new URL(base).origin },
    body: JSON.stringify({ email, password: 'traffic password 123', name: `Traffic ${i}` }),
  })
  const cookie = res.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ')
  const tok = await fetch(`${base}/api/auth/token`, { headers: { cookie } })
  const { token } = (await tok.json()) as { token: string }
  return { cookie, token, tokenAt: Date.now() }
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

function failure(s: Session, foreign: Session | undefined): Record<string, string> {
  switch (scenario) {
    case 'expired':
      // Tokens live JWT_EXPIRATION_SECONDS; the stale ones kept here expire on their own.
      return { authorization: `Bearer ${stale[Math.floor(Math.random() * stale.length)] ?? s.token}` }
    case 'forged': {
      const [h, , sig] = s.token.split('.')
      const payload = b64({ sub: 'admin', exp: Math.floor(Date.now() / 1000) + 600 })
      return Math.random() < 0.5
        ? { authorization: `Bearer ${h}.${payload}.${sig}` }
        : { authorization: `Bearer ${b64({ alg: 'EdDSA', kid: `forged-${Math.random()}` })}.${payload}.${sig}` }
    }
    case 'bad-cookie':
      return { cookie: `better-auth.session_token=${encodeURIComponent(`forged${Math.random()}.${'A'.repeat(43)}=`)}` }
    case 'wrong-audience':
    case 'secret-mismatch':
      if (!foreign) return {}
      return scenario === 'wrong-audience' ? { authorization: `Bearer ${foreign.token}` } : { cookie: foreign.cookie }
    default:
      return {}
  }
}

const stale: string[] = []
const sessions: Session[] = []
for (let i = 0; i < 5; i++) sessions.push(await signUp(gateway, i))
const foreign = other && (scenario === 'wrong-audience' || scenario === 'secret-mismatch') ? await signUp(other, 99) : undefined
console.log(JSON.stringify({ msg: 'traffic started', gateway, scenario, rate }))

let sent = 0
setInterval(() => {
  for (const s of sessions) if (Date.now() - s.tokenAt > 60_000) {
    stale.push(s.token)
    if (stale.length > 20) stale.shift()
    fetch(`${gateway}/api/auth/token`, { headers: { cookie: s.cookie } })
      .then((r) => r.json() as Promise<{ token: string }>)
      .then(({ token }) => Object.assign(s, { token, tokenAt: Date.now() }))
      .catch(() => undefined)
  }
}, 10_000)

setInterval(() => {
  const s = sessions[sent++ % sessions.length] as Session
  const fail = scenario !== 'normal' && Math.random() < failureShare
  const headers = fail ? failure(s, foreign) : Math.random() < 0.5 ? { cookie: s.cookie } : { authorization: `Bearer ${s.token}` }
  fetch(`${gateway}/api/me`, { headers }).catch(() => undefined)
  if (sent % 50 === 0) {
    // A sign-in with a wrong password now and then, as real traffic has.
    fetch(`${gateway}/api/auth/sign-in/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: new URL(gateway).origin },
      body: JSON.stringify({ email: 'nobody@example.test', password: 'wrong password 1' }),
    }).catch(() => undefined)
  }
}, 1000 / rate)
