// better-auth migrations at startup, under an advisory lock (better-auth's
// migrator takes no lock and runs statements one by one).
import { getMigrations } from 'better-auth/db/migration'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Auth } from '../auth/better-auth.ts'
import { withMigrationLock } from './pool.ts'

export type MigrationState = { pendingTables: string[]; pendingColumns: string[] }

export async function migrationState(auth: Auth): Promise<MigrationState> {
  const { toBeCreated, toBeAdded } = await getMigrations(auth.options)
  return {
    pendingTables: toBeCreated.map((t) => t.table),
    pendingColumns: toBeAdded.flatMap((t) => Object.keys(t.fields).map((f) => `${t.table}.${f}`)),
  }
}

export async function runMigrations(auth: Auth, pool: Pool, log: Logger): Promise<void> {
  await withMigrationLock(pool, async () => {
    const { toBeCreated, toBeAdded, runMigrations } = await getMigrations(auth.options)
    if (toBeCreated.length === 0 && toBeAdded.length === 0) return
    log.info({ tables: toBeCreated.map((t) => t.table), alter: toBeAdded.map((t) => t.table) }, 'applying better-auth migrations')
    await runMigrations()
  })
}
