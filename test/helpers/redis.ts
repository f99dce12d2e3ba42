// Redis for tests: the machine's (REDIS_URL, default 127.0.0.1:6379) with a
// key prefix of the test's own, or a private redis-server a test may stop and
// start (never the machine's).
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { Teardown } from './private-postgres.ts'
import { freePort } from './gateway.ts'

export const machineRedisUrl = (): string => process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A key prefix (and pub/sub channel) no other test uses. */
export const uniquePrefix = (tag = 't'): string => `authgw-test:${tag}:${randomBytes(6).toString('hex')}:`

/** A plain client for assertions; closed on teardown. */
export function redisClient(t: Teardown, url = machineRedisUrl()): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false })
  r.on('error', () => undefined)
  t.teardown(() => r.disconnect())
  return r
}

export type PrivateRedis = {
  url: string
  port: number
  stop(): Promise<void>
  start(): Promise<void>
}

/** redis-server on its own port, no persistence: stopping it loses every key, as a crashed cache would. */
export async function startPrivateRedis(t: Teardown): Promise<PrivateRedis> {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 15_000)
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer)
          resolve()
        }
      })
      proc.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited ${code}: ${out}`))
      })
    })
    proc.stdout?.resume()
    proc.stderr?.resume()
  }
  const stop = async () => {
    const proc = child
    child = undefined
    if (proc === undefined || proc.exitCode !== null) return
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })
  }
  await start()
  t.teardown(stop)
  return { url: `redis://127.0.0.1:${port}`, port, stop, start }
}
