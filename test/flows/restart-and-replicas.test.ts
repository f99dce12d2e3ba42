import t from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'

t.test('a session survives a gateway restart and works on a second instance sharing the DB', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  const a = await startTestGateway(t, { databaseUrl })
  const c = new Client(a.url)
  t.equal((await c.signUp(uniqueEmail(), PASSWORD)).status, 200)
  t.equal((await c.get('/api/me')).status, 200)

  // Instance B: same database, secret and public URL (replicas behind one name), another port.
  const b = await startTestGateway(t, { databaseUrl, env: { BETTER_AUTH_URL: a.config.baseUrl } })
  const viaB = new Client(b.url)
  viaB.jar.set('better-auth.session_token', c.jar.get('better-auth.session_token') as string)
  const rb = await viaB.get('/api/me')
  t.equal(rb.status, 200, `signed in on A, called through B: ${rb.text}`)

  // A JWT from A is accepted by B (same keys in the shared database).
  const token = await c.token()
  t.equal((await new Client(b.url).get('/api/me', { headers: { authorization: `Bearer ${token}` } })).status, 200)

  // Restart A on the same port: the cookie still works.
  const port = Number(new URL(a.url).port)
  await a.close()
  const a2 = await startTestGateway(t, { databaseUrl, port })
  const again = new Client(a2.url)
  again.jar.set('better-auth.session_token', c.jar.get('better-auth.session_token') as string)
  t.equal((await again.get('/api/me')).status, 200, 'session survives the restart')
})
