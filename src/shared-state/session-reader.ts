// The gateway's own session read in Redis mode: the copy better-auth keeps in
// secondary storage (`<prefix><token>` → {session, user}), honouring its
// "revoked before" marker. Anything but a usable copy (missing, unparsable,
// Redis down or slow) answers undefined and the caller reads PostgreSQL, the
// source of truth.
import type { Redis } from 'ioredis'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { timed } from './redis.ts'
import { RedisCommand, RedisOperation } from './vocabulary.ts'

/** The columns the session lookup reads from PostgreSQL, from the Redis copy. */
export type SharedSessionRow = { sid: string; uid: string; exp: Date; user_id: string | null; email: string | null; name: string | null }

export type SharedSessionReader = (token: string) => Promise<SharedSessionRow | undefined>

type Stored = {
  session?: { id?: unknown; userId?: unknown; expiresAt?: unknown; createdAt?: unknown }
  user?: { id?: unknown; email?: unknown; name?: unknown }
}

export function redisSessionReader(redis: Redis, opts: { keyPrefix: string; metrics: SharedStateMetrics; isPending?: (key: string) => boolean }): SharedSessionReader {
  const { keyPrefix, metrics } = opts
  return async (token) => {
    if (redis.status !== 'ready' || opts.isPending?.(token) === true) return undefined
    try {
      const raw = await timed(metrics, RedisCommand.get, () => redis.get(keyPrefix + token))
      if (raw === null) return undefined
      const stored = JSON.parse(raw) as Stored
      const s = stored.session
      const u = stored.user
      if (typeof s?.id !== 'string' || typeof s.userId !== 'string' || typeof u?.id !== 'string') return undefined
      const exp = new Date(s.expiresAt as string)
      const created = new Date(s.createdAt as string).getTime()
      if (Number.isNaN(exp.getTime()) || Number.isNaN(created)) return undefined
      // better-auth's "revoke all sessions" marker: sessions created before it are gone.
      const before = await timed(metrics, RedisCommand.get, () => redis.get(`${keyPrefix}revoked-sessions-before-${s.userId as string}`))
      if (before !== null && created < Number(before)) return undefined
      return { sid: s.id, uid: s.userId, exp, user_id: u.id, email: typeof u.email === 'string' ? u.email : null, name: typeof u.name === 'string' ? u.name : null }
    } catch {
      metrics.redisError(RedisOperation.session_lookup)
      return undefined
    }
  }
}
