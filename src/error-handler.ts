// How the gateway answers an error thrown by a route or by Fastify itself,
// and a request no route matched: a client error keeps its status with a
// reason from the closed set; anything else is 500 `internal_error`, logged
// with its type and code.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { RequestErrorReason } from './reasons.ts'
import { Attr } from './telemetry/attributes.ts'
import { activeSpan, noteRequestError } from './telemetry/tracing.ts'

type RouteError = Error & { statusCode?: number; code?: string }

export function errorHandler(err: RouteError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  if (status >= 500) {
    request.authgw.outcome = 'error'
    request.authgw.detail = { ...request.authgw.detail, errorType: err.code ?? err.name }
    request.log.error({ err: { type: err.name, code: err.code, message: err.message } }, 'request failed')
    activeSpan()?.setAttribute(Attr.errorType, err.code ?? err.name)
    noteRequestError(request, err.code ?? err.name)
    return reply.code(status).send({ error: 'internal_error', requestId: request.id })
  }
  const reason = clientErrorReason(status, err.code)
  request.authgw.reason = reason
  return reply.code(status).send({ error: reason, reason, requestId: request.id })
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  reply.code(404).send({ error: 'not_found', reason: RequestErrorReason.not_found, requestId: request.id })
}

/** The reason of a 4xx Fastify raised (body limits, parsers, timeouts). */
export function clientErrorReason(status: number, code: string | undefined): RequestErrorReason {
  if (status === 413) return RequestErrorReason.body_too_large
  if (status === 415) return RequestErrorReason.unsupported_media_type
  if (status === 400 && code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return RequestErrorReason.empty_body
  if (status === 408) return RequestErrorReason.request_timeout
  if (status === 404) return RequestErrorReason.not_found
  if (status === 431) return RequestErrorReason.header_too_large
  return RequestErrorReason.bad_request
}
