// The trust boundary: what a client may and may not send through to the
// upstream. Identity reaches the upstream only as the gateway's verified JWT.
import type { FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { isIP } from 'node:net'
import { CLIENT_IP_HEADER } from '../auth/better-auth.ts'
import { parseCookieHeader } from '../auth/session.ts'
import { injectTraceContext } from '../telemetry/tracing.ts'
import { forwardedHost } from './request-target.ts'

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
   * The headers the upstream gets, built in one pass over the client's:
   * `upstreamJwt` as the only credential (none on public paths), `host` the
   * upstream's, `content-length` that of `body` when there is one.
   */
  upstreamHeaders(request: FastifyRequest, host: string, upstreamJwt: string | undefined, body: Buffer | null): IncomingHttpHeaders
}

// What to do with a client header besides the deny-list.
const PASS = 0
const DROP = 1
const HOST = 2
const REQUEST_ID = 3
const AUTHORIZATION = 4
const CONTENT_LENGTH = 5
const COOKIE = 6
type Verdict = typeof PASS | typeof DROP | typeof HOST | typeof REQUEST_ID | typeof AUTHORIZATION | typeof CONTENT_LENGTH | typeof COOKIE

// Verdicts per header name as Node hands it over (lower case); client-chosen
// names, so the memo is bounded.
const VERDICT_MEMO_SIZE = 1024

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
  const memo = new Map<string, Verdict>()
  const classify = (name: string): Verdict => {
    let v = memo.get(name)
    if (v !== undefined) return v
    // The body is re-sent with its own Content-Length; the client's framing
    // and connection options are not the upstream's business (and undici
    // refuses Keep-Alive, Upgrade and Expect outright).
    if (REQUEST_HOP_BY_HOP.has(name)) v = DROP
    else if (name === 'host') v = HOST
    else if (name === 'x-request-id') v = REQUEST_ID
    else if (name === 'authorization') v = AUTHORIZATION
    else if (name === 'content-length') v = CONTENT_LENGTH
    else if (denied(name)) v = DROP
    else if (name === 'cookie') v = COOKIE
    else v = PASS
    if (memo.size < VERDICT_MEMO_SIZE) memo.set(name, v)
    return v
  }
  const keptCookies = (header: string): string | undefined => {
    let kept: string | undefined
    for (const [n, v] of parseCookieHeader(header)) {
      if (authCookies.has(n)) continue
      kept = kept === undefined ? `${n}=${v}` : `${kept}; ${n}=${v}`
    }
    return kept
  }

  return {
    upstreamHeaders(request, host, upstreamJwt, body) {
      const from = request.raw.headers
      // Headers the client named in Connection are hop-by-hop too (RFC 9110 §7.6.1).
      const named = typeof from.connection === 'string' ? connectionOptions(from.connection) : undefined
      const out: IncomingHttpHeaders = {}
      let hasHost = false
      let hasRequestId = false
      let hasAuthorization = false
      let hasContentLength = false
      // Headers keep the client's order; the gateway's own replace the
      // client's in place or come last (as they did through reply-from).
      for (const name in from) {
        const value = from[name]
        if (value === undefined || (named !== undefined && named.includes(name))) continue
        switch (classify(name)) {
          case PASS:
            out[name] = value
            break
          case HOST:
            out.host = host
            hasHost = true
            break
          case REQUEST_ID:
            out['x-request-id'] = request.id
            hasRequestId = true
            break
          case AUTHORIZATION:
            if (upstreamJwt !== undefined) {
              out.authorization = `Bearer ${upstreamJwt}`
              hasAuthorization = true
            }
            break
          case CONTENT_LENGTH:
            out['content-length'] = body === null ? (value as string) : String(body.length)
            hasContentLength = true
            break
          case COOKIE: {
            const kept = keptCookies(value as string)
            if (kept !== undefined) out.cookie = kept
            break
          }
        }
      }
      if (!hasHost) out.host = host
      if (body !== null) {
        if (!hasContentLength) out['content-length'] = String(body.length)
        // Sent exactly as received, with the client's Content-Type (parameters included).
        if (out['content-type'] === undefined) out['content-type'] = from['content-type'] ?? 'application/octet-stream'
      }
      // Rebuilt from what Fastify derived under the TRUST_PROXY setting.
      // A trusted proxy that forwarded garbage (`X-Forwarded-For: admin`)
      // leaves request.ip unusable; fall back to the peer address.
      const ip = request.ip
      out['x-forwarded-for'] = isIP(ip) !== 0 ? ip : (request.socket.remoteAddress ?? '')
      out['x-forwarded-proto'] = request.protocol
      out['x-forwarded-host'] = forwardedHost(request)
      if (!hasRequestId) out['x-request-id'] = request.id
      if (!hasAuthorization && upstreamJwt !== undefined) out.authorization = `Bearer ${upstreamJwt}`
      // Tracing: the upstream continues this request's trace (no-op when off).
      injectTraceContext(request, out)
      return out
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

const REQUEST_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'expect'])

// RFC 9110 §7.6.1: connection-specific fields describe one hop. The upstream's
// (`Connection: keep-alive`, `Keep-Alive: timeout=5`) would otherwise override
// what Node decides for the client connection, e.g. keep open a connection the
// client asked to close.
const RESPONSE_HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer'])

/** The header names listed in a Connection header, lower case (undefined: none beyond the hop-by-hop ones). */
function connectionOptions(value: string): string[] | undefined {
  // The common cases name nothing that is not hop-by-hop already.
  if (value === 'keep-alive' || value === 'close') return undefined
  const names: string[] = []
  for (const part of value.split(',')) {
    const n = part.trim().toLowerCase()
    if (n !== '') names.push(n)
  }
  return names
}

/**
 * Copy the upstream's response headers onto `into` without hop-by-hop fields
 * (also those the upstream named in `Connection`). Like `reply.header()`: a
 * header replaces the one the gateway set, except `set-cookie`, which adds.
 */
export function copyEndToEndHeaders(from: IncomingHttpHeaders, into: Record<string, unknown>): void {
  const named = typeof from.connection === 'string' ? connectionOptions(from.connection) : undefined
  for (const name in from) {
    const value = from[name]
    if (value === undefined || RESPONSE_HOP_BY_HOP.has(name) || (named !== undefined && named.includes(name))) continue
    if (name === 'set-cookie') {
      const prev = into[name]
      if (prev !== undefined) {
        into[name] = ([] as unknown[]).concat(prev, value)
        continue
      }
    }
    into[name] = value
  }
}
