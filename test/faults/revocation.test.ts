// Revocation through two gateways on one database with SESSION_CACHE_TTL_SECONDS=1:
// the instance that ended the session stops honouring it at once; another
// instance, or a session row deleted behind the gateways' backs, within the TTL.
import pg from 'pg'
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape } from '../helpers/metrics.ts'
import { eventually, recordingUpstream, sleep } from './support.ts'

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
      // A issued this session seconds ago (FRESH_SIGN_IN_WINDOW_SECONDS): a
      // row gone that soon is what replica lag or a second database look like,
      // so A names it apart; B did not issue it.
      t.equal(r.body.reason, name === 'A' ? 'fresh_session_not_found' : 'session_not_found')
    }
  })
})

t.test('a lookup in flight when the session is revoked on the same instance does not bring it back', async (t) => {
  // Default SESSION_CACHE_TTL_SECONDS (30): a revoked session cached by that
  // lookup would be honoured for half a minute.
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url })
  const c = new Client(gw.url)
  const signUp = await c.signUp(uniqueEmail('race'), PASSWORD)
  t.equal(signUp.status, 200)
  const userId = signUp.body.user.id as string
  // Kept for after the sign-out, which clears the client's jar.
  const cookie = c.cookieHeader

  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  t.teardown(() => db.end())
  // The gateway's lookup joins "user". Put a view in front of the table whose
  // row filter, for one user and once, waits for an advisory lock the test
  // holds: the lookup is then blocked *after* its snapshot was taken, so it
  // will still see the session row once it resumes, exactly like a lookup
  // that read the row just before a revocation committed.
  await db.query('ALTER TABLE "user" RENAME TO user_base')
  // The first reader of the user's row after arming (a sequence: no row locks
  // that would hold up other readers) is the one that waits.
  await db.query('CREATE TABLE race_target (user_id text NOT NULL)')
  await db.query('INSERT INTO race_target VALUES ($1)', [userId])
  await db.query('CREATE SEQUENCE race_turn')
  await db.query(`CREATE FUNCTION race_pause(uid text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
    BEGIN
      IF uid = (SELECT user_id FROM race_target) THEN
        IF nextval('race_turn') = 1 THEN PERFORM pg_advisory_xact_lock_shared(4242); END IF;
      END IF;
      RETURN true;
    END $$`)
  await db.query('CREATE VIEW "user" AS SELECT * FROM user_base WHERE race_pause(id)')
  await db.query('SELECT pg_advisory_lock(4242)')
  let locked = true
  const unlock = async () => {
    if (locked) await db.query('SELECT pg_advisory_unlock(4242)')
    locked = false
  }
  t.teardown(unlock)
  await db.query('SELECT setval($1, 1, false)', ['race_turn'])

  // The first use of the cookie on the API: a cache miss, blocked inside its query.
  const inFlight = new Client(gw.url).get('/api/orders', { headers: { cookie } })
  await eventually(
    async () => {
      const waiting = await db.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`)
      return waiting.rowCount === 1 ? true : undefined
    },
    { limitMs: 10_000, what: 'the session lookup waiting inside its query' },
  )

  // Signed out on this instance while that lookup waits.
  const before = await scrape(gw)
  const out = await c.post('/api/auth/sign-out', {})
  t.equal(out.status, 200, out.text)
  t.equal((await db.query('SELECT count(*)::int AS n FROM "session" WHERE "userId" = $1', [userId])).rows[0].n, 0, 'the session row is gone')
  t.equal(delta(before, await scrape(gw)).get('authgw_sessions_revoked_total'), 1, 'the gateway saw the revocation')

  await unlock()
  const first = await inFlight
  t.equal(first.status, 401, `the request whose lookup was overtaken by the revocation: ${first.text}`)
  t.equal(first.body.reason, 'session_not_found')
  const again = await new Client(gw.url).get('/api/orders', { headers: { cookie } })
  t.equal(again.status, 401, `the next request with the revoked cookie, well within the cache TTL: ${again.text}`)
  t.equal(again.body.reason, 'session_not_found')
  t.equal(upstream.received.length, 0, 'nothing reached the upstream with the revoked session')
})
