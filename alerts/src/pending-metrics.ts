// Series the alerts read that the gateway does not expose yet. The contract
// tests accept these names only while src/telemetry/metrics.ts lacks them
// (test/sre/contract.test.ts fails once a name lands there: then delete it
// here, and its closed label values are checked against the real
// zero-initialised series like every other). Empty: the synthetic sign-in
// probe's series (issue 15), the last ones listed here, are exposed by
// src/telemetry/probe-metrics.ts.

export type PendingMetric = {
  type: 'counter' | 'gauge' | 'histogram'
  labels: readonly string[]
}

export const PENDING_METRICS: Record<string, PendingMetric> = {}

/** Every series name a query may select from the pending metrics (histograms with _bucket/_sum/_count). */
export function pendingSeriesNames(): Set<string> {
  const out = new Set<string>()
  for (const [name, m] of Object.entries(PENDING_METRICS)) {
    if (m.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s)
    else out.add(name)
  }
  return out
}
