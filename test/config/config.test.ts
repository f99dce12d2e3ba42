import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.ts'
import { secretWeakness } from '../../src/config/secret-strength.ts'
import { checkConfig } from '../../src/check-config.ts'
import { startTestGateway } from '../helpers/gateway.ts'

const NODE = process.execPath

function run(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(NODE, args, { env: { ...process.env, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
    child.stdin?.end()
  })
}

t.test('production without required settings: one error naming every problem, no defaults', async (t) => {
  try {
    loadConfig({ NODE_ENV: 'production' })
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    const problems = (err as ConfigError).problems
    for (const name of ['DATABASE_URL', 'BETTER_AUTH_SECRET', 'BETTER_AUTH_URL', 'UPSTREAM_URL']) {
      t.ok(problems.some((p) => p.startsWith(name)), `${name} reported`)
    }
  }
})

t.test('invalid values are all reported together and never echo a secret', async (t) => {
  const env = {
    NODE_ENV: 'production',
    DATABASE_URL: 'mysql://admin:hunter2-db-password@db/x',
    BETTER_AUTH_SECRET: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    BETTER_AUTH_URL: 'https://auth.example.com/',
    UPSTREAM_URL: 'not a url',
    PORT: '99999',
    TRUSTED_ORIGINS: 'https://ok.example.com,nope',
    JWT_ALGORITHMS: 'HS256',
  }
  const r = spawnSync(NODE, ['src/main.ts'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 })
  t.equal(r.status, 1, 'non-zero exit')
  const out = r.stdout + r.stderr
  // One JSON line (no plain text on stdout or stderr), listing every problem.
  const lines = out.split('\n').filter((l) => l.trim() !== '')
  t.equal(lines.length, 1, out)
  const record = JSON.parse(lines[0] ?? '{}') as { level: number; msg: string; problems: string[] }
  t.equal(record.level, 60, 'fatal')
  t.equal(record.msg, 'invalid configuration')
  const problems = record.problems.join('\n')
  for (const fragment of ['DATABASE_URL must be a postgres', 'BETTER_AUTH_SECRET is too weak', 'BETTER_AUTH_URL must not end with a slash', 'UPSTREAM_URL is not a valid URL', 'PORT must be', 'TRUSTED_ORIGINS entry "nope"', 'JWT_ALGORITHMS']) {
    t.ok(problems.includes(fragment), `reports: ${fragment}`)
  }
  t.notOk(out.includes('hunter2-db-password'), 'database password not printed')
  t.notOk(out.includes(env.BETTER_AUTH_SECRET), 'secret not printed')
})

const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://x/y',
  BETTER_AUTH_URL: 'https://a.example',
  UPSTREAM_URL: 'http://u',
  HOST: '0.0.0.0',
}
const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env)
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.problems
  }
}

t.test('weak secrets: short and low entropy are rejected, random ones pass', async (t) => {
  t.ok(secretWeakness('short'))
  t.ok(secretWeakness('abababababababababababababababababababab'))
  t.ok(secretWeakness('passwordpasswordpasswordpassword'))
  t.equal(secretWeakness('Q3v9kL2xP8wR5tY7uI1oA4sD6fG0hJ_zXcVbNm-e'), undefined)
  t.throws(() => loadConfig({ ...PRODUCTION, BETTER_AUTH_SECRET: 'x'.repeat(40) }), { name: 'ConfigError' })
  // Outside production a weak secret is allowed (development), the default is generated.
  t.doesNotThrow(() => loadConfig({ BETTER_AUTH_SECRET: 'dev' }))
})

// test/config/secret-strength.test.ts covers the families; these are the
// examples the issue found starting in production, through loadConfig.
const ISSUE_SECRETS = [
  '0123456789012345678901234567890123456789',
  'abcdefghijklmnopqrstuvwxyz012345',
  'my-super-secret-key-that-is-at-least-32-characters-long',
  // better-auth's own fallback (better-auth/dist/utils/constants.mjs).
  'better-auth-secret-12345678901234567890',
]

t.test('production refuses the weak secrets that used to start, saying how to make a good one', async (t) => {
  for (const secret of ISSUE_SECRETS) {
    const problems = problemsOf({ ...PRODUCTION, BETTER_AUTH_SECRET: secret })
    const weak = problems.find((p) => p.startsWith('BETTER_AUTH_SECRET is too weak'))
    t.ok(weak, `refused: ${secret}`)
    t.match(weak ?? '', /openssl rand -base64 32/)
    t.notOk(problems.join(' ').includes(secret), 'the secret is not echoed')
  }
  t.same(problemsOf({ ...PRODUCTION, BETTER_AUTH_SECRET: randomBytes(32).toString('base64') }), [], 'openssl rand -base64 32 passes')
})

t.test('check-config refuses a weak secret whatever NODE_ENV says', async (t) => {
  for (const secret of ISSUE_SECRETS) {
    const lines = await checkConfig({ DATABASE_URL: 'postgres://x@127.0.0.1:1/y', BETTER_AUTH_SECRET: secret, BETTER_AUTH_URL: 'http://a.example', UPSTREAM_URL: 'http://u.example' })
    const weak = lines.find((l) => l.check === 'config' && !l.ok && l.detail.startsWith('BETTER_AUTH_SECRET is too weak'))
    t.ok(weak, `refused: ${secret}`)
    t.match(weak?.detail, /openssl rand -base64 32/)
    t.notOk(JSON.stringify(lines).includes(secret), 'not echoed')
  }
})

t.test("better-auth's default secret is refused before better-auth sees it", async (t) => {
  const r = spawnSync(NODE, ['src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', ...PRODUCTION, BETTER_AUTH_SECRET: 'better-auth-secret-12345678901234567890' },
    encoding: 'utf8',
    timeout: 20_000,
  })
  t.equal(r.status, 1)
  t.equal(r.stderr, '', 'no unhandled rejection on stderr')
  const record = JSON.parse(r.stdout.trim()) as { msg: string; problems: string[] }
  t.equal(record.msg, 'invalid configuration')
  t.match(record.problems.join('\n'), /BETTER_AUTH_SECRET is too weak: it is better-auth's published default secret/)
})

t.test('HOST: loopback by default in development, required in production', async (t) => {
  const dev = loadConfig({})
  t.equal(dev.host, '127.0.0.1', 'development listens on loopback')
  t.equal(dev.metricsHost, '127.0.0.1', 'metrics too')
  t.equal(loadConfig({ HOST: '0.0.0.0' }).metricsHost, '0.0.0.0', 'METRICS_HOST follows HOST')
  const { HOST: _omitted, ...noHost } = PRODUCTION
  t.match(problemsOf({ ...noHost, BETTER_AUTH_SECRET: randomBytes(32).toString('base64') }), [/^HOST is required when NODE_ENV=production/])
  const prod = loadConfig({ ...PRODUCTION, BETTER_AUTH_SECRET: randomBytes(32).toString('base64'), METRICS_HOST: '127.0.0.1' })
  t.equal(prod.host, '0.0.0.0')
  t.equal(prod.metricsHost, '127.0.0.1')
})

t.test('JWKS_GRACE_PERIOD_SECONDS shorter than JWT_EXPIRATION_SECONDS is refused', async (t) => {
  t.match(problemsOf({ JWKS_GRACE_PERIOD_SECONDS: '600', JWT_EXPIRATION_SECONDS: '900' }), [/^JWKS_GRACE_PERIOD_SECONDS \(600\) must be at least JWT_EXPIRATION_SECONDS \(900\)/])
  t.match(problemsOf({ JWKS_GRACE_PERIOD_SECONDS: '100' }), [/JWT_EXPIRATION_SECONDS \(900\)/], 'against the default expiration too')
  t.same(problemsOf({ JWKS_GRACE_PERIOD_SECONDS: '900', JWT_EXPIRATION_SECONDS: '900' }), [])
})

t.test('a trailing slash is reported under the variable that has it, with its own consequence', async (t) => {
  t.match(problemsOf({ BETTER_AUTH_URL: 'http://a.example/' }), [/^BETTER_AUTH_URL must not end with a slash \(better-auth/])
  t.match(problemsOf({ UPSTREAM_URL: 'http://u.example/' }), [/^UPSTREAM_URL must not end with a slash \(every proxied path/])
  const both = problemsOf({ BETTER_AUTH_URL: 'http://a.example/', UPSTREAM_URL: 'http://u.example/' })
  t.equal(both.length, 2)
  t.notOk(both.some((p) => p.startsWith('UPSTREAM_URL') && p.includes('better-auth')), 'UPSTREAM_URL is not blamed on better-auth')
})

t.test('check-config: passes against a running gateway, fails with a readable report otherwise', async (t) => {
  const gw = await startTestGateway(t)
  const env = {
    DATABASE_URL: gw.databaseUrl,
    BETTER_AUTH_SECRET: gw.config.secret,
    BETTER_AUTH_URL: gw.config.baseUrl,
    UPSTREAM_URL: gw.config.upstreamUrl,
  }
  const ok = await checkConfig(env)
  t.ok(ok.every((l) => l.ok), JSON.stringify(ok))
  t.ok(ok.some((l) => l.check === 'migrations' && l.detail === 'up to date'))
  t.ok(ok.some((l) => l.check === 'jwks' && / with [1-9]\d* key/.test(l.detail)))

  const bad = await checkConfig({ ...env, DATABASE_URL: 'postgres://nobody:topsecret@127.0.0.1:1/nope' })
  const db = bad.find((l) => l.check === 'database')
  t.equal(db?.ok, false)
  t.match(db?.detail, /127\.0\.0\.1:1\/nope/)
  t.notOk(JSON.stringify(bad).includes('topsecret'))

  // Asynchronously: the gateway it checks runs in this process.
  const r = await run(['src/check-config.ts'], env)
  t.equal(r.status, 0, r.stdout + r.stderr)
  t.notOk(r.stdout.includes(gw.config.secret))
  // Every line it prints is a JSON object: one per check, then the summary.
  const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; check?: string; ok: boolean; failed?: string[] })
  t.same(printed.slice(0, -1).map((l) => l.check), ok.map((l) => l.check), 'one line per check, in order')
  t.ok(printed.slice(0, -1).every((l) => l.event === 'check' && l.ok === true))
  t.same(printed.at(-1), { event: 'check_config', ok: true, checks: ok.length, failed: [], msg: 'every check passed' })
})

t.test('probe settings: off by default, validated together with everything else', async (t) => {
  const base = { NODE_ENV: 'test', BETTER_AUTH_URL: 'http://localhost:3000' }
  const dflt = loadConfig(base)
  t.same(dflt.probe, { intervalSeconds: 0, url: undefined, path: '/api/me', stepTimeoutMs: 5000 }, 'off, PROBE_URL falls back to BETTER_AUTH_URL, /api/me')
  const set = loadConfig({ ...base, PROBE_INTERVAL_SECONDS: '15', PROBE_URL: 'https://lb.example.com', PROBE_PATH: '/api/health/deep', PROBE_STEP_TIMEOUT_MS: '2000' })
  t.same(set.probe, { intervalSeconds: 15, url: 'https://lb.example.com', path: '/api/health/deep', stepTimeoutMs: 2000 })
  try {
    loadConfig({ ...base, PROBE_INTERVAL_SECONDS: '2', PROBE_URL: 'ftp://lb/', PROBE_PATH: '/api/auth/get-session', PROBE_STEP_TIMEOUT_MS: 'soon' })
    t.fail('should throw')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    const problems = (err as ConfigError).problems.join('\n')
    for (const fragment of ['PROBE_INTERVAL_SECONDS must be 0 (off) or at least 5', 'PROBE_URL must be an http(s) URL', 'PROBE_URL must not end with a slash', 'PROBE_PATH must be a path under /api/', 'PROBE_STEP_TIMEOUT_MS must be an integer']) {
      t.ok(problems.includes(fragment), `reports: ${fragment}`)
    }
  }
  t.throws(() => loadConfig({ ...base, PROBE_PATH: '/api/me?x=1' }), ConfigError, 'a query string is refused')
})
