// Experiment: the metrics module with every observation on the request path a no-op.
import type { Registry } from 'prom-client'
import { createMetrics as original } from '../../src/telemetry/metrics.ts'

export * from '../../src/telemetry/metrics.ts'

const noop = () => undefined

export function createMetrics(registry: Registry, info: Parameters<typeof original>[1]): ReturnType<typeof original> {
  const m = original(registry, info)
  return { ...m, observeRequest: noop, observeUpstream: noop, decision: noop, jwtCacheLookup: noop, sessionCacheLookup: noop }
}
