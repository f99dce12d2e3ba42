// The only module that creates metrics: one small factory per concern
// (telemetry/metrics/*.ts) on an injected registry, composed into the typed
// surface the rest of the gateway records through. Names live in
// metric-names.ts; add a concern as a new factory file and one line below.
import { Registry } from 'prom-client'
import { registerProcessMetrics } from './metrics/process.ts'
import { httpMetrics } from './metrics/http.ts'
import { authDecisionMetrics } from './metrics/auth-decisions.ts'
import { signInMetrics } from './metrics/sign-in.ts'
import { jwksMetrics } from './metrics/jwks.ts'
import { upstreamMetrics } from './metrics/upstream.ts'
import { databaseMetrics } from './metrics/database.ts'
import type { PoolStats } from './metrics/database.ts'
import { cacheMetrics } from './metrics/caches.ts'
import { infoMetrics } from './metrics/info.ts'
import { cookieMetrics } from './metrics/cookies.ts'
import { probeMetrics } from './metrics/probe.ts'
import type { ConfigInfoLabels } from './metrics/info.ts'

export { MetricName } from './metric-names.ts'
export { EXEMPLAR_INTERVAL_MS } from './metrics/http.ts'
export { unauthorizedCombinations } from './metrics/auth-decisions.ts'
export type { Exemplar } from './metrics/shared.ts'
export type { ConfigInfoLabels } from './metrics/info.ts'
export type { PoolStats } from './metrics/database.ts'

/** Route label for anything that matched no known route template. */
export const OTHER_ROUTE = 'other'

export type MetricsInfo = { config: ConfigInfoLabels; version: string; poolStats?: () => PoolStats }

export function createMetrics(registry: Registry, info: MetricsInfo) {
  registerProcessMetrics(registry)
  infoMetrics(registry, info)
  return {
    registry,
    ...httpMetrics(registry),
    ...authDecisionMetrics(registry),
    ...signInMetrics(registry),
    ...jwksMetrics(registry),
    ...upstreamMetrics(registry),
    ...databaseMetrics(registry, info.poolStats),
    ...cacheMetrics(registry),
    ...cookieMetrics(registry),
    /** The synthetic sign-in probe's own series. */
    probe: probeMetrics(registry),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

/** prom-client accepts exemplars only on metrics created in an OpenMetrics registry. */
export function createRegistry(): Registry {
  return new (Registry as unknown as new (contentType: string) => Registry)(Registry.OPENMETRICS_CONTENT_TYPE)
}
