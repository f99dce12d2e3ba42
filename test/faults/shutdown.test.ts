// Graceful shutdown of the real entry point (src/main.ts as a child process):
// SIGTERM → /readyz 503 for SHUTDOWN_DELAY_MS → listener closed → in-flight
// requests (a slow upstream call) complete → exit 0; past SHUTDOWN_DRAIN_MS
// the process gives up and exits 1.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { TEST_SECRET, freePort } from '../helpers/gateway.ts'
import { eventually, rawRequest, recordingUpstream } from './support.ts'

const ROOT = join(import.meta.dirname, '..', '..')

type Child = {
  proc: ChildProcess
  url: string
  port: number
  logs: Array<Record<string, unknown>>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  waitForLog(pred: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>
}

async function startMain(t: Test, upstreamUrl: string, env: Record<string, string>): Promise<Child> {
  const [port, metricsPort] = [await freePort(), await freePort()]
  const databaseUrl = await freshDatabaseUrl(t)
  const proc = spawn(process.execPath, ['src/main.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl,
      BETTER_AUTH_SECRET: TEST_SECRET,
      BETTER_AUTH_URL: `http://127.0.0.1:${port}`,
      UPSTREAM_URL: upstreamUrl,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      DEMO_APP: 'off',
      ...env,
    },
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exited
  })
  const logs: Array<Record<string, unknown>> = []
  const stderr: string[] = []
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      stderr.push(line)
    }
  })
  createInterface({ input: proc.stderr! }).on('line', (line) => stderr.push(line))
  const waitForLog = (pred: (r: Record<string, unknown>) => boolean, what: string) =>
    eventually(async () => logs.find(pred), { limitMs: 30_000, what: `${what} (stderr: ${stderr.join('\n').slice(-500)})` })
  await waitForLog((r) => r.event === 'startup', 'authgw started')
  return { proc, url: `http://127.0.0.1:${port}`, port, logs, exited, waitForLog }
}

/** A request on a connection of its own, resolved with status and full body. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** The payload of a chunked body as read off the wire. */
function dechunk(body: string): string {
  let out = ''
  let i = 0
  for (;;) {
    const eol = body.indexOf('\r\n', i)
    const size = Number.parseInt(body.slice(i, eol), 16)
    if (!(size > 0)) return out
    out += body.slice(eol + 2, eol + 2 + size)
    i = eol + 2 + size + 2
  }
}

const refused = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(false)
    })
    s.once('error', (e: Error & { code?: string }) => resolve(e.code === 'ECONNREFUSED'))
  })

/** An upstream whose /api/slow answers only when the test says so. */
async function heldUpstream(t: Test) {
  let release: () => void = () => undefined
  const released = new Promise<void>((r) => (release = r))
  const upstream = await recordingUpstream(t, (req, res) => {
    if (req.url === '/api/slow') void released.then(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ slow: 'x'.repeat(10_000) })))
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  return { upstream, release }
}

t.test('SIGTERM: readiness fails first, no new connections, the in-flight call completes, exit 0', async (t) => {
  const { upstream, release } = await heldUpstream(t)
  const child = await startMain(t, upstream.url, { SHUTDOWN_DELAY_MS: '4000', SHUTDOWN_DRAIN_MS: '15000' })
  const c = new Client(child.url)
  t.equal((await c.signUp(uniqueEmail('shutdown'), PASSWORD)).status, 200)
  t.equal((await fetch(`${child.url}/readyz`)).status, 200, 'ready before')

  // An idle keep-alive connection must not hold the shutdown up.
  const idle = connect(child.port, '127.0.0.1')
  idle.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')
  const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()))
  idle.on('error', () => undefined)
  idle.resume()

  // On a keep-alive connection (no Connection header): the proxied answer is
  // written by the upstream hop, after the drain started.
  const inFlight = rawRequest(child.port, [`GET /api/slow HTTP/1.1\r\nHost: a\r\nCookie: ${c.cookieHeader}\r\n\r\n`], { waitMs: 20_000 })
  await eventually(async () => (upstream.received.some((r) => r.url === '/api/slow') ? true : undefined), { limitMs: 10_000, what: 'slow call reached the upstream' })

  child.proc.kill('SIGTERM')
  await child.waitForLog((r) => r.event === 'shutdown' && r.msg === 'draining', 'draining logged')
  const ready = await fetch(`${child.url}/readyz`)
  t.equal(ready.status, 503, '/readyz fails first')
  t.match(await ready.json(), { status: 'draining' })
  const keepAlive = await rawRequest(child.port, ['GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n'], { waitMs: 3000 })
  t.equal(keepAlive.status, 200, 'still served while draining')
  t.equal(keepAlive.headers.connection, 'close', 'but a keep-alive client is told to reconnect elsewhere')
  t.ok(keepAlive.closed, 'and its connection is closed')
  // Proxied answers are written by the upstream hop, past Fastify's onSend: they close too.
  const proxied = await rawRequest(child.port, [`GET /api/items HTTP/1.1\r\nHost: a\r\nCookie: ${c.cookieHeader}\r\n\r\n`], { waitMs: 15_000 })
  t.equal(proxied.status, 200, 'a proxied request is still served while draining')
  t.equal(proxied.headers.connection, 'close', 'with Connection: close')
  t.ok(proxied.closed, 'and its connection is closed')
  const denied = await rawRequest(child.port, ['GET /api/items HTTP/1.1\r\nHost: a\r\n\r\n'], { waitMs: 15_000 })
  t.equal(denied.status, 401)
  t.equal(denied.headers.connection, 'close', 'a denial closes too')

  await eventually(async () => ((await refused(child.port)) ? true : undefined), { limitMs: 10_000, what: 'listener closed' })
  t.pass('new connections are refused once SHUTDOWN_DELAY_MS has passed')
  t.equal(child.proc.exitCode, null, 'while the in-flight call is still running')

  release()
  const done = await inFlight
  t.equal(done.status, 200, 'the in-flight request completed')
  t.equal(JSON.parse(done.headers['transfer-encoding'] === 'chunked' ? dechunk(done.body) : done.body).slow.length, 10_000, 'with its whole body')
  t.equal(done.headers.connection, 'close', 'and, answered during the drain, it closes its connection')
  await idleClosed
  t.pass('the idle keep-alive connection was closed')

  const { code } = await child.exited
  t.equal(code, 0, 'exit 0')
  t.ok(child.logs.some((r) => r.event === 'shutdown' && r.msg === 'stopped'), 'stopped logged')
})

t.test('SIGTERM with a call slower than SHUTDOWN_DRAIN_MS: the process exits 1 after the drain time', async (t) => {
  const { upstream } = await heldUpstream(t)
  const child = await startMain(t, upstream.url, { SHUTDOWN_DELAY_MS: '0', SHUTDOWN_DRAIN_MS: '500' })
  const c = new Client(child.url)
  t.equal((await c.signUp(uniqueEmail('shutdown'), PASSWORD)).status, 200)
  const inFlight = get(`${child.url}/api/slow`, { cookie: c.cookieHeader }).then(
    (r) => `answered ${r.status}`,
    (err: Error & { code?: string }) => `cut: ${err.code ?? err.message}`,
  )
  await eventually(async () => (upstream.received.some((r) => r.url === '/api/slow') ? true : undefined), { limitMs: 10_000, what: 'slow call reached the upstream' })
  child.proc.kill('SIGTERM')
  const { code } = await child.exited
  t.equal(code, 1, 'exit 1: drain time exceeded')
  t.ok(child.logs.some((r) => r.event === 'shutdown' && r.msg === 'drain time exceeded, exiting'), 'logged why')
  t.match(await inFlight, /^cut: /, 'the unfinished call was cut, not answered')
})

t.test('buffered stdout (default LOG_SYNC=false): an idle gateway still writes its lines, and exit flushes every one', async (t) => {
  const { upstream } = await heldUpstream(t)
  const child = await startMain(t, upstream.url, { SHUTDOWN_DELAY_MS: '0', SHUTDOWN_DRAIN_MS: '5000' })
  const c = new Client(child.url)
  t.equal((await c.signUp(uniqueEmail('logflush'), PASSWORD)).status, 200)
  const accessLines = () => child.logs.filter((r) => r.msg === 'request' && r.path === '/api/items')
  // Three lines are far below the 4 KiB batch: only the periodic flush writes them.
  for (let i = 0; i < 3; i++) t.equal((await get(`${child.url}/api/items`, { cookie: c.cookieHeader })).status, 200)
  await eventually(async () => (accessLines().length === 3 ? true : undefined), { limitMs: 5_000, what: 'three access lines without further traffic' })
  t.pass('lines below the batch size reach stdout on the periodic flush')

  // Lines logged just before exit are written by the exit handler, not lost in the buffer.
  for (let i = 0; i < 3; i++) t.equal((await get(`${child.url}/api/items`, { cookie: c.cookieHeader })).status, 200)
  child.proc.kill('SIGTERM')
  t.equal((await child.exited).code, 0)
  t.equal(accessLines().length, 6, 'every request has its access line after exit')
  t.ok(child.logs.some((r) => r.event === 'shutdown' && r.msg === 'stopped'), 'the last line before exit is there too')
})
