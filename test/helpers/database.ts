// An empty database of its own for each test that asks: on the server named by
// DATABASE_URL (CI), else on a private cluster shared by this test process.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import tap from 'tap'
import { startPrivatePostgres, type Teardown } from './private-postgres.ts'

let server: Promise<string> | undefined
function serverUrl(): Promise<string> {
  const fromEnv = process.env.DATABASE_URL
  if (fromEnv) return Promise.resolve(fromEnv)
  // Stopped, and its folder removed, when the file's root test ends. `after`,
  // not `teardown`: on the root test, teardown also makes tap end the file as
  // soon as it is idle, which silently drops subtests queued after an await.
  server ??= startPrivatePostgres({ teardown: (fn) => tap.after(fn) }).then((db) => db.url)
  return server
}

export async function freshDatabaseUrl(t: Teardown): Promise<string> {
  const admin = await serverUrl()
  const name = `authgw_t_${randomBytes(6).toString('hex')}`
  await execute(admin, `CREATE DATABASE ${name}`)
  // FORCE: a pool the test forgot to end must not keep the database alive.
  t.teardown(() => execute(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
  const url = new URL(admin)
  url.pathname = `/${name}`
  return url.toString()
}

async function execute(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
