// /healthz: the process is alive. /readyz: it can serve auth decisions now:
// database reachable, migrations applied, signing keys loaded, not draining.
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import type { JwksStore } from '../auth/jwks.ts'

export type HealthOptions = {
  pool: Pool
  jwks: JwksStore
  isDraining: () => boolean
  onDbError: () => void
  /** Set once startup migrations succeeded. */
  migrated?: () => boolean
}

const READY_DB_TIMEOUT_MS = 1000

// /readyz is reachable without credentials: without this bound, a flood of
// probes would take the pool connections that session lookups need.
const READY_DB_CACHE_MS = 1000

async function healthPlugin(app: FastifyInstance, opts: HealthOptions) {
  app.get('/healthz', async () => ({ status: 'ok' }))

  // One ping at a time, its answer reused for READY_DB_CACHE_MS.
  let last: { at: number; result: Promise<'ok' | 'unreachable'> } | undefined
  const database = (): Promise<'ok' | 'unreachable'> => {
    const now = Date.now()
    if (last !== undefined && now - last.at < READY_DB_CACHE_MS) return last.result
    const result = pingDatabase(opts.pool).then(
      () => 'ok' as const,
      () => {
        opts.onDbError()
        return 'unreachable' as const
      },
    )
    last = { at: now, result }
    return result
  }

  app.get('/readyz', async (_request, reply) => {
    if (opts.isDraining()) return reply.code(503).send({ status: 'draining', checks: {} })
    const db = await database()
    const keys = opts.jwks.loaded ? 'ok' : 'not_loaded'
    const migrations = opts.migrated === undefined || opts.migrated() ? 'ok' : 'pending'
    const ready = db === 'ok' && keys === 'ok' && migrations === 'ok'
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: { database: db, migrations, keys } })
  })
}

async function pingDatabase(pool: Pool): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      pool.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), READY_DB_TIMEOUT_MS)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

export const health = fp(healthPlugin, { name: 'authgw-health', fastify: '5.x' })
