// The benchmark's upstream: node:http, keep-alive, one static ~200 B JSON body
// for every request. It verifies nothing, so the rig measures the gateway and
// not the protected API. Prints its port as the first stdout line.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

const body = Buffer.from(
  JSON.stringify({
    id: 'u_0123456789abcdef',
    email: 'bench-user@example.test',
    name: 'Bench User',
    roles: ['reader'],
    items: [1, 2, 3, 4, 5, 6, 7, 8],
    note: 'static upstream response for the authgw benchmark',
  }),
)
const headers = { 'content-type': 'application/json', 'content-length': String(body.length) }

const server = createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  // Drain any request body before answering so the connection stays reusable.
  if (req.method === 'GET' || req.method === 'HEAD') {
    res.writeHead(200, headers).end(body)
    return
  }
  req.resume()
  req.once('end', () => res.writeHead(200, headers).end(body))
})
server.keepAliveTimeout = 120_000
server.headersTimeout = 125_000
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`)
})
process.once('SIGTERM', () => server.close(() => process.exit(0)))
