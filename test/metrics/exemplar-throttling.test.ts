// The request histogram's exemplar rule (docs/adr/0009-exemplar-throttling.md):
// a fast, non-5xx series takes a new exemplar at most once a second; a slow
// (>= 100 ms) or 5xx request always leaves its own.
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { createRegistry } from '../../src/telemetry/metrics.ts'
import { createMetricsRenderer } from '../../src/telemetry/metrics-render.ts'
import { EXEMPLAR_INTERVAL_MS, httpMetrics } from '../../src/telemetry/metrics/http.ts'

/** Trace ids of the request histogram's exemplars in an OpenMetrics scrape, by status code. */
async function exemplars(registry: ReturnType<typeof createRegistry>): Promise<Map<string, string[]>> {
  const { body } = await createMetricsRenderer(registry)('application/openmetrics-text')
  const out = new Map<string, string[]>()
  for (const line of body.split('\n')) {
    const m = /^authgw_http_request_duration_seconds_bucket\{[^}]*status_code="(\d+)"[^}]*\} \S+ # \{trace_id="([^"]+)"\}/.exec(line)
    if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), m[2] as string])
  }
  return out
}

t.test('a fast 200 series keeps its exemplar for a second; slow and 5xx requests always leave theirs', async (t) => {
  const registry = createRegistry()
  const http = httpMetrics(registry)
  const fast = 0.002
  http.observeRequest('GET', '/api/*', 200, fast, { trace_id: 'fast-first' })
  http.observeRequest('GET', '/api/*', 200, fast, { trace_id: 'fast-second' })
  let seen = await exemplars(registry)
  t.same(seen.get('200'), ['fast-first'], 'the second fast request within the interval leaves no exemplar')

  http.observeRequest('GET', '/api/*', 200, 0.2, { trace_id: 'slow' })
  seen = await exemplars(registry)
  t.same(seen.get('200')?.sort(), ['fast-first', 'slow'], 'a slow request of the same series leaves its own at once')

  http.observeRequest('GET', '/api/*', 502, fast, { trace_id: 'error-first' })
  http.observeRequest('GET', '/api/*', 502, fast, { trace_id: 'error-second' })
  seen = await exemplars(registry)
  t.same(seen.get('502'), ['error-second'], 'every 5xx replaces the exemplar, however fast')

  // Time only has to pass, never be measured: waiting longer is always fine.
  await sleep(EXEMPLAR_INTERVAL_MS + 50)
  http.observeRequest('GET', '/api/*', 200, fast, { trace_id: 'fast-later' })
  seen = await exemplars(registry)
  t.same(seen.get('200')?.sort(), ['fast-later', 'slow'], 'after the interval the fast series takes a new one')
})
