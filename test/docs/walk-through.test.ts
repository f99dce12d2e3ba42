// The README's walk-through is run as written, twice, against `npm start`'s
// main on free ports: a newcomer who pastes it a second time must not find an
// emptied cookie jar (with `-c jar` alone a failed sign-up rewrites it empty and
// the next call is 401 no_credentials; pinned below so the README's comment
// stays true of curl).
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { eventually } from '../faults/support.ts'
import { spawnNode } from '../fixtures/node-process.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { docSection } from '../helpers/docs.ts'
import { TEST_SECRET, freePort } from '../helpers/gateway.ts'

/** The first ```sh block of the README's "Walk-through with curl". */
function walkThrough(): string {
  const lines = docSection('README.md', 'Walk-through with curl')
  const start = lines.indexOf('```sh')
  const end = lines.indexOf('```', start + 1)
  if (start === -1 || end === -1) throw new Error('README "Walk-through with curl" has no ```sh block')
  return lines.slice(start + 1, end).join('\n')
}

function bash(script: string, cwd: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env }, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

const json = (line: string | undefined): Record<string, unknown> => {
  try {
    return JSON.parse(line ?? '') as Record<string, unknown>
  } catch {
    return { unparsed: line }
  }
}

const sessionCookieIn = async (jar: string) => (await readFile(jar, 'utf8').catch(() => '')).includes('better-auth.session_token')

t.test('the README walk-through runs as written, and again', async (t) => {
  const [port, metricsPort] = [await freePort(), await freePort()]
  // Development defaults as `npm start` has them (the demo upstream, loopback
  // origin); only the database and secret are given so nothing lands in .data/.
  const child = spawnNode(t, ['--import', './src/telemetry/otel-bootstrap.ts', 'src/main.ts'], {
    DATABASE_URL: await freshDatabaseUrl(t),
    BETTER_AUTH_SECRET: TEST_SECRET,
    PORT: String(port),
    METRICS_PORT: String(metricsPort),
  })
  // Bounds only keep a broken start from hanging the test; a loaded CI machine is slow.
  await eventually(
    async () => {
      if ((await Promise.race([child.exited, Promise.resolve('running')])) !== 'running') throw new Error(`exited early: ${child.stderr.join('\n')}`)
      return child.records().find((r) => r.event === 'startup')
    },
    { limitMs: 120_000, what: 'authgw started' },
  )
  await eventually(async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), { limitMs: 120_000, what: '/readyz 200' })

  const dir = await mkdtemp(join(tmpdir(), 'authgw-walk-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const env = { PORT: String(port), METRICS_PORT: String(metricsPort) }
  const script = walkThrough()

  for (const run of ['first run: sign-up', 'second run: the user exists, sign-in']) {
    const r = await bash(`set -e\n${script}`, dir, env)
    t.equal(r.code, 0, `${run}: exit 0 ${r.stderr}`)
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '')
    const [signedIn, withCookie, withBearer, anonymous, metric] = lines
    t.match(json(signedIn), { user: { email: 'ada@example.com' } }, `${run}: signed in as Ada`)
    t.match(json(withCookie), { email: 'ada@example.com' }, `${run}: /api/me with the cookie`)
    t.match(json(withBearer), { email: 'ada@example.com' }, `${run}: /api/me with the Bearer JWT`)
    // This client signed in seconds ago and now sends no cookie: the gateway names that (docs/reasons.md).
    t.match(json(anonymous), { error: 'unauthorized', reason: 'cookie_not_returned' }, `${run}: a cookie-less call right after sign-in is a 401 that names the cause`)
    t.match(metric ?? '', /^authgw_unauthorized_total\{[^}]*reason="cookie_not_returned"[^}]*\} [1-9]/, `${run}: the 401 is counted`)
    t.equal(lines.length, 5, `${run}: nothing else printed`)
    t.ok(await sessionCookieIn(join(dir, 'jar')), `${run}: the jar holds the session cookie`)
  }

  t.test('why the commands read the jar too: -c alone empties it when sign-up fails', async (t) => {
    const gw = `http://localhost:${port}`
    const r = await bash(
      `cp jar jar-only && curl -s -c jar-only -H 'content-type: application/json' -H "origin: ${gw}" ` +
        `-d '{"email":"ada@example.com","password":"correct horse battery","name":"Ada"}' -o /dev/null -w '%{http_code}' ${gw}/api/auth/sign-up/email`,
      dir,
      env,
    )
    t.equal(r.stdout, '422', 'sign-up of an existing user is refused')
    t.ok(await sessionCookieIn(join(dir, 'jar')), 'the copied jar had the session cookie')
    t.notOk(await sessionCookieIn(join(dir, 'jar-only')), 'and after a failed sign-up with -c alone it has none')
  })
})
