// One pg.Pool for better-auth and the gateway's own session lookups.
import pg from 'pg'
import type { Pool } from 'pg'
import { AuthgwError } from '../errors.ts'

export type PoolOptions = { max: number; idleTimeoutMs: number; connectTimeoutMs: number; statementTimeoutMs: number }

/** What a pooled connection's error says, without anything secret (no URL, no query parameters). */
export type PoolErrorInfo = { code?: string; type: string; message: string }

export function createPool(databaseUrl: string, opts: PoolOptions, onError?: (info: PoolErrorInfo) => void): Pool {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: opts.max,
    idleTimeoutMillis: opts.idleTimeoutMs,
    // Bounds the wait for a pooled connection too: pool exhaustion queues
    // briefly, then fails (→ 503), never hangs.
    connectionTimeoutMillis: opts.connectTimeoutMs,
    statement_timeout: opts.statementTimeoutMs,
    // statement_timeout is enforced by the server; a server that stopped
    // answering (partition, frozen host) needs a client-side bound too.
    query_timeout: opts.statementTimeoutMs + 1000,
    keepAlive: true,
    application_name: 'authgw',
  })
  // An idle client losing its server (restart, failover, a terminated
  // backend) emits 'error' on the pool; without a listener that would crash
  // the process. The pool drops that client and opens a new one when needed.
  pool.on('error', (err: Error & { code?: string }) => {
    onError?.({ code: err.code, type: err.name, message: err.message })
  })
  return pool
}

/** host:port/database of a URL, never the password. */
export function describeDatabase(databaseUrl: string): string {
  try {
    const u = new URL(databaseUrl)
    return `${u.hostname || 'localhost'}:${u.port || '5432'}/${decodeURIComponent(u.pathname.slice(1)) || '(default)'}`
  } catch {
    return '(unparseable DATABASE_URL)'
  }
}

export class DatabaseUnreachableError extends AuthgwError {
  constructor(target: string, cause: unknown) {
    const why = cause instanceof Error ? ((cause as Error & { code?: string }).code ?? cause.name) : 'unknown error'
    super('AUTHGW_ERR_DB_UNREACHABLE', `cannot reach PostgreSQL at ${target} (${why})`, { cause })
  }
}

/** `SELECT 1` bounded by `timeoutMs`: rejects when the database does not answer in time. */
export async function pingDatabase(pool: Pool, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('database ping timed out')), timeoutMs)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export async function checkConnectivity(pool: Pool, databaseUrl: string): Promise<void> {
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    throw new DatabaseUnreachableError(describeDatabase(databaseUrl), err)
  }
}

// Arbitrary but fixed: every replica must take the same lock.
const MIGRATION_LOCK_ID = 0x617574686777 // "authgw"

/** Run `fn` while holding a PostgreSQL advisory lock, so replicas migrate one at a time. */
export async function withMigrationLock<T>(pool: Pool, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID])
    try {
      return await fn()
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID])
    }
  } finally {
    client.release()
  }
}
