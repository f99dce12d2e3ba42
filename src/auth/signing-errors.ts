// What a failed better-auth signJWT says, decided by the error's type and
// code, never its message: the gateway's token mint and the readiness
// signing check read the same classification.
//
// signJWT reads the newest key from the store, decrypts its private half with
// BETTER_AUTH_SECRET and imports it with jose. better-auth reports a key it
// cannot use as a BetterAuthError; called as the gateway calls it (no kid or
// alg override) the only one on that path is the failed decryption, i.e. a
// key encrypted under another secret. jose reports its own failures as
// JOSEError subclasses (`code` ERR_JOSE_* / ERR_JWK_* / ERR_JWS_* /
// ERR_JWT_*). Everything else is the store answering (pg's DatabaseError, a
// refused or timed-out connection) or not.

export const SigningFailure = {
  /** The stored private key does not decrypt with this instance's secret. */
  key_undecryptable: 'key_undecryptable',
  /** jose cannot import or use the key. */
  key_unusable: 'key_unusable',
  /** The key store failed (database errors, connection failures). */
  store: 'store',
} as const
export type SigningFailure = (typeof SigningFailure)[keyof typeof SigningFailure]

const JOSE_CODE = /^ERR_(JOSE|JWK|JWS|JWT)_/

/** Classify a signJWT failure, following `cause` a few levels deep. */
export function classifySigningError(err: unknown): SigningFailure {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === 'BetterAuthError') return SigningFailure.key_undecryptable
    const code = (e as Error & { code?: unknown }).code
    if (typeof code === 'string' && JOSE_CODE.test(code)) return SigningFailure.key_unusable
  }
  return SigningFailure.store
}
