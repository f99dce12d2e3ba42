import { execFile, spawnSync } from 'node:child_process'
import t from 'tap'
import { ConfigError, loadConfig, secretWeakness } from '../../src/config/load.ts'
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
  for (const fragment of ['DATABASE_URL must be a postgres', 'BETTER_AUTH_SECRET is too weak', 'BETTER_AUTH_URL must not end with a slash', 'UPSTREAM_URL is not a valid URL', 'PORT must be', 'TRUSTED_ORIGINS entry "nope"', 'JWT_ALGORITHMS']) {
    t.ok(out.includes(fragment), `reports: ${fragment}`)
  }
  t.notOk(out.includes('hunter2-db-password'), 'database password not printed')
  t.notOk(out.includes(env.BETTER_AUTH_SECRET), 'secret not printed')
})

t.test('weak secrets: short and low entropy are rejected, random ones pass', async (t) => {
  t.ok(secretWeakness('short'))
  t.ok(secretWeakness('abababababababababababababababababababab'))
  t.ok(secretWeakness('passwordpasswordpasswordpassword'))
  t.equal(secretWeakness('Q3v9kL2xP8wR5tY7uI1oA4sD6fG0hJ_zXcVbNm-e'), undefined)
  t.throws(() => loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://x/y', BETTER_AUTH_SECRET: 'x'.repeat(40), BETTER_AUTH_URL: 'https://a.example', UPSTREAM_URL: 'http://u' }), { name: 'ConfigError' })
  // Outside production a weak secret is allowed (development), the default is generated.
  t.doesNotThrow(() => loadConfig({ BETTER_AUTH_SECRET: 'dev' }))
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
})
