// Variant (a), the reference every ratio is measured against: the leanest
// Node proxy that does the same hop. node:http + one undici Pool, the
// upstream's answer streamed to the client (`pool.stream`); no framework, no
// auth, no metrics, no logs, no tracing. What the gateway adds per request is
// the distance to this row. Not shipped; the benchmark only.
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { Pool } from 'undici'
import type { Dispatcher } from 'undici'

const upstream = process.env.UPSTREAM_URL
const port = Number(process.env.PORT ?? 0)
if (!upstream) throw new Error('UPSTREAM_URL is required')
const target = new URL(upstream)

// The same pool settings as the gateway's hop (src/proxy/upstream-hop.ts).
const pool = new Pool(target.origin, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 30_000, bodyTimeout: 30_000 })

// RFC 9110 §7.6.1: connection-specific fields never cross a proxy.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ready":true}')
    return
  }
  const headers: IncomingHttpHeaders = {}
  const from = req.headers
  for (const name in from) if (!HOP_BY_HOP.has(name)) headers[name] = from[name]
  headers.host = target.host
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
  pool
    .stream(
      { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers, body: hasBody ? req : null },
      ({ statusCode, headers: answer }) => {
        const out: OutgoingHttpHeaders = {}
        for (const name in answer) if (!HOP_BY_HOP.has(name)) out[name] = answer[name]
        res.writeHead(statusCode, out)
        return res
      },
    )
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
})
server.keepAliveTimeout = 120_000
server.listen(port, '127.0.0.1')
process.once('SIGTERM', () => {
  server.close()
  void pool.close().then(() => process.exit(0))
})
