// Accept-and-drop OTLP/HTTP receiver: reads each export, answers 200 with an
// empty ExportTraceServiceResponse, keeps only counters. GET /stats returns
// them so the benchmark can show that spans really left the gateway.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

let requests = 0
let bytes = 0
const byPath: Record<string, number> = {}

const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ requests, bytes, byPath }))
    return
  }
  let n = 0
  req.on('data', (chunk: Buffer) => {
    n += chunk.length
  })
  req.once('end', () => {
    requests++
    bytes += n
    const path = (req.url ?? '').split('?')[0] ?? ''
    byPath[path] = (byPath[path] ?? 0) + 1
    const json = (req.headers['content-type'] ?? '').includes('json')
    const out = json ? '{}' : ''
    res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf', 'content-length': String(out.length) }).end(out)
  })
})
server.keepAliveTimeout = 120_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
})
process.once('SIGTERM', () => server.close(() => process.exit(0)))
