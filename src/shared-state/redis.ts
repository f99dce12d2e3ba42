// The Redis connections of one replica: commands fail fast instead of queueing
// while Redis is away (every caller has a PostgreSQL or TTL fallback), a
// command that takes too long counts as failed (a slow Redis must not slow
// requests down), and the connection retries forever with a capped backoff.
import { Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import type { Logger } from 'pino'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { RedisOperation } from './vocabulary.ts'
import type { RedisCommand } from './vocabulary.ts'

/** A command slower than this fails and its caller falls back. */
export const REDIS_COMMAND_TIMEOUT_MS = 500
const CONNECT_TIMEOUT_MS = 2_000
const RETRY_MAX_MS = 1_000

/** host:port/db of a Redis URL, never the password. */
export function describeRedis(redisUrl: string): string {
  try {
    const u = new URL(redisUrl)
    return `${u.protocol === 'rediss:' ? 'rediss' : 'redis'}://${u.hostname}:${u.port || '6379'}/${u.pathname.slice(1) || '0'}`
  } catch {
    return '(unparseable REDIS_URL)'
  }
}

export type RedisConnectionOptions = { metrics: SharedStateMetrics; log: Logger; role: 'commands' | 'subscriber' }

export function createRedisConnection(redisUrl: string, opts: RedisConnectionOptions): Redis {
  const options: RedisOptions = {
    // rediss:// turns TLS on (ioredis reads it from the URL).
    connectTimeout: CONNECT_TIMEOUT_MS,
    // A subscriber waits as long as it takes; it has no caller waiting.
    commandTimeout: opts.role === 'commands' ? REDIS_COMMAND_TIMEOUT_MS : undefined,
    enableOfflineQueue: opts.role === 'subscriber',
    maxRetriesPerRequest: opts.role === 'commands' ? 0 : null,
    retryStrategy: (attempt) => Math.min(attempt * 100, RETRY_MAX_MS),
    lazyConnect: false,
    connectionName: `authgw-${opts.role}`,
  }
  const redis = new Redis(redisUrl, options)
  let wasReady = false
  redis.on('ready', () => {
    if (opts.role === 'commands') opts.metrics.redisUp(true)
    if (wasReady) opts.log.info({ event: 'redis_reconnected', role: opts.role }, 'Redis connection restored')
    wasReady = true
  })
  redis.on('close', () => {
    if (opts.role === 'commands') opts.metrics.redisUp(false)
  })
  // Without a listener ioredis would print every failed attempt to the console.
  let lastLogged = 0
  redis.on('error', (err: Error & { code?: string }) => {
    opts.metrics.redisError(RedisOperation.connection)
    const now = Date.now()
    if (now - lastLogged < 10_000) return
    lastLogged = now
    // err.message names host and port, never the password.
    opts.log.warn({ event: 'redis_error', role: opts.role, err: { type: err.name, code: err.code, message: err.message } }, 'Redis connection failed')
  })
  return redis
}

/** Run one Redis command, timing it; failures are timed too and rethrown. */
export async function timed<T>(metrics: SharedStateMetrics, command: RedisCommand, fn: () => Promise<T>): Promise<T> {
  const started = performance.now()
  try {
    return await fn()
  } finally {
    metrics.redisCommand(command, (performance.now() - started) / 1000)
  }
}
