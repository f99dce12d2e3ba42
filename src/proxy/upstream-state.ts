// The proxy's per-request state, owned by the proxy: the JWT it sends, when
// the upstream call started, and why it failed or was retried. The access
// line reads it; tracing is told about a failure through its own API.
import type { UpstreamFailureReason, UpstreamRetryReason } from '../reasons.ts'

export type UpstreamState = {
  /** The credential the upstream receives (undefined on a public path). */
  jwt?: string
  /** performance.now() when the upstream call started. */
  startedAt?: number
  /** The call failed without a usable answer (before or after the response started). */
  failure?: UpstreamFailureReason
  /** The call was sent a second time. */
  retry?: UpstreamRetryReason
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the proxy on /api/* requests it forwards; undefined elsewhere. */
    upstream?: UpstreamState
  }
}
