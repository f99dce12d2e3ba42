// Development defaults that need the disk or a process, filled in only outside
// production: an embedded PostgreSQL under .data/pg, a secret generated once
// into .data/secret (so sessions survive restarts), and the demo upstream on a
// loopback port. Each one is announced in the startup log. A loopback base URL
// also trusts the other loopback spellings of the same origin, so a page opened
// at http://127.0.0.1:3000 can sign in to a gateway that calls itself
// http://localhost:3000 (better-auth would answer 403 INVALID_ORIGIN).
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
      const pg = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pg'), log: (level, o, m) => log[level](o, m) })
      closers.push(() => pg.stop())
      databaseUrl = pg.url
      log.info({ event: 'dev_default', setting: 'DATABASE_URL', value: `embedded PostgreSQL on 127.0.0.1:${pg.port}, data in ${join(dataDir, 'pg')}` }, 'using development default')
    }

    let secret = config.secret
    if (secret === undefined) {
      const file = join(dataDir, 'secret')
      const stored = await persistentSecret(file)
      secret = stored.secret
      const value = stored.created ? `generated, stored in ${file}` : `read from ${file} (generated on an earlier start)`
      log.info({ event: 'dev_default', setting: 'BETTER_AUTH_SECRET', value }, 'using development default')
    }

    const baseUrl = config.baseUrl ?? `http://localhost:${config.port}`
    if (config.baseUrl === undefined) log.info({ event: 'dev_default', setting: 'BETTER_AUTH_URL', value: baseUrl }, 'using development default')
    const aliases = config.production ? [] : loopbackAliases(baseUrl).filter((o) => !config.trustedOrigins.includes(o))
    if (aliases.length > 0) log.info({ event: 'dev_default', setting: 'TRUSTED_ORIGINS', value: aliases.join(',') }, 'using development default')
    const trustedOrigins = [...config.trustedOrigins, ...aliases]

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

    return { config: deriveUrlDefaults({ ...config, databaseUrl, secret, baseUrl, upstreamUrl, trustedOrigins }), close }
  } catch (err) {
    await close()
    throw err
  }
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']

/** The other loopback spellings of a loopback origin (none for any other origin). */
export function loopbackAliases(baseUrl: string): string[] {
  const url = new URL(baseUrl)
  if (!LOOPBACK_HOSTS.includes(url.hostname)) return []
  const port = url.port === '' ? '' : `:${url.port}`
  return LOOPBACK_HOSTS.filter((h) => h !== url.hostname).map((h) => `${url.protocol}//${h}${port}`)
}

async function persistentSecret(file: string): Promise<{ secret: string; created: boolean }> {
  try {
    const existing = (await readFile(file, 'utf8')).trim()
    if (existing.length >= 32) return { secret: existing, created: false }
  } catch {
    // first start
  }
  await mkdir(join(file, '..'), { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  await writeFile(file, `${secret}\n`, { mode: 0o600 })
  await chmod(file, 0o600)
  return { secret, created: true }
}
