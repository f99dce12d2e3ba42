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
  }
}

export type Metrics = ReturnType<typeof createMetrics>

const OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE
const PROMETHEUS = Registry.PROMETHEUS_CONTENT_TYPE
let renderQueue: Promise<unknown> = Promise.resolve()

/** prom-client accepts exemplars only on metrics created in an OpenMetrics registry. */
export function createRegistry(): Registry {
  return new (Registry as unknown as new (contentType: string) => Registry)(OPENMETRICS)
}

/**
 * Render in the format the scraper asked for: OpenMetrics (with exemplars)
 * when its Accept header names it, classic text otherwise. prom-client ties
 * the format to the registry and strips `_total` from counter names in place
 * when rendering OpenMetrics, so render under a lock and restore the names.
 */
export function renderMetrics(registry: Registry, accept: string | undefined): Promise<{ body: string; contentType: string }> {
  const contentType = typeof accept === 'string' && accept.includes('application/openmetrics-text') ? OPENMETRICS : PROMETHEUS
  const run = async () => {
    const metrics = registry.getMetricsAsArray() as unknown as Array<{ name: string }>
    const names = metrics.map((m) => m.name)
    setContentType(registry, contentType)
    try {
      return { body: await registry.metrics(), contentType }
    } finally {
      setContentType(registry, OPENMETRICS)
      metrics.forEach((m, i) => {
        m.name = names[i] as string
      })
    }
  }
  const result = renderQueue.then(run, run)
  renderQueue = result.catch(() => undefined)
  return result
}

// The typings pin a registry to the content type it was declared with.
function setContentType(registry: Registry, contentType: string): void {
  ;(registry as unknown as { setContentType(c: string): void }).setContentType(contentType)
}
