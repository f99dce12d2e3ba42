// /healthz: the process is alive. /readyz: it can serve auth decisions now:
// database reachable, signing keys loaded, not draining, and every check added
// with `app.addReadinessCheck` (migrations applied, the secret can sign).
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Pool } from 'pg'
import type { JwksStore } from '../auth/jwks.ts'
import { pingDatabase } from '../db/pool.ts'

export type HealthOptions = {
  pool: Pool
  jwks: JwksStore
  isDraining: () => boolean
  onDbError: () => void
}

/** A readiness check: `ok`, or a short state saying what is wrong. Cheap or cached: /readyz is unauthenticated. */
export type ReadinessCheck = () => Promise<string>

declare module 'fastify' {
  interface FastifyInstance {
    /** Add a check that /readyz runs and reports under `checks.<name>`. */
    addReadinessCheck(name: string, check: ReadinessCheck): void
  }
}

const READY_DB_TIMEOUT_MS = 1000

// /readyz is reachable without credentials: without this bound, a flood of
// probes would take the pool connections that session lookups need.
const READY_DB_CACHE_MS = 1000

async function healthPlugin(app: FastifyInstance, opts: HealthOptions) {
  app.get('/healthz', async () => ({ status: 'ok' }))

  const extra = new Map<string, ReadinessCheck>()
  app.decorate('addReadinessCheck', (name: string, check: ReadinessCheck) => {
    extra.set(name, check)
  })

  // One ping at a time, its answer reused for READY_DB_CACHE_MS.
  let last: { at: number; result: Promise<'ok' | 'unreachable'> } | undefined
  const database = (): Promise<'ok' | 'unreachable'> => {
    const now = Date.now()
    if (last !== undefined && now - last.at < READY_DB_CACHE_MS) return last.result
    const result = pingDatabase(opts.pool, READY_DB_TIMEOUT_MS).then(
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
    const [db, ...states] = await Promise.all([database(), ...[...extra.values()].map((check) => bounded(check))])
    const checks: Record<string, string> = { database: db, keys: opts.jwks.loaded ? 'ok' : 'not_loaded' }
    ;[...extra.keys()].forEach((name, i) => {
      checks[name] = states[i] as string
    })
    const ready = Object.values(checks).every((state) => state === 'ok')
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks })
  })
}

/** A check's state, `timeout` past READY_DB_TIMEOUT_MS, `error` if it throws. */
async function bounded(check: ReadinessCheck): Promise<string> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      check(),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), READY_DB_TIMEOUT_MS)
      }),
    ])
  } catch {
    return 'error'
  } finally {
    clearTimeout(timer)
  }
}

export const health = fp(healthPlugin, { name: 'authgw-health', fastify: '5.x' })
