// The trust boundary: what a client may and may not send through to the
// upstream. Identity reaches the upstream only as the gateway's verified JWT.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { CLIENT_IP_HEADER } from '../auth/better-auth.ts'
import { parseCookieHeader } from '../auth/session.ts'

/** Identity headers no client may send through (exact names, or prefixes ending in `*`). */
export const DEFAULT_IDENTITY_DENYLIST = [
  'x-user-*',
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-auth-request-*',
  'x-remote-user',
  'remote-user',
  'x-remote-*',
  'x-authenticated-*',
  'x-auth-user',
  'x-authgw-*',
  'x-jwt-*',
  'x-id-token',
  'x-access-token',
  'x-userinfo',
  'x-consumer-*',
  'x-credential-*',
  'x-client-ip',
  'x-real-ip',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  CLIENT_IP_HEADER,
]

export type HeaderPolicy = {
  /** Headers as the upstream should see them. Mutates and returns `headers`. */
  rewrite(request: FastifyRequest, headers: IncomingHttpHeaders, upstreamJwt: string): IncomingHttpHeaders
}

export function createHeaderPolicy(opts: { extraDenylist: string[]; authCookieNames: string[] }): HeaderPolicy {
  const exact = new Set<string>()
  const prefixes: string[] = []
  for (const p of [...DEFAULT_IDENTITY_DENYLIST, ...opts.extraDenylist]) {
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1))
    else exact.add(p)
  }
  const authCookies = new Set(opts.authCookieNames)
  const denied = (name: string) => exact.has(name) || prefixes.some((p) => name.startsWith(p))

  return {
    rewrite(request, headers, upstreamJwt) {
      for (const name of Object.keys(headers)) if (denied(name)) delete headers[name]
      const cookie = headers.cookie
      if (cookie !== undefined) {
        const kept = [...parseCookieHeader(cookie)].filter(([n]) => !authCookies.has(n)).map(([n, v]) => `${n}=${v}`)
        if (kept.length > 0) headers.cookie = kept.join('; ')
        else delete headers.cookie
      }
      // Rebuilt from what Fastify derived under the TRUST_PROXY setting.
      headers['x-forwarded-for'] = request.ip
      headers['x-forwarded-proto'] = request.protocol
      headers['x-forwarded-host'] = request.host
      headers['x-request-id'] = request.id
      headers.authorization = `Bearer ${upstreamJwt}`
      return headers
    },
  }
}
