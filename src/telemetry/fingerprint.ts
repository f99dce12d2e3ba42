import { createHmac, createSecretKey, scrypt, scryptSync } from 'node:crypto'
import { LRUCache } from 'lru-cache'

// The secret fingerprint is published (authgw_config_info, startup log,
// check-config) so replicas can be compared without the secret. It must not
// let anyone who can scrape confirm a guessed secret: it is a memory-hard,
// salted, truncated derivation. Why these numbers:
// docs/adr/0003-secret-fingerprint.md.
const FINGERPRINT_SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const
/** 24 bits: enough to tell replicas apart, too few to confirm a guess. */
const FINGERPRINT_BYTES = 3
const FINGERPRINT_LABEL = 'authgw/secret-fingerprint/v2'

// Per process, by (salt, secret): tests build many gateways with one secret.
const fingerprints = new Map<string, string>()
const FINGERPRINT_MEMO_ENTRIES = 64

const memoKey = (secret: string, deployment: string) => `${deployment}\u0000${secret}`
const saltOf = (deployment: string) => `${FINGERPRINT_LABEL}\u0000${deployment}`
function remember(key: string, value: string): string {
  if (fingerprints.size >= FINGERPRINT_MEMO_ENTRIES) fingerprints.delete(fingerprints.keys().next().value as string)
  fingerprints.set(key, value)
  return value
}

/**
 * Short hex fingerprint of the secret, equal on every replica of one
 * deployment. `deployment` salts it (the JWT issuer: the same on every replica
 * of a deployment, different between deployments), so a guess costs one scrypt
 * per deployment attacked. Synchronous (~0.1–0.3 s once per secret and
 * deployment, then memoised); `primeSecretFingerprint` computes it off the
 * event loop first.
 */
export function secretFingerprint(secret: string, deployment: string): string {
  const key = memoKey(secret, deployment)
  const known = fingerprints.get(key)
  if (known !== undefined) return known
  return remember(key, scryptSync(secret, saltOf(deployment), FINGERPRINT_BYTES, FINGERPRINT_SCRYPT).toString('hex'))
}

/** Compute (and memoise) the fingerprint on the libuv thread pool. */
export async function primeSecretFingerprint(secret: string, deployment: string): Promise<string> {
  const key = memoKey(secret, deployment)
  const known = fingerprints.get(key)
  if (known !== undefined) return known
  const derived = await new Promise<Buffer>((resolve, reject) =>
    scrypt(secret, saltOf(deployment), FINGERPRINT_BYTES, FINGERPRINT_SCRYPT, (err, buf) => (err ? reject(err) : resolve(buf))),
  )
  return remember(key, derived.toString('hex'))
}

const PSEUDONYM_CACHE_ENTRIES = 10_000

/**
 * Pseudonymous user id for logs and spans: a keyed hash, never the email or
 * the raw id. It runs on every allowed request, so the key is a KeyObject
 * built once and results are memoised (the benchmark measured ~50 µs per
 * request without both).
 */
export function pseudonymize(secret: string): (userId: string) => string {
  const key = createSecretKey(createHmac('sha256', 'authgw/pseudonym/v1').update(secret).digest())
  const memo = new LRUCache<string, string>({ max: PSEUDONYM_CACHE_ENTRIES })
  return (userId) => {
    const known = memo.get(userId)
    if (known !== undefined) return known
    const pseudo = createHmac('sha256', key).update(userId).digest('hex').slice(0, 16)
    memo.set(userId, pseudo)
    return pseudo
  }
}
