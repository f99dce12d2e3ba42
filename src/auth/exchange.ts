// The two ends of a better-auth call, in the shape of better-auth's own
// toNodeHandler: getRequest (a Fetch Request from the Fastify request) and
// setResponse (status, headers and every Set-Cookie onto the Fastify reply).
import { isIP } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { SessionNullReason } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { CLIENT_IP_HEADER } from './better-auth.ts'
import type { SessionVerdict } from './session-verdict.ts'

/** Headers of better-auth's answer the reply does not copy as-is. */
const SKIP_RESPONSE_HEADERS = new Set(['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive'])

/**
 * The raw body forwarded untouched, every client header but the gateway's own
 * client-IP header, which carries the address the gateway saw. The URL's
 * origin is BETTER_AUTH_URL's, never the client's Host.
 */
export function toAuthRequest(request: FastifyRequest, origin: string): Request {
  const headers = new Headers()
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || name === CLIENT_IP_HEADER || name.startsWith(':')) continue
    if (Array.isArray(value)) for (const v of value) headers.append(name, v)
    else headers.set(name, value)
  }
  headers.set(CLIENT_IP_HEADER, isIP(request.ip) !== 0 ? request.ip : (request.socket.remoteAddress ?? ''))
  const method = request.method
  const body = method === 'GET' || method === 'HEAD' ? undefined : (request.body as Buffer | undefined)
  return new Request(`${origin}${request.url}`, { method, headers, body: body && body.length > 0 ? (body as unknown as BodyInit) : undefined })
}

/** Status and headers onto the reply; the body is returned so the steps after can read it before it is sent. */
export async function setAuthResponse(reply: FastifyReply, res: Response): Promise<{ status: number; body: Buffer }> {
  reply.code(res.status)
  for (const [name, value] of res.headers) if (!SKIP_RESPONSE_HEADERS.has(name)) reply.header(name, value)
  // reply.header appends Set-Cookie; copying the Headers object would keep only the last one.
  for (const cookie of res.headers.getSetCookie()) reply.header('set-cookie', cookie)
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) }
}

/** One /api/auth/* request as the mount's steps see it, from better-auth's answer to the reply. */
export type AuthExchange = {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
  /** Bounded route label: a named endpoint, or `/api/auth/other`. */
  readonly route: string
  /** better-auth's status and body, after the gateway's error mapping. */
  status: number
  body: Buffer
  /** The gateway's session verdict taken before forwarding (/token and /get-session only). */
  known?: SessionVerdict
  /** Why a session route refused (a 401 or a null session), decided by the store. */
  refusal?: SessionNullReason
  /** A 429 whose client address is a TRUST_PROXY hop's own. */
  clientIpUnresolved?: boolean
}

/**
 * A step run on every better-auth answer before it is sent: counting,
 * auditing, labelling. It may change the reply's headers; it never sends.
 */
export type AuthResponseStep = (exchange: AuthExchange, metrics: Metrics) => void | Promise<void>

/** better-auth's error code from a JSON error body, bounded; undefined when there is none. */
export function errorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { code?: unknown }
    return typeof parsed?.code === 'string' ? parsed.code.slice(0, 64) : undefined
  } catch {
    return undefined
  }
}
