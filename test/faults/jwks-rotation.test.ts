// better-auth key rotation seen through the gateway's in-memory JWKS, and
// the unknown-kid refresh cooldown under a burst of junk kids.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape, sumOf } from '../helpers/metrics.ts'
import { eventually, recordingUpstream, sleep } from './support.ts'

const refreshes = (outcome: string) => `authgw_jwks_refreshes_total{outcome="${outcome}"}`
const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as { kid: string }).kid
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
const junkToken = () => `${b64({ alg: 'EdDSA', kid: randomBytes(16).toString('hex') })}.${b64({ sub: 'x', exp: 4102444800 })}.${randomBytes(64).toString('base64url')}`

t.test('rotation: tokens minted before and after are all accepted; one refresh learns the new kid', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, {
    upstreamUrl: upstream.url,
    env: { JWKS_ROTATION_INTERVAL_SECONDS: '1', JWKS_GRACE_PERIOD_SECONDS: '3600' },
  })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('rotate'), PASSWORD)).status, 200)
  const before1 = await c.token()
  t.equal((await new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${before1}` } })).status, 200)
  const before = await scrape(gw)

  // The signing key expires after 1 s; the next signing mints a new one.
  await sleep(1100)
  const after1 = await c.token()
  const after2 = await c.token()
  t.not(kidOf(after1), kidOf(before1), 'the token minted after the rotation interval carries a new kid')
  t.equal(kidOf(after2), kidOf(after1))

  const published = (await (await fetch(`${gw.url}/api/auth/jwks`)).json()) as { keys: Array<{ kid: string }> }
  // Usually two keys; a third when a slow start let the first key expire before before1 was signed.
  const publishedKids = published.keys.map((k) => k.kid)
  t.ok(publishedKids.includes(kidOf(before1)) && publishedKids.includes(kidOf(after1)), 'both keys are published during the grace period')

  // Old and new tokens and the cookie, concurrently, several times over.
  const calls: Array<Promise<number>> = []
  for (let i = 0; i < 10; i++) {
    for (const token of [after1, before1, after2]) {
      calls.push(new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status))
    }
    calls.push(c.get('/api/orders').then((r) => r.status))
  }
  const statuses = await Promise.all(calls)
  t.same(
    statuses.filter((s) => s !== 200),
    [],
    'every valid token and the cookie were accepted',
  )

  const after = await scrape(gw)
  const d = delta(before, after)
  t.equal(sumOf(after, 'authgw_unauthorized_total') - sumOf(before, 'authgw_unauthorized_total'), 0, 'zero 401s')
  t.equal(d.get(refreshes('success')), 1, 'exactly one refresh, for the new kid')
  t.equal(d.get(refreshes('failure')) ?? 0, 0)
  t.equal(after.get('authgw_jwks_keys'), publishedKids.length, 'the in-memory JWKS holds every published key')
})

t.test('a burst of unknown kids: at most one refresh per cooldown', async (t) => {
  const COOLDOWN_S = 6
  const gw = await startTestGateway(t, { env: { JWKS_REFRESH_COOLDOWN_SECONDS: String(COOLDOWN_S) } })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('kids'), PASSWORD)).status, 200)
  const valid = await c.token()
  const before = await scrape(gw)

  const wave = async (n: number) => {
    const answers = await Promise.all(
      Array.from({ length: n }, () => new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${junkToken()}` } })),
    )
    return answers.map((a) => `${a.status} ${a.body?.reason}`)
  }

  const first = await wave(50)
  const second = await wave(50)
  t.same(new Set([...first, ...second]), new Set(['401 kid_unknown']), 'every junk kid is a 401 kid_unknown')
  const mid = delta(before, await scrape(gw))
  t.equal(mid.get(refreshes('success')), 1, 'one refresh for 100 unknown kids inside one cooldown')
  t.ok((mid.get(refreshes('suppressed')) ?? 0) >= 50, `the rest were suppressed (${mid.get(refreshes('suppressed'))})`)
  t.equal(mid.get('authgw_jwt_validation_failures_total{reason="kid_unknown"}'), 100)

  // The next cooldown window allows the next refresh, again only one.
  await sleep(COOLDOWN_S * 1000 + 200)
  await wave(50)
  const end = delta(before, await scrape(gw))
  t.equal(end.get(refreshes('success')), 2, 'one more refresh in the next window')
  t.equal(end.get(refreshes('failure')) ?? 0, 0)

  t.equal((await new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${valid}` } })).status, 200, 'valid tokens unaffected')
})

t.test('a key another replica created inside the cooldown is accepted at once, with no announcement at all', async (t) => {
  // Two gateways on one database, the invalidation bus off (coherence mode none): b hears of a's new
  // key only by looking the unknown kid up in the key store. Before, b refused it as kid_unknown
  // until its cooldown ended, and a token that outran the announcement did the same with the bus on.
  const a = await startTestGateway(t, { env: { DATABASE_LISTEN: 'off', JWKS_ROTATION_INTERVAL_SECONDS: '1', JWKS_GRACE_PERIOD_SECONDS: '3600' } })
  // A recording upstream behind b: the demo API verifies with its own JWKS cache, which is not under test here.
  const upstream = await recordingUpstream(t)
  const b = await startTestGateway(t, {
    databaseUrl: a.databaseUrl,
    upstreamUrl: upstream.url,
    env: { DATABASE_LISTEN: 'off', BETTER_AUTH_URL: a.config.baseUrl, JWKS_REFRESH_COOLDOWN_SECONDS: '600', JWKS_REFRESH_INTERVAL_SECONDS: '600' },
  })
  const c = new Client(a.url)
  t.equal((await c.signUp(uniqueEmail('other-replica-key'), PASSWORD)).status, 200)
  const first = await c.token()
  t.equal((await new Client(b.url).get('/api/orders', { headers: { authorization: `Bearer ${first}` } })).status, 200, 'b accepts a token of the key it loaded')
  // A junk kid starts b's cooldown (600 s), and is refused.
  const junk = await new Client(b.url).get('/api/orders', { headers: { authorization: `Bearer ${junkToken()}` } })
  t.equal(`${junk.status} ${junk.body?.reason}`, '401 kid_unknown')

  // a's key lives 1 s: a token fetched after that carries a new kid (on a loaded machine the
  // first key may have been created a moment later than `first` suggests, so ask until it does).
  await sleep(1100)
  const second = await eventually(
    async () => {
      const token = await c.token()
      return kidOf(token) !== kidOf(first) ? token : undefined
    },
    { limitMs: 30_000, everyMs: 250, what: 'a token signed with a new key' },
  )
  t.not(kidOf(second), kidOf(first), 'a minted a token with a new key')
  const before = await scrape(b)
  const res = await new Client(b.url).get('/api/orders', { headers: { authorization: `Bearer ${second}` } })
  t.equal(res.status, 200, `b accepts the new key inside its cooldown: ${res.status} ${res.body?.reason ?? ''}`)
  const d = delta(before, await scrape(b))
  t.equal(d.get(refreshes('success')), 1, 'by one refresh, after the store said the kid exists')

  // Junk kids inside the cooldown stay kid_unknown, and cost no refresh.
  const more = await Promise.all(Array.from({ length: 30 }, () => new Client(b.url).get('/api/orders', { headers: { authorization: `Bearer ${junkToken()}` } })))
  t.same(new Set(more.map((r) => `${r.status} ${r.body?.reason}`)), new Set(['401 kid_unknown']))
  t.equal(delta(before, await scrape(b)).get(refreshes('success')), 1, 'no refresh for junk kids')
})

t.test('a signing key removed from the jwks table stops being trusted at the next JWKS refresh, cached or not', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, {
    upstreamUrl: upstream.url,
    env: { JWKS_REFRESH_INTERVAL_SECONDS: '1', JWKS_ROTATION_INTERVAL_SECONDS: '1', JWKS_GRACE_PERIOD_SECONDS: '3600' },
  })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('key-removed'), PASSWORD)).status, 200)
  const old = await c.token()
  const bearer = (jwt: string) => new Client(gw.url).get('/api/orders', { headers: { authorization: `Bearer ${jwt}` } })
  t.equal((await bearer(old)).status, 200, 'accepted, and now in the verify-once cache')
  t.equal((await c.get('/api/orders')).status, 200, 'the cookie session: the gateway minted (and cached) a JWT with the same key')
  const forwardedKid = () => kidOf(String(upstream.received.at(-1)?.headers.authorization).replace(/^Bearer /, ''))
  // Keys rotate every second: under load the gateway may already have minted
  // the cookie session's JWT with a newer key than the bearer token's. Both
  // keys are removed below, so each cache is tested either way.
  const removed = new Set([kidOf(old), forwardedKid()])

  // A key outside the removed ones (rotation interval 1 s), then the removed ones deleted as an operator would.
  const fresh = await eventually(
    async () => {
      const jwt = await c.token()
      return removed.has(kidOf(jwt)) ? undefined : jwt
    },
    { limitMs: 10_000, everyMs: 200, what: 'a token signed by a new key' },
  )
  const db = new pg.Client({ connectionString: gw.databaseUrl })
  await db.connect()
  t.teardown(() => db.end())
  const before = await scrape(gw)
  t.equal((await db.query('DELETE FROM jwks WHERE id = ANY($1)', [[...removed]])).rowCount, removed.size, 'the old key rows deleted')
  // The next background refresh (every second) sees the key set without them.
  await eventually(
    async () => ((delta(before, await scrape(gw)).get(refreshes('success')) ?? 0) >= 2 ? true : undefined),
    { limitMs: 10_000, what: 'two JWKS refreshes after the deletion' },
  )

  const r = await bearer(old)
  t.equal(r.status, 401, `a token of the removed key, still within the verify-once cache TTL: ${r.text}`)
  t.equal(r.body.reason, 'kid_unknown')
  t.equal((await bearer(fresh)).status, 200, 'tokens of the remaining key pass')
  t.equal((await c.get('/api/orders')).status, 200)
  const published = ((await (await fetch(`${gw.url}/api/auth/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid)
  t.notOk(removed.has(forwardedKid()), 'the JWT the gateway minted with a removed key is not forwarded any more')
  t.ok(published.includes(forwardedKid()), 'the cookie session is forwarded with a JWT of a key the upstream can still find')
})
