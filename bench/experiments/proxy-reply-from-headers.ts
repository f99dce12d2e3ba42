// Experiment 'headers-reply-from': src/proxy/headers.ts as it was next to the
// reply-from proxy (proxy-reply-from.ts). For cost comparison only.
// The trust boundary: what a client may and may not send through to the
// upstream. Identity reaches the upstream only as the gateway's verified JWT.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import { CLIENT_IP_HEADER } from '../../src/auth/better-auth.ts'
import { parseCookieHeader } from '../../src/auth/session.ts'
import { injectTraceContext } from '../../src/telemetry/tracing.ts'

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

/**
 * Credentials meant for someone other than the upstream: a proxy's own
 * credentials never travel past it (RFC 9110 §11.7.2).
 */
const ALWAYS_STRIPPED = ['proxy-authorization']

export type HeaderPolicy = {
  /**
   * Headers as the upstream should see them: `upstreamJwt` as the only
   * credential (none on public paths). Mutates and returns `headers`.
   */
  rewrite(request: FastifyRequest, headers: IncomingHttpHeaders, upstreamJwt: string | undefined): IncomingHttpHeaders
}

export function createHeaderPolicy(opts: { extraDenylist: string[]; authCookieNames: string[] }): HeaderPolicy {
  const exact = new Set<string>(ALWAYS_STRIPPED)
  const prefixes: string[] = []
  for (const raw of [...DEFAULT_IDENTITY_DENYLIST, ...opts.extraDenylist]) {
    const p = canonical(raw)
    if (p.endsWith('*')) prefixes.push(p.slice(0, -1))
    else exact.add(p)
  }
  const authCookies = new Set(opts.authCookieNames)
  const denied = (name: string) => {
    const c = canonical(name)
    return exact.has(c) || prefixes.some((p) => c.startsWith(p))
  }

  return {
    rewrite(request, headers, upstreamJwt) {
      for (const name of Object.keys(headers)) if (denied(name)) delete headers[name]
      // The body is re-sent with its own Content-Length; the client's framing
      // and connection options are not the upstream's business (and undici
      // refuses Keep-Alive, Upgrade and Expect outright).
      for (const name of REQUEST_HOP_BY_HOP) delete headers[name]
      const cookie = headers.cookie
      if (cookie !== undefined) {
        const kept = [...parseCookieHeader(cookie)].filter(([n]) => !authCookies.has(n)).map(([n, v]) => `${n}=${v}`)
        if (kept.length > 0) headers.cookie = kept.join('; ')
        else delete headers.cookie
      }
      // Rebuilt from what Fastify derived under the TRUST_PROXY setting.
      // A trusted proxy that forwarded garbage (`X-Forwarded-For: admin`)
      // leaves request.ip unusable; fall back to the peer address.
      headers['x-forwarded-for'] = isIP(request.ip) !== 0 ? request.ip : (request.socket.remoteAddress ?? '')
      headers['x-forwarded-proto'] = request.protocol
      headers['x-forwarded-host'] = request.host
      headers['x-request-id'] = request.id
      if (upstreamJwt === undefined) delete headers.authorization
      else headers.authorization = `Bearer ${upstreamJwt}`
      // Tracing: the upstream continues this request's trace (no-op when off).
      injectTraceContext(request, headers)
      return headers
    },
  }
}

/**
 * Lower case with `_` read as `-`: CGI/WSGI-style servers (and some
 * frameworks) map `X_User_Id` and `X-User-Id` to the same variable, so an
 * underscore spelling must not slip past the deny-list.
 */
function canonical(name: string): string {
  return name.toLowerCase().replaceAll('_', '-')
}

const REQUEST_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect']

// RFC 9110 §7.6.1: connection-specific fields describe one hop. The upstream's
// (`Connection: keep-alive`, `Keep-Alive: timeout=5`) would otherwise override
// what Node decides for the client connection, e.g. keep open a connection the
// client asked to close.
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']

/** Response headers from the upstream without hop-by-hop fields (also those the upstream named in `Connection`). */
export function stripHopByHop<H extends Record<string, unknown>>(headers: H): H {
  const named = typeof headers.connection === 'string' ? headers.connection.split(',').map((s) => s.trim().toLowerCase()) : []
  for (const name of [...HOP_BY_HOP, ...named]) delete headers[name]
  return headers
}
