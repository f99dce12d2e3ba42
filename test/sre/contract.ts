// The metric contract as the gateway exposes it: a registry built by
// src/telemetry/metrics.ts, so names, types and zero-initialised label values
// come from the code, not from a copy.
import { createMetrics, createRegistry, MetricName } from '../../src/telemetry/metrics.ts'
import { sharedStateMetrics } from '../../src/telemetry/metrics/shared-state.ts'

export type ContractMetric = { name: string; type: string; exemplars: boolean }

export type Contract = {
  metrics: ContractMetric[]
  /** Every series name a query may select: counters and gauges as is, histograms with _bucket/_sum/_count. */
  seriesNames: Set<string>
  /** Names from MetricName (the gateway's own metrics, not the default process ones). */
  ownNames: Set<string>
  /** metric → label → values present from the first scrape (closed vocabularies). */
  labelValues: Map<string, Map<string, Set<string>>>
  /** Bucket bounds of each histogram, as `le` strings. */
  buckets: Map<string, Set<string>>
}

/** Series Prometheus adds to every target. */
export const SCRAPE_SERIES = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_series_added']

export async function loadContract(): Promise<Contract> {
  const registry = createRegistry()
  const m = createMetrics(registry, {
    config: { issuer: 'i', audience: 'a', jwks_url: 'j', cookie_prefix: 'p', secret_fingerprint: 'f' },
    version: '0.0.0',
  })
  // One observation per histogram so the bucket bounds show up.
  m.observeRequest('GET', '/healthz', 200, 0.001, undefined)
  m.observeUpstream(200, 0.001)
  // The shared-state metrics (docs/replicas.md) live on the same registry in a running gateway.
  const shared = sharedStateMetrics(registry, 'none')
  shared.redisCommand('get', 0.001)
  shared.invalidationLag(0.001)

  const metrics: ContractMetric[] = registry.getMetricsAsArray().map((x) => {
    const raw = x as unknown as { name: string; type: string; enableExemplars?: boolean }
    return { name: raw.name, type: String(raw.type), exemplars: raw.enableExemplars === true }
  })
  const seriesNames = new Set<string>(SCRAPE_SERIES)
  for (const x of metrics) {
    if (x.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) seriesNames.add(x.name + s)
    else if (x.type === 'summary') for (const s of ['', '_sum', '_count']) seriesNames.add(x.name + s)
    else seriesNames.add(x.name)
  }

  const labelValues = new Map<string, Map<string, Set<string>>>()
  const buckets = new Map<string, Set<string>>()
  const ownNames = new Set<string>(Object.values(MetricName))
  for (const metric of await registry.getMetricsAsJSON()) {
    if (!ownNames.has(metric.name)) continue
    const byLabel = new Map<string, Set<string>>()
    for (const v of metric.values as Array<{ labels: Record<string, string | number>; metricName?: string }>) {
      for (const [label, value] of Object.entries(v.labels)) {
        if (label === 'le') {
          const set = buckets.get(metric.name) ?? new Set<string>()
          set.add(String(value))
          buckets.set(metric.name, set)
          continue
        }
        const set = byLabel.get(label) ?? new Set<string>()
        set.add(String(value))
        byLabel.set(label, set)
      }
    }
    labelValues.set(metric.name, byLabel)
  }
  // Labels whose values come from traffic, not from a closed set.
  for (const [name, byLabel] of labelValues) {
    for (const open of ['method', 'route', 'status_code', 'version', 'node_version', 'issuer', 'audience', 'jwks_url', 'cookie_prefix', 'secret_fingerprint']) {
      byLabel.delete(open)
    }
    if (name === MetricName.rateLimited) byLabel.clear()
  }
  return { metrics, seriesNames, ownNames, labelValues, buckets }
}

/**
 * The contract metric behind a series name: itself, or the metric a recording
 * rule `level:metric:operations` aggregates (`_total` restored).
 */
export function contractMetricOf(series: string, contract: Contract): string | undefined {
  const histogram = series.replace(/_(bucket|sum|count)$/, '')
  for (const candidate of [series, histogram]) if (contract.labelValues.has(candidate)) return candidate
  const parts = series.split(':')
  if (parts.length === 3 && parts[1]) {
    for (const candidate of [parts[1], `${parts[1]}_total`, parts[1].replace(/_(bucket|sum|count)$/, '')]) {
      if (contract.labelValues.has(candidate)) return candidate
    }
  }
  return undefined
}
