// The synthetic sign-in probe's own series (docs/adr/0050-sign-in-probe.md). Probe requests move
// nothing else: the user-facing series are muted for them
// (src/telemetry/probe-traffic.ts), so a failing probe can neither raise nor mask a
// user-facing alert or SLO.
import { Counter, Gauge, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import { ProbeOwnReason, ProbeRunOutcome, ProbeStep, valuesOf } from '../../reasons.ts'
import type { ProbeFailureReason } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'

// Steps are single round trips through the load balancer; timeouts end at PROBE_STEP_TIMEOUT_MS.
const STEP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5, 5, 15]

export function probeMetrics(registry: Registry) {
  const runs = new Counter({
    name: MetricName.probeRuns,
    help: 'Runs of the synthetic sign-in probe on this replica, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [registry],
  })
  const lastSuccess = new Gauge({
    name: MetricName.probeLastSuccess,
    help: 'Unix time of the last probe run on this replica that passed every step (0: none yet).',
    registers: [registry],
  })
  const stepDuration = new Histogram({
    name: MetricName.probeStepDuration,
    help: 'Duration of each probe step, by step (failed steps included).',
    labelNames: ['step'] as const,
    buckets: STEP_BUCKETS,
    registers: [registry],
  })
  const failures = new Counter({
    name: MetricName.probeFailures,
    help: 'Failed probe runs, by the step that failed and the reason: the closed reason the gateway answered, or timeout, connect_error, jwks_verify_failed, unexpected_answer, not_revoked.',
    labelNames: ['step', 'reason'] as const,
    registers: [registry],
  })
  const up = new Gauge({
    name: MetricName.probeUp,
    help: '1 when the last probe run on this replica passed every step, else 0.',
    registers: [registry],
  })

  for (const outcome of valuesOf(ProbeRunOutcome)) runs.inc({ outcome }, 0)
  for (const step of valuesOf(ProbeStep)) {
    stepDuration.zero({ step })
    failures.inc({ step, reason: ProbeOwnReason.timeout }, 0)
    failures.inc({ step, reason: ProbeOwnReason.connect_error }, 0)
  }
  failures.inc({ step: ProbeStep.jwks_verify, reason: ProbeOwnReason.jwks_verify_failed }, 0)
  lastSuccess.set(0)
  up.set(0)

  return {
    stepObserved(step: ProbeStep, seconds: number) {
      stepDuration.observe({ step }, seconds)
    },
    runSucceeded() {
      runs.inc({ outcome: ProbeRunOutcome.success })
      lastSuccess.set(Date.now() / 1000)
      up.set(1)
    },
    runFailed(step: ProbeStep, reason: ProbeFailureReason) {
      runs.inc({ outcome: ProbeRunOutcome.failure })
      failures.inc({ step, reason })
      up.set(0)
    },
  }
}

export type ProbeMetrics = ReturnType<typeof probeMetrics>
