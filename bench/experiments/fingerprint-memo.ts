// Experiment: the same pseudonyms as src/telemetry/fingerprint.ts, with the
// HMAC key imported once as a KeyObject (createHmac with a raw Buffer key
// imports it on every call) and a bounded memo per user id.
import { createHmac, createSecretKey } from 'node:crypto'

export { secretFingerprint } from '../../src/telemetry/fingerprint.ts'

const MAX = 10_000

export function pseudonymize(secret: string): (userId: string) => string {
  const key = createSecretKey(createHmac('sha256', 'authgw/pseudonym/v1').update(secret).digest())
  const memo = new Map<string, string>()
  return (userId) => {
    let v = memo.get(userId)
    if (v === undefined) {
      v = createHmac('sha256', key).update(userId).digest('hex').slice(0, 16)
      if (memo.size >= MAX) memo.delete(memo.keys().next().value as string)
      memo.set(userId, v)
    }
    return v
  }
}
