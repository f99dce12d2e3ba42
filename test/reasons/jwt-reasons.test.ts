// Every JWT reason on authgw_unauthorized_total{source="gateway",mechanism="jwt"},
// with tokens made the way they happen in the field: the gateway's own signer
// (better-auth's signJWT on the same keys), instances that disagree on issuer
// or audience, tampered and forged tokens. Each case diffs the whole scrape.
import { createPublicKey, createHmac, generateKeyPairSync, sign } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { JwtReason, JwtSessionReason, valuesOf } from '../../src/reasons.ts'
import type { JwtRefusalReason } from '../../src/reasons.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import type { SeriesMatcher } from '../helpers/metrics.ts'
import { REQUEST_NOISE, delta, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'

const b64u = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url')
const decode = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>

function signEdDSA(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const data = `${b64u(header)}.${b64u(payload)}`
  return `${data}.${sign(null, Buffer.from(data), key).toString('base64url')}`
}

type Case = {
  reason: JwtReason
  how: string
  authorization: () => Promise<string>
  /** Series besides the denial's own that this case moves. */
  extra?: Record<string, number>
  allow?: SeriesMatcher[]
}

t.test('every JWT reason on a protected route', async (t) => {
  // A long cooldown keeps "second unknown kid is suppressed" independent of how long the cases take.
  const gw = await startTestGateway(t, { env: { JWKS_REFRESH_COOLDOWN_SECONDS: '3600' } })
  // Replicas behind the same public URL, database and secret (so the same
  // signing key) whose BETTER_AUTH_ISSUER / BETTER_AUTH_AUDIENCE drifted.
  const replica = (env: Record<string, string>) =>
    startTestGateway(t, { databaseUrl: gw.databaseUrl, env: { BETTER_AUTH_URL: gw.config.baseUrl, ...env } })
  const otherIssuer = await replica({ BETTER_AUTH_ISSUER: 'https://issuer.other.example' })
  const otherAudience = await replica({ BETTER_AUTH_AUDIENCE: 'https://audience.other.example' })
  t.equal(otherIssuer.config.audience, gw.config.audience, 'only the issuer differs')
  t.equal(otherAudience.config.issuer, gw.config.issuer, 'only the audience differs')

  const user = new Client(gw.url)
  t.equal((await user.signUp(uniqueEmail('jwt'), PASSWORD)).status, 200)
  const token = await user.token()
  const [h, p] = token.split('.') as [string, string, string]
  const header = decode(h)
  const claims = decode(p)
  t.equal(header.alg, 'EdDSA')
  t.equal(typeof header.kid, 'string')
  const kid = header.kid as string

  const ok = await new Client(gw.url).get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(ok.status, 200, 'the unmodified token is accepted (the cases below differ from it in one way each)')

  const jwks = (await user.get('/api/auth/jwks')).body as { keys: Array<Record<string, unknown>> }
  const publicJwk = jwks.keys.find((k) => k.kid === kid)
  t.ok(publicJwk, 'the token kid is published')
  const publicPem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
  const stranger = generateKeyPairSync('ed25519').privateKey

  const now = Math.floor(Date.now() / 1000)
  const realSigner = async (payload: Record<string, unknown>) => {
    const res = await gw.auth.api.signJWT({ body: { payload: { sub: String(claims.sub), email: String(claims.email), ...payload } } })
    return `Bearer ${res.token}`
  }
  const mintedBy = async (other: TestGateway) => {
    // A cookie from `gw` is valid on `other`: same secret, same database.
    const r = await new Client(other.url).get('/api/auth/token', { headers: { cookie: user.cookieHeader } })
    if (r.status !== 200) throw new Error(`token from other instance: ${r.status} ${r.text}`)
    return `Bearer ${r.body.token as string}`
  }
  const refreshed = (outcome: string) => ({ [seriesKey('authgw_jwks_refreshes_total', { outcome })]: 1 })

  const cases: Case[] = [
    { reason: JwtReason.malformed, how: 'not three dot-separated parts', authorization: async () => 'Bearer not-a-jwt' },
    { reason: JwtReason.malformed, how: 'an Authorization header that is not Bearer', authorization: async () => 'Basic dXNlcjpwYXNzd29yZA==' },
    {
      reason: JwtReason.malformed,
      how: 'a header part that is not JSON',
      authorization: async () => `Bearer ${Buffer.from('not json').toString('base64url')}.${p}.c2lnbmF0dXJl`,
    },
    {
      reason: JwtReason.alg_not_allowed,
      how: 'an unsecured token (alg "none", empty signature)',
      authorization: async () => `Bearer ${b64u({ alg: 'none', typ: 'JWT' })}.${p}.`,
    },
    {
      reason: JwtReason.alg_not_allowed,
      how: 'HS256 keyed with the published public key (algorithm confusion)',
      authorization: async () => {
        const data = `${b64u({ alg: 'HS256', typ: 'JWT', kid })}.${p}`
        return `Bearer ${data}.${createHmac('sha256', publicPem).update(data).digest('base64url')}`
      },
    },
    {
      reason: JwtReason.kid_unknown,
      how: 'a kid the JWKS does not have (the first one triggers one JWKS refresh)',
      authorization: async () => `Bearer ${signEdDSA({ alg: 'EdDSA', kid: 'kid-nobody-published-1' }, claims, stranger)}`,
      extra: refreshed('success'),
      allow: ['authgw_jwks_last_refresh_timestamp_seconds'],
    },
    {
      reason: JwtReason.kid_unknown,
      how: 'another unknown kid inside the refresh cooldown (refresh suppressed)',
      authorization: async () => `Bearer ${signEdDSA({ alg: 'EdDSA', kid: 'kid-nobody-published-2' }, claims, stranger)}`,
      extra: refreshed('suppressed'),
    },
    {
      reason: JwtReason.kid_unknown,
      how: 'no kid in the header',
      authorization: async () => `Bearer ${signEdDSA({ alg: 'EdDSA' }, claims, stranger)}`,
    },
    {
      reason: JwtReason.bad_signature,
      how: 'a real token whose payload was edited',
      authorization: async () => `Bearer ${h}.${b64u({ ...claims, email: 'admin@example.test' })}.${token.split('.')[2]}`,
    },
    {
      reason: JwtReason.bad_signature,
      how: 'signed by another Ed25519 key under the real kid',
      authorization: async () => `Bearer ${signEdDSA({ alg: 'EdDSA', kid }, claims, stranger)}`,
    },
    {
      reason: JwtReason.expired,
      how: "the gateway's own signer, exp two minutes ago",
      authorization: () => realSigner({ exp: now - 120 }),
    },
    {
      reason: JwtReason.not_yet_valid,
      how: "the gateway's own signer, nbf in an hour",
      authorization: () => realSigner({ nbf: now + 3600, exp: now + 7200 }),
    },
    {
      reason: JwtReason.issuer_mismatch,
      how: 'minted by /api/auth/token of an instance with another BETTER_AUTH_ISSUER',
      authorization: () => mintedBy(otherIssuer),
    },
    {
      reason: JwtReason.issuer_mismatch,
      how: "the gateway's own signer with another iss",
      authorization: () => realSigner({ iss: 'https://somewhere.else.example' }),
    },
    {
      reason: JwtReason.audience_mismatch,
      how: 'minted by /api/auth/token of an instance with another BETTER_AUTH_AUDIENCE',
      authorization: () => mintedBy(otherAudience),
    },
    {
      reason: JwtReason.audience_mismatch,
      how: "the gateway's own signer with another aud",
      authorization: () => realSigner({ aud: 'https://another-api.example' }),
    },
  ]
  t.same(new Set(cases.map((c) => c.reason)), new Set(valuesOf(JwtReason)), 'every JwtReason has a case')

  for (const c of cases) {
    await t.test(`${c.reason}: ${c.how}`, async (t) => {
      const authorization = await c.authorization()
      const before = await scrape(gw)
      const res = await new Client(gw.url).get('/api/me', { headers: { authorization } })
      const after = await scrape(gw)
      checkDenial(t, gw, res, c.reason)
      const expected = {
        [seriesKey('authgw_unauthorized_total', { source: 'gateway', mechanism: 'jwt', reason: c.reason })]: 1,
        [seriesKey('authgw_auth_decisions_total', { mechanism: 'jwt', outcome: 'denied' })]: 1,
        [seriesKey('authgw_jwt_validation_failures_total', { reason: c.reason })]: 1,
        [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/*', status_code: 401 })]: 1,
        ...c.extra,
      }
      t.same(unexpectedMovements(delta(before, after), expected, [...REQUEST_NOISE, ...(c.allow ?? [])]), [], 'exactly the expected series moved')
    })
  }
})

// A valid JWT outlives its session unless the gateway remembers the session
// ended: refused by `sid`, from the verify-once cache (a map lookup) and, on a
// miss, from the session row (docs/adr/0031-revoked-session-jwts.md).
t.test('session_revoked: a JWT whose session has ended', async (t) => {
  const gw = await startTestGateway(t, { env: { AUTH_DELETE_USER: 'on' } })
  const bearer = (token: string, at: TestGateway = gw) => new Client(at.url).get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  const refusal = {
    [seriesKey('authgw_unauthorized_total', { source: 'gateway', mechanism: 'jwt', reason: JwtSessionReason.session_revoked })]: 1,
    [seriesKey('authgw_auth_decisions_total', { mechanism: 'jwt', outcome: 'denied' })]: 1,
    [seriesKey('authgw_jwt_validation_failures_total', { reason: JwtSessionReason.session_revoked })]: 1,
    [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/*', status_code: 401 })]: 1,
  }

  await t.test('signed out: the verify-once hit is refused, exactly the session_revoked series moves by one', async (t) => {
    const user = new Client(gw.url)
    t.equal((await user.signUp(uniqueEmail('revoked'), PASSWORD)).status, 200)
    const token = await user.token()
    t.equal((await bearer(token)).status, 200, 'accepted while the session lives')
    const hits = await scrape(gw)
    t.equal((await bearer(token)).status, 200)
    t.equal(delta(hits, await scrape(gw)).get(seriesKey('authgw_jwt_cache_lookups_total', { result: 'hit' })), 1, 'now a verify-once hit')
    t.equal((await user.post('/api/auth/sign-out', {})).status, 200)
    const before = await scrape(gw)
    const res = await bearer(token)
    const after = await scrape(gw)
    checkDenial(t, gw, res, JwtSessionReason.session_revoked)
    t.same(unexpectedMovements(delta(before, after), refusal), [], 'exactly the expected series moved')
    t.equal(gw.revokedSessions.size, 1, 'one session remembered')
  })

  await t.test('a gateway that started after the sign-out (it never heard of it) refuses from the session row', async (t) => {
    const user = new Client(gw.url)
    t.equal((await user.signUp(uniqueEmail('revoked-late'), PASSWORD)).status, 200)
    const token = await user.token()
    const other = new Client(gw.url)
    t.equal((await other.signUp(uniqueEmail('alive-late'), PASSWORD)).status, 200)
    const alive = await other.token()
    t.equal((await user.post('/api/auth/sign-out', {})).status, 200)
    // No bus: nothing but the store can tell it.
    const late = await startTestGateway(t, { databaseUrl: gw.databaseUrl, env: { BETTER_AUTH_URL: gw.config.baseUrl, DATABASE_LISTEN: 'off' } })
    t.equal((await bearer(alive, late)).status, 200, "a live session's JWT is accepted there")
    const before = await scrape(late)
    const res = await bearer(token, late)
    const after = await scrape(late)
    checkDenial(t, late, res, JwtSessionReason.session_revoked)
    t.same(unexpectedMovements(delta(before, after), refusal), [], 'exactly the expected series moved')
    t.equal(late.revokedSessions.size, 1, 'remembered: the next use is a map lookup')
  })

  await t.test('user deleted (AUTH_DELETE_USER=on, POST /api/auth/delete-user): the JWTs of all their sessions are refused', async (t) => {
    const email = uniqueEmail('deleted')
    const first = new Client(gw.url)
    t.equal((await first.signUp(email, PASSWORD)).status, 200)
    const second = new Client(gw.url)
    t.equal((await second.signIn(email, PASSWORD)).status, 200)
    const tokens = [await first.token(), await second.token()]
    for (const token of tokens) t.equal((await bearer(token)).status, 200)
    const deleted = await first.post('/api/auth/delete-user', { password: PASSWORD })
    t.equal(deleted.status, 200, deleted.text)
    for (const token of tokens) {
      const res = await bearer(token)
      checkDenial(t, gw, res, JwtSessionReason.session_revoked)
    }
  })
})

function checkDenial(t: Test, gw: TestGateway, res: Res, reason: JwtRefusalReason): void {
  t.equal(res.status, 401, res.text)
  const requestId = res.headers.get('x-request-id')
  t.same(res.body, { error: 'unauthorized', reason, requestId }, 'JSON body names the reason')
  t.equal(res.headers.get('www-authenticate'), `Bearer error="invalid_token", error_description="${reason}"`, 'RFC 6750 challenge')
  const line = gw.logs.accessLines().find((r) => r.reqId === requestId)
  t.match(line, { status: 401, route: '/api/*', mechanism: 'jwt', outcome: 'denied', reason, source: 'gateway' }, 'access log line')
}
