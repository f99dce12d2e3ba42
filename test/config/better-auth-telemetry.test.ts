// better-auth's usage telemetry stays off without the gateway writing to
// process.env: BETTER_AUTH_TELEMETRY (which overrides better-auth's options)
// is refused at configuration time, and building the auth instance leaves
// the environment as it found it.
import t from 'tap'
import pg from 'pg'
import { createAuth } from '../../src/auth/better-auth.ts'
import { ConfigError, deriveUrlDefaults, loadConfig } from '../../src/config/load.ts'
import { createLogger } from '../../src/telemetry/logging.ts'

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const BASE = { DATABASE_URL, BETTER_AUTH_SECRET: 'test-secret-that-is-long-enough-0123456789', BETTER_AUTH_URL: 'http://127.0.0.1:3000', UPSTREAM_URL: 'http://127.0.0.1:3001' }

t.test('BETTER_AUTH_TELEMETRY turned on is a configuration problem, listed with the others', async (t) => {
  for (const value of ['1', 'true', 'yes']) {
    const err = (() => {
      try {
        loadConfig({ ...BASE, BETTER_AUTH_TELEMETRY: value, PORT: 'x' })
      } catch (e) {
        return e
      }
    })()
    t.ok(err instanceof ConfigError, `BETTER_AUTH_TELEMETRY=${value} is refused`)
    const problems = (err as ConfigError).problems
    t.ok(problems.some((p) => p.startsWith('BETTER_AUTH_TELEMETRY is set')), 'named')
    t.ok(problems.some((p) => p.startsWith('PORT ')), 'alongside every other problem')
  }
  for (const value of ['false', '']) {
    t.doesNotThrow(() => loadConfig({ ...BASE, BETTER_AUTH_TELEMETRY: value }), `BETTER_AUTH_TELEMETRY=${JSON.stringify(value)} is fine`)
  }
})

t.test('createAuth does not touch process.env', async (t) => {
  const before = { ...process.env }
  const config = deriveUrlDefaults(loadConfig(BASE) as Parameters<typeof deriveUrlDefaults>[0])
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 })
  t.teardown(() => pool.end())
  createAuth(config, { pool, log: createLogger('silent') })
  t.same({ ...process.env }, before)
})
