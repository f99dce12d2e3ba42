import pg from 'pg'
import t from 'tap'
import { freshDatabaseUrl } from '../helpers/database.ts'

async function query(url: string, sql: string, values: unknown[] = []): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query(sql, values)).rows
  } finally {
    await client.end()
  }
}

let dropped = ''

t.test('each call yields an empty database of its own', async (t) => {
  const [a, b] = await Promise.all([freshDatabaseUrl(t), freshDatabaseUrl(t)])
  t.not(a, b)
  const nameOf = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1))
  t.match(nameOf(a), /^authgw_t_[0-9a-f]{12}$/)
  t.same(await query(a, 'SELECT current_database() AS db'), [{ db: nameOf(a) }])
  t.same(await query(a, "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'"), [{ n: 0 }])

  await query(a, 'CREATE TABLE only_in_a (n int)')
  await t.rejects(query(b, 'SELECT * FROM only_in_a'), { code: '42P01' })

  // Left open on purpose: the teardown drops the database anyway.
  const pool = new pg.Pool({ connectionString: a })
  pool.on('error', () => undefined)
  await pool.query('SELECT 1')
  dropped = nameOf(a)
})

t.test('the database is dropped when its test ends', async (t) => {
  const url = await freshDatabaseUrl(t)
  t.same(await query(url, 'SELECT datname FROM pg_database WHERE datname = $1', [dropped]), [])
})
