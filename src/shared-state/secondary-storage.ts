// better-auth's secondary storage on Redis (@better-auth/redis-storage), made
// safe to lose: sessions are stored in PostgreSQL too
// (session.storeSessionInDatabase), so a read that fails answers "not cached"
// and better-auth reads the database; a write that fails is dropped (the
// database has it, and the older copy is deleted on repair); a delete that fails is remembered and repeated once Redis
// is back, so a stale copy cannot outlive a sign-out there.
import { redisStorage } from '@better-auth/redis-storage'
import type { SecondaryStorage } from 'better-auth'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { timed } from './redis.ts'
import { RedisCommand, RedisOperation } from './vocabulary.ts'

// Bounds the memory a long outage can take; beyond it the oldest deletes are
// dropped (and logged): those sessions' Redis copies then live until their TTL.
const MAX_PENDING_DELETES = 100_000

export type ResilientStorage = SecondaryStorage & {
  /** Keys whose delete failed and is still to be repeated. */
  readonly pendingDeletes: number
  /** Repeat the failed deletes now (also done on every reconnect). */
  repair(): Promise<void>
}

export function resilientRedisStorage(redis: Redis, opts: { keyPrefix: string; metrics: SharedStateMetrics; log: Logger }): ResilientStorage {
  const inner = redisStorage({ client: redis, keyPrefix: opts.keyPrefix })
  const { metrics, log } = opts
  const pending = new Set<string>()
  const ready = () => redis.status === 'ready'
  const failed = (operation: RedisOperation, err: unknown) => {
    metrics.redisError(operation)
    log.debug({ event: 'redis_fallback', operation, err: { message: (err as Error).message } }, 'Redis command failed')
  }
  const remember = (key: string) => {
    pending.add(key)
    if (pending.size > MAX_PENDING_DELETES) {
      const oldest = pending.values().next().value as string
      pending.delete(oldest)
      log.warn({ event: 'redis_repair_dropped' }, 'too many Redis deletes pending; the oldest will expire by TTL instead')
    }
  }
  let repairing: Promise<void> | undefined
  const repair = () => {
    repairing ??= (async () => {
      for (const key of [...pending]) {
        try {
          await timed(metrics, RedisCommand.del, () => Promise.resolve(inner.delete(key)))
          pending.delete(key)
        } catch (err) {
          failed(RedisOperation.storage_write, err)
          return
        }
      }
    })().finally(() => {
      repairing = undefined
    })
    return repairing
  }
  redis.on('ready', () => {
    if (pending.size > 0) {
      const count = pending.size
      void repair().then(() => log.info({ event: 'redis_repaired', deletes: count - pending.size, pending: pending.size }, 'repeated Redis deletes that failed during the outage'))
    }
  })

  return {
    get pendingDeletes() {
      return pending.size
    },
    repair,
    async get(key) {
      // A key deleted during the outage may still be there: not until repaired.
      if (!ready() || pending.has(key)) return null
      try {
        return await timed(metrics, RedisCommand.get, () => Promise.resolve(inner.get(key)))
      } catch (err) {
        failed(RedisOperation.storage_read, err)
        return null
      }
    },
    async getAndDelete(key) {
      if (!ready()) return null
      try {
        return await timed(metrics, RedisCommand.get, () => Promise.resolve(inner.getAndDelete(key)))
      } catch (err) {
        failed(RedisOperation.storage_read, err)
        return null
      }
    },
    // Rate limiting decides what a failure means (rate-limit.ts): rethrown.
    async increment(key, ttl) {
      return timed(metrics, RedisCommand.incr, () => Promise.resolve(inner.increment(key, ttl)))
    },
    async set(key, value, ttl) {
      pending.delete(key)
      // A write that fails leaves an older copy behind: removed on repair, the database has the new one.
      if (!ready()) {
        failed(RedisOperation.storage_write, new Error('Redis not connected'))
        remember(key)
        return
      }
      try {
        await timed(metrics, RedisCommand.set, () => Promise.resolve(inner.set(key, value, ttl)))
      } catch (err) {
        failed(RedisOperation.storage_write, err)
        remember(key)
      }
    },
    async delete(key) {
      if (!ready()) {
        failed(RedisOperation.storage_write, new Error('Redis not connected'))
        remember(key)
        return
      }
      try {
        await timed(metrics, RedisCommand.del, () => Promise.resolve(inner.delete(key)))
        pending.delete(key)
      } catch (err) {
        failed(RedisOperation.storage_write, err)
        remember(key)
      }
    },
  }
}
