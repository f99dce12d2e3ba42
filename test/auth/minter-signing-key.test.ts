// The gateway exchange reuses its resolved signing key (docs/adr/0061-signing-key-reuse.md)
// but never past a key created on this instance: after a rotation the next
// minted upstream JWT carries the new kid at once, and both verify against the
// published JWKS with the deployment's issuer and audience.
import { createLocalJWKSet, jwtVerify } from 'jose'
import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { recordingUpstream, sleep } from '../faults/support.ts'

const kidOf = (jwt: string) => (JSON.parse(Buffer.from(jwt.split('.')[0] as string, 'base64url').toString('utf8')) as { kid: string }).kid

t.test('a key created by a rotation signs the next minted upstream JWT', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { JWKS_ROTATION_INTERVAL_SECONDS: '1', JWKS_GRACE_PERIOD_SECONDS: '3600' } })
  const first = new Client(gw.url)
  t.equal((await first.signUp(uniqueEmail('mint-key-a'), PASSWORD)).status, 200)
  t.equal((await first.get('/api/orders')).status, 200)
  const mintedBefore = (upstream.received.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '')
  t.match(mintedBefore, /^ey/, 'the upstream received a minted JWT')

  // The key expires after 1 s; better-auth's token endpoint creates the next one.
  await sleep(1100)
  const viaEndpoint = await first.token()
  t.not(kidOf(viaEndpoint), kidOf(mintedBefore), 'better-auth rotated the key')

  // A new session: nothing minted for it yet, so the minter signs now.
  const second = new Client(gw.url)
  t.equal((await second.signUp(uniqueEmail('mint-key-b'), PASSWORD)).status, 200)
  t.equal((await second.get('/api/orders')).status, 200)
  const mintedAfter = (upstream.received.at(-1)?.headers.authorization ?? '').replace(/^Bearer /, '')
  t.equal(kidOf(mintedAfter), kidOf(viaEndpoint), 'the minted token carries the new kid, not the reused one')

  const jwks = createLocalJWKSet((await (await fetch(`${gw.url}/api/auth/jwks`)).json()) as { keys: [] })
  for (const token of [mintedBefore, mintedAfter]) {
    const { payload } = await jwtVerify(token, jwks, { issuer: new URL(gw.url).origin, audience: new URL(gw.url).origin })
    t.equal(typeof payload.sid, 'string', 'the minted token verifies with its sid claim')
  }
})
