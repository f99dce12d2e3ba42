// /metrics in the format the scraper asked for: OpenMetrics (with exemplars)
// when its Accept header names it, classic text otherwise, from one
// OpenMetrics registry. prom-client 15 ties the format to the registry and,
// rendering OpenMetrics, strips `_total` from counter names in place, so the
// renderer switches the format and restores the names under its own lock.
// Why this and not another way: docs/adr/0011-metrics-render-both-formats.md;
// test/telemetry/metrics-render.test.ts fails when prom-client changes this.
import { Registry } from 'prom-client'

const OPENMETRICS = Registry.OPENMETRICS_CONTENT_TYPE
const PROMETHEUS = Registry.PROMETHEUS_CONTENT_TYPE

export type RenderedMetrics = { body: string; contentType: string }

export type MetricsRenderer = (accept: string | undefined) => Promise<RenderedMetrics>

/** One renderer per registry: renders of that registry never overlap. */
export function createMetricsRenderer(registry: Registry): MetricsRenderer {
  let queue: Promise<unknown> = Promise.resolve()
  return (accept) => {
    const contentType = typeof accept === 'string' && accept.includes('application/openmetrics-text') ? OPENMETRICS : PROMETHEUS
    const run = () => renderAs(registry, contentType)
    const result = queue.then(run, run)
    queue = result.catch(() => undefined)
    return result
  }
}

async function renderAs(registry: Registry, contentType: string): Promise<RenderedMetrics> {
  const metrics = registry.getMetricsAsArray()
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

// The typings pin a registry to the content type it was declared with; the method takes either.
function setContentType(registry: Registry, contentType: string): void {
  ;(registry as unknown as { setContentType(c: string): void }).setContentType(contentType)
}
