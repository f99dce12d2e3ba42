// Development defaults that need the disk or a process, filled in only outside
// production: an embedded PostgreSQL under .data/pg, a secret generated once
// into .data/secret (so sessions survive restarts), and the demo upstream on a
// loopback port. Each one is announced in the startup log.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { buildDemoApi } from '../demo-api/server.ts'
import { startEmbeddedPostgres } from '../db/embedded.ts'
import { deriveUrlDefaults } from './load.ts'
import type { Config, ResolvedConfig } from './load.ts'

export type DevResources = { config: ResolvedConfig; close(): Promise<void> }

export async function applyDevDefaults(config: Config, opts: { dataDir: string; log: Logger }): Promise<DevResources> {
  const { log, dataDir } = opts
  const closers: Array<() => Promise<void>> = []
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined)
  }
  try {
    if (config.production && (!config.databaseUrl || !config.secret || !config.baseUrl || !config.upstreamUrl)) {
      throw new Error('production configuration is incomplete') // loadConfig already refuses this
    }
    let databaseUrl = config.databaseUrl
    if (databaseUrl === undefined) {
      const pg = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), log: (o, m) => log.debug(o, m) })
      closers.push(() => pg.stop())
      databaseUrl = pg.url
      log.info({ event: 'dev_default', setting: 'DATABASE_URL', value: `embedded PostgreSQL on 127.0.0.1:${pg.port}, data in ${join(dataDir, 'pg')}` }, 'using development default')
    }

    let secret = config.secret
    if (secret === undefined) {
      secret = await persistentSecret(join(dataDir, 'secret'))
      log.info({ event: 'dev_default', setting: 'BETTER_AUTH_SECRET', value: `generated, stored in ${join(dataDir, 'secret')}` }, 'using development default')
    }

    const baseUrl = config.baseUrl ?? `http://localhost:${config.port}`
    if (config.baseUrl === undefined) log.info({ event: 'dev_default', setting: 'BETTER_AUTH_URL', value: baseUrl }, 'using development default')

    let upstreamUrl = config.upstreamUrl
    if (upstreamUrl === undefined) {
      const origin = new URL(baseUrl).origin
      const demo = buildDemoApi({
        jwksUrl: `http://127.0.0.1:${config.port}/api/auth/jwks`,
        issuer: config.issuer ?? origin,
        audience: config.audience ?? origin,
        algorithms: config.jwt.algorithms,
      })
      await demo.listen({ port: 0, host: '127.0.0.1' })
      closers.push(() => demo.close())
      upstreamUrl = `http://127.0.0.1:${(demo.server.address() as AddressInfo).port}`
      log.info({ event: 'dev_default', setting: 'UPSTREAM_URL', value: `demo API at ${upstreamUrl}` }, 'using development default')
    }

    return { config: deriveUrlDefaults({ ...config, databaseUrl, secret, baseUrl, upstreamUrl }), close }
  } catch (err) {
    await close()
    throw err
  }
}

async function persistentSecret(file: string): Promise<string> {
  try {
    const existing = (await readFile(file, 'utf8')).trim()
    if (existing.length >= 32) return existing
  } catch {
    // first start
  }
  await mkdir(join(file, '..'), { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  await writeFile(file, `${secret}\n`, { mode: 0o600 })
  await chmod(file, 0o600)
  return secret
}
