// The front door's reading of a request line and Host header. One rule for
// every part of the gateway that turns a client's target into a decision: a
// target that one parser would read differently from another (a URL parser
// resolving `./`, `%2e`, `\`; better-auth's router; an upstream framework
// splitting on `;`) is refused with 400 instead of being normalised in one
// place and labelled from another. See RFC 9112 §3.2 (request target) and
// RFC 9110 §7.2 (Host).
import { isIPv6 } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RequestErrorReason } from '../reasons.ts'

/**
 * What is wrong with a request's target or Host header before any route sees
 * it, or undefined. (A trusted proxy's X-Forwarded-Host is not the client's
 * mistake: see forwardedHost.)
 */
export function requestLineProblem(request: FastifyRequest): 'request_target' | 'host' | undefined {
  const host = request.headers.host
  if (host !== undefined && !isValidHost(host)) return 'host'
  if (hostFieldCount(request.raw.rawHeaders) > 1) return 'host'
  if (!isOriginForm(request.url)) return 'request_target'
  return undefined
}

/**
 * The host the client asked for, as the upstream's X-Forwarded-Host: what
 * Fastify derived under TRUST_PROXY (a trusted proxy's X-Forwarded-Host) when
 * that is a valid host, else the Host header (checked at the front door).
 */
export function forwardedHost(request: FastifyRequest): string {
  const derived = request.host
  const host = request.headers.host ?? ''
  return derived === host || isValidHost(derived) ? derived : host
}

/**
 * Whether the request target is in origin-form (`/path?query`). Absolute-form
 * (`GET http://evil.example/api/me`), authority-form and asterisk-form targets
 * are not (`OPTIONS *` is answered on its own). The gateway is an origin
 * server: a target that names an authority of its own would make the Host
 * header and the target disagree on where the request is going, and must
 * never reach the upstream's request line.
 */
export function isOriginForm(url: string): boolean {
  return url.charCodeAt(0) === 47 /* / */
}

// RFC 3986 reg-name: unreserved, pct-encoded, sub-delims, except the comma:
// Host is a singleton field, and `a,b` is what two Host fields look like once
// an intermediary has combined them (RFC 9110 §5.3). IPv4 addresses match too.
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*$/
const PORT = /^\d{0,5}$/

/**
 * A Host header value as RFC 9110 §7.2 allows it: `uri-host [ ":" port ]`,
 * with an IPv6 literal in brackets and a port no larger than 65535. `Host: a b`,
 * `Host: [::1`, `Host: x:99999`, `Host: gw/api/auth/x?` and non-ASCII bytes are not.
 */
export function isValidHost(value: string): boolean {
  let port = ''
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf(']')
    if (end === -1 || !isIPv6(value.slice(1, end))) return false
    if (end + 1 < value.length) {
      if (value[end + 1] !== ':') return false
      port = value.slice(end + 2)
    }
  } else {
    const colon = value.indexOf(':')
    const host = colon === -1 ? value : value.slice(0, colon)
    if (colon !== -1) port = value.slice(colon + 1)
    if (!REG_NAME.test(host)) return false
  }
  return PORT.test(port) && (port === '' || Number(port) <= 65535)
}

// Characters that mean one thing to one parser and another to the next:
// encoded `/`, `\` and `.`, `;` path parameters, empty segments.
const AMBIGUOUS = /%2f|%5c|%2e|;|\/\//i
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/

/**
 * The target without its query string: the path every route, log line and
 * span works with. (Query strings may carry tokens, `?token=`, `?code=` …:
 * logs and spans never get them.)
 */
export function withoutQuery(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/**
 * The path of an origin-form target (without the query) when every parser
 * reads it as written; undefined when a URL parser would rewrite it (dot
 * segments, plain or encoded; back slashes; a fragment; characters it
 * escapes) or when it is ambiguous (`//`, `%2f`, `%5c`, `%2e`, `;`).
 * A trailing `?` is an empty query: `/a?` has the path `/a`.
 */
export function canonicalPath(url: string): string | undefined {
  const path = withoutQuery(url)
  if (path.charCodeAt(0) !== 47 /* / */ || AMBIGUOUS.test(path) || DOT_SEGMENT.test(path)) return undefined
  // What better-auth (and fetch, and most frameworks) will act on.
  let parsed: string
  try {
    parsed = new URL(`http://h${path}`).pathname
  } catch {
    return undefined
  }
  return parsed === path ? path : undefined
}

/**
 * Host header fields in raw header name/value pairs. RFC 9112 §3.2: more than
 * one is a 400; Node keeps the first, a proxy in front may keep the last.
 */
export function hostFieldCount(rawHeaders: readonly string[]): number {
  let n = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') n++
  }
  return n
}

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS'

/**
 * The front door's answer to a request line or Host it refuses (400), or to
 * `OPTIONS *` (204): true when it answered, false when the request goes on.
 */
export function answerRequestLine(request: FastifyRequest, reply: FastifyReply): boolean {
  const problem = requestLineProblem(request)
  if (problem === undefined) return false
  if (problem === 'request_target' && request.url === '*' && request.method === 'OPTIONS') {
    // RFC 9110 §9.3.7: OPTIONS * asks about the server, not a resource.
    reply.code(204).header('allow', ALLOWED_METHODS).send()
    return true
  }
  const reason = RequestErrorReason.bad_request
  request.authgw.reason = reason
  request.authgw.detail = { refused: problem }
  reply.code(400).send({ error: reason, reason, requestId: request.id })
  return true
}
