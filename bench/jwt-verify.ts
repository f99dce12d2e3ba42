// CPU per JWT verification (docs/adr/0002-jwt-verification.md): the same
// distinct signed tokens checked by a bare synchronous node:crypto.verify with
// a pre-imported KeyObject (the primitive the gateway's former hand-written
// verifier used), by jose's compactVerify / jwtVerify, and by the gateway's
// JwtVerifier itself on its miss path (every token new) and its hit path (the
// verify-once cache).
// Run: npx node bench/jwt-verify.ts [iterations]
import { generateKeyPairSync, sign, constants, verify as cryptoVerify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { compactVerify, jwtVerify } from 'jose'
import { JwksStore } from '../src/auth/jwks.ts'
import type { Jwk } from '../src/auth/jwks.ts'
import { JwtVerifier } from '../src/auth/jwt.ts'

const ITERATIONS = Number(process.argv[2] ?? 4000)
const ROUNDS = 5

type Alg = 'EdDSA' | 'ES256' | 'RS256'
const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

function keyPair(alg: Alg): { privateKey: KeyObject; publicKey: KeyObject } {
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519')
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return generateKeyPairSync('rsa', { modulusLength: 2048 })
}

function signToken(alg: Alg, key: KeyObject, i: number): string {
  const now = Math.floor(Date.now() / 1000)
  const data = `${b64u({ alg, kid: 'k1' })}.${b64u({ sub: `user-${i}`, iss: 'https://gw.example', aud: 'https://gw.example', exp: now + 900, iat: now, email: `u${i}@example.test` })}`
  const sig =
    alg === 'EdDSA'
      ? sign(null, Buffer.from(data), key)
      : alg === 'ES256'
        ? sign('sha256', Buffer.from(data), { key, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', Buffer.from(data), key)
  return `${data}.${sig.toString('base64url')}`
}

function ownVerify(alg: Alg, key: KeyObject, token: string): boolean {
  const dot = token.lastIndexOf('.')
  const data = Buffer.from(token.slice(0, dot))
  const sig = Buffer.from(token.slice(dot + 1), 'base64url')
  if (alg === 'EdDSA') return cryptoVerify(null, data, key, sig)
  if (alg === 'ES256') return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
  return cryptoVerify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig)
}

/** CPU microseconds (user+system, every thread of the process) per call, and wall microseconds. */
async function measure(fn: (i: number) => unknown): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage()
  const w0 = performance.now()
  for (let i = 0; i < ITERATIONS; i++) await fn(i)
  const w = performance.now() - w0
  const c = process.cpuUsage(c0)
  return { cpu: (c.user + c.system) / ITERATIONS, wall: (w * 1000) / ITERATIONS }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const rows: string[] = []
for (const alg of ['EdDSA', 'ES256', 'RS256'] as const) {
  const { privateKey, publicKey } = keyPair(alg)
  const tokens = Array.from({ length: ITERATIONS }, (_, i) => signToken(alg, privateKey, i))
  const claims = { issuer: 'https://gw.example', audience: 'https://gw.example', algorithms: [alg], requiredClaims: ['sub', 'exp'] }
  const jwks = new JwksStore({
    fetchKeys: async () => [{ ...(publicKey.export({ format: 'jwk' }) as Jwk), kid: 'k1', alg }],
    refreshIntervalSeconds: 3600,
    cooldownSeconds: 3600,
  })
  await jwks.refresh()
  const gateway = () => new JwtVerifier({ jwks, issuer: 'https://gw.example', audience: 'https://gw.example', algorithms: [alg], cacheMaxEntries: ITERATIONS })
  let missVerifier = gateway()
  const hitVerifier = gateway()
  for (const token of tokens) await hitVerifier.verify(token)
  const expectOk = (r: { ok: boolean }) => {
    if (!r.ok) throw new Error('gateway verify failed')
  }
  const variants: Record<string, (i: number) => unknown> = {
    'node:crypto sync': (i) => {
      if (!ownVerify(alg, publicKey, tokens[i] as string)) throw new Error('own verify failed')
    },
    'jose compactVerify': (i) => compactVerify(tokens[i] as string, publicKey, { algorithms: [alg] }),
    'jose jwtVerify': (i) => jwtVerify(tokens[i] as string, publicKey, claims),
    // A fresh verifier per round, so every token is a miss.
    'JwtVerifier, miss': async (i) => {
      if (i === 0) missVerifier = gateway()
      expectOk(await missVerifier.verify(tokens[i] as string))
    },
    'JwtVerifier, cache hit': async (i) => expectOk(await hitVerifier.verify(tokens[i] as string)),
  }
  for (const fn of Object.values(variants)) await measure(fn) // warm-up: JIT, key conversion caches
  for (const [name, fn] of Object.entries(variants)) {
    const cpu: number[] = []
    const wall: number[] = []
    for (let r = 0; r < ROUNDS; r++) {
      const m = await measure(fn)
      cpu.push(m.cpu)
      wall.push(m.wall)
    }
    rows.push(`| ${alg} | ${name} | ${median(cpu).toFixed(1)} | ${Math.min(...cpu).toFixed(1)}–${Math.max(...cpu).toFixed(1)} | ${median(wall).toFixed(1)} |`)
  }
}
console.log(`node ${process.version}, ${ITERATIONS} distinct tokens per round, ${ROUNDS} rounds (median, min–max)\n`)
console.log('| alg | verifier | CPU µs/verify | CPU range | wall µs/verify |')
console.log('|---|---|---|---|---|')
for (const r of rows) console.log(r)
