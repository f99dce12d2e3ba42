// The protected upstream: call duration until response headers, failures
// without a usable response, requests sent a second time.
import { Counter, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import { UpstreamFailureReason, UpstreamRetryReason, valuesOf } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'
import { REQUEST_BUCKETS, exemplarLabels } from './shared.ts'
import type { Exemplar } from './shared.ts'

export function upstreamMetrics(registry: Registry) {
  const upstreamRequestDuration = new Histogram({
    name: MetricName.upstreamRequestDuration,
    help: 'Duration of proxied upstream calls until response headers, by upstream status.',
    labelNames: ['status_code'] as const,
    buckets: REQUEST_BUCKETS,
    registers: [registry],
  })
  const upstreamFailures = new Counter({
    name: MetricName.upstreamFailures,
    help: 'Upstream calls that failed without a usable response, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const upstreamRetries = new Counter({
    name: MetricName.upstreamRetries,
    help: 'Upstream requests sent a second time, by reason (only idempotent requests whose kept-alive connection was reset before any response byte).',
    labelNames: ['reason'] as const,
    registers: [registry],
  })

  for (const reason of valuesOf(UpstreamFailureReason)) upstreamFailures.inc({ labels: { reason }, value: 0 })
  for (const reason of valuesOf(UpstreamRetryReason)) upstreamRetries.inc({ reason }, 0)

  return {
    observeUpstream(statusCode: number, seconds: number) {
      upstreamRequestDuration.observe({ status_code: statusCode }, seconds)
    },
    upstreamFailure(reason: UpstreamFailureReason, e: Exemplar) {
      upstreamFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
    upstreamRetry(reason: UpstreamRetryReason) {
      upstreamRetries.inc({ reason })
    },
  }
}
