// better-auth's rate limit on Redis, shared by every replica (one INCR with a
// TTL per window, the same step @better-auth/redis-storage takes), with the
// failure policy of docs/adr/0030-rate-limit-store-failure.md: when Redis
// cannot answer, credential routes are limited on this replica alone and
// every other route is allowed; both are counted.
import type { BetterAuthRateLimitStorage } from 'better-auth'
import { LRUCache } from 'lru-cache'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { RateLimitStorePolicy, RedisOperation } from './vocabulary.ts'

/** better-auth's own "special rules" paths: the ones a password guesser uses. */
const CREDENTIAL_PATHS = ['/sign-in', '/sign-up', '/change-password', '/change-email', '/request-password-reset', '/forget-password', '/reset-password', '/send-verification-email']

/** Whether a rate-limit key (`ip|path`) belongs to a credential route. */
export function isCredentialKey(key: string): boolean {
  const path = key.slice(key.lastIndexOf('|') + 1)
  return CREDENTIAL_PATHS.some((p) => path === p || path.startsWith(`${p}/`))
}

type Window = { count: number; startedAt: number }

export function sharedRateLimitStorage(increment: (key: string, ttlSeconds: number) => Promise<number>, metrics: SharedStateMetrics): BetterAuthRateLimitStorage {
  const local = new LRUCache<string, Window>({ max: 100_000, ttlAutopurge: false, ttl: 3_600_000 })
  const consumeLocally = (key: string, rule: { window: number; max: number }) => {
    const now = Date.now()
    const w = local.get(key)
    if (w === undefined || now - w.startedAt >= rule.window * 1000) {
      local.set(key, { count: 1, startedAt: now }, { ttl: rule.window * 1000 })
      return { allowed: true, retryAfter: null }
    }
    if (w.count >= rule.max) return { allowed: false, retryAfter: Math.max(1, Math.ceil((w.startedAt + rule.window * 1000 - now) / 1000)) }
    w.count++
    return { allowed: true, retryAfter: null }
  }
  return {
    async consume(key, rule) {
      try {
        const count = await increment(key, rule.window)
        return count <= rule.max ? { allowed: true, retryAfter: null } : { allowed: false, retryAfter: rule.window }
      } catch {
        metrics.redisError(RedisOperation.rate_limit)
        if (isCredentialKey(key)) {
          metrics.rateLimitStoreFailure(RateLimitStorePolicy.local_limit)
          return consumeLocally(key, rule)
        }
        metrics.rateLimitStoreFailure(RateLimitStorePolicy.open)
        return { allowed: true, retryAfter: null }
      }
    },
  }
}
