// A TLS-terminating front for browser tests: a self-signed certificate made
// with openssl for the test's host names, and one https listener that hands
// each request to a plain-http backend chosen by its Host, adding
// X-Forwarded-Proto/For as a load balancer does (the gateway believes them
// under TRUST_PROXY). Real sockets on both sides; every Set-Cookie passes
// through untouched (raw headers).
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'

/** A throwaway certificate for `hosts` (EC P-256, one day). */
export async function selfSignedCertificate(t: Test, hosts: readonly string[]): Promise<{ key: Buffer; cert: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'authgw-tls-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', `/CN=${hosts[0]}`, '-addext', `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
  ], { stdio: 'ignore' })
  return { key: await readFile(key), cert: await readFile(cert) }
}

/** An https listener on 127.0.0.1 (`port`, or any free one) forwarding each host name in `routes` to its http port. */
export async function startTlsFront(t: Test, tls: { key: Buffer; cert: Buffer }, routes: Record<string, number>, port = 0): Promise<number> {
  const server = createServer(tls, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '')
    const port = routes[host]
    if (port === undefined) {
      res.writeHead(421).end()
      return
    }
    const headers = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1' }
    const upstream = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.rawHeaders)
      up.pipe(res)
    })
    upstream.on('error', () => res.writeHead(502).end())
    req.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}
