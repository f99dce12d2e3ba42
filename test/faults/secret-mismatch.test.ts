// Two replicas on one database whose BETTER_AUTH_SECRET differs: what each
// one reports, as the AuthGatewaySessionBadSignature and
// AuthGatewayConfigDrift{field="secret_fingerprint"} alerts read it.
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import { delta, parseKey, scrape } from '../helpers/metrics.ts'
import type { Scrape } from '../helpers/metrics.ts'
import { recordingUpstream } from './support.ts'

const OTHER_SECRET = 'other-secret-Qm8Zr3Xw5Ty1Uv7Np2Ls9Kd4Hf6Jb0Gc-authgw'
const BAD_SIGNATURE_NULLS = 'authgw_session_nulls_total{reason="bad_signature"}'
const BAD_SIGNATURE_401 = 'authgw_unauthorized_total{mechanism="session",reason="bad_signature",source="gateway"}'

const configInfo = (s: Scrape) => [...s.keys()].map(parseKey).filter((k) => k.name === 'authgw_config_info').map((k) => k.labels)

t.test('replicas with different secrets', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  const [portA, portB] = [await freePort(), await freePort()]
  // One public URL for both, as behind a load balancer; each replica trusts the
  // other's direct origin so the test can talk to both.
  const env = {
    BETTER_AUTH_URL: 'http://gw.example.test',
    TRUSTED_ORIGINS: `http://127.0.0.1:${portA},http://127.0.0.1:${portB}`,
  }
  const a = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, port: portA, env })
  const b = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, port: portB, env: { ...env, BETTER_AUTH_SECRET: OTHER_SECRET } })

  const c = new Client(a.url)
  t.equal((await c.signUp(uniqueEmail('secrets'), PASSWORD)).status, 200)
  const beforeA = await scrape(a)
  const beforeB = await scrape(b)

  const onA = await c.get('/api/orders')
  t.equal(onA.status, 200, 'A accepts the cookie it issued')
  const onB = await new Client(b.url).get('/api/orders', { headers: { cookie: c.cookieHeader } })
  t.equal(onB.status, 401, 'B refuses it')
  t.equal(onB.body.reason, 'bad_signature')

  const dA = delta(beforeA, await scrape(a))
  const afterB = await scrape(b)
  const dB = delta(beforeB, afterB)
  t.equal(dB.get(BAD_SIGNATURE_NULLS), 1, 'B: session_nulls{bad_signature}')
  t.equal(dB.get(BAD_SIGNATURE_401), 1, 'B: unauthorized{session, bad_signature}')
  t.equal(dA.get(BAD_SIGNATURE_NULLS) ?? 0, 0, 'A sees nothing wrong')
  t.equal(dA.get(BAD_SIGNATURE_401) ?? 0, 0)

  // The drift signal: across the two instances only the fingerprint differs.
  const infos = [...configInfo(await scrape(a)), ...configInfo(afterB)]
  t.equal(infos.length, 2, 'one authgw_config_info series per instance')
  const distinct = (field: string) => new Set(infos.map((l) => l[field])).size
  t.equal(distinct('secret_fingerprint'), 2, 'secret_fingerprint differs: AuthGatewayConfigDrift{field="secret_fingerprint"}')
  for (const field of ['issuer', 'audience', 'cookie_prefix', 'jwks_url']) t.equal(distinct(field), 1, `${field} agrees`)
  t.notMatch(JSON.stringify(infos), /secret-Qm8|test-secret/, 'the secrets themselves are not exposed')

  t.test("B cannot sign with keys encrypted under A's secret: 503, not 401", async (t) => {
    const onlyB = new Client(b.url)
    t.equal((await onlyB.signUp(uniqueEmail('secrets-b'), PASSWORD)).status, 200)
    const before = await scrape(b)
    const r = await onlyB.get('/api/orders')
    t.equal(r.status, 503, r.text)
    t.equal(r.body.reason, 'jwks_unavailable')
    const d = delta(before, await scrape(b))
    t.equal(d.get('authgw_token_issue_failures_total{reason="signing_failed"}'), 1)
    // better-auth's BetterAuthError for a key it cannot decrypt: the key, not the store.
    t.equal(d.get('authgw_token_issue_failures_total{reason="store_unavailable"}') ?? 0, 0)
    t.equal(d.get('authgw_db_errors_total{operation="token_mint"}') ?? 0, 0, 'not a database error')
    t.equal(d.get('authgw_auth_unavailable_total{mechanism="session",reason="jwks_unavailable"}'), 1)
  })
})
