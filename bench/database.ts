// A fresh database for one benchmark run, dropped afterwards: on the server
// named by $DATABASE_URL, else on an embedded PostgreSQL in a temporary folder
// (started pinned to the orchestrator's core, removed afterwards).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { startEmbeddedPostgres } from '../src/db/embedded.ts'

export type BenchDatabase = {
  url: string
  describe: string
  server: string
  /** The server runs pinned with the load generator (embedded); else where the OS puts it. */
  onRigCore: boolean
  drop(): Promise<void>
}

export async function createBenchDatabase(): Promise<BenchDatabase> {
  let admin = process.env.DATABASE_URL
  let stopServer: () => Promise<void> = async () => undefined
  let where: string
  const embedded = !admin
  if (admin) {
    where = `$DATABASE_URL server ${new URL(admin).host} (not pinned by the benchmark)`
  } else {
    const dataDir = await mkdtemp(join(tmpdir(), 'authgw-bench-pg-'))
    const server = await startEmbeddedPostgres({ dataDir })
    admin = server.url
    where = `embedded PostgreSQL on 127.0.0.1:${server.port} (pinned with the load generator)`
    stopServer = async () => {
      await server.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
  const name = `authgw_bench_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${process.pid}`
  let version = ''
  try {
    version = await execute(admin, `CREATE DATABASE ${name}`, 'SHOW server_version')
  } catch (err) {
    await stopServer()
    throw err
  }
  const url = new URL(admin)
  url.pathname = `/${name}`
  let dropped = false
  return {
    url: url.toString(),
    describe: `${name} on ${where}`,
    server: `PostgreSQL ${version}`,
    onRigCore: embedded,
    async drop() {
      if (dropped) return
      dropped = true
      try {
        await execute(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await stopServer()
      }
    },
  }
}

async function execute(url: string, sql: string, query?: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  try {
    await client.query(sql)
    if (query) return String(Object.values((await client.query(query)).rows[0] ?? {})[0] ?? '')
    return ''
  } finally {
    await client.end()
  }
}
