// The demo upstream answers a JWKS it cannot fetch with 503, never a 401 the
// gateway would count as `upstream_rejected` (a key outage says nothing about
// the token). Regression: under CI load its 2 s JWKS timeout turned into 401s.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, generateKeyPair } from 'jose'
import t from 'tap'
import { buildDemoApi } from '../../src/demo-api/server.ts'

t.test('a JWKS that cannot be fetched is 503 jwks_unavailable, not 401', async (t) => {
  // A JWKS endpoint that answers garbage, and one that refuses connections.
  const garbage = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"nope":1}'))
  await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => garbage.close(() => r())))
  const closed = createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const closedPort = (closed.address() as AddressInfo).port
  await new Promise<void>((r) => closed.close(() => r()))

  const { privateKey } = await generateKeyPair('EdDSA')
  const token = await new SignJWT({ email: 'a@example.test' })
    .setProtectedHeader({ alg: 'EdDSA', kid: 'k1' })
    .setSubject('u1')
    .setIssuer('http://issuer.test')
    .setAudience('http://issuer.test')
    .setExpirationTime('5m')
    .sign(privateKey)

  for (const jwksUrl of [`http://127.0.0.1:${(garbage.address() as AddressInfo).port}/jwks`, `http://127.0.0.1:${closedPort}/jwks`]) {
    const api = buildDemoApi({ jwksUrl, issuer: 'http://issuer.test', audience: 'http://issuer.test' })
    t.teardown(() => api.close())
    const res = await api.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 503, jwksUrl)
    t.same(res.json(), { error: 'service_unavailable', reason: 'jwks_unavailable' })
  }

  // A token the keys can judge is still a 401 with jose's code.
  const api = buildDemoApi({ jwksUrl: `http://127.0.0.1:${closedPort}/jwks`, issuer: 'http://issuer.test', audience: 'http://issuer.test' })
  t.teardown(() => api.close())
  const res = await api.inject({ method: 'GET', url: '/api/me', headers: { authorization: 'Bearer not.a.jwt' } })
  t.equal(res.statusCode, 401)
})
