// The revoked-session memory (docs/adr/0031-revoked-session-jwts.md): bounded,
// forgetting after the longest JWT lifetime, and a store that cannot answer
// the session-row check says nothing (the token stays verifiable).
import t from 'tap'
import pg from 'pg'
import { RevokedSessions } from '../../src/auth/revoked-sessions.ts'
import { freePort } from '../helpers/gateway.ts'
import { sleep } from '../faults/support.ts'

t.test('bounded: past max the oldest revocation is pushed out, and the overflow is reported', async (t) => {
  let overflows = 0
  const r = new RevokedSessions({ ttlSeconds: 900, maxEntries: 2, onOverflow: () => overflows++ })
  r.add('s1')
  r.add('s2')
  t.equal(overflows, 0)
  r.add('s3')
  t.equal(r.size, 2)
  t.notOk(r.has('s1'), 'the oldest is forgotten')
  t.ok(r.has('s2') && r.has('s3'))
  t.equal(overflows, 1, 'one overflow reported')
})

t.test('forgotten once no JWT minted before the revocation can still be unexpired', async (t) => {
  const r = new RevokedSessions({ ttlSeconds: 1 })
  r.add('s1')
  t.ok(r.has('s1'))
  await sleep(1_200)
  t.notOk(r.has('s1'), 'gone after its TTL')
})

t.test('the session-row check: a store that cannot answer is not a revocation (counted)', async (t) => {
  // A real connection refused: nothing listens on this port.
  const pool = new pg.Pool({ connectionString: `postgres://postgres@127.0.0.1:${await freePort()}/none`, connectionTimeoutMillis: 1_000 })
  t.teardown(() => pool.end())
  const errors: unknown[] = []
  const r = new RevokedSessions({ ttlSeconds: 900, pool, onDbError: (err) => errors.push(err) })
  t.equal(await r.endedInStore('s1'), false, 'accepted: the memory alone decides')
  t.equal(errors.length, 1, 'the failure is reported')
  t.equal(await r.endedInStore('s3'), false)
  t.equal(errors.length, 1, 'the store is not asked again at once: an outage costs one slow check per second')
  r.add('s2')
  t.equal(await r.endedInStore('s2'), true, 'a remembered revocation needs no store')
  t.equal(errors.length, 1, 'and asks none')
})
