// authgw_db_errors_total{operation="pool"} and {operation="migrate"} move on
// real failures: a pooled backend terminated by the server, and migrations
// run by a role that may not create tables.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { delta, scrape } from '../helpers/metrics.ts'
import { eventually, recordingUpstream } from '../faults/support.ts'

async function asAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

t.test('a pooled connection terminated by the server: counted as operation="pool" and logged', async (t) => {
  const gw = await startTestGateway(t)
  const before = await scrape(gw)
  // The gateway's idle pooled connections (startup left some behind).
  const dbName = decodeURIComponent(new URL(gw.databaseUrl).pathname.slice(1))
  const killed = await asAdmin(gw.databaseUrl, async (c) => {
    const { rows } = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'authgw' AND state = 'idle' AND pid <> pg_backend_pid()",
      [dbName],
    )
    for (const { pid } of rows) await c.query('SELECT pg_terminate_backend($1)', [pid])
    return rows.length
  })
  t.ok(killed > 0, `${killed} idle pooled backend(s) terminated`)

  const moved = await eventually(async () => {
    const n = delta(before, await scrape(gw)).get('authgw_db_errors_total{operation="pool"}') ?? 0
    return n >= 1 ? n : undefined
  }, { limitMs: 10_000, what: 'authgw_db_errors_total{operation="pool"} moved' })
  t.ok(moved >= 1 && moved <= killed, `moved by ${moved}`)

  const lines = gw.logs.records().filter((r) => r.event === 'db_pool_error')
  t.ok(lines.length >= 1, 'logged')
  t.equal(lines[0]?.level, 40, 'at warn level')
  t.match(lines[0], { err: { message: /terminat/ } })
  t.notMatch(JSON.stringify(lines), /postgres:\/\//, 'no connection URL in the line')

  const ready = await fetch(`${gw.url}/readyz`)
  t.equal(ready.status, 200, 'the pool reconnects: still ready')
})

t.test('migrations that fail for real: counted as operation="migrate", not ready, retried until they succeed', async (t) => {
  const admin = process.env.DATABASE_URL
  const role = `authgw_nocreate_${randomBytes(4).toString('hex')}`
  const password = randomBytes(12).toString('hex')
  const adminUrl = admin ?? (await freshDatabaseUrl(t))
  // Teardowns run last-in first-out: the role is dropped after its database.
  t.teardown(() => asAdmin(adminUrl, (c) => c.query(`DROP ROLE IF EXISTS ${role}`)))
  const databaseUrl = await freshDatabaseUrl(t)
  await asAdmin(databaseUrl, async (c) => {
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
    // PostgreSQL 15+ already keeps CREATE on schema public from non-owners; older servers do not.
    await c.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`)
  })
  const limited = new URL(databaseUrl)
  limited.username = role
  limited.password = password

  const gw = await startTestGateway(t, { databaseUrl: limited.toString(), upstreamUrl: (await recordingUpstream(t)).url })
  const scraped = await scrape(gw)
  t.equal(scraped.get('authgw_db_errors_total{operation="migrate"}'), 1, 'the failed startup migration is counted')
  const failure = gw.logs.records().find((r) => r.event === 'migration_failed')
  t.equal(failure?.level, 50, 'logged at error level')
  t.match(failure, { err: { code: '42501', message: /permission denied/ } })
  t.notMatch(JSON.stringify(gw.logs.records()), new RegExp(password), 'the role password is not logged')

  const notReady = await fetch(`${gw.url}/readyz`)
  t.equal(notReady.status, 503)
  t.match(await notReady.json(), { status: 'not_ready', checks: { migrations: 'failed' } })

  // The fix an operator would make; the retry picks it up without a restart.
  await asAdmin(databaseUrl, (c) => c.query(`GRANT CREATE ON SCHEMA public TO ${role}`))
  await eventually(async () => ((await fetch(`${gw.url}/readyz`)).status === 200 ? true : undefined), { limitMs: 30_000, what: 'ready after the grant' })
  t.pass('ready once the role may create tables')
  t.ok(gw.logs.records().some((r) => r.event === 'migration_recovered'), 'recovery logged')
})
