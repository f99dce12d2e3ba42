// The in-memory JWKS: refreshes by outcome, keys held, last good refresh.
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { JwksRefreshOutcome, valuesOf } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'

export function jwksMetrics(registry: Registry) {
  const jwksRefreshes = new Counter({
    name: MetricName.jwksRefreshes,
    help: 'JWKS refreshes, by outcome (suppressed = skipped by the unknown-kid cooldown).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  const jwksKeys = new Gauge({
    name: MetricName.jwksKeys,
    help: 'Keys in the in-memory JWKS.',
    registers: [registry],
  })
  const jwksLastRefresh = new Gauge({
    name: MetricName.jwksLastRefresh,
    help: 'Unix time of the last successful JWKS refresh.',
    registers: [registry],
  })

  for (const outcome of valuesOf(JwksRefreshOutcome)) jwksRefreshes.inc({ outcome }, 0)
  jwksKeys.set(0)
  jwksLastRefresh.set(0)

  return {
    jwksRefresh(outcome: JwksRefreshOutcome, keys?: number) {
      jwksRefreshes.inc({ outcome })
      if (outcome === JwksRefreshOutcome.success) {
        jwksLastRefresh.set(Date.now() / 1000)
        if (keys !== undefined) jwksKeys.set(keys)
      }
    },
  }
}
