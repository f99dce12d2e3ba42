// Answers the front door gives before a request reaches a route: header block
// too large (431), headers or body too slow (408), unparseable HTTP or URL
// (400). Fastify's defaults send a body without a reason and, for a bad URL,
// skip the gateway's hooks; these keep every 4xx in the same shape
// `{ error, reason }` with a reason from RequestErrorReason.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { RequestErrorReason } from '../reasons.ts'
import { withoutQuery } from './request-target.ts'


const ANSWERS: Record<string, { status: number; text: string; reason: RequestErrorReason }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, text: 'Request Timeout', reason: RequestErrorReason.request_timeout },
  HPE_HEADER_OVERFLOW: { status: 431, text: 'Request Header Fields Too Large', reason: RequestErrorReason.header_too_large },
}
const BAD_REQUEST = { status: 400, text: 'Bad Request', reason: RequestErrorReason.bad_request }

/**
 * Node's 'clientError' listener: the parser rejected the bytes or a server
 * timeout (HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS) fired. There is no request
 * object, so the answer is written to the socket, which is then closed.
 */
export function createClientErrorHandler(log: Logger): (err: Error & { code?: string }, socket: Socket) => void {
  return function clientErrorHandler(err, socket) {
    // A reset socket has nobody to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const answer = ANSWERS[err.code ?? ''] ?? BAD_REQUEST
    // Debug only: these are the lines an attacker controls the rate of.
    log.debug({ event: 'client_error', status: answer.status, reason: answer.reason, code: err.code }, 'client error')
    if (socket.writable) {
      // A client that asked HEAD would read a body as the next response.
      const head = (err as Error & { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD '
      const body = head ? '' : JSON.stringify({ error: answer.reason, reason: answer.reason })
      socket.write(
        `HTTP/1.1 ${answer.status} ${answer.text}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      )
    }
    socket.destroy()
  }
}

/**
 * Node's 'connect' listener. Without one, Node drops a CONNECT request's
 * socket without a word; the gateway tunnels nothing, so it says so (400, the
 * same shape as the other front-door answers) and closes the connection.
 */
export function createConnectHandler(log: Logger): (req: IncomingMessage, socket: Duplex) => void {
  return function refuseConnect(_req, socket) {
    const reason = RequestErrorReason.bad_request
    log.debug({ event: 'client_error', status: 400, reason, code: 'CONNECT' }, 'client error')
    const body = JSON.stringify({ error: reason, reason })
    socket.on('error', () => undefined)
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
}

/**
 * Fastify's `frameworkErrors`: a URL that does not decode (`/%zz`) or an
 * over-long path parameter. Fastify answers these before routing, so no
 * route hook runs: the access line is written here (route `other`); the
 * request histogram does not see them.
 */
export function frameworkErrors(_error: Error, request: FastifyRequest, reply: FastifyReply): void {
  const reason = RequestErrorReason.bad_request
  reply.code(400).send({ error: reason, reason, requestId: request.id })
  request.log.info({ method: request.method, route: 'other', path: withoutQuery(request.url).slice(0, 256), status: 400, reason }, 'request')
}

/**
 * How often Node checks HEADERS_TIMEOUT_MS and REQUEST_TIMEOUT_MS. Its default
 * (30 s) would let a slow client hold a socket up to 30 s past either limit.
 */
export function connectionsCheckingInterval(limits: { headersTimeoutMs: number; requestTimeoutMs: number }): number {
  return Math.min(1000, Math.max(50, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)))
}
