// Requests answered by the gateway: one histogram, by route template and status.
import { Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import { MetricName } from '../metric-names.ts'
import { REQUEST_BUCKETS, exemplarLabels } from './shared.ts'
import type { Exemplar } from './shared.ts'

/** Shortest time between two exemplars of one fast, non-5xx request series. */
export const EXEMPLAR_INTERVAL_MS = 1000

export function httpMetrics(registry: Registry) {
  const httpRequestDuration = new Histogram({
    name: MetricName.httpRequestDuration,
    help: 'Duration of requests answered by the gateway, by route template and status.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
    enableExemplars: true,
  })

  // A scrape shows one exemplar per bucket, the latest: replacing it on every
  // request of a busy series is wasted work (~4 µs per traced request in the
  // benchmark). A series gets a new exemplar at most once per
  // EXEMPLAR_INTERVAL_MS, except slow (≥ 100 ms) and 5xx requests, which
  // always leave theirs: those are the traces someone clicks through to.
  const lastExemplar = new Map<string, number>()
  const requestExemplar = (method: string, route: string, statusCode: number, seconds: number, e: Exemplar): Exemplar => {
    if (e === undefined || seconds >= 0.1 || statusCode >= 500) return e
    const key = `${method} ${route} ${statusCode}`
    const now = Date.now()
    const last = lastExemplar.get(key)
    if (last !== undefined && now - last < EXEMPLAR_INTERVAL_MS) return undefined
    lastExemplar.set(key, now)
    return e
  }

  return {
    observeRequest(method: string, route: string, statusCode: number, seconds: number, e: Exemplar) {
      httpRequestDuration.observe({
        labels: { method, route, status_code: statusCode },
        value: seconds,
        exemplarLabels: exemplarLabels(requestExemplar(method, route, statusCode, seconds, e)),
      })
    },
  }
}
