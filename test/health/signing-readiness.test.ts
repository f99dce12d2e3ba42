// A replica whose BETTER_AUTH_SECRET cannot decrypt the signing keys stored
// in the database used to report /readyz 200 and check-config all-ok, then
// answer every cookie request 503 jwks_unavailable. Readiness and check-config
// now prove the secret with a test signing and name the cause.
import t from 'tap'
import { createAuth } from '../../src/auth/better-auth.ts'
import { checkConfig } from '../../src/check-config.ts'
import { deriveUrlDefaults, loadConfig } from '../../src/config/load.ts'
import { runMigrations } from '../../src/db/migrate.ts'
import { createPool } from '../../src/db/pool.ts'
import { createLogger } from '../../src/telemetry/logging.ts'
import { SECRET_MISMATCH_MESSAGE } from '../../src/health/signing-check.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { TEST_SECRET, startTestGateway } from '../helpers/gateway.ts'
import { recordingUpstream } from '../faults/support.ts'

const OTHER_SECRET = 'other-secret-Qm8Zr3Xw5Ty1Uv7Np2Ls9Kd4Hf6Jb0Gc-authgw'

t.test('two gateways on one database, different secrets', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  const upstream = await recordingUpstream(t)
  // A starts first and creates the signing key, encrypted under its secret.
  const a = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url })
  const b = await startTestGateway(t, { databaseUrl, upstreamUrl: upstream.url, env: { BETTER_AUTH_SECRET: OTHER_SECRET } })

  const readyA = await fetch(`${a.url}/readyz`)
  t.equal(readyA.status, 200, 'A is ready')
  t.match(await readyA.json(), { status: 'ready', checks: { database: 'ok', keys: 'ok', migrations: 'ok', signing: 'ok' } })

  const readyB = await fetch(`${b.url}/readyz`)
  t.equal(readyB.status, 503, 'B is not ready')
  t.match(await readyB.json(), { status: 'not_ready', checks: { database: 'ok', keys: 'ok', signing: 'secret_mismatch' } })

  const said = b.logs.records().filter((r) => r.event === 'signing_check')
  t.ok(said.length >= 1, 'B logged the cause')
  t.equal(said[0]?.level, 50, 'at error level')
  t.equal(said[0]?.msg, SECRET_MISMATCH_MESSAGE)
  t.match(String(said[0]?.msg), /^BETTER_AUTH_SECRET cannot decrypt the signing keys stored in the database — /)
  t.notMatch(JSON.stringify(b.logs.records()), /other-secret-Qm8|test-secret-Jk3/, 'no secret in any line')
  t.equal(a.logs.records().filter((r) => r.event === 'signing_check').length, 0, 'A has nothing to say')

  t.test('a /readyz flood reuses one test signing', async (t) => {
    const before = b.logs.records().filter((r) => r.event === 'signing_check').length
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${b.url}/readyz`).then((r) => r.status)))
    t.same(new Set(answers), new Set([503]))
    const probes = b.logs.records().filter((r) => r.event === 'signing_check').length - before
    // One probe per 2 s at most while failing (a slow run may straddle one expiry).
    t.ok(probes <= 2, `${probes} test signing(s) for 50 probes`)
  })

  t.test('check-config says the same, and passes with the right secret', async (t) => {
    const env = { DATABASE_URL: databaseUrl, BETTER_AUTH_URL: b.config.baseUrl, UPSTREAM_URL: upstream.url }
    const wrong = await checkConfig({ ...env, BETTER_AUTH_SECRET: OTHER_SECRET })
    const signing = wrong.find((l) => l.check === 'signing')
    t.equal(signing?.ok, false, JSON.stringify(wrong))
    t.equal(signing?.detail, SECRET_MISMATCH_MESSAGE)
    t.notMatch(JSON.stringify(wrong), /other-secret-Qm8/)

    const right = await checkConfig({ ...env, BETTER_AUTH_SECRET: TEST_SECRET })
    t.match(right.find((l) => l.check === 'signing'), { ok: true, detail: /test signing succeeded/ })
  })
})

t.test('check-config on a migrated database without keys does not create one', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  const env = { DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: OTHER_SECRET, BETTER_AUTH_URL: 'http://127.0.0.1:1', UPSTREAM_URL: 'http://127.0.0.1:2' }
  const config = deriveUrlDefaults({ ...loadConfig(env), databaseUrl, secret: OTHER_SECRET, baseUrl: env.BETTER_AUTH_URL, upstreamUrl: env.UPSTREAM_URL })
  const pool = createPool(databaseUrl, { ...config.pool, max: 2 })
  t.teardown(() => pool.end())
  await runMigrations(createAuth(config, { pool, log: createLogger('silent') }), pool, createLogger('silent'))

  const lines = await checkConfig(env)
  t.match(lines.find((l) => l.check === 'signing'), { ok: true, detail: /no signing key stored yet/ })
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM jwks')
  t.equal(Number(rows[0]?.n), 0, 'no key was minted under the secret being checked')
})
