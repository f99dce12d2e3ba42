// What the per-concern metric factories share.

/** A trace to attach to an observation, or none. */
export type Exemplar = { trace_id: string } | undefined

// Around a 250 ms latency SLO; non-integer bounds so `le` renders the same on
// Prometheus 2 and 3 (3 prints "1" as "1.0").
export const REQUEST_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5, 5]

/** prom-client types exemplar labels as the metric's own label names; they are free-form. */
export const exemplarLabels = (e: Exemplar) => e as never
