import t from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'

t.test('sign up, sign in, 50 protected calls with the cookie, token as Bearer', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  const email = uniqueEmail()
  const up = await c.signUp(email, PASSWORD)
  t.equal(up.status, 200, up.text)
  const c2 = new Client(gw.url)
  const inRes = await c2.signIn(email, PASSWORD)
  t.equal(inRes.status, 200, inRes.text)
  t.ok(c2.jar.has('better-auth.session_token'), 'session cookie stored')
  for (let i = 0; i < 50; i++) {
    const r = await c2.get('/api/me')
    if (r.status !== 200) t.fail(`call ${i}: ${r.status} ${r.text}`)
    else if (i === 0) t.equal(r.body.email, email, 'upstream verified the minted JWT and saw the identity')
  }
  const token = await c2.token()
  const bearer = new Client(gw.url)
  const r = await bearer.get('/api/me', { headers: { authorization: `Bearer ${token}` } })
  t.equal(r.status, 200, r.text)
  t.equal(r.body.email, email)

  // External verification needs only the JWKS URL, issuer and audience (what PyJWT would be given).
  const jwks = createRemoteJWKSet(new URL(`${gw.url}/api/auth/jwks`))
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: gw.config.issuer, audience: gw.config.audience })
  t.equal(payload.email, email)
  t.equal(protectedHeader.alg, 'EdDSA')
})
