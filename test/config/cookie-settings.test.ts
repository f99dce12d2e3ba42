// COOKIE_* at the door: COOKIE_SAME_SITE=none on an http BETTER_AUTH_URL is
// refused in production (one fatal JSON line, exit 1, before anything
// listens) and only warned elsewhere; `npm run check-config` prints the
// startup cookie audit as its "cookies" line, ok or FAIL with the problem.
import { execFile, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { checkConfig } from '../../src/check-config.ts'
import { ConfigError, loadConfig } from '../../src/config/load.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { freePort } from '../helpers/gateway.ts'

const NODE = process.execPath
const SECRET = randomBytes(32).toString('base64')
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://x@127.0.0.1:1/y',
  BETTER_AUTH_SECRET: SECRET,
  UPSTREAM_URL: 'http://u.example',
  HOST: '127.0.0.1',
  PORT: '0',
  METRICS_PORT: '0',
}

t.test('production refuses COOKIE_SAME_SITE=none on an http BETTER_AUTH_URL: one fatal JSON line, exit 1', async (t) => {
  const r = spawnSync(NODE, ['src/main.ts'], {
    env: { PATH: process.env.PATH ?? '', ...PRODUCTION, BETTER_AUTH_URL: 'http://auth.example.com', COOKIE_SAME_SITE: 'none' },
    encoding: 'utf8',
    timeout: 30_000,
  })
  t.equal(r.status, 1, 'non-zero exit')
  t.equal(r.stderr, '', 'nothing on stderr')
  const lines = r.stdout.split('\n').filter((l) => l.trim() !== '')
  t.equal(lines.length, 1, r.stdout)
  const record = JSON.parse(lines[0] ?? '{}') as { level: number; event: string; msg: string; problems: string[] }
  t.match(record, { level: 60, event: 'config_invalid', msg: 'invalid configuration' })
  t.same(record.problems, ['COOKIE_SAME_SITE=none requires an https BETTER_AUTH_URL (browsers drop SameSite=None cookies without Secure)'], 'that problem and no other')
  t.notOk(r.stdout.includes(SECRET), 'the secret is not printed')
})

t.test('COOKIE_SAME_SITE=none: accepted with an https BETTER_AUTH_URL, and outside production (where the audit warns)', async (t) => {
  const https = loadConfig({ ...PRODUCTION, BETTER_AUTH_URL: 'https://auth.example.com', COOKIE_SAME_SITE: 'none' })
  t.equal(https.cookies.sameSite, 'none')
  const dev = loadConfig({ NODE_ENV: 'test', BETTER_AUTH_URL: 'http://auth.example.com', COOKIE_SAME_SITE: 'None' })
  t.equal(dev.cookies.sameSite, 'none', 'case-insensitive')
  t.throws(() => loadConfig({ ...PRODUCTION, BETTER_AUTH_URL: 'https://auth.example.com', COOKIE_SAME_SITE: 'relaxed' }), ConfigError, 'an unknown value is refused')
  for (const sameSite of ['lax', 'strict']) {
    t.doesNotThrow(() => loadConfig({ ...PRODUCTION, BETTER_AUTH_URL: 'http://auth.example.com', COOKIE_SAME_SITE: sameSite }), `${sameSite} on http is not refused`)
  }
})

type Line = { ok: boolean; check: string; detail: string }
const cookiesLine = (lines: Line[]): Line | undefined => lines.find((l) => l.check === 'cookies')

function run(args: string[], env: Record<string, string>): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(NODE, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('check-config prints the startup cookie audit as its "cookies" line', async (t) => {
  const databaseUrl = await freshDatabaseUrl(t)
  // Nothing listens there: only the cookies line is asserted (the jwks line fails on its own).
  const port = await freePort()
  const base = { DATABASE_URL: databaseUrl, BETTER_AUTH_SECRET: SECRET, UPSTREAM_URL: 'http://127.0.0.1:1' }

  const sound = await checkConfig({ ...base, BETTER_AUTH_URL: `http://127.0.0.1:${port}` })
  t.same(cookiesLine(sound), { ok: true, check: 'cookies', detail: `better-auth.session_token: browsers on http://127.0.0.1:${port} will keep it` })

  const wrongDomain = await checkConfig({ ...base, BETTER_AUTH_URL: `http://auth.example.net:${port}`, COOKIE_DOMAIN: 'example.com' })
  t.same(cookiesLine(wrongDomain), { ok: false, check: 'cookies', detail: 'domain_not_host_suffix (better-auth.session_token for auth.example.net)' })

  // Outside production COOKIE_SAME_SITE=none on http is not refused, but better-call
  // adds Secure to a SameSite=None cookie, so the browser refuses it over plain http.
  const none = await checkConfig({ ...base, BETTER_AUTH_URL: `http://auth.example.net:${port}`, COOKIE_SAME_SITE: 'none' })
  t.same(cookiesLine(none), { ok: false, check: 'cookies', detail: 'secure_over_http (better-auth.session_token for auth.example.net)' })

  const twoProblems = await checkConfig({ ...base, BETTER_AUTH_URL: `https://app.co.uk:${port}`, COOKIE_DOMAIN: 'co.uk', COOKIE_PREFIX: 'shop' })
  t.same(cookiesLine(twoProblems), { ok: false, check: 'cookies', detail: 'domain_public_suffix (__Secure-shop.session_token for app.co.uk)' }, 'the name better-auth really uses')

  // The command itself: the same line on stdout, and a non-zero exit.
  const r = await run(['src/check-config.ts'], { ...base, BETTER_AUTH_URL: `http://auth.example.net:${port}`, COOKIE_DOMAIN: 'example.com' })
  t.equal(r.status, 1, r.stdout + r.stderr)
  const printed = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(printed.find((l) => l.check === 'cookies'), { event: 'check', check: 'cookies', ok: false, detail: 'domain_not_host_suffix (better-auth.session_token for auth.example.net)' })
  t.match(printed.at(-1), { event: 'check_config', ok: false }, 'the summary line says it failed')
  t.ok((printed.at(-1)?.failed as string[]).includes('cookies'), 'naming the cookies check')
  t.notOk(r.stdout.includes(SECRET), 'the secret is not printed')
})
