// Three gateway processes (src/main.ts) on one database behind a real HAProxy
// (round-robin, `option httpchk GET /readyz`, `inter 500ms fall 2 rise 2`),
// for the multi-replica suite of issue 13. Replicas can be killed, stopped
// gracefully and started again on the same ports; HAProxy's CSV stats say
// which servers it considers up.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { TEST_SECRET, freePort } from '../helpers/gateway.ts'
import { eventually } from '../faults/support.ts'

const ROOT = join(import.meta.dirname, '..', '..')
export const CHECK_INTERVAL_MS = 500
export const FALL = 2
export const RISE = 2

export type Replica = {
  name: string
  port: number
  metricsPort: number
  url: string
  metricsUrl: string
  logs: Array<Record<string, unknown>>
  /** Start (again) on the same ports; resolves once it logged its startup line. */
  start(): Promise<void>
  /** SIGKILL now. */
  kill(): Promise<void>
  /** SIGTERM and wait for the exit code. */
  terminate(): Promise<number | null>
}

export type Cluster = {
  url: string
  replicas: Replica[]
  /** HAProxy's view: server name → status (UP, DOWN, ...). */
  serverStatus(): Promise<Map<string, string>>
  waitAllUp(): Promise<void>
}

export async function startCluster(t: Test, opts: { databaseUrl: string; upstreamUrl: string; env: Record<string, string>; size?: number }): Promise<Cluster> {
  const size = opts.size ?? 3
  const lbPort = await freePort()
  const statsPort = await freePort()
  const lbUrl = `http://127.0.0.1:${lbPort}`
  const replicas: Replica[] = []
  for (let i = 0; i < size; i++) {
    replicas.push(replica(t, `r${i}`, await freePort(), await freePort(), {
      DATABASE_URL: opts.databaseUrl,
      BETTER_AUTH_SECRET: TEST_SECRET,
      // Every replica answers for the load balancer's URL, as in a deployment.
      BETTER_AUTH_URL: lbUrl,
      UPSTREAM_URL: opts.upstreamUrl,
      HOST: '127.0.0.1',
      DEMO_APP: 'off',
      // HAProxy adds X-Forwarded-For; tests give each simulated client its own address.
      TRUST_PROXY: 'loopback',
      LOG_LEVEL: 'info',
      ...opts.env,
    }))
  }
  await Promise.all(replicas.map((r) => r.start()))

  const dir = mkdtempSync(join(tmpdir(), 'authgw-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cfg = join(dir, 'haproxy.cfg')
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 2000',
      'defaults',
      '  mode http',
      '  timeout connect 1s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout http-keep-alive 10s',
      '  retries 3',
      '  option redispatch 1',
      'frontend fe',
      `  bind 127.0.0.1:${lbPort}`,
      '  option forwardfor',
      '  default_backend gateways',
      'backend gateways',
      '  balance roundrobin',
      // A GET in flight on a replica that died gets no response: send it to
      // another replica instead of closing the client's connection (without
      // this, kill -9 under load failed every in-flight request). Never for a
      // method that may not be repeated.
      '  retry-on conn-failure empty-response response-timeout',
      '  http-request disable-l7-retry if !METH_GET !METH_HEAD',
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      `  default-server inter ${CHECK_INTERVAL_MS}ms fall ${FALL} rise ${RISE}`,
      ...replicas.map((r) => `  server ${r.name} 127.0.0.1:${r.port} check`),
      'listen stats',
      `  bind 127.0.0.1:${statsPort}`,
      '  stats enable',
      '  stats uri /stats',
      '',
    ].join('\n'),
  )
  const haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] })
  haproxy.stdout.resume()
  const haproxyErr: string[] = []
  haproxy.stderr.on('data', (d: Buffer) => haproxyErr.push(d.toString()))
  const haproxyExit = new Promise<void>((resolve) => haproxy.once('exit', () => resolve()))
  t.teardown(async () => {
    if (haproxy.exitCode === null) haproxy.kill('SIGKILL')
    await haproxyExit
  })

  const serverStatus = async () => {
    const res = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)
    const out = new Map<string, string>()
    for (const line of (await res.text()).split('\n')) {
      const cells = line.split(',')
      if (cells[0] === 'gateways' && cells[1] !== 'BACKEND' && cells[1] !== undefined) out.set(cells[1], cells[17] ?? '')
    }
    return out
  }
  const waitAllUp = async () => {
    await eventually(
      async () => {
        try {
          const s = await serverStatus()
          return replicas.every((r) => s.get(r.name) === 'UP') ? true : undefined
        } catch {
          return undefined
        }
      },
      { limitMs: 30_000, what: `HAProxy sees every replica UP (${haproxyErr.join('').slice(-300)})` },
    )
  }
  await waitAllUp()
  return { url: lbUrl, replicas, serverStatus, waitAllUp }
}

function replica(t: Test, name: string, port: number, metricsPort: number, env: Record<string, string>): Replica {
  let proc: ChildProcess | undefined
  let exited: Promise<number | null> = Promise.resolve(null)
  const logs: Array<Record<string, unknown>> = []
  const self: Replica = {
    name,
    port,
    metricsPort,
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    logs,
    async start() {
      const child = spawn(process.execPath, ['src/main.ts'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PORT: String(port), METRICS_PORT: String(metricsPort), ...env },
      })
      proc = child
      exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
      const stderr: string[] = []
      const startLogs = logs.length
      createInterface({ input: child.stdout! }).on('line', (line) => {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>)
        } catch {
          stderr.push(line)
        }
      })
      createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line))
      await eventually(async () => (logs.slice(startLogs).some((r) => r.msg === 'authgw started') ? true : undefined), {
        limitMs: 60_000,
        what: `${name} started (${stderr.join('\n').slice(-500)})`,
      })
    },
    async kill() {
      proc?.kill('SIGKILL')
      await exited
    },
    async terminate() {
      proc?.kill('SIGTERM')
      return exited
    },
  }
  t.teardown(async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL')
    await exited
  })
  return self
}
