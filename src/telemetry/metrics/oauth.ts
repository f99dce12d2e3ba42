// Single sign-on: callbacks by provider, outcome and reason,
// redirects to providers, and the gateway's requests to them. Series exist
// only for configured providers: without SSO the scrape is unchanged.
import { Counter, Histogram } from 'prom-client'
import type { Registry } from 'prom-client'
import { OAuthCallbackOutcome, OAuthCallbackReason, OAuthEndpoint, valuesOf } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'
import { exemplarLabels } from './shared.ts'
import type { Exemplar } from './shared.ts'

// Provider calls: discovery and JWKS are small GETs, the token exchange the slowest.
const PROVIDER_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.5, 2.5, 5, 10]

/** The outcome an SSO callback reason is counted under: the provider's failures are `error`, never the user's. */
export function oauthOutcomeOf(reason: OAuthCallbackReason): OAuthCallbackOutcome {
  if (reason === OAuthCallbackReason.none) return OAuthCallbackOutcome.success
  return reason === OAuthCallbackReason.provider_unavailable ? OAuthCallbackOutcome.error : OAuthCallbackOutcome.failure
}

export function oauthMetrics(registry: Registry, providers: readonly string[]) {
  const callbacks = new Counter({
    name: MetricName.oauthCallbacks,
    help: 'SSO provider callbacks, by provider, outcome (success, failure, error = provider unavailable) and reason (none on success).',
    labelNames: ['provider', 'outcome', 'reason'] as const,
    registers: [registry],
    enableExemplars: true,
  })
  const redirects = new Counter({
    name: MetricName.oauthRedirects,
    help: 'SSO sign-ins started: redirects to a provider, by provider.',
    labelNames: ['provider'] as const,
    registers: [registry],
  })
  const providerRequests = new Histogram({
    name: MetricName.oauthProviderRequestDuration,
    help: "Duration of the gateway's requests to an SSO provider (failed ones included), by provider and endpoint.",
    labelNames: ['provider', 'endpoint'] as const,
    buckets: PROVIDER_BUCKETS,
    registers: [registry],
  })
  for (const provider of providers) {
    redirects.inc({ provider }, 0)
    for (const reason of valuesOf(OAuthCallbackReason)) callbacks.inc({ labels: { provider, outcome: oauthOutcomeOf(reason), reason }, value: 0 })
    for (const endpoint of valuesOf(OAuthEndpoint)) providerRequests.zero({ provider, endpoint })
  }
  return {
    oauthCallback(provider: string, reason: OAuthCallbackReason, e: Exemplar) {
      callbacks.inc({ labels: { provider, outcome: oauthOutcomeOf(reason), reason }, value: 1, exemplarLabels: exemplarLabels(e) })
    },
    oauthRedirect(provider: string) {
      redirects.inc({ provider })
    },
    observeOAuthProvider(provider: string, endpoint: OAuthEndpoint, seconds: number) {
      providerRequests.observe({ provider, endpoint }, seconds)
    },
  }
}
