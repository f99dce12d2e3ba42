// Node.js process metrics from prom-client, prefixed `authgw_`.
import { collectDefaultMetrics } from 'prom-client'
import type { Registry } from 'prom-client'
import { DEFAULT_METRICS_PREFIX } from '../metric-names.ts'

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: DEFAULT_METRICS_PREFIX })
  // These three are gauges with a `_total` suffix, which `promtool check metrics` rejects.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(`${DEFAULT_METRICS_PREFIX}${name}`)
  }
}
