// Series the alerts read that the gateway does not expose yet: the synthetic
// sign-in probe's metrics, whose names and labels issue 15 fixes, ahead of the
// probe itself. The contract tests accept these names only while
// src/telemetry/metrics.ts lacks them (test/sre/contract.test.ts fails once a
// name lands there: then delete it here, and the closed label values below
// are checked against the real zero-initialised series like every other).

export type PendingMetric = {
  type: 'counter' | 'gauge' | 'histogram'
  labels: readonly string[]
}

export const PENDING_METRICS = {
  authgw_probe_runs_total: { type: 'counter', labels: ['outcome'] },
  authgw_probe_last_success_timestamp_seconds: { type: 'gauge', labels: [] },
  authgw_probe_step_duration_seconds: { type: 'histogram', labels: ['step'] },
  authgw_probe_failures_total: { type: 'counter', labels: ['step', 'reason'] },
  authgw_probe_up: { type: 'gauge', labels: [] },
} as const satisfies Record<string, PendingMetric>

/** The probe's steps, in run order (issue 15). */
export const PROBE_STEPS = ['sign_in', 'get_session', 'cookie_call', 'token', 'jwks_verify', 'bearer_call', 'sign_out', 'revoked'] as const

/** Every series name a query may select from the pending metrics (histograms with _bucket/_sum/_count). */
export function pendingSeriesNames(): Set<string> {
  const out = new Set<string>()
  for (const [name, m] of Object.entries(PENDING_METRICS) as Array<[string, PendingMetric]>) {
    if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s)
    else out.add(name)
  }
  return out
}
