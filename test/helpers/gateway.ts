// Start a real gateway (own database, real sockets) in front of a real
// upstream for a test, with its log lines captured as parsed JSON records.
import { createHmac } from 'node:crypto'
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import pino from 'pino'
import type { Test } from 'tap'
import { deriveUrlDefaults, loadConfig } from '../../src/config/load.ts'
import type { ResolvedConfig } from '../../src/config/load.ts'
import { buildDemoApi } from '../../src/demo-api/server.ts'
import { startGateway } from '../../src/start.ts'
import type { Running } from '../../src/start.ts'
import { loggerOptions } from '../../src/telemetry/logging.ts'
import { freshDatabaseUrl } from './database.ts'

export const TEST_SECRET = 'test-secret-Jk3s9Qw7Zx2Lp5Vb8Nm1Rt4Yh6Gf0Dc-authgw'

/** A session cookie signed as better-call signs one (HMAC-SHA256 of the token, base64) for a token of the caller's choosing. */
export function signedSessionCookie(token: string, opts: { name?: string; secret?: string } = {}): string {
  const signature = createHmac('sha256', opts.secret ?? TEST_SECRET).update(token).digest('base64')
  return `${opts.name ?? 'better-auth.session_token'}=${encodeURIComponent(`${token}.${signature}`)}`
}

export type LogRecord = Record<string, unknown> & { msg?: string; level?: number }

export class LogCapture extends Writable {
  readonly lines: string[] = []
  override _write(chunk: Buffer, _enc: string, cb: () => void) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.lines.push(line)
    cb()
  }
  records(): LogRecord[] {
    return this.lines.map((l) => JSON.parse(l) as LogRecord)
  }
  accessLines(): LogRecord[] {
    return this.records().filter((r) => r.msg === 'request')
  }
}

export type TestGateway = Running & { logs: LogCapture; config: ResolvedConfig; databaseUrl: string }

export type GatewayOptions = {
  env?: Record<string, string>
  databaseUrl?: string
  upstreamUrl?: string
  /** Start the demo upstream (default) or use `upstreamUrl`. */
  demoUpstream?: boolean
  port?: number
}

/** A gateway on an ephemeral port with its own database (or a shared one when given). */
export async function startTestGateway(t: Test, opts: GatewayOptions = {}): Promise<TestGateway> {
  const databaseUrl = opts.databaseUrl ?? (await freshDatabaseUrl(t))
  const port = opts.port ?? (await freePort())
  const baseUrl = opts.env?.BETTER_AUTH_URL ?? `http://127.0.0.1:${port}`
  let upstreamUrl = opts.upstreamUrl
  if (upstreamUrl === undefined) {
    const issuer = opts.env?.BETTER_AUTH_ISSUER ?? new URL(baseUrl).origin
    const audience = opts.env?.BETTER_AUTH_AUDIENCE ?? new URL(baseUrl).origin
    const demo = buildDemoApi({ jwksUrl: `http://127.0.0.1:${port}/api/auth/jwks`, issuer, audience })
    await demo.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => demo.close())
    upstreamUrl = `http://127.0.0.1:${(demo.server.address() as AddressInfo).port}`
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    BETTER_AUTH_SECRET: TEST_SECRET,
    BETTER_AUTH_URL: baseUrl,
    UPSTREAM_URL: upstreamUrl,
    PORT: String(port),
    HOST: '127.0.0.1',
    METRICS_PORT: '0',
    DEMO_APP: 'off',
    LOG_LEVEL: 'info',
    ...opts.env,
  })
  const resolved = deriveUrlDefaults({ ...config, databaseUrl, secret: config.secret ?? TEST_SECRET, baseUrl, upstreamUrl })
  const logs = new LogCapture()
  const logger = pino(loggerOptions(resolved.logLevel), logs)
  const running = await startGateway(resolved, { logger, version: '0.0.0-test' })
  t.teardown(() => running.close())
  return Object.assign(running, { logs, config: resolved, databaseUrl })
}

export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo
      srv.close(() => resolve(port))
    })
  })
}
