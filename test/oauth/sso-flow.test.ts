// Sign-in through a real OpenID Connect provider lands in the same session,
// cookie and JWT path as email sign-in; the upstream's JWT names the provider.
import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { Client } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import { ProviderAgent, USERS, providerEnv, recordingUpstream, startProvider } from '../helpers/oidc.ts'

t.test('sign in through the provider, call the API, sign out', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const provider = await startProvider(t, [`${base}/api/auth/callback/corp`])
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { port, env: providerEnv(provider), upstreamUrl: upstream.url })
  const startup = gw.logs.records().find((r) => r.msg === 'authgw started')
  t.same(startup?.oidc_providers, [{ id: 'corp', issuer: provider.issuer, redirect_uri: `${base}/api/auth/callback/corp` }], 'startup names the redirect URI to register')

  const browser = new Client(gw.url)
  const start = await browser.post('/api/auth/sign-in/social', { provider: 'corp', callbackURL: `${base}/` }, { headers: { origin: base } })
  t.equal(start.status, 200, start.text)
  const callback = await new ProviderAgent().authorize(start.body.url as string, 'alice')
  t.ok(callback.startsWith(`${base}/api/auth/callback/corp?`), callback)
  const back = await browser.get(new URL(callback).pathname + new URL(callback).search)
  t.equal(back.status, 302, back.text)
  t.equal(back.headers.get('location'), `${base}/`, 'back to the app, no error')
  t.ok(browser.jar.has('better-auth.session_token'), 'the same session cookie as email sign-in')

  for (let i = 0; i < 20; i++) {
    const r = await browser.get('/api/orders')
    t.equal(r.status, 200, `protected call ${i + 1}`)
  }
  const bearer = upstream.authorizations.at(-1)?.replace(/^Bearer /, '') ?? ''
  const { payload } = await jwtVerify(bearer, createRemoteJWKSet(new URL(`${gw.url}/api/auth/jwks`)), { issuer: base, audience: base })
  t.equal(payload.email, USERS.alice?.email, 'the upstream verified a gateway JWT for the provider\'s user')
  t.equal(payload.idp, 'corp', 'the upstream JWT names the provider')
  const out = await browser.post('/api/auth/sign-out', {}, { headers: { origin: base } })
  t.equal(out.status, 200)
  t.equal((await browser.get('/api/me')).status, 401)
})
