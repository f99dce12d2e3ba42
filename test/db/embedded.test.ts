import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import { startEmbeddedPostgres } from '../../src/db/embedded.ts'
import { startPrivatePostgres } from '../helpers/private-postgres.ts'

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query(sql)).rows
  } finally {
    await client.end()
  }
}

t.test('data survives a stop and a start on the same directory', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'authgw-embedded-test-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const records: { obj: object; msg: string }[] = []
  const log = (_level: string, obj: object, msg: string) => records.push({ obj, msg })

  const first = await startEmbeddedPostgres({ dataDir, log })
  t.teardown(() => first.stop())
  t.match(first.url, /^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/authgw$/)
  await query(first.url, "CREATE TABLE note (body text); INSERT INTO note VALUES ('kept')")
  await first.stop()
  await first.stop()

  const second = await startEmbeddedPostgres({ dataDir, log })
  t.teardown(() => second.stop())
  t.same(await query(second.url, 'SELECT body FROM note'), [{ body: 'kept' }])
  t.same(await query(second.url, 'SELECT current_database() AS db'), [{ db: 'authgw' }])
  await second.stop()

  t.same(
    records.map((r) => r.msg),
    ['embedded postgres initialised', 'embedded postgres started', 'embedded postgres stopped', 'embedded postgres started', 'embedded postgres stopped'],
    'stop() is idempotent: one record per real stop',
  )
  const password = decodeURIComponent(new URL(first.url).password)
  t.ok(password.length >= 16, 'a generated password')
  t.notOk(JSON.stringify(records).includes(password), 'the password is never logged')
})

t.test('a private cluster can be stopped and started again on the same URL', async (t) => {
  const db = await startPrivatePostgres(t)
  const pool = new pg.Pool({ connectionString: db.url, max: 2, connectionTimeoutMillis: 5000 })
  pool.on('error', () => undefined)
  t.teardown(() => pool.end())
  t.same((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }])

  await db.stop()
  await t.rejects(query(db.url, 'SELECT 1'), { code: 'ECONNREFUSED' }, 'connections are refused while stopped')

  await db.start()
  t.same(await query(db.url, 'SELECT 1 AS one'), [{ one: 1 }])
  t.same((await pool.query('SELECT 1 AS one')).rows, [{ one: 1 }], 'the pool reconnects')
})

t.test('private clusters are isolated from each other', async (t) => {
  const [a, b] = await Promise.all([startPrivatePostgres(t), startPrivatePostgres(t)])
  t.not(a.port, b.port)
  await query(a.url, 'CREATE TABLE only_in_a (n int)')
  await t.rejects(query(b.url, 'SELECT * FROM only_in_a'), { code: '42P01' })
})
