// Which truth replicas share, decided once from the config:
//   redis    — REDIS_URL: better-auth secondary storage (sessions stay in
//              PostgreSQL too), the rate limit on Redis, invalidation over
//              Redis pub/sub, the gateway's session reads from Redis first;
//   postgres — invalidation over LISTEN/NOTIFY (DATABASE_LISTEN=on);
//   none     — neither: other replicas learn of a sign-out within their cache TTL.
// docs/replicas.md describes each mode and what each fault does.
import type { SecondaryStorage } from 'better-auth'
import type { BetterAuthRateLimitStorage } from 'better-auth'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Config } from '../config/load.ts'
import { sharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { InvalidationBus, PostgresTransport, RedisTransport } from './bus.ts'
import { createRedisConnection, describeRedis } from './redis.ts'
import { sharedRateLimitStorage } from './rate-limit.ts'
import { resilientRedisStorage } from './secondary-storage.ts'
import type { ResilientStorage } from './secondary-storage.ts'
import { redisSessionReader } from './session-reader.ts'
import type { SharedSessionReader } from './session-reader.ts'
import { CoherenceMode, RateLimitStorage } from './vocabulary.ts'

/** What better-auth is given: secondary storage and where rate-limit counters live. */
export type SharedAuthOptions = {
  secondaryStorage?: SecondaryStorage
  rateLimit: { storage?: 'memory' | 'database'; customStorage?: BetterAuthRateLimitStorage }
}

export type SharedState = {
  mode: CoherenceMode
  metrics: SharedStateMetrics
  auth: SharedAuthOptions
  /** Redis mode: the gateway's session read tries Redis before PostgreSQL. */
  sessionReader?: SharedSessionReader
  storage?: ResilientStorage
  bus?: InvalidationBus
  /** For the startup log: never a password. */
  describe(): Record<string, unknown>
  close(): Promise<void>
}

export type SharedStateConfig = Pick<Config, 'redisUrl' | 'redisKeyPrefix' | 'databaseListen' | 'rateLimitStorage'> & { databaseUrl: string }

export function coherenceModeOf(config: Pick<Config, 'redisUrl' | 'databaseListen'>): CoherenceMode {
  if (config.redisUrl !== undefined) return CoherenceMode.redis
  return config.databaseListen ? CoherenceMode.postgres : CoherenceMode.none
}

export function createSharedState(config: SharedStateConfig, deps: { pool: Pool; log: Logger; registry: Registry }): SharedState {
  const mode = coherenceModeOf(config)
  const metrics = sharedStateMetrics(deps.registry, mode)
  const log = deps.log.child({ component: 'shared-state' })
  const dbRateLimit = config.rateLimitStorage === RateLimitStorage.database ? ('database' as const) : ('memory' as const)

  if (config.redisUrl === undefined) {
    const bus = mode === CoherenceMode.postgres ? new InvalidationBus(new PostgresTransport(config.databaseUrl, deps.pool, log), { metrics, log }) : undefined
    return {
      mode,
      metrics,
      auth: { rateLimit: { storage: dbRateLimit } },
      bus,
      describe: () => ({ coherence_mode: mode, invalidation: bus ? 'postgres_listen_notify' : 'cache_ttl', rate_limit_storage: config.rateLimitStorage }),
      close: async () => {
        await bus?.close()
      },
    }
  }

  const redisUrl = config.redisUrl
  const prefix = config.redisKeyPrefix
  const commands = createRedisConnection(redisUrl, { metrics, log, role: 'commands' })
  const subscriber = createRedisConnection(redisUrl, { metrics, log, role: 'subscriber' })
  const storage = resilientRedisStorage(commands, { keyPrefix: prefix, metrics, log })
  const bus = new InvalidationBus(new RedisTransport(commands, subscriber, `${prefix}invalidation`, metrics), { metrics, log })
  const rateLimit: SharedAuthOptions['rateLimit'] =
    config.rateLimitStorage === RateLimitStorage.redis
      ? { customStorage: sharedRateLimitStorage(async (key, ttl) => storage.increment(key, ttl), metrics) }
      : { storage: dbRateLimit }
  return {
    mode,
    metrics,
    auth: { secondaryStorage: storage, rateLimit },
    sessionReader: redisSessionReader(commands, { keyPrefix: prefix, metrics }),
    storage,
    bus,
    describe: () => ({ coherence_mode: mode, redis: describeRedis(redisUrl), redis_key_prefix: prefix, invalidation: 'redis_pubsub', rate_limit_storage: config.rateLimitStorage }),
    close: async () => {
      await bus.close()
      commands.disconnect()
    },
  }
}
