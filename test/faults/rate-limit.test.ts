// Sign-in brute force behind the gateway: better-auth's limiter (3 sign-ins
// per 10 s per client IP) must see the real client address — from
// X-Forwarded-For only when TRUST_PROXY says so — and every 429 is counted.
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape, unexpectedMovements } from '../helpers/metrics.ts'

const SIGN_IN = '/api/auth/sign-in/email'
const RATE_LIMITED = `authgw_rate_limited_total{reason="rate_limited",route="${SIGN_IN}"}`
const attempts = (outcome: string, reason: string) => `authgw_sign_in_attempts_total{method="email",outcome="${outcome}",reason="${reason}"}`

t.test('TRUST_PROXY: clients behind the proxy get separate buckets', async (t) => {
  const gw = await startTestGateway(t, { env: { AUTH_RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' } })
  const email = uniqueEmail('brute')
  t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)
  const before = await scrape(gw)

  const signIn = (ip: string, password: string) => new Client(gw.url).post(SIGN_IN, { email, password }, { headers: { 'x-forwarded-for': ip } })

  const attacker = '198.51.100.10'
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await signIn(attacker, `wrong-${i}`)).status)
  t.same(statuses, [401, 401, 401], 'three wrong passwords are answered')
  const blocked = await signIn(attacker, 'wrong-3')
  t.equal(blocked.status, 429, 'the fourth try within 10 s is refused')
  t.ok(blocked.headers.get('x-retry-after'), 'with a retry hint')
  t.equal((await signIn(attacker, PASSWORD)).status, 429, 'even with the right password')

  const other = await signIn('198.51.100.11', PASSWORD)
  t.equal(other.status, 200, `another client behind the same proxy is not affected: ${other.text}`)

  const d = delta(before, await scrape(gw))
  t.equal(d.get(RATE_LIMITED), 2, 'authgw_rate_limited_total{route,reason}')
  t.equal(d.get(attempts('failure', 'rate_limited')), 2)
  t.equal(d.get(attempts('failure', 'invalid_credentials')), 3)
  t.equal(d.get(attempts('success', 'none')), 1)
  const lines = gw.logs.records().filter((r) => r.event === 'sign_in' && r.reason === 'rate_limited')
  t.equal(lines.length, 2, 'audit lines carry the reason')
})

t.test('without TRUST_PROXY a client cannot buy fresh buckets with forged X-Forwarded-For', async (t) => {
  const gw = await startTestGateway(t, { env: { AUTH_RATE_LIMIT: 'on' } })
  const email = uniqueEmail('brute')
  t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)
  const statuses: number[] = []
  for (let i = 0; i < 5; i++) {
    const r = await new Client(gw.url).post(SIGN_IN, { email, password: `wrong-${i}` }, { headers: { 'x-forwarded-for': `203.0.113.${i + 1}` } })
    statuses.push(r.status)
  }
  t.same(statuses, [401, 401, 401, 429, 429])
})

t.test('a 429 whose client address is the trusted proxy itself is client_ip_unresolved', async (t) => {
  // TRUST_PROXY names the proxy, but it forwards no X-Forwarded-For: every
  // client behind it shares the proxy's bucket.
  const gw = await startTestGateway(t, { env: { AUTH_RATE_LIMIT: 'on', TRUST_PROXY: '127.0.0.1' } })
  const email = uniqueEmail('unresolved')
  t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200)
  const signIn = (password: string) => new Client(gw.url).post(SIGN_IN, { email, password })
  for (let i = 0; i < 3; i++) await signIn(`wrong-${i}`)
  const before = await scrape(gw)
  const blocked = await signIn('wrong-3')
  const after = await scrape(gw)
  t.equal(blocked.status, 429, blocked.text)
  const expected = {
    [`authgw_rate_limited_total{reason="client_ip_unresolved",route="${SIGN_IN}"}`]: 1,
    [attempts('failure', 'rate_limited')]: 1,
    [`authgw_http_request_duration_seconds_count{method="POST",route="${SIGN_IN}",status_code="429"}`]: 1,
  }
  t.same(unexpectedMovements(delta(before, after), expected), [], 'exactly the expected series moved')
  const line = gw.logs.accessLines().find((r) => r.reqId === blocked.headers.get('x-request-id'))
  t.match(line, { status: 429, clientIpUnresolved: true }, 'the access line says the client address is unresolved')

  // A forwarded client address is resolved: its 429 stays rate_limited.
  const forwarded = (password: string) => new Client(gw.url).post(SIGN_IN, { email, password }, { headers: { 'x-forwarded-for': '198.51.100.20' } })
  for (let i = 0; i < 3; i++) await forwarded(`wrong-${i}`)
  const before2 = await scrape(gw)
  const limited = await forwarded('wrong-3')
  t.equal(limited.status, 429)
  const d = delta(before2, await scrape(gw))
  t.equal(d.get(RATE_LIMITED), 1, 'a client behind the proxy: rate_limited')
  t.notOk(d.get(`authgw_rate_limited_total{reason="client_ip_unresolved",route="${SIGN_IN}"}`), 'not client_ip_unresolved')
  const line2 = gw.logs.accessLines().find((r) => r.reqId === limited.headers.get('x-request-id'))
  t.notOk(line2?.clientIpUnresolved, 'no clientIpUnresolved on a resolved client')
})
