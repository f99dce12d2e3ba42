// Whether the client address Fastify resolved under TRUST_PROXY is really a
// client's, or a trusted proxy hop's own (the load balancer forwarded no
// X-Forwarded-For, or only trusted hops): then better-auth's rate limiter
// puts everyone behind that proxy in one bucket.
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import type { FastifyRequest } from 'fastify'

// proxy-addr's named ranges, which TRUST_PROXY accepts.
const NAMED: Record<string, string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

const unmapped = (ip: string): string => (ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip)

export function clientIpUnresolved(trustProxy: boolean | number | string[]): (request: FastifyRequest) => boolean {
  if (trustProxy === false || trustProxy === 0) return () => false
  // `true` or a hop count: the proxy's own address is the answer exactly when
  // nothing was forwarded.
  if (!Array.isArray(trustProxy)) return (request) => request.ip === request.socket.remoteAddress
  const trusted = new BlockList()
  for (const entry of trustProxy.flatMap((e) => NAMED[e] ?? [e])) {
    const [address, prefix] = entry.split('/') as [string, string | undefined]
    const type = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (prefix === undefined) trusted.addAddress(address, type)
    else trusted.addSubnet(address, Number(prefix), type)
  }
  return (request) => {
    const ip = unmapped(request.ip)
    if (isIPv4(ip)) return trusted.check(ip, 'ipv4')
    if (isIPv6(ip)) return trusted.check(ip, 'ipv6')
    return false
  }
}
