// Feature toggles for cost attribution, never shipped: loaded with
// `--import ./bench/experiments/register.ts` on a gateway child, it swaps the
// src modules named in BENCH_OVERRIDES (comma list) for the replacements in
// this folder, so one feature can be turned off or changed without editing
// src/. The replacements import the originals they wrap; those imports are
// left alone.
import { registerHooks } from 'node:module'

const REPLACEMENTS: Record<string, { original: string; replacement: string }> = {
  // no CORS plugin
  'cors-off': { original: '/src/web/cors.ts', replacement: 'cors-off.ts' },
  // prom-client observations on the request path turned into no-ops
  'metrics-off': { original: '/src/telemetry/metrics.ts', replacement: 'metrics-off.ts' },
  // no child spans from inSpan(): one gateway span per request
  'child-spans-off': { original: '/src/telemetry/tracing.ts', replacement: 'tracing-nochild.ts' },
  // the proxy hop through @fastify/reply-from, as before the direct undici hop (use both)
  'proxy-reply-from': { original: '/src/proxy/proxy.ts', replacement: 'proxy-reply-from.ts' },
  'headers-reply-from': { original: '/src/proxy/headers.ts', replacement: 'proxy-reply-from-headers.ts' },
}

const here = new URL('./', import.meta.url).href
const wanted = (process.env.BENCH_OVERRIDES ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
const unknown = wanted.filter((w) => !(w in REPLACEMENTS))
if (unknown.length > 0) throw new Error(`unknown BENCH_OVERRIDES: ${unknown.join(', ')}`)
const active = wanted.map((w) => REPLACEMENTS[w] as { original: string; replacement: string })

registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context)
    if (context.parentURL?.startsWith(here)) return resolved
    for (const r of active) {
      if (resolved.url.endsWith(r.original)) return { ...resolved, url: new URL(r.replacement, here).href, shortCircuit: true }
    }
    return resolved
  },
})
