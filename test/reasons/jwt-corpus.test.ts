// The JWT verifier (jose behind the verify-once cache, docs/adr/0001) over a
// corpus: RFC 7515 / 7519 / 8037 vectors, every forgery the hostile tests
// send, and 10,000 generated tokens (valid ones and one-fault mutations of
// them over EdDSA, ES256 and RS256 keys). Every answer is exactly one
// JwtReason, the one the fault calls for, and a second verification (from the
// cache) agrees with the first.
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import t from 'tap'
import { JwksStore } from '../../src/auth/jwks.ts'
import type { Jwk } from '../../src/auth/jwks.ts'
import { JwtVerifier } from '../../src/auth/jwt.ts'
import type { JwtResult } from '../../src/auth/jwt.ts'
import { JwtReason, valuesOf } from '../../src/reasons.ts'

const ISSUER = 'https://gw.example.test'
const AUDIENCE = 'https://api.example.test'
const b64u = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

type Alg = 'EdDSA' | 'ES256' | 'RS256'
type SigningKey = { kid: string; alg: Alg; privateKey: KeyObject; publicKey: KeyObject }

// RFC 8037 §A.1: the Ed25519 key of the RFC's examples.
const RFC8037_JWK = { kty: 'OKP', crv: 'Ed25519', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }
// RFC 8037 §A.4: its JWS over "Example of Ed25519 signing" (no kid).
const RFC8037_JWS =
  'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg'
// RFC 7515 §A.1 (= RFC 7519 §3.1): an HS256 JWT and its key.
const RFC7515_A1 =
  'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
const RFC7515_A1_KEY = 'AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow'
// RFC 7515 §A.5: the same claims, unsecured.
const RFC7515_A5 = 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.'

function signWith(key: SigningKey, header: Record<string, unknown>, payload: unknown): string {
  const data = `${b64u(header)}.${b64u(payload)}`
  const input = Buffer.from(data)
  const sig =
    key.alg === 'EdDSA'
      ? sign(null, input, key.privateKey)
      : key.alg === 'ES256'
        ? sign('sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', input, key.privateKey)
  return `${data}.${sig.toString('base64url')}`
}

t.test('JWT corpus: exactly the expected reason for every token', async (t) => {
  const rfc8037 = createPrivateKey({ key: RFC8037_JWK, format: 'jwk' })
  const keys: SigningKey[] = [
    { kid: 'rfc8037-a1', alg: 'EdDSA', privateKey: rfc8037, publicKey: createPublicKey(rfc8037) },
    { kid: 'ed-1', alg: 'EdDSA', ...generateKeyPairSync('ed25519') },
    { kid: 'es-1', alg: 'ES256', ...generateKeyPairSync('ec', { namedCurve: 'P-256' }) },
    { kid: 'rs-1', alg: 'RS256', ...generateKeyPairSync('rsa', { modulusLength: 2048 }) },
  ]
  const published: Jwk[] = keys.map((k) => ({ ...(k.publicKey.export({ format: 'jwk' }) as Jwk), kid: k.kid, alg: k.alg }))
  const jwks = new JwksStore({ fetchKeys: async () => published, refreshIntervalSeconds: 3600, cooldownSeconds: 3600 })
  await jwks.refresh()
  const verifier = new JwtVerifier({ jwks, issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA', 'ES256', 'RS256'], cacheMaxEntries: 20_000 })
  const reasons = new Set<string>(valuesOf(JwtReason))

  // The RFC vectors are what they claim to be.
  t.ok(verify(null, Buffer.from(RFC8037_JWS.split('.').slice(0, 2).join('.')), createPublicKey(rfc8037), Buffer.from(RFC8037_JWS.split('.')[2] as string, 'base64url')), 'RFC 8037 A.4 verifies under its key')
  t.equal(createHmac('sha256', Buffer.from(RFC7515_A1_KEY, 'base64url')).update(RFC7515_A1.split('.').slice(0, 2).join('.')).digest('base64url'), RFC7515_A1.split('.')[2], 'RFC 7515 A.1 is a valid HS256 JWS')

  const now = Math.floor(Date.now() / 1000)
  const claims = (i: number) => ({ sub: `user-${i}`, iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 900, email: `u${i}@example.test` })
  const [rfcKey, ed, es, rs] = keys as [SigningKey, SigningKey, SigningKey, SigningKey]
  const valid = signWith(ed, { alg: 'EdDSA', kid: ed.kid }, claims(0))
  const [vh, vp, vs] = valid.split('.') as [string, string, string]
  const hs256 = (header: Record<string, unknown>, payload: unknown, secret: string | Buffer) => {
    const data = `${b64u(header)}.${b64u(payload)}`
    return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`
  }
  const publicPem = ed.publicKey.export({ type: 'spki', format: 'pem' }) as string

  type Case = [string, string, JwtReason | 'ok']
  const fixed: Case[] = [
    ['RFC 7515 A.1 / RFC 7519 3.1 (HS256)', RFC7515_A1, JwtReason.alg_not_allowed],
    ['RFC 7515 A.5 (alg none)', RFC7515_A5, JwtReason.alg_not_allowed],
    ['RFC 8037 A.4 (EdDSA, no kid)', RFC8037_JWS, JwtReason.kid_unknown],
    ['RFC 8037 A.1 key, with a kid and JWT claims', signWith(rfcKey, { alg: 'EdDSA', kid: rfcKey.kid }, claims(1)), 'ok'],
    ['RFC 8037 A.1 key, its non-JSON payload under a kid', signWith(rfcKey, { alg: 'EdDSA', kid: rfcKey.kid }, 'Example of Ed25519 signing'), JwtReason.malformed],
    // The hostile tests' forgeries (test/reasons/jwt-reasons.test.ts, test/hostile/fuzz.test.ts).
    ['not a JWT', 'not-a-jwt', JwtReason.malformed],
    ['header not JSON', `${b64u('not json')}.${vp}.c2lnbmF0dXJl`, JwtReason.malformed],
    ['header JSON but not an object', `${b64u([{ alg: 'EdDSA' }])}.${vp}.${vs}`, JwtReason.malformed],
    ['header alg not a string', `${b64u({ alg: ['EdDSA'], kid: ed.kid })}.${vp}.${vs}`, JwtReason.malformed],
    ['truncated header JSON', `${b64u('{"alg":"EdDSA",')}.${vp}.${vs}`, JwtReason.malformed],
    ['two parts', `${vh}.${vp}`, JwtReason.malformed],
    ['four parts', `${valid}.${vs}`, JwtReason.malformed],
    ['base64 (not base64url) characters', `${vh}.${vp}.${vs.slice(0, 10)}+/=${vs.slice(13)}`, JwtReason.malformed],
    ['oversized', `${vh}.${'A'.repeat(9000)}.${vs}`, JwtReason.malformed],
    ['alg none, real kid, empty signature', `${b64u({ alg: 'none', kid: ed.kid })}.${vp}.`, JwtReason.alg_not_allowed],
    ['alg None', `${b64u({ alg: 'None', kid: ed.kid })}.${vp}.AA`, JwtReason.alg_not_allowed],
    ['HS256 keyed with the public key (algorithm confusion)', hs256({ alg: 'HS256', kid: ed.kid }, claims(2), publicPem), JwtReason.alg_not_allowed],
    ['HS512', hs256({ alg: 'HS512', kid: ed.kid }, claims(2), 'secret'), JwtReason.alg_not_allowed],
    ['crit extension', signWith(ed, { alg: 'EdDSA', kid: ed.kid, crit: ['exp'] }, claims(3)), JwtReason.malformed],
    ['unencoded payload (b64: false)', signWith(ed, { alg: 'EdDSA', kid: ed.kid, b64: false, crit: ['b64'] }, claims(3)), JwtReason.malformed],
    ['unknown kid', signWith(ed, { alg: 'EdDSA', kid: 'kid-nobody-published' }, claims(4)), JwtReason.kid_unknown],
    ['no kid', signWith(ed, { alg: 'EdDSA' }, claims(4)), JwtReason.kid_unknown],
    ['kid not a string', signWith(ed, { alg: 'EdDSA', kid: 7 }, claims(4)), JwtReason.kid_unknown],
    ['real kid, alg of another allowed key type', signWith(es, { alg: 'ES256', kid: ed.kid }, claims(5)), JwtReason.alg_not_allowed],
    ['real kid, random signature', `${vh}.${vp}.${Buffer.alloc(64, 7).toString('base64url')}`, JwtReason.bad_signature],
    ['real kid, empty signature', `${vh}.${vp}.`, JwtReason.bad_signature],
    ['payload edited after signing', `${vh}.${b64u({ ...claims(0), sub: 'admin' })}.${vs}`, JwtReason.bad_signature],
    ['signed by a stranger under the real kid', signWith({ ...ed, privateKey: generateKeyPairSync('ed25519').privateKey }, { alg: 'EdDSA', kid: ed.kid }, claims(6)), JwtReason.bad_signature],
    ['expired', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(7), exp: now - 120 }), JwtReason.expired],
    ['not yet valid', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(8), nbf: now + 3600, exp: now + 7200 }), JwtReason.not_yet_valid],
    ['other issuer', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(9), iss: 'https://elsewhere.example' }), JwtReason.issuer_mismatch],
    ['no issuer', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(9), iss: undefined }), JwtReason.issuer_mismatch],
    ['other audience', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(10), aud: 'https://another-api.example' }), JwtReason.audience_mismatch],
    ['audience list without ours', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(10), aud: ['https://a.example', 'https://b.example'] }), JwtReason.audience_mismatch],
    ['audience list with ours', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(10), aud: ['https://a.example', AUDIENCE] }), 'ok'],
    ['no sub', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(11), sub: undefined }), JwtReason.malformed],
    ['sub not a string', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(11), sub: 42 }), JwtReason.malformed],
    ['no exp', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(12), exp: undefined }), JwtReason.malformed],
    ['exp not a number', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(12), exp: 'tomorrow' }), JwtReason.malformed],
    ['nbf not a number', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, { ...claims(12), nbf: 'now' }), JwtReason.malformed],
    ['payload an array', signWith(ed, { alg: 'EdDSA', kid: ed.kid }, [1]), JwtReason.malformed],
    ['valid EdDSA', valid, 'ok'],
    ['valid ES256', signWith(es, { alg: 'ES256', kid: es.kid }, claims(13)), 'ok'],
    ['valid RS256', signWith(rs, { alg: 'RS256', kid: rs.kid }, claims(14)), 'ok'],
  ]

  // 10,000 generated tokens: a valid token of a random key, or one fault of it.
  let seed = 0x2545f491
  const rand = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return (seed >>> 0) / 0x100000000
  }
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T
  const mutations: Array<[string, (k: SigningKey, i: number) => string, JwtReason | 'ok']> = [
    ['valid', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, claims(i)), 'ok'],
    ['signature bit flipped', (k, i) => {
      const [h, p, s] = signWith(k, { alg: k.alg, kid: k.kid }, claims(i)).split('.') as [string, string, string]
      const sig = Buffer.from(s, 'base64url')
      const at = Math.floor(rand() * sig.length)
      sig[at] = (sig[at] as number) ^ (1 << Math.floor(rand() * 8))
      return `${h}.${p}.${sig.toString('base64url')}`
    }, JwtReason.bad_signature],
    ['claim edited', (k, i) => {
      const [h, , s] = signWith(k, { alg: k.alg, kid: k.kid }, claims(i)).split('.') as [string, string, string]
      return `${h}.${b64u({ ...claims(i), sub: `user-${i + 1}` })}.${s}`
    }, JwtReason.bad_signature],
    ['unknown kid', (k, i) => signWith(k, { alg: k.alg, kid: `k-${i}` }, claims(i)), JwtReason.kid_unknown],
    ['alg of another key type', (k, i) => signWith(k, { alg: pick((['EdDSA', 'ES256', 'RS256'] as const).filter((a) => a !== k.alg)), kid: k.kid }, claims(i)), JwtReason.alg_not_allowed],
    ['disallowed alg', (k, i) => signWith(k, { alg: pick(['none', 'HS256', 'PS256', 'ES512', 'EdDSA ']), kid: k.kid }, claims(i)), JwtReason.alg_not_allowed],
    ['expired', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, { ...claims(i), exp: now - 10 - Math.floor(rand() * 1e6) }), JwtReason.expired],
    ['not yet valid', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, { ...claims(i), nbf: now + 10 + Math.floor(rand() * 1e6) }), JwtReason.not_yet_valid],
    ['issuer', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, { ...claims(i), iss: pick([`${ISSUER}/`, 'http://gw.example.test', undefined, 42]) }), JwtReason.issuer_mismatch],
    ['audience', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, { ...claims(i), aud: pick([ISSUER, [], undefined, `${AUDIENCE}/`]) }), JwtReason.audience_mismatch],
    ['required claim missing', (k, i) => signWith(k, { alg: k.alg, kid: k.kid }, { ...claims(i), [pick(['sub', 'exp'])]: undefined }), JwtReason.malformed],
    ['part dropped or added', (k, i) => {
      const parts = signWith(k, { alg: k.alg, kid: k.kid }, claims(i)).split('.')
      return rand() < 0.5 ? parts.slice(0, 2).join('.') : [...parts, 'AAAA'].join('.')
    }, JwtReason.malformed],
    ['character outside base64url', (k, i) => {
      const token = signWith(k, { alg: k.alg, kid: k.kid }, claims(i))
      const at = Math.floor(rand() * token.length)
      return token[at] === '.' ? `${token}~` : `${token.slice(0, at)}${pick(['+', '/', '=', '!', ' '])}${token.slice(at + 1)}`
    }, JwtReason.malformed],
  ]
  const generated: Case[] = []
  for (let i = 0; i < 10_000; i++) {
    const [name, make, expected] = pick(mutations)
    const k = pick([ed, es, rs, rfcKey])
    generated.push([`#${i} ${name} (${k.kid})`, make(k, 100 + i), expected])
  }

  const problems: string[] = []
  const seen = new Map<string, number>()
  for (const [name, token, expected] of [...fixed, ...generated]) {
    const first = await verifier.verify(token)
    const second = await verifier.verify(token)
    const got = outcome(first)
    seen.set(got, (seen.get(got) ?? 0) + 1)
    if (!first.ok && !reasons.has(first.reason)) problems.push(`${name}: ${first.reason} is not a JwtReason`)
    if (got !== expected) problems.push(`${name}: ${got}, expected ${expected}`)
    if (outcome(second) !== got) problems.push(`${name}: ${outcome(second)} on the second verification, ${got} on the first`)
    if (first.ok && !(second.ok && second.cached)) problems.push(`${name}: the second verification did not come from the cache`)
  }
  t.same(problems.slice(0, 20), [], `${problems.length} tokens answered differently than expected`)
  t.same([...seen.keys()].sort(), [...valuesOf(JwtReason), 'ok'].sort(), 'every reason (and acceptance) occurs in the corpus')
  t.ok(generated.length === 10_000)
})

const outcome = (r: JwtResult) => (r.ok ? 'ok' : r.reason)
