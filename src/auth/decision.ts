// The one way to allow, deny or fail an auth decision: status, JSON body,
// reason, log fields, span attributes and counters are set together here so
// they can never disagree.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { JwtRefusalReason, Mechanism, OAuthCallbackReason, Outcome, SessionReason, SignInMethod, SignInOutcome, UnauthorizedSource, UnavailableReason } from '../reasons.ts'
import type { UnauthorizedReason } from '../reasons.ts'
import type { Classified } from '../oauth/classify.ts'
import type { AuthState } from './auth-state.ts'
import { Attr } from '../telemetry/attributes.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { metricsFor } from '../telemetry/probe-traffic.ts'
import { activeSpan, activeTraceIds } from '../telemetry/tracing.ts'

export type { AuthState } from './auth-state.ts'

const SESSION_REASONS = new Set<string>(Object.values(SessionReason))
const JWT_REASONS = new Set<string>(Object.values(JwtRefusalReason))

export const exemplarOf = () => {
  // Called only for denials and failures, whose traces are always exported.
  const ids = activeTraceIds({ recorded: true })
  return ids ? { trace_id: ids.trace_id } : undefined
}

function annotate(request: FastifyRequest, state: AuthState): void {
  Object.assign(request.authgw, state)
  const span = activeSpan()
  if (span) {
    if (state.mechanism) span.setAttribute(Attr.mechanism, state.mechanism)
    if (state.outcome) span.setAttribute(Attr.outcome, state.outcome)
    if (state.reason) span.setAttribute(Attr.reason, state.reason)
  }
}

export function allow(all: Metrics, request: FastifyRequest, mechanism: Mechanism, userId: string | undefined): void {
  const metrics = metricsFor(all, request.authgw.probe)
  metrics.decision(mechanism, Outcome.allowed)
  annotate(request, { mechanism, outcome: Outcome.allowed, userId })
}

/**
 * Count a 401 that someone else produced (better-auth or the upstream) and
 * annotate the request; the caller sends the response.
 */
export function recordUnauthorized(
  all: Metrics,
  request: FastifyRequest,
  source: UnauthorizedSource,
  mechanism: Mechanism,
  reason: UnauthorizedReason,
): void {
  const metrics = metricsFor(all, request.authgw.probe)
  metrics.unauthorized(source, mechanism, reason, exemplarOf())
  annotate(request, { mechanism, outcome: Outcome.denied, reason, source })
}

/** Deny a request on a protected route: 401 with the reason. */
export function deny(
  all: Metrics,
  request: FastifyRequest,
  reply: FastifyReply,
  mechanism: Mechanism,
  reason: UnauthorizedReason,
): FastifyReply {
  const metrics = metricsFor(all, request.authgw.probe)
  const e = exemplarOf()
  metrics.decision(mechanism, Outcome.denied)
  metrics.unauthorized(UnauthorizedSource.gateway, mechanism, reason, e)
  if (mechanism === Mechanism.session && SESSION_REASONS.has(reason)) metrics.sessionNull(reason as SessionReason)
  if (mechanism === Mechanism.jwt && JWT_REASONS.has(reason)) metrics.jwtFailure(reason as JwtRefusalReason, e)
  annotate(request, { mechanism, outcome: Outcome.denied, reason, source: UnauthorizedSource.gateway })
  if (mechanism === Mechanism.jwt) {
    reply.header('www-authenticate', `Bearer error="invalid_token", error_description="${reason}"`)
  } else if (mechanism === Mechanism.none) {
    // RFC 6750 §3.1: no error code when the request carried no credentials.
    reply.header('www-authenticate', 'Bearer realm="authgw"')
  }
  return reply.code(401).send({ error: 'unauthorized', reason, requestId: request.id })
}

/** The decision could not be made (store or keys unavailable): 503, never 401. */
export function unavailable(
  all: Metrics,
  request: FastifyRequest,
  reply: FastifyReply,
  mechanism: Mechanism,
  reason: UnavailableReason,
): FastifyReply {
  const metrics = metricsFor(all, request.authgw.probe)
  metrics.decision(mechanism, Outcome.error)
  metrics.unavailable(mechanism, reason, exemplarOf())
  annotate(request, { mechanism, outcome: Outcome.error, reason })
  return reply.code(503).header('retry-after', '5').send({ error: 'service_unavailable', reason, requestId: request.id })
}

/**
 * The end of an SSO sign-in (a provider callback), counted, logged, audited
 * and put on the span in one place. Success and ordinary failures keep
 * better-auth's redirect (to the app, or to its error page with `error=`);
 * an unavailable provider is a 503 with its reason, never the user's fault.
 */
export function oauthCallback(
  metrics: Metrics,
  request: FastifyRequest,
  reply: FastifyReply,
  provider: string,
  result: Classified,
  detail: Record<string, unknown>,
): FastifyReply | undefined {
  const { reason } = result
  const ok = reason === OAuthCallbackReason.none
  const e = exemplarOf()
  metrics.oauthCallback(provider, reason, e)
  metrics.signInAttempt(ok ? SignInOutcome.success : SignInOutcome.failure, reason, SignInMethod.oauth)
  activeSpan()?.setAttribute(Attr.oauthProvider, provider)
  if (result.idTokenCause !== undefined) activeSpan()?.setAttribute(Attr.oauthIdTokenCause, result.idTokenCause)
  const fields = {
    event: 'sign_in',
    method: SignInMethod.oauth,
    provider,
    outcome: ok ? SignInOutcome.success : SignInOutcome.failure,
    reason,
    idTokenCause: result.idTokenCause,
    providerError: result.providerError,
    providerErrorDescription: result.providerErrorDescription,
    ...(ok ? {} : detail),
  }
  if (ok) {
    annotate(request, { mechanism: Mechanism.oauth, outcome: Outcome.allowed })
    request.log.info(fields, 'audit')
    return undefined
  }
  request.authgw.detail = { ...detail, provider, idTokenCause: result.idTokenCause, providerError: result.providerError }
  request.log.warn(fields, 'audit')
  if (reason === OAuthCallbackReason.provider_unavailable) {
    reply.removeHeader('location').removeHeader('set-cookie')
    return unavailable(metrics, request, reply, Mechanism.oauth, UnavailableReason.provider_unavailable)
  }
  annotate(request, { mechanism: Mechanism.oauth, outcome: Outcome.denied, reason })
  return undefined
}
