// Metrics of the state replicas share (docs/replicas.md): Redis health, the
// invalidation bus and the coherence mode. Created by shared-state/coherence.ts
// before better-auth exists (its secondary storage records into them).
import { Counter, Gauge, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import { CoherenceMode, InvalidationKind, InvalidationOrigin, RateLimitStorePolicy, RedisCommand, RedisOperation, valuesOf } from '../../shared-state/vocabulary.ts'
import { MetricName } from '../metric-names.ts'

// Redis answers in well under a millisecond on a healthy network; the top
// buckets catch a slow Redis before commands time out. Non-integer bounds (see metrics.ts).
const REDIS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5]
// The target (docs/replicas.md) is < 1 s; buckets around it.
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.5, 5]

export function sharedStateMetrics(registry: Registry, mode: CoherenceMode) {
  const redisUp = new Gauge({
    name: MetricName.redisUp,
    help: 'Whether the Redis connection is ready (1) or not (0); 0 in every mode but redis.',
    registers: [registry],
  })
  const redisCommandDuration = new Histogram({
    name: MetricName.redisCommandDuration,
    help: 'Duration of Redis commands the gateway sent, by command (failed ones included).',
    labelNames: ['command'] as const,
    buckets: REDIS_BUCKETS,
    registers: [registry],
  })
  const redisErrors = new Counter({
    name: MetricName.redisErrors,
    help: 'Redis commands or connections that failed, by operation; the request fell back to PostgreSQL or the short cache TTL.',
    labelNames: ['operation'] as const,
    registers: [registry],
  })
  const cacheInvalidations = new Counter({
    name: MetricName.cacheInvalidations,
    help: 'Cache invalidations applied on this replica, by kind and origin (local: this replica ended it; remote: announced by another).',
    labelNames: ['kind', 'origin'] as const,
    registers: [registry],
  })
  const invalidationLag = new Histogram({
    name: MetricName.invalidationLag,
    help: "Time from an invalidation's publication on one replica to its application on this one (from the event's timestamp).",
    buckets: LAG_BUCKETS,
    registers: [registry],
  })
  const coherenceModeInfo = new Gauge({
    name: MetricName.coherenceModeInfo,
    help: 'How this replica keeps its caches coherent with the others (1 for the running mode).',
    labelNames: ['mode'] as const,
    registers: [registry],
  })
  const invalidationBusUp = new Gauge({
    name: MetricName.invalidationBusUp,
    help: 'Whether the invalidation bus (Redis pub/sub or PostgreSQL LISTEN) is connected (1) or not (0).',
    registers: [registry],
  })
  const rateLimitStoreFailures = new Counter({
    name: MetricName.rateLimitStoreFailures,
    help: 'Rate-limit decisions made without the shared store (it failed), by the policy applied (docs/adr/0030-rate-limit-store-failure.md).',
    labelNames: ['policy'] as const,
    registers: [registry],
  })

  for (const m of valuesOf(CoherenceMode)) coherenceModeInfo.set({ mode: m }, m === mode ? 1 : 0)
  for (const operation of valuesOf(RedisOperation)) redisErrors.inc({ operation }, 0)
  for (const kind of valuesOf(InvalidationKind)) {
    for (const origin of valuesOf(InvalidationOrigin)) cacheInvalidations.inc({ kind, origin }, 0)
  }
  for (const policy of valuesOf(RateLimitStorePolicy)) rateLimitStoreFailures.inc({ policy }, 0)
  redisUp.set(0)
  invalidationBusUp.set(0)

  return {
    redisUp(up: boolean) {
      redisUp.set(up ? 1 : 0)
    },
    redisCommand(command: RedisCommand, seconds: number) {
      redisCommandDuration.observe({ command }, seconds)
    },
    redisError(operation: RedisOperation) {
      redisErrors.inc({ operation })
    },
    invalidation(kind: InvalidationKind, origin: InvalidationOrigin) {
      cacheInvalidations.inc({ kind, origin })
    },
    invalidationLag(seconds: number) {
      invalidationLag.observe(Math.max(0, seconds))
    },
    busUp(up: boolean) {
      invalidationBusUp.set(up ? 1 : 0)
    },
    rateLimitStoreFailure(policy: RateLimitStorePolicy) {
      rateLimitStoreFailures.inc({ policy })
    },
  }
}

export type SharedStateMetrics = ReturnType<typeof sharedStateMetrics>
