// What `npm start` does without configuration: loopback only, both loopback
// spellings of its own origin trusted, the demo page announced, honest
// development-default lines; and the startup failures it must explain.
import { readFile, rm } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import t from 'tap'
import type { Test } from 'tap'
import { applyDevDefaults } from '../../src/config/dev-defaults.ts'
import { loadConfig } from '../../src/config/load.ts'
import { loggerOptions } from '../../src/telemetry/logging.ts'
import { eventually, recordingUpstream } from '../faults/support.ts'
import { spawnNode } from '../fixtures/node-process.ts'
import type { NodeProcess } from '../fixtures/node-process.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { LogCapture, TEST_SECRET, freePort } from '../helpers/gateway.ts'

/** The startup line; the bound only keeps a broken start from hanging the test (a loaded CI machine is slow). */
const startedUp = (child: NodeProcess) =>
  eventually(
    async () => {
      if ((await Promise.race([child.exited, Promise.resolve('running')])) !== 'running') throw new Error(`exited early: ${child.stderr.join('\n')}`)
      return child.records().find((r) => r.event === 'startup')
    },
    { limitMs: 90_000, what: 'authgw started' },
  )

const refused = (host: string, port: number) =>
  new Promise<string>((resolve) => {
    const s = connect(port, host)
    s.once('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.once('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message))
  })

/** An address of this machine that is not loopback, if it has one. */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address
}

async function startDevMain(t: Test, extra: Record<string, string> = {}) {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const upstream = await recordingUpstream(t)
  // Development: no NODE_ENV, HOST or BETTER_AUTH_URL. The database, secret
  // and upstream are given so nothing is written under the repository's .data/.
  const child = spawnNode(t, ['--import', './src/telemetry/otel-bootstrap.ts', 'src/main.ts'], {
    DATABASE_URL: await freshDatabaseUrl(t),
    BETTER_AUTH_SECRET: TEST_SECRET,
    UPSTREAM_URL: upstream.url,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
    ...extra,
  })
  const startup = await startedUp(child)
  return { child, port, metricsPort, startup }
}

t.test('npm start with development defaults', async (t) => {
  const { child, port, metricsPort, startup } = await startDevMain(t)

  t.test('listens on loopback only, metrics too', async (t) => {
    t.equal(startup.listen, `127.0.0.1:${port}`)
    t.equal(startup.metrics_listen, `127.0.0.1:${metricsPort}`)
    const external = externalAddress()
    if (external === undefined) {
      t.pass('unreachable from other interfaces', { skip: 'this machine has no non-loopback IPv4 address to try' })
      return
    }
    t.equal(await refused(external, port), 'ECONNREFUSED', `gateway not reachable on ${external}`)
    t.equal(await refused(external, metricsPort), 'ECONNREFUSED', `metrics not reachable on ${external}`)
  })

  t.test('announces the demo page at the origin better-auth trusts', async (t) => {
    t.equal(startup.demo_page, `http://localhost:${port}/`)
    t.equal(startup.base_url, `http://localhost:${port}`)
    const trusted = child.records().find((r) => r.event === 'dev_default' && r.setting === 'TRUSTED_ORIGINS')
    t.equal(trusted?.value, `http://127.0.0.1:${port},http://[::1]:${port}`)
  })

  t.test('signing up from the 127.0.0.1 spelling works (it used to be 403 INVALID_ORIGIN)', async (t) => {
    const c = new Client(`http://127.0.0.1:${port}`)
    const r = await c.signUp(uniqueEmail('loopback'), PASSWORD)
    t.equal(r.status, 200, r.text)
    t.equal((await c.get('/api/me')).status, 200, 'and the session works')
    const v6 = await c.post('/api/auth/sign-up/email', { email: uniqueEmail('loopback6'), password: PASSWORD, name: 'v6' }, { headers: { origin: `http://[::1]:${port}` }, cookies: false })
    t.equal(v6.status, 200, `[::1] too: ${v6.text}`)
    const foreign = await c.post('/api/auth/sign-up/email', { email: uniqueEmail('foreign'), password: PASSWORD, name: 'x' }, { headers: { origin: `http://127.0.0.1:${port + 1}` }, cookies: false })
    t.equal(foreign.status, 403, 'another port is still another origin')
  })

  t.test('CORS answers both loopback spellings', async (t) => {
    for (const origin of [`http://127.0.0.1:${port}`, `http://[::1]:${port}`, `http://localhost:${port}`]) {
      const r = await fetch(`http://127.0.0.1:${port}/api/auth/sign-up/email`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      })
      t.equal(r.headers.get('access-control-allow-origin'), origin, origin)
    }
  })
})

t.test('production keeps its explicit HOST', async (t) => {
  const { startup } = await startDevMain(t, { HOST: '0.0.0.0', BETTER_AUTH_URL: 'http://gw.example.test' })
  t.match(startup.listen, /^0\.0\.0\.0:\d+$/, 'HOST wins over the loopback default')
})

async function occupy(t: Test): Promise<number> {
  const server: Server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return (server.address() as AddressInfo).port
}

for (const setting of ['PORT', 'METRICS_PORT'] as const) {
  t.test(`EADDRINUSE on ${setting}: one JSON fatal line naming ${setting}, exit 1`, async (t) => {
    const taken = await occupy(t)
    const upstream = await recordingUpstream(t)
    const child = spawnNode(t, ['src/main.ts'], {
      DATABASE_URL: await freshDatabaseUrl(t),
      BETTER_AUTH_SECRET: TEST_SECRET,
      UPSTREAM_URL: upstream.url,
      PORT: setting === 'PORT' ? String(taken) : String(await freePort()),
      METRICS_PORT: setting === 'METRICS_PORT' ? String(taken) : String(await freePort()),
      HOST: '127.0.0.1',
    })
    t.equal(await child.exited, 1)
    t.same(child.stderr, [], 'nothing on stderr')
    const fatal = child.records().find((r) => r.level === 60)
    t.match(fatal, { msg: 'startup failed', event: 'startup_failed', setting, err: { code: 'EADDRINUSE' } })
    t.match(String((fatal?.err as { message?: string } | undefined)?.message), new RegExp(`^${setting} ${taken} is already in use on 127\\.0\\.0\\.1 \\(EADDRINUSE\\)`))
    t.equal(child.stdout.length, child.records().length, 'every stdout line is JSON')
  })
}

t.test('development defaults: the secret is generated once, then reused, and the log says which', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'authgw-dev-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const config = loadConfig({ DATABASE_URL: 'postgres://unused@127.0.0.1:1/x', UPSTREAM_URL: 'http://127.0.0.1:2' })
  const said: string[] = []
  for (let i = 0; i < 2; i++) {
    const logs = new LogCapture()
    const dev = await applyDevDefaults(config, { dataDir, log: pino(loggerOptions('info'), logs) })
    await dev.close()
    said.push(String(logs.records().find((r) => r.setting === 'BETTER_AUTH_SECRET')?.value))
    t.equal(dev.config.secret, (await readFile(join(dataDir, 'secret'), 'utf8')).trim())
  }
  t.same(said, [`generated, stored in ${join(dataDir, 'secret')}`, `read from ${join(dataDir, 'secret')} (generated on an earlier start)`])
})

t.test('development defaults: an embedded PostgreSQL that dies is logged at error level', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'authgw-dev-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const logs = new LogCapture()
  const config = loadConfig({ BETTER_AUTH_SECRET: TEST_SECRET, UPSTREAM_URL: 'http://127.0.0.1:2' })
  const dev = await applyDevDefaults(config, { dataDir, log: pino(loggerOptions('info'), logs) })
  t.teardown(() => dev.close())
  const pid = Number((await readFile(join(dataDir, 'pg', 'postmaster.pid'), 'utf8')).split('\n')[0])
  t.ok(pid > 0, 'postmaster pid')
  process.kill(pid, 'SIGKILL')
  const died = await eventually(async () => logs.records().find((r) => r.event === 'embedded_postgres_exited'), { limitMs: 15_000, what: 'exit logged' })
  t.equal(died.level, 50, 'error level')
  t.equal(died.msg, 'embedded postgres exited unexpectedly')
  t.equal(died.signal, 'SIGKILL')
})
