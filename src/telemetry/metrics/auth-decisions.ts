// Auth decisions on protected routes and every 401 and 503 the gateway sent,
// by who produced it, mechanism and reason; written through auth/decision.ts.
import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import {
  AuthDisagreementReason,
  AuthReason,
  JwtRefusalReason,
  Mechanism,
  NoCredentialReason,
  Outcome,
  SessionNullReason,
  SessionReason,
  UnavailableReason,
  UpstreamRejectReason,
  valuesOf,
} from '../../reasons.ts'
import type { UnauthorizedReason, UnauthorizedSource } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'
import { exemplarLabels } from './shared.ts'
import type { Exemplar } from './shared.ts'

/** `sso`: SSO providers are configured, so mechanism="oauth" series exist. */
export function authDecisionMetrics(registry: Registry, sso = false) {
  const authDecisions = new Counter({
    name: MetricName.authDecisions,
    help: 'Authentication decisions on protected routes, by mechanism and outcome.',
    labelNames: ['mechanism', 'outcome'] as const,
    registers: [registry],
  })
  const unauthorized = new Counter({
    name: MetricName.unauthorized,
    help: 'Every 401 the gateway sent, by who produced it, mechanism and reason.',
    labelNames: ['source', 'mechanism', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const sessionNulls = new Counter({
    name: MetricName.sessionNulls,
    help: 'Session lookups that yielded no session, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  })
  const jwtValidationFailures = new Counter({
    name: MetricName.jwtValidationFailures,
    help: 'Bearer JWTs rejected, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const authUnavailable = new Counter({
    name: MetricName.authUnavailable,
    help: 'Auth decisions that could not be made (answered 503), by mechanism and reason.',
    labelNames: ['mechanism', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })

  // Every fixed combination exists at 0 from the first scrape, so rate() and
  // ratio rules work after a restart.
  for (const mechanism of valuesOf(Mechanism)) {
    if (mechanism === Mechanism.oauth && !sso) continue
    for (const outcome of valuesOf(Outcome)) authDecisions.inc({ mechanism, outcome }, 0)
  }
  for (const [source, mechanism, reason] of unauthorizedCombinations()) {
    unauthorized.inc({ labels: { source, mechanism, reason }, value: 0 })
  }
  for (const reason of valuesOf(SessionNullReason)) sessionNulls.inc({ reason }, 0)
  for (const reason of valuesOf(JwtRefusalReason)) jwtValidationFailures.inc({ labels: { reason }, value: 0 })
  for (const [mechanism, reason] of [
    [Mechanism.session, UnavailableReason.store_unavailable],
    [Mechanism.session, UnavailableReason.jwks_unavailable],
    [Mechanism.jwt, UnavailableReason.jwks_unavailable],
    ...(sso ? [[Mechanism.oauth, UnavailableReason.provider_unavailable] as const] : []),
  ] as const) {
    authUnavailable.inc({ labels: { mechanism, reason }, value: 0 })
  }

  return {
    decision(mechanism: Mechanism, outcome: Outcome) {
      authDecisions.inc({ mechanism, outcome })
    },
    unauthorized(source: UnauthorizedSource, mechanism: Mechanism, reason: UnauthorizedReason, e: Exemplar) {
      unauthorized.inc({ labels: { source, mechanism, reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
    sessionNull(reason: SessionNullReason) {
      sessionNulls.inc({ reason })
    },
    jwtFailure(reason: JwtRefusalReason, e: Exemplar) {
      jwtValidationFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
    unavailable(mechanism: Mechanism, reason: UnavailableReason, e: Exemplar) {
      authUnavailable.inc({ labels: { mechanism, reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
  }
}

/** The bounded set of (source, mechanism, reason) triples that can occur. */
export function unauthorizedCombinations(): Array<[UnauthorizedSource, Mechanism, UnauthorizedReason]> {
  const out: Array<[UnauthorizedSource, Mechanism, UnauthorizedReason]> = []
  for (const r of valuesOf(SessionReason)) out.push(['gateway', 'session', r])
  for (const r of valuesOf(JwtRefusalReason)) out.push(['gateway', 'jwt', r])
  out.push(['gateway', 'none', NoCredentialReason.no_credentials])
  for (const r of valuesOf(AuthReason)) out.push(['auth', 'none', r])
  for (const r of valuesOf(SessionReason)) out.push(['auth', 'session', r])
  for (const r of valuesOf(AuthDisagreementReason)) out.push(['auth', 'session', r])
  for (const m of [Mechanism.session, Mechanism.jwt, Mechanism.none]) out.push(['upstream', m, UpstreamRejectReason.upstream_rejected])
  return out
}
