import { createHmac } from 'node:crypto'

// A fixed key: the fingerprint must be comparable across instances, and a
// 48-bit HMAC prefix reveals nothing usable about the secret.
const FINGERPRINT_KEY = 'authgw/secret-fingerprint/v1'

/** Short hex of a keyed hash of the secret, so two instances can be compared. */
export function secretFingerprint(secret: string): string {
  return createHmac('sha256', FINGERPRINT_KEY).update(secret).digest('hex').slice(0, 12)
}

/** Pseudonymous user id for logs and spans: a keyed hash, never the email or the raw id. */
export function pseudonymize(secret: string): (userId: string) => string {
  const key = createHmac('sha256', 'authgw/pseudonym/v1').update(secret).digest()
  return (userId) => createHmac('sha256', key).update(userId).digest('hex').slice(0, 16)
}
