// How the /api/auth/* mount answers what better-auth cannot: a target
// better-auth would read differently (400), a store outage (503
// store_unavailable, never a 401 or a bare 500), an unknown endpoint (the
// gateway's 404 shape).
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Pool } from 'pg'
import { pingDatabase } from '../db/pool.ts'
import { Mechanism, RequestErrorReason, TokenIssueFailureReason, UnavailableReason } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { exemplarOf, unavailable } from './decision.ts'
import type { AuthExchange } from './exchange.ts'
import { AuthRoute, SESSION_ROUTES } from './routes.ts'

const STORE_PING_TIMEOUT_MS = 1000
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'

/** `/api/auth/./sign-in/email` and its kin: better-auth would act on one path while the gateway labels, counts and audits another. */
export function refuseNonCanonical(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  request.authgw.reason = RequestErrorReason.bad_request
  return reply.code(400).send({ error: RequestErrorReason.bad_request, reason: RequestErrorReason.bad_request, requestId: request.id })
}

/** The store cannot answer: 503 store_unavailable, and no cookie of better-auth's answer reaches the client. */
export function storeUnavailable(metrics: Metrics, request: FastifyRequest, reply: FastifyReply, route: string): FastifyReply {
  reply.removeHeader('set-cookie')
  if (route === AuthRoute.token) metrics.tokenIssueFailure(TokenIssueFailureReason.store_unavailable, exemplarOf())
  return unavailable(metrics, request, reply, Mechanism.session, UnavailableReason.store_unavailable)
}

/**
 * Any other better-auth 5xx while the database is really gone (sign-in and
 * sign-up answer a store outage with a bare 500): 503 store_unavailable.
 * Session routes are decided by the store before this (session-verdict.ts).
 */
export async function mapStoreOutage(x: AuthExchange, pool: Pool): Promise<void> {
  if (SESSION_ROUTES.has(x.route) || x.status < 500) return
  if (await storeReachable(pool)) return
  const { request, reply } = x
  x.status = 503
  x.body = Buffer.from(JSON.stringify({ error: 'service_unavailable', reason: UnavailableReason.store_unavailable, requestId: request.id }))
  reply.code(503).header('content-type', JSON_CONTENT_TYPE).header('retry-after', '5').removeHeader('set-cookie')
  request.authgw.reason = UnavailableReason.store_unavailable
  request.authgw.outcome = 'error'
}

/** Unknown better-auth paths: the same 404 shape as the rest of the gateway. */
export function shapeNotFound(x: AuthExchange): void {
  if (x.status !== 404 || x.body.length !== 0) return
  x.body = Buffer.from(JSON.stringify({ error: 'not_found', reason: RequestErrorReason.not_found, requestId: x.request.id }))
  x.reply.header('content-type', JSON_CONTENT_TYPE)
}

async function storeReachable(pool: Pool): Promise<boolean> {
  try {
    await pingDatabase(pool, STORE_PING_TIMEOUT_MS)
    return true
  } catch {
    return false
  }
}
