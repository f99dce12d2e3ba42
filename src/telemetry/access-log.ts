// One access line and one request-histogram observation per request. Fastify
// runs onResponse only when the response finished; a response that never
// finishes (the client left: 499 `client_closed`; the gateway cut it after an
// upstream failure mid-body) is written from the response's 'close' event.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Outcome, RequestOutcome } from '../reasons.ts'
import { withoutQuery } from '../proxy/request-target.ts'
import type { Metrics } from './metrics.ts'
import { metricsFor } from './probe-traffic.ts'
import { routeLabel } from './route-label.ts'

/** nginx's status for a request whose client closed the connection before the answer was complete. */
export const CLIENT_CLOSED_STATUS = 499

const kReply = Symbol('authgw.reply')
const kLogged = Symbol('authgw.accessLogged')
type WatchedResponse = FastifyReply['raw'] & { [kReply]?: FastifyReply; [kLogged]?: boolean }

export type AccessLog = {
  /** Called in onRequest: a response closed before it finished still gets its line. */
  watch(reply: FastifyReply): void
  /** Called in onResponse. */
  write(request: FastifyRequest, reply: FastifyReply): void
}

export function createAccessLog(metrics: Metrics): AccessLog {
  const write = (request: FastifyRequest, reply: FastifyReply, closed?: 'client' | 'gateway') => {
    const res = reply.raw as WatchedResponse
    if (res[kLogged]) return
    res[kLogged] = true
    const route = routeLabel(request.routeOptions.url, request.url)
    const status = closed === 'client' ? CLIENT_CLOSED_STATUS : reply.statusCode
    const seconds = reply.elapsedTime / 1000
    // Captured when the request span started: its context is gone by now.
    // A denial's or a 5xx's trace is exported even when the sampler dropped it (outcome-sampling.ts).
    const ids = request.tracing?.ids ?? (status === 401 || status === 403 || status >= 500 ? request.tracing?.recordedIds : undefined)
    const a = request.authgw
    metricsFor(metrics, a.probe).observeRequest(request.method, route, status, seconds, ids ? { trace_id: ids.trace_id } : undefined)
    // reqId comes from the request's child logger.
    const line = {
      method: request.method,
      route,
      path: withoutQuery(request.url).slice(0, 256),
      status,
      duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
      mechanism: a.mechanism,
      outcome: closed === 'client' ? RequestOutcome.client_closed : closed === 'gateway' ? Outcome.error : a.outcome,
      reason: a.reason,
      source: a.source,
      user: a.userId,
      probe: a.probe,
      trace_id: ids?.trace_id,
      span_id: ids?.span_id,
      ...a.detail,
      upstreamFailure: request.upstream?.failure,
      upstreamRetry: request.upstream?.retry,
    }
    if (status >= 500 || closed === 'gateway') request.log.error(line, 'request')
    else request.log.info(line, 'request')
  }
  function onClose(this: WatchedResponse) {
    const reply = this[kReply]
    if (reply === undefined || this[kLogged] || this.writableFinished) return
    // The hop records an upstream failure before it cuts a started response.
    const cutByGateway = reply.request.upstream?.failure !== undefined && this.headersSent
    write(reply.request, reply, cutByGateway ? 'gateway' : 'client')
  }
  return {
    write: (request, reply) => write(request, reply),
    watch(reply: FastifyReply) {
      const res = reply.raw as WatchedResponse
      res[kReply] = reply
      res.on('close', onClose)
    },
  }
}
