// The published secret fingerprint keeps its purpose (replicas of one
// deployment agree; different secrets differ) without being an offline
// oracle: it is salted per deployment, memory-hard and truncated
// (docs/adr/0003-secret-fingerprint.md).
import { createHmac, randomBytes, scryptSync } from 'node:crypto'
import t from 'tap'
import { primeSecretFingerprint, secretFingerprint } from '../../src/telemetry/fingerprint.ts'

const ISSUER = 'https://auth.example.com'

t.test('replicas of one deployment agree; different secrets differ', async (t) => {
  const secret = randomBytes(32).toString('base64')
  const a = secretFingerprint(secret, ISSUER)
  t.match(a, /^[0-9a-f]{6}$/, '24 bits, as hex')
  t.equal(secretFingerprint(secret, ISSUER), a, 'stable')
  t.equal(await primeSecretFingerprint(`${secret}`, ISSUER), a, 'the async path derives the same value')
  const others = new Set(Array.from({ length: 8 }, () => secretFingerprint(randomBytes(32).toString('base64'), ISSUER)))
  t.notOk(others.has(a), 'other secrets, other fingerprints')
})

t.test('not an offline oracle', async (t) => {
  const secret = 'guessable-secret-for-an-oracle-test-0001'
  const published = secretFingerprint(secret, ISSUER)
  // What the fingerprint used to be: an HMAC under a fixed public key, so one
  // HMAC per guess (microseconds) confirmed a guessed secret.
  const oldOracle = createHmac('sha256', 'authgw/secret-fingerprint/v1').update(secret).digest('hex').slice(0, 12)
  t.not(published, oldOracle.slice(0, published.length), 'not the fixed-key HMAC')
  t.not(published, createHmac('sha256', ISSUER).update(secret).digest('hex').slice(0, 6), 'not any fast keyed hash of the issuer either')

  // Salted per deployment: the same secret under another issuer is unrelated,
  // so one table of guesses does not serve two deployments.
  t.not(secretFingerprint(secret, 'https://auth.other.example'), published)

  // A guess costs one scrypt with N = 2^15, r = 8 (32 MiB): deriving it with
  // those parameters is the only way to reproduce the value.
  const recomputed = scryptSync(secret, `authgw/secret-fingerprint/v2\u0000${ISSUER}`, 3, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }).toString('hex')
  t.equal(recomputed, published, 'scrypt(N=2^15, r=8, p=1), salted with the deployment, 3 bytes')
  const cheaper = scryptSync(secret, `authgw/secret-fingerprint/v2\u0000${ISSUER}`, 3, { N: 2 ** 10, r: 8, p: 1 }).toString('hex')
  t.not(cheaper, published, 'a cheaper KDF does not reproduce it')

  // Truncated: 24 bits reveal at most 24 bits of a secret that must carry
  // ~100 or more (secret-strength.ts), and any dictionary larger than 2^24
  // candidates yields many false matches.
  t.equal(Buffer.from(published, 'hex').length * 8, 24)
})
