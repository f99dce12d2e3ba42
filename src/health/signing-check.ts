// Proof that this instance can sign: a throwaway JWT through better-auth's own
// signJWT, which reads the newest key from the database and decrypts its
// private half with BETTER_AUTH_SECRET. Key presence alone (the JWKS loads
// fine with any secret) says nothing about the secret; without this check a
// replica with another secret reports ready and then answers every cookie
// request 503 jwks_unavailable.
import type { Auth } from '../auth/better-auth.ts'
import { SigningFailure, classifySigningError } from '../auth/signing-errors.ts'

export const SigningState = {
  ok: 'ok',
  /** The stored private keys were encrypted under another BETTER_AUTH_SECRET. */
  secret_mismatch: 'secret_mismatch',
  /** Signing failed for another reason (database, key table). */
  failed: 'failed',
} as const
export type SigningState = (typeof SigningState)[keyof typeof SigningState]

export const SECRET_MISMATCH_MESSAGE =
  'BETTER_AUTH_SECRET cannot decrypt the signing keys stored in the database — it differs from the secret of the instance that created them. ' +
  'Give this instance that secret (every replica must share one), or, to start over with this secret, delete the rows of the jwks table (tokens signed with the old keys then stop verifying).'

export type SigningResult = { state: SigningState; detail?: string }

/** One test signing, classified. */
export async function trySigning(auth: Auth): Promise<SigningResult> {
  try {
    await auth.api.signJWT({ body: { payload: { sub: 'authgw-signing-check', purpose: 'readiness' } } })
    return { state: SigningState.ok }
  } catch (err) {
    if (classifySigningError(err) === SigningFailure.key_undecryptable) return { state: SigningState.secret_mismatch, detail: SECRET_MISMATCH_MESSAGE }
    const code = (err as { code?: string }).code
    return { state: SigningState.failed, detail: `test signing failed (${code ?? (err instanceof Error ? err.name : 'error')})` }
  }
}

/** How long a result is reused: /readyz is unauthenticated and may be flooded. */
const OK_TTL_MS = 30_000
const FAILED_TTL_MS = 2_000

/**
 * A cached, single-flight signing check for readiness: at most one signing
 * (one key read) per OK_TTL_MS while healthy, per FAILED_TTL_MS while not.
 */
export function createSigningCheck(auth: Auth, opts: { now?: () => number; onResult?: (r: SigningResult) => void } = {}) {
  const now = opts.now ?? Date.now
  const ttl = (r: SigningResult) => (r.state === SigningState.ok ? OK_TTL_MS : FAILED_TTL_MS)
  let settled: { at: number; result: SigningResult } | undefined
  let pending: Promise<SigningResult> | undefined
  return (): Promise<SigningResult> => {
    if (settled !== undefined && now() - settled.at < ttl(settled.result)) return Promise.resolve(settled.result)
    pending ??= trySigning(auth).then((result) => {
      settled = { at: now(), result }
      pending = undefined
      opts.onResult?.(result)
      return result
    })
    return pending
  }
}
