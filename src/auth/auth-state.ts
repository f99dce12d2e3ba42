// The auth outcome of one request, owned by auth/decision.ts (the one way to
// allow, deny or fail): what the access line and the request span report.
import type { Mechanism, Outcome, UnauthorizedSource } from '../reasons.ts'

export type AuthState = {
  mechanism?: Mechanism
  outcome?: Outcome
  reason?: string
  source?: UnauthorizedSource
  userId?: string
  /** A request of the synthetic sign-in probe (verified mark): counted on the probe's series only. */
  probe?: boolean
  authEndpoint?: string
  /** Extra fields for the one log line (cookie names, origin …). */
  detail?: Record<string, unknown>
}

declare module 'fastify' {
  interface FastifyRequest {
    authgw: AuthState
  }
}
