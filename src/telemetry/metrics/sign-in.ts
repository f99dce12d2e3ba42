// What better-auth's endpoints did: sign-in attempts, tokens issued and
// refused, rate limiting, sessions ended.
import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import { RateLimitReason, SignInMethod, SignInOutcome, SignInReason, TokenIssueFailureReason, TokenKind, TokenVia, valuesOf } from '../../reasons.ts'
import type { RateLimitReason as RateLimitReasonT } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'
import { exemplarLabels } from './shared.ts'
import type { Exemplar } from './shared.ts'

export function signInMetrics(registry: Registry) {
  const tokensIssued = new Counter({
    name: MetricName.tokensIssued,
    help: 'Tokens issued, by kind (jwt or session) and path.',
    labelNames: ['kind', 'via'] as const,
    registers: [registry],
  })
  const tokenIssueFailures = new Counter({
    name: MetricName.tokenIssueFailures,
    help: 'Failed token issuances, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const signInAttempts = new Counter({
    name: MetricName.signInAttempts,
    help: 'Sign-in attempts, by method, outcome and reason (none on success).',
    labelNames: ['method', 'outcome', 'reason'] as const,
    registers: [registry],
  })
  const rateLimited = new Counter({
    name: MetricName.rateLimited,
    help: 'Requests answered 429 by better-auth rate limiting, by route and reason (client_ip_unresolved: the limited address is a TRUST_PROXY hop, so everyone behind it shares one bucket).',
    labelNames: ['route', 'reason'] as const,
    registers: [registry],
  })
  const sessionsRevoked = new Counter({
    name: MetricName.sessionsRevoked,
    help: 'Sessions ended through sign-out or revocation.',
    registers: [registry],
  })

  for (const kind of valuesOf(TokenKind)) {
    for (const via of valuesOf(TokenVia)) {
      if (kind === TokenKind.jwt ? isJwtVia(via) : !isJwtVia(via)) tokensIssued.inc({ kind, via }, 0)
    }
  }
  for (const reason of valuesOf(TokenIssueFailureReason)) tokenIssueFailures.inc({ labels: { reason }, value: 0 })
  for (const method of valuesOf(SignInMethod)) {
    signInAttempts.inc({ method, outcome: SignInOutcome.success, reason: SignInReason.none }, 0)
    for (const reason of valuesOf(SignInReason)) {
      if (reason !== SignInReason.none) signInAttempts.inc({ method, outcome: SignInOutcome.failure, reason }, 0)
    }
  }

  return {
    tokenIssued(kind: TokenKind, via: TokenVia) {
      tokensIssued.inc({ kind, via })
    },
    tokenIssueFailure(reason: TokenIssueFailureReason, e: Exemplar) {
      tokenIssueFailures.inc({ labels: { reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
    signInAttempt(outcome: SignInOutcome, reason: SignInReason) {
      signInAttempts.inc({ method: SignInMethod.email, outcome, reason })
    },
    rateLimited(route: string, reason: RateLimitReasonT = RateLimitReason.rate_limited) {
      rateLimited.inc({ route, reason })
    },
    sessionRevoked() {
      sessionsRevoked.inc()
    },
  }
}

function isJwtVia(via: string): boolean {
  return via === TokenVia.token_endpoint || via === TokenVia.jwt_header || via === TokenVia.gateway_exchange
}
