// The real entry point (src/main.ts, started as `npm start` starts it) writes
// nothing but JSON lines on stdout and stderr: through a sign-up, a POST that
// carries a cookie but no Origin (better-auth used to print its own
// "ERROR [Better Auth]" line to stderr for each one), malformed requests, and
// a graceful shutdown.
import t from 'tap'
import { eventually, rawRequest, recordingUpstream } from '../faults/support.ts'
import { spawnNode } from '../fixtures/node-process.ts'
import type { NodeProcess } from '../fixtures/node-process.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { TEST_SECRET, freePort } from '../helpers/gateway.ts'
import { ANSI } from '../helpers/output-guard.ts'

/** The startup line; the bound only keeps a broken start from hanging the test (a loaded CI machine is slow). */
const startedUp = (child: NodeProcess) =>
  eventually(
    async () => {
      if ((await Promise.race([child.exited, Promise.resolve('running')])) !== 'running') throw new Error(`exited early: ${child.stderr.join('\n')}`)
      return child.records().find((r) => r.event === 'startup')
    },
    { limitMs: 90_000, what: 'authgw started' },
  )

t.test('every stdout and stderr line of a gateway run is a JSON object', async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const upstream = await recordingUpstream(t)
  const child = spawnNode(t, ['--import', './src/telemetry/otel-bootstrap.ts', 'src/main.ts'], {
    DATABASE_URL: await freshDatabaseUrl(t),
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: `http://127.0.0.1:${port}`,
    UPSTREAM_URL: upstream.url,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    HOST: '127.0.0.1',
    LOG_SYNC: 'true',
  })
  await startedUp(child)
  const base = `http://127.0.0.1:${port}`

  const c = new Client(base)
  t.equal((await c.signUp(uniqueEmail('json'), PASSWORD)).status, 200, 'sign-up')
  t.equal((await c.get('/api/orders')).status, 200, 'a proxied call')

  // Cookie but no Origin: better-auth's CSRF check answers 403.
  const noOrigin = await fetch(`${base}/api/auth/sign-out`, { method: 'POST', headers: { cookie: c.cookieHeader, 'content-type': 'application/json' }, body: '{}' })
  t.equal(noOrigin.status, 403, 'missing Origin refused')
  const untrusted = await c.post('/api/auth/sign-out', {}, { headers: { origin: 'https://evil.example' } })
  t.equal(untrusted.status, 403, 'untrusted Origin refused')

  // Bad requests of several kinds.
  t.equal((await c.post('/api/auth/sign-in/email', '{"email":')).status, 400, 'malformed JSON')
  t.equal((await c.post('/api/auth/sign-in/email', { email: 'nobody@example.test', password: 'wrong password 1' })).status, 401, 'wrong password')
  t.equal((await c.get('/api/auth/no-such-endpoint')).status, 404)
  t.equal((await fetch(`${base}/api/me`)).status, 401, 'no credentials')
  const badHttp = await rawRequest(port, ['GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n'])
  t.equal(badHttp.status, 400, 'unparseable HTTP')
  const huge = await rawRequest(port, [`GET /api/me HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`])
  t.equal(huge.status, 431, 'header block too large')

  process.kill(child.pid, 'SIGTERM')
  t.equal(await child.exited, 0, 'clean shutdown')

  const notJson = [...child.stdout.map((l) => `stdout: ${l}`), ...child.stderr.map((l) => `stderr: ${l}`)].filter((l) => {
    try {
      const v: unknown = JSON.parse(l.slice(8))
      return v === null || typeof v !== 'object' || Array.isArray(v)
    } catch {
      return true
    }
  })
  t.same(notJson, [], 'no line that is not a JSON object')
  const coloured = [...child.stdout, ...child.stderr].filter((l) => ANSI.test(l))
  t.same(coloured, [], 'no line carries a terminal colour sequence')
  t.ok(child.records().some((r) => r.event === 'shutdown' && r.msg === 'stopped'), 'the run reached its end')
  t.ok(child.records().length > 10, `${child.records().length} JSON lines checked`)
})
