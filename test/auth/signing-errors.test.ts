// signJWT failures are classified by error type and code, not message text:
// the readiness check's secret_mismatch and the mint's signing_failed /
// store_unavailable read one classification. The end-to-end cases (a real
// secret mismatch) are in test/health/signing-readiness.test.ts and
// test/faults/secret-mismatch.test.ts.
import t from 'tap'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { BetterAuthError } from '@better-auth/core/error'
import { JWKInvalid, JOSEError } from 'jose/errors'
import { SigningFailure, classifySigningError } from '../../src/auth/signing-errors.ts'
import { mintFailureReason } from '../../src/auth/minter.ts'

t.test('a BetterAuthError (the key does not decrypt) is key_undecryptable, whatever its message says', async (t) => {
  t.equal(classifySigningError(new BetterAuthError('anything at all')), SigningFailure.key_undecryptable)
  t.equal(classifySigningError(new Error('wrapped', { cause: new BetterAuthError('x') })), SigningFailure.key_undecryptable, 'found through cause')
  t.equal(mintFailureReason(new BetterAuthError('x')), 'signing_failed')
})

t.test('jose errors are key_unusable', async (t) => {
  t.equal(classifySigningError(new JWKInvalid('bad key')), SigningFailure.key_unusable)
  t.equal(classifySigningError(new JOSEError('generic')), SigningFailure.key_unusable)
  t.equal(mintFailureReason(new JWKInvalid('bad key')), 'signing_failed')
})

t.test('a message that merely mentions decryption is not a key problem', async (t) => {
  t.equal(classifySigningError(new Error('Failed to decrypt private key')), SigningFailure.store)
})

t.test('a real database connection failure is the store', async (t) => {
  // A port that accepts and immediately closes: pg fails the way an outage does.
  const server = createServer((socket) => socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const client = new pg.Client({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, user: 'x', database: 'x', connectionTimeoutMillis: 2000 })
  const err = await client.connect().then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof Error, 'pg failed to connect')
  t.equal(classifySigningError(err), SigningFailure.store)
  t.equal(mintFailureReason(err), 'store_unavailable')
})
