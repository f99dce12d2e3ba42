// The gateway's in-process caches: session lookups and verify-once JWTs, by hit or miss.
import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import { MetricName } from '../metric-names.ts'

export function cacheMetrics(registry: Registry) {
  const sessionCache = new Counter({
    name: MetricName.sessionCache,
    help: 'Gateway session-cache lookups, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  })
  const jwtCache = new Counter({
    name: MetricName.jwtCache,
    help: 'Verify-once JWT cache lookups, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  })

  for (const result of ['hit', 'miss']) {
    sessionCache.inc({ result }, 0)
    jwtCache.inc({ result }, 0)
  }

  return {
    sessionCacheLookup(hit: boolean) {
      sessionCache.inc({ result: hit ? 'hit' : 'miss' })
    },
    jwtCacheLookup(hit: boolean) {
      jwtCache.inc({ result: hit ? 'hit' : 'miss' })
    },
  }
}
