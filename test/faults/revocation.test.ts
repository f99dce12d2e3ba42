// Revocation through two gateways on one database with SESSION_CACHE_TTL_SECONDS=1:
// the instance that ended the session stops honouring it at once; another
// instance, or a session row deleted behind the gateways' backs, within the TTL.
import pg from 'pg'
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape } from '../helpers/metrics.ts'
import { recordingUpstream, sleep } from './support.ts'

const TTL_SECONDS = 1
// Waiting a little past the TTL is what "within the TTL" means to a client.
const PAST_TTL_MS = TTL_SECONDS * 1000 + 300

t.test('sign-out and session deletion across two instances', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const env = { SESSION_CACHE_TTL_SECONDS: String(TTL_SECONDS) }
  const a = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const b = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env })
  const email = uniqueEmail('revoke')
  const onA = new Client(a.url)
  t.equal((await onA.signUp(email, PASSWORD)).status, 200)

  const get = (gwUrl: string, cookie: string) => new Client(gwUrl).get('/api/orders', { headers: { cookie } })

  t.test('sign-out on A: A refuses the cookie at once, B within the TTL', async (t) => {
    const cookie = onA.cookieHeader
    // Both instances have the session cached.
    t.equal((await get(a.url, cookie)).status, 200)
    t.equal((await get(b.url, cookie)).status, 200)
    const before = await scrape(a)
    const out = await onA.post('/api/auth/sign-out', {})
    t.equal(out.status, 200, out.text)
    t.equal(delta(before, await scrape(a)).get('authgw_sessions_revoked_total'), 1, 'A counted the revocation')

    const now = await get(a.url, cookie)
    t.equal(now.status, 401, 'A: immediately')
    t.equal(now.body.reason, 'session_not_found')

    await sleep(PAST_TTL_MS)
    const later = await get(b.url, cookie)
    t.equal(later.status, 401, 'B: once its cache entry aged out')
    t.equal(later.body.reason, 'session_not_found')
  })

  t.test('a session row deleted in the database: refused by both within the TTL', async (t) => {
    const c = new Client(a.url)
    t.equal((await c.signIn(email, PASSWORD)).status, 200)
    const cookie = c.cookieHeader
    t.equal((await get(a.url, cookie)).status, 200)
    t.equal((await get(b.url, cookie)).status, 200)
    const token = decodeURIComponent(c.jar.get(a.sessions.cookieNames.sessionToken) ?? '').split('.')[0]
    const db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    t.teardown(() => db.end())
    const deleted = await db.query('DELETE FROM "session" WHERE token = $1', [token])
    t.equal(deleted.rowCount, 1, 'the row existed')

    await sleep(PAST_TTL_MS)
    for (const [name, gw] of [
      ['A', a],
      ['B', b],
    ] as const) {
      const r = await get(gw.url, cookie)
      t.equal(r.status, 401, `${name} refuses the deleted session`)
      t.equal(r.body.reason, 'session_not_found')
    }
  })
})
