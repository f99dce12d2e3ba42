// OIDC_* settings: several providers, defaults, every problem reported at once
// with the rest of the configuration, the client secret never echoed.
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.ts'
import { OIDC_DEFAULT_SCOPES, discoveryUrl, oidcRedirectUri } from '../../src/oauth/config.ts'

const SECRET = 'client-secret-Zq8Wm2Xn4Rt6'

t.test('no provider configured: no SSO, nothing else changes', async (t) => {
  t.same(loadConfig({}).oidc, [])
})

t.test('several providers with defaults and overrides', async (t) => {
  const config = loadConfig({
    OIDC_PROVIDERS: 'corp, Partner_idp',
    OIDC_CORP_ISSUER: 'https://id.example.com/realms/corp',
    OIDC_CORP_CLIENT_ID: 'authgw',
    OIDC_CORP_CLIENT_SECRET: SECRET,
    OIDC_PARTNER_IDP_ISSUER: 'https://partner.example.net/',
    OIDC_PARTNER_IDP_CLIENT_ID: 'gw',
    OIDC_PARTNER_IDP_CLIENT_SECRET: 'other',
    OIDC_PARTNER_IDP_SCOPES: 'openid,email',
    OIDC_PARTNER_IDP_PKCE: 'off',
  })
  t.same(config.oidc, [
    { id: 'corp', issuer: 'https://id.example.com/realms/corp', clientId: 'authgw', clientSecret: SECRET, scopes: [...OIDC_DEFAULT_SCOPES], pkce: true },
    { id: 'partner_idp', issuer: 'https://partner.example.net/', clientId: 'gw', clientSecret: 'other', scopes: ['openid', 'email'], pkce: false },
  ])
  t.equal(oidcRedirectUri('https://gw.example.com', 'corp'), 'https://gw.example.com/api/auth/callback/corp')
  t.equal(discoveryUrl('https://partner.example.net/'), 'https://partner.example.net/.well-known/openid-configuration')
})

t.test('every problem in one ConfigError, beside the other settings, without the client secret', async (t) => {
  let err: unknown
  try {
    loadConfig({
      NODE_ENV: 'production',
      OIDC_PROVIDERS: 'corp,corp,9bad,plain',
      OIDC_CORP_ISSUER: 'ftp://id.example.com',
      OIDC_CORP_CLIENT_SECRET: SECRET,
      OIDC_CORP_SCOPES: 'email profile',
      OIDC_CORP_PKCE: 'maybe',
      OIDC_PLAIN_ISSUER: 'http://id.example.com',
      OIDC_PLAIN_CLIENT_ID: 'x',
      OIDC_PLAIN_CLIENT_SECRET: SECRET,
      OIDC_STRAY_ISSUER: 'https://stray.example.com',
    })
  } catch (e) {
    err = e
  }
  t.ok(err instanceof ConfigError)
  const problems = (err as ConfigError).problems
  for (const fragment of [
    'DATABASE_URL is required',
    'OIDC_PROVIDERS names corp twice',
    'OIDC_PROVIDERS entry "9bad"',
    'OIDC_CORP_ISSUER must be an http(s) URL',
    'OIDC_CORP_CLIENT_ID is required',
    'OIDC_CORP_SCOPES must include openid',
    'OIDC_CORP_PKCE must be on/off',
    'OIDC_PLAIN_ISSUER must be https:// when NODE_ENV=production',
    'OIDC_STRAY_ISSUER is set but stray is not in OIDC_PROVIDERS',
  ]) {
    t.ok(problems.some((p) => p.includes(fragment)), `reports: ${fragment}`)
  }
  t.notOk((err as Error).message.includes(SECRET), 'client secret never echoed')
})

t.test('an http issuer is accepted outside production (a local test provider)', async (t) => {
  const config = loadConfig({
    OIDC_PROVIDERS: 'local',
    OIDC_LOCAL_ISSUER: 'http://127.0.0.1:9000',
    OIDC_LOCAL_CLIENT_ID: 'c',
    OIDC_LOCAL_CLIENT_SECRET: 's',
  })
  t.equal(config.oidc[0]?.issuer, 'http://127.0.0.1:9000')
})

t.test('check-config prints the redirect URI, fetches discovery and JWKS, and reports an unreachable provider', async (t) => {
  const { checkConfig } = await import('../../src/check-config.ts')
  const { startProvider, CLIENT_SECRET } = await import('../helpers/oidc.ts')
  const { TEST_SECRET } = await import('../helpers/gateway.ts')
  const provider = await startProvider(t, ['http://127.0.0.1:1/api/auth/callback/corp'])
  const env = {
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: 'https://gw.example.test',
    UPSTREAM_URL: 'http://127.0.0.1:1',
    OIDC_PROVIDERS: 'corp,gone',
    OIDC_CORP_ISSUER: provider.issuer,
    OIDC_CORP_CLIENT_ID: 'authgw-test',
    OIDC_CORP_CLIENT_SECRET: CLIENT_SECRET,
    OIDC_GONE_ISSUER: 'http://127.0.0.1:1',
    OIDC_GONE_CLIENT_ID: 'x',
    OIDC_GONE_CLIENT_SECRET: CLIENT_SECRET,
  }
  const lines = await checkConfig(env)
  const corp = lines.filter((l) => l.check === 'oidc:corp')
  t.same(corp.map((l) => l.ok), [true, true, true], JSON.stringify(corp))
  t.match(corp[0]?.detail, 'https://gw.example.test/api/auth/callback/corp')
  t.match(corp[2]?.detail, /jwks .* answered 200 with 1 signing key/)
  const gone = lines.filter((l) => l.check === 'oidc:gone')
  t.same(gone.map((l) => l.ok), [true, false])
  t.match(gone[1]?.detail, /discovery http:\/\/127\.0\.0\.1:1\/\.well-known\/openid-configuration unreachable \(\w+\)/)
  t.notOk(JSON.stringify(lines).includes(CLIENT_SECRET), 'client secret never printed')
})
