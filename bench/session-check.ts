// CPU and wall time per session check (docs/adr/0006-own-session-lookup-sql.md):
// better-auth's own getSession (what the gateway would call per request) against
// the gateway's SessionValidator with its cache off (cookie HMAC + one joined
// query per check) and warm (verify-once + cache hit). Serial calls, one process,
// a real database; CPU is this process's only (PostgreSQL's own work is not in it).
// Run: DATABASE_URL=postgres://… npx node bench/session-check.ts [iterations]
import pino from 'pino'
import { createAuth } from '../src/auth/better-auth.ts'
import { SessionValidator, cookieNamesFor, parseCookieHeader } from '../src/auth/session.ts'
import { deriveUrlDefaults, loadConfig } from '../src/config/load.ts'
import { createPool } from '../src/db/pool.ts'
import { runMigrations } from '../src/db/migrate.ts'
import { createBenchDatabase } from './database.ts'

const ITERATIONS = Number(process.argv[2] ?? 1000)
const ROUNDS = 3
const SECRET = 'bench-secret-Jk3s9Qw7Zx2Lp5Vb8Nm1Rt4Yh6Gf0Dc-authgw'

const db = await createBenchDatabase()
const log = pino({ level: 'warn' })
try {
  const base = 'http://127.0.0.1:3999'
  const config = deriveUrlDefaults({
    ...loadConfig({ NODE_ENV: 'test', DATABASE_URL: db.url, BETTER_AUTH_SECRET: SECRET, BETTER_AUTH_URL: base, UPSTREAM_URL: 'http://127.0.0.1:1', LOG_LEVEL: 'warn' }),
    databaseUrl: db.url,
    secret: SECRET,
    baseUrl: base,
    upstreamUrl: 'http://127.0.0.1:1',
  })
  const pool = createPool(db.url, config.pool)
  const auth = createAuth(config, { pool, log })
  await runMigrations(auth, pool, log)
  const signUp = await auth.api.signUpEmail({ body: { email: 'bench@example.test', password: 'correct horse battery staple', name: 'Bench' }, returnHeaders: true })
  const setCookie = signUp.headers.get('set-cookie') ?? ''
  const cookieHeader = setCookie.split(';')[0] as string
  const cookieName = cookieHeader.slice(0, cookieHeader.indexOf('='))
  const cookies = parseCookieHeader(cookieHeader)
  const validator = (cacheTtlSeconds: number) =>
    new SessionValidator({ pool, secret: SECRET, cookieNames: cookieNamesFor(cookieName, []), cacheTtlSeconds, cacheMaxEntries: 1000 })
  const cold = validator(0)
  const warm = validator(30)

  const variants: Array<[string, () => Promise<boolean>]> = [
    ['better-auth getSession (cookie cache off)', async () => (await auth.api.getSession({ headers: new Headers({ cookie: cookieHeader }), query: { disableCookieCache: true } })) !== null],
    ['SessionValidator, cache off (HMAC + one joined query)', async () => (await cold.validate(cookies))?.ok === true],
    ['SessionValidator, cache warm', async () => (await warm.validate(cookies))?.ok === true],
  ]
  const results = new Map<string, Array<{ cpu: number; wall: number }>>()
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, check] of variants) {
      for (let i = 0; i < 50; i++) if (!(await check())) throw new Error(`${name}: no session`)
      const cpu0 = process.cpuUsage()
      const wall0 = performance.now()
      for (let i = 0; i < ITERATIONS; i++) await check()
      const wall = ((performance.now() - wall0) * 1000) / ITERATIONS
      const c = process.cpuUsage(cpu0)
      results.set(name, [...(results.get(name) ?? []), { cpu: (c.user + c.system) / ITERATIONS, wall }])
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  console.log(JSON.stringify({ iterations: ITERATIONS, rounds: ROUNDS, node: process.version, database: db.describe }))
  for (const [name, rs] of results) {
    console.log(JSON.stringify({ variant: name, cpuMicrosPerCheck: Math.round(median(rs.map((r) => r.cpu))), wallMicrosPerCheck: Math.round(median(rs.map((r) => r.wall))), cpuRange: rs.map((r) => Math.round(r.cpu)) }))
  }
  await pool.end()
} finally {
  await db.drop()
}
