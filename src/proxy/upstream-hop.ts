// The hop to the upstream: one undici Pool per upstream origin and
// `pool.dispatch()` with a handler that writes the answer straight to the
// client response, without reply-from's Readable streams. A request is sent
// again only in the one case where it cannot have reached the upstream's
// application: an idempotent request on a kept-alive connection that the
// upstream had already closed, reset before any response byte (see
// docs/adr/0001-upstream-retry-policy.md). Anything else reaches the upstream
// at most once.
import type { FastifyReply } from 'fastify'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { Pool, buildConnector, errors } from 'undici'
import type { Dispatcher } from 'undici'
import { UpstreamRetryReason } from '../reasons.ts'
import { copyEndToEndHeaders } from './headers.ts'

export type UpstreamPoolOptions = {
  connections: number
  /** Response headers and body (between chunks) timeout. */
  timeoutMs: number
  connectTimeoutMs: number
  /** Idle time after which the gateway closes a kept-alive connection (UPSTREAM_KEEP_ALIVE_TIMEOUT_MS). */
  keepAliveTimeoutMs: number
}

/**
 * Keep-alive connections to one upstream origin. The idle timeout must stay
 * below the upstream's own (Node's server default is 5 s); an upstream that
 * announces `Keep-Alive: timeout=N` is believed instead, less undici's 2 s
 * margin (keepAliveTimeoutThreshold).
 */
export function createUpstreamPool(origin: string, opts: UpstreamPoolOptions): Pool {
  const connect = buildConnector({ timeout: opts.connectTimeoutMs })
  return new Pool(origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: opts.keepAliveTimeoutMs,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect(options, callback) {
      connect(options, (...args) => {
        // Ahead of undici's own listener, so the error is marked before undici hands it on.
        if (args[0] === null) args[1].prependListener('error', markSocketError)
        callback(...args)
      })
    },
  })
}

const kReusedSocket = Symbol('authgw.reusedSocket')

// `this` is the socket. A connection that has read bytes before has carried
// an earlier response: the request that fails on it was sent on a reused
// connection. (TLS sockets count decrypted bytes: a handshake is not a response.)
function markSocketError(this: Socket, error: Error & { [kReusedSocket]?: boolean }) {
  if (this.bytesRead > 0) error[kReusedSocket] = true
}

/**
 * The connection dropped under a request sent on a kept-alive connection: the
 * upstream closed it (idle timeout) as the request went out. ECONNRESET/EPIPE
 * come from the socket (marked above); undici's own "other side closed" and
 * "closed" errors carry the socket's counters.
 */
function resetOnReusedSocket(error: Error): boolean {
  const e = error as Error & { code?: string; socket?: { bytesRead?: number }; [kReusedSocket]?: boolean }
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return e[kReusedSocket] === true
  if (e.code === 'UND_ERR_SOCKET') return (e.message === 'other side closed' || e.message === 'closed') && (e.socket?.bytesRead ?? 0) > 0
  return false
}

// RFC 9110 §9.2.2. The body, when there is one, is a buffer that can be sent again.
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** What the caller does at the points where the hop needs a decision or a count. */
export type HopObserver = {
  /** The upstream's status line arrived; nothing has been written to the client yet. */
  responseStarted(reply: FastifyReply, statusCode: number): void
  /** No usable response from the upstream: answer the client (nothing was sent yet). */
  failedBeforeResponse(reply: FastifyReply, error: Error): void
  /** The upstream failed mid-body; the client's connection is cut after this returns. */
  failedAfterResponse(reply: FastifyReply, error: Error): void
  /** The request is being sent a second time (the first attempt never reached the upstream). */
  retried(reply: FastifyReply, reason: UpstreamRetryReason, error: Error): void
}

/** Handed to undici as it is. */
export type UpstreamRequest = {
  method: Dispatcher.HttpMethod
  /** Path and query string, as sent. */
  path: string
  headers: IncomingHttpHeaders
  body: Buffer | null
}

export type Hop = {
  pool: Pool
  observer: HopObserver
}

/** Send `upstream` through the hop and answer `reply` with what comes back. */
export function forward(hop: Hop, reply: FastifyReply, upstream: UpstreamRequest): void {
  const exchange = new Exchange(hop, reply, upstream)
  const res = reply.raw as ClientResponse
  res[kExchange] = exchange
  res.on('close', onClientClose)
  hop.pool.dispatch(upstream as Dispatcher.DispatchOptions, exchange)
}

const kExchange = Symbol('authgw.upstreamExchange')
type ClientResponse = ServerResponse & { [kExchange]?: Exchange }

// Listeners shared by every request: `this` is the client response.
function onClientClose(this: ClientResponse) {
  const exchange = this[kExchange]
  if (exchange !== undefined && !this.writableFinished) exchange.clientClosed()
}
function onClientDrain(this: ClientResponse) {
  this[kExchange]?.controller?.resume()
}

class BadStatusError extends Error {
  readonly code = 'AUTHGW_UPSTREAM_BAD_STATUS'
}

/** One request's dispatch handler (undici's handler API, see undici docs/api/Dispatcher.md). */
class Exchange implements Dispatcher.DispatchHandler {
  readonly hop: Hop
  readonly reply: FastifyReply
  readonly upstream: UpstreamRequest
  controller: Dispatcher.DispatchController | undefined = undefined
  /** A byte of a response (interim or final) arrived on this attempt. */
  responseBegun = false
  /** A final status line was accepted: the client's answer has begun. */
  started = false
  /** Ended, failed or abandoned: nothing more to do. */
  done = false
  clientGone = false
  retried = false

  constructor(hop: Hop, reply: FastifyReply, upstream: UpstreamRequest) {
    this.hop = hop
    this.reply = reply
    this.upstream = upstream
  }

  // undici calls this at the first byte of a response (the handler API's onResponseStarted).
  onResponseStarted(): void {
    this.responseBegun = true
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
    // The client left while the request waited for a connection.
    if (this.clientGone) controller.abort(new errors.RequestAbortedError())
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx: undici waits for the final answer (Node sends its own 100-continue).
    if (statusCode < 200 || this.done) return
    if (statusCode > 599) {
      controller.abort(new BadStatusError(`upstream status ${statusCode}`))
      return
    }
    const { reply, hop } = this
    const res = reply.raw
    // The headers the gateway set (x-request-id, CORS…), then the upstream's.
    const out = reply.getHeaders()
    copyEndToEndHeaders(headers, out)
    // The gateway's request id names this request in its access line, span and
    // the upstream's own logs (it was sent upstream); an upstream that answers
    // with an id of its own keeps it, under another name.
    const upstreamId = headers['x-request-id']
    if (upstreamId !== undefined && upstreamId !== reply.request.id) out['x-upstream-request-id'] = upstreamId
    out['x-request-id'] = reply.request.id
    // RFC 9110 §8.6: no Content-Length on a 204 (a client would wait for that many bytes).
    if (statusCode === 204) delete out['content-length']
    try {
      res.writeHead(statusCode, out as Record<string, string | string[]>)
    } catch (err) {
      // A header Node refuses to send: nothing was written yet.
      controller.abort(err as Error)
      return
    }
    this.started = true
    // onSend hooks do not run from here on; onResponse hooks still do, on 'finish'.
    reply.hijack()
    hop.observer.responseStarted(reply, statusCode)
    if (statusCode === 204 || statusCode === 304) {
      // These have no content whatever their headers say, and the client has
      // the whole answer now. undici fails one that carries a Content-Length
      // (ResponseContentLengthMismatchError) after this point; that must not
      // cut a complete answer.
      this.done = true
      res.end()
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return
    const res = this.reply.raw
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', onClientDrain)
    }
  }

  onResponseEnd(): void {
    if (this.done) return
    this.done = true
    this.reply.raw.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.done) return
    // The client left first (and the request was aborted for it): no one to answer, nothing counted.
    if (this.clientGone) {
      this.done = true
      return
    }
    if (!this.retried && !this.responseBegun && IDEMPOTENT.has(this.upstream.method) && resetOnReusedSocket(error)) {
      this.retried = true
      this.controller = undefined
      this.hop.observer.retried(this.reply, UpstreamRetryReason.reset_reused_socket, error)
      this.hop.pool.dispatch(this.upstream as Dispatcher.DispatchOptions, this)
      return
    }
    this.done = true
    if (!this.started) {
      this.hop.observer.failedBeforeResponse(this.reply, error)
      return
    }
    // Status and headers are out: the client sees a cut answer.
    this.hop.observer.failedAfterResponse(this.reply, error)
    this.reply.raw.destroy()
  }

  clientClosed(): void {
    if (this.done || this.clientGone) return
    this.clientGone = true
    this.controller?.abort(new errors.RequestAbortedError())
  }
}
