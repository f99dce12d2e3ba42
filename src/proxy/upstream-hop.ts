// The hop to the upstream: one undici Pool per upstream origin and
// `pool.dispatch()` with a handler that writes the answer straight to the
// client response, without reply-from's Readable streams. No retries, ever:
// a non-idempotent request must reach the upstream at most once.
import type { FastifyReply } from 'fastify'
import type { IncomingHttpHeaders, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { Pool, errors } from 'undici'
import type { Dispatcher } from 'undici'
import { copyEndToEndHeaders } from './headers.ts'

export type UpstreamPoolOptions = {
  connections: number
  /** Response headers and body (between chunks) timeout. */
  timeoutMs: number
  connectTimeoutMs: number
}

/** Keep-alive connections to one upstream origin (the options reply-from was given). */
export function createUpstreamPool(origin: string, opts: UpstreamPoolOptions): Pool {
  return new Pool(origin, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    connect: { timeout: opts.connectTimeoutMs },
  })
}

/** What the caller does at the points where the hop needs a decision or a count. */
export type HopObserver = {
  /** The upstream's status line arrived; nothing has been written to the client yet. */
  responseStarted(reply: FastifyReply, statusCode: number): void
  /** No usable response from the upstream: answer the client (nothing was sent yet). */
  failedBeforeResponse(reply: FastifyReply, error: Error): void
  /** The upstream failed mid-body; the client's connection is cut after this returns. */
  failedAfterResponse(reply: FastifyReply, error: Error): void
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
  /**
   * true: hijack the reply and write to `reply.raw` (onSend hooks do not
   * run; onResponse hooks still do, on 'finish'). false: `reply.send()` a
   * stream, for routes whose onSend hooks must see the answer.
   */
  direct: boolean
}

/** Send `upstream` through the hop and answer `reply` with what comes back. */
export function forward(hop: Hop, reply: FastifyReply, upstream: UpstreamRequest): void {
  const exchange = new Exchange(hop, reply)
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
  controller: Dispatcher.DispatchController | undefined = undefined
  /** A final status line was accepted: the client's answer has begun. */
  started = false
  /** Ended, failed or abandoned: nothing more to do. */
  done = false
  clientGone = false
  /** Not direct: the body so far, while it is small enough to send whole. */
  chunks: Buffer[] | undefined = undefined
  collected = 0
  /** Not direct: the body as a stream, once it outgrew COLLECT_LIMIT. */
  stream: UpstreamBody | undefined = undefined

  constructor(hop: Hop, reply: FastifyReply) {
    this.hop = hop
    this.reply = reply
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
    if (hop.direct) {
      const res = reply.raw
      // The headers the gateway set (x-request-id, CORS…), then the upstream's.
      const out = reply.getHeaders()
      copyEndToEndHeaders(headers, out)
      try {
        res.writeHead(statusCode, out as Record<string, string | string[]>)
      } catch (err) {
        // A header Node refuses to send: nothing was written yet.
        controller.abort(err as Error)
        return
      }
      this.started = true
      reply.hijack()
      hop.observer.responseStarted(reply, statusCode)
    } else {
      const filtered: Record<string, unknown> = {}
      copyEndToEndHeaders(headers, filtered)
      this.started = true
      hop.observer.responseStarted(reply, statusCode)
      // Stored only: nothing is written before send().
      reply.code(statusCode).headers(filtered as Record<string, string | string[]>)
      this.chunks = []
    }
  }

  /** Not direct: from here on, the answer is a stream with what was collected so far. */
  startStream(): UpstreamBody {
    const stream = new UpstreamBody(this)
    for (const chunk of this.chunks ?? []) stream.push(chunk)
    this.chunks = undefined
    this.stream = stream
    this.reply.send(stream)
    return stream
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.done) return
    const chunks = this.chunks
    if (chunks !== undefined) {
      chunks.push(chunk)
      this.collected += chunk.length
      if (this.collected <= COLLECT_LIMIT) return
      const stream = this.startStream()
      if (stream.readableLength >= stream.readableHighWaterMark) controller.pause()
      return
    }
    const stream = this.stream
    if (stream !== undefined) {
      if (!stream.push(chunk)) controller.pause()
      return
    }
    const res = this.reply.raw
    if (!res.write(chunk)) {
      controller.pause()
      res.once('drain', onClientDrain)
    }
  }

  onResponseEnd(): void {
    if (this.done) return
    this.done = true
    const chunks = this.chunks
    if (chunks !== undefined) {
      if (this.collected === 0) this.reply.send()
      // reply.send() of a Buffer would add a Content-Type the upstream did not send.
      else if (this.reply.hasHeader('content-type')) this.reply.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.collected))
      else this.startStream().push(null)
      return
    }
    if (this.stream !== undefined) this.stream.push(null)
    else this.reply.raw.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.done) return
    this.done = true
    // The client left first (and the request was aborted for it): no one to answer, nothing counted.
    if (this.clientGone) return
    if (!this.started) {
      this.hop.observer.failedBeforeResponse(this.reply, error)
      return
    }
    this.hop.observer.failedAfterResponse(this.reply, error)
    if (this.chunks !== undefined) {
      // Nothing was written yet. Like a streamed answer that breaks: the
      // status, headers and what came, then the connection is cut.
      const stream = this.startStream()
      stream.failure = error
    } else if (this.stream !== undefined) this.stream.destroy(error)
    else this.reply.raw.destroy()
  }

  clientClosed(): void {
    if (this.done || this.clientGone) return
    this.clientGone = true
    this.controller?.abort(new errors.RequestAbortedError())
  }
}

// Larger answers are streamed to reply.send() rather than collected.
const COLLECT_LIMIT = 64 * 1024

/** The upstream's body for `reply.send()`: reading resumes the upstream, destroying aborts it. */
class UpstreamBody extends Readable {
  readonly exchange: Exchange
  /** The upstream failed after what was pushed: fail once that is written out. */
  failure: Error | undefined = undefined
  constructor(exchange: Exchange) {
    super()
    this.exchange = exchange
  }
  override _read(): void {
    // A tick later the last chunk has been written (and the headers with it),
    // so the client sees a cut answer rather than an error response.
    if (this.failure !== undefined) setImmediate(failBody, this)
    else this.exchange.controller?.resume()
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.exchange.clientClosed()
    callback(error)
  }
}

function failBody(body: UpstreamBody) {
  body.destroy(body.failure)
}
