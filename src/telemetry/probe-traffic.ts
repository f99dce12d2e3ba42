// Probe requests never move a user-facing series (docs/adr/0050-sign-in-probe.md): the gateway
// counts them on the probe's own metrics only, so a failing probe can neither
// raise nor mask a user-facing alert or SLO. Every Metrics method is listed
// here as user-facing (muted for probe requests) or not (kept: the store, the
// keys and the caches are the same for everyone); a test fails when a method
// is in neither list.
import type { Metrics } from './metrics.ts'

type MethodName = { [K in keyof Metrics]: Metrics[K] extends (...args: never[]) => unknown ? K : never }[keyof Metrics]

export const USER_FACING_METHODS = [
  'observeRequest',
  'decision',
  'unauthorized',
  'sessionNull',
  'jwtFailure',
  'tokenIssued',
  'tokenIssueFailure',
  'signInAttempt',
  'observeUpstream',
  'upstreamFailure',
  'unavailable',
  'rateLimited',
  'upstreamRetry',
  'setCookieProblem',
  // single sign-on: the probe signs in with email and password, never through a provider
  'oauthRedirect',
  'oauthCallback',
  'observeOAuthProvider',
] as const satisfies readonly MethodName[]

export const SHARED_METHODS = [
  'jwksRefresh',
  'setPool',
  'dbError',
  'sessionCacheLookup',
  'jwtCacheLookup',
  'sessionRevoked',
] as const satisfies readonly MethodName[]

const muted = new WeakMap<Metrics, Metrics>()

/** The metrics a request may move: all of them, or for a probe request only the shared ones. */
export function metricsFor(metrics: Metrics, probe: boolean | undefined): Metrics {
  if (probe !== true) return metrics
  let view = muted.get(metrics)
  if (view === undefined) {
    const copy: Record<string, unknown> = { ...metrics }
    for (const name of USER_FACING_METHODS) copy[name] = () => undefined
    view = copy as Metrics
    muted.set(metrics, view)
  }
  return view
}

/**
 * Session tokens a probe request is signing out right now. better-auth's
 * session-deleted hook carries no request, so the sign-out marks the token for
 * the length of its better-auth call: the deletion is the probe's, not a
 * revocation on `authgw_sessions_revoked_total`.
 */
export class ProbeSignOuts {
  readonly #tokens = new Set<string>()

  async during<T>(token: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (token === undefined) return fn()
    this.#tokens.add(token)
    try {
      return await fn()
    } finally {
      this.#tokens.delete(token)
    }
  }

  has(token: string): boolean {
    return this.#tokens.has(token)
  }
}
