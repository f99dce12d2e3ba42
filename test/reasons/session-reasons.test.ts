// Every session reason on authgw_unauthorized_total, constructed for real
// through sockets and a real database, on both paths that can produce it: a
// protected route (source="gateway": the gateway's own 401) and
// /api/auth/token (source="auth": better-auth's 401, classified by the
// gateway). Each case diffs the whole scrape: only its own series may move.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import t from 'tap'
import type { Test } from 'tap'
import { SessionReason, valuesOf } from '../../src/reasons.ts'
import type { SessionReason as SessionReasonT } from '../../src/reasons.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { signedSessionCookie, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, parseKey, scrape, seriesKey, unexpectedMovements } from '../helpers/metrics.ts'
import { eventually } from '../faults/support.ts'

const COOKIE = 'better-auth.session_token'
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
const OTHER_SECRET = 'other-secret-Qm8Zr2Wx6Tn4Ls0Vb3Hy7Kd1Pj5Fc9Ge-authgw'

async function sql(url: string, text: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return (await client.query(text, values)).rows
  } finally {
    await client.end()
  }
}

type Session = { cookieValue: string; token: string; userId: string; email: string }

/** A brand-new user and session; never used on a protected route, so no gateway cache holds it. */
async function freshSession(gw: TestGateway): Promise<Session> {
  const c = new Client(gw.url)
  const email = uniqueEmail('reason')
  // The public origin: a replica started with another instance's BETTER_AUTH_URL checks Origin against it.
  const res = await c.post('/api/auth/sign-up/email', { email, password: PASSWORD, name: 'Test User' }, { headers: { origin: new URL(gw.config.baseUrl).origin } })
  if (res.status !== 200) throw new Error(`sign-up: ${res.status} ${res.text}`)
  const cookieValue = c.jar.get(COOKIE)
  if (cookieValue === undefined) throw new Error('sign-up set no session cookie')
  const raw = decodeURIComponent(cookieValue)
  return { cookieValue, token: raw.slice(0, raw.lastIndexOf('.')), userId: res.body.user.id as string, email }
}

type Path = 'gateway' | 'auth'
type Prepared = { gw: TestGateway; headers: Record<string, string> }
type Case = { reason: SessionReasonT; how: string; prepare: (path: Path) => Promise<Prepared> }

const send = (gw: TestGateway, path: Path, headers: Record<string, string>): Promise<Res> =>
  new Client(gw.url).get(path === 'gateway' ? '/api/me' : '/api/auth/token', { headers })

t.test('every session reason, on a protected route and on /api/auth/token', async (t) => {
  const gw = await startTestGateway(t)
  // A replica (same public URL and database) whose secret differs: cookies
  // signed by `gw` fail its HMAC check.
  const other = await startTestGateway(t, {
    databaseUrl: gw.databaseUrl,
    env: { BETTER_AUTH_URL: gw.config.baseUrl, BETTER_AUTH_SECRET: OTHER_SECRET },
  })
  // A replica with the same secret and database: sessions it issues are not
  // "fresh" to `gw` (FRESH_SIGN_IN_WINDOW_SECONDS is per instance).
  const replica = await startTestGateway(t, { databaseUrl: gw.databaseUrl, env: { BETTER_AUTH_URL: gw.config.baseUrl } })

  const fingerprint = async (g: TestGateway) => {
    const keys = [...(await scrape(g)).keys()].filter((k) => parseKey(k).name === 'authgw_config_info')
    t.equal(keys.length, 1, 'one authgw_config_info series')
    return parseKey(keys[0] as string).labels.secret_fingerprint
  }
  const [fpA, fpB] = [await fingerprint(gw), await fingerprint(other)]
  // 24 bits of a salted scrypt (docs/adr/0003-secret-fingerprint.md).
  t.match(fpA, /^[0-9a-f]{6}$/)
  t.match(fpB, /^[0-9a-f]{6}$/)
  t.not(fpA, fpB, 'instances with different secrets show different secret_fingerprint values')

  const cases: Case[] = [
    {
      reason: SessionReason.no_cookie,
      how: 'a Cookie header with unrelated cookies only',
      prepare: async () => ({ gw, headers: { cookie: 'theme=dark; _ga=GA1.2.345.678' } }),
    },
    {
      reason: SessionReason.cross_site_no_cookie,
      how: 'Sec-Fetch-Site: cross-site and no cookie (the browser dropped a SameSite=Lax cookie)',
      prepare: async () => ({ gw, headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' } }),
    },
    {
      reason: SessionReason.cookie_name_mismatch,
      how: 'a real signed cookie under the __Secure- name on an http gateway',
      prepare: async () => ({ gw, headers: { cookie: `__Secure-${COOKIE}=${(await freshSession(gw)).cookieValue}` } }),
    },
    {
      reason: SessionReason.malformed_cookie,
      how: 'the raw session token without its signature (what sign-in returns in its body)',
      prepare: async () => ({ gw, headers: { cookie: `${COOKIE}=${(await freshSession(gw)).token}` } }),
    },
    {
      reason: SessionReason.bad_signature,
      how: 'a cookie signed by another instance whose BETTER_AUTH_SECRET differs (same database)',
      prepare: async () => ({ gw: other, headers: { cookie: `${COOKIE}=${(await freshSession(gw)).cookieValue}` } }),
    },
    {
      reason: SessionReason.session_not_found,
      how: 'a real cookie, issued by a replica (same database and secret), whose session row was deleted',
      prepare: async () => {
        const s = await freshSession(replica)
        const rows = await sql(gw.databaseUrl, 'DELETE FROM "session" WHERE token = $1 RETURNING id', [s.token])
        if (rows.length !== 1) throw new Error('session row not deleted')
        return { gw, headers: { cookie: `${COOKIE}=${s.cookieValue}` } }
      },
    },
    {
      reason: SessionReason.fresh_session_not_found,
      how: 'a real cookie this instance issued seconds ago whose session row is gone (a lagging replica, an evicted key, another database)',
      prepare: async () => {
        const s = await freshSession(gw)
        const rows = await sql(gw.databaseUrl, 'DELETE FROM "session" WHERE token = $1 RETURNING id', [s.token])
        if (rows.length !== 1) throw new Error('session row not deleted')
        return { gw, headers: { cookie: `${COOKIE}=${s.cookieValue}` } }
      },
    },
    {
      reason: SessionReason.cookie_not_returned,
      how: 'this client (same IP and User-Agent) signed up seconds ago and now calls without a session cookie',
      prepare: async () => {
        const ua = 'diagnosis-test-app/1.0'
        const res = await new Client(gw.url).post('/api/auth/sign-up/email', { email: uniqueEmail('cnr'), password: PASSWORD, name: 'T' }, { headers: { 'user-agent': ua } })
        if (res.status !== 200 || res.headers.getSetCookie().length === 0) throw new Error(`sign-up: ${res.status}`)
        return { gw, headers: { 'user-agent': ua, cookie: 'theme=dark' } }
      },
    },
    {
      reason: SessionReason.credentials_omitted,
      how: 'a same-site browser fetch (Sec-Fetch-Mode: cors) without any cookie: no credentials: "include"',
      prepare: async () => ({
        gw,
        headers: { 'user-agent': BROWSER_UA, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty', origin: 'http://app.localhost' },
      }),
    },
    {
      reason: SessionReason.server_side_no_cookie,
      how: 'a server runtime (python-requests) that forwards its page\'s Origin but no cookie: not cross-site without Sec-Fetch-Site',
      prepare: async () => ({ gw, headers: { 'user-agent': 'python-requests/2.31.0', origin: 'https://app.example.com' } }),
    },
    {
      reason: SessionReason.mobile_no_cookie,
      how: 'an Expo app (expo-origin, OkHttp) without the session cookie',
      prepare: async () => ({ gw, headers: { 'user-agent': 'okhttp/4.12.0', 'expo-origin': 'exp://192.168.1.5:8081' } }),
    },
    {
      reason: SessionReason.duplicate_session_cookie,
      how: 'the session cookie name twice: a stale value (another secret) first, a valid one second',
      prepare: async () => {
        const stale = await freshSession(other)
        const good = await freshSession(gw)
        return { gw, headers: { cookie: `${COOKIE}=${stale.cookieValue}; ${COOKIE}=${good.cookieValue}` } }
      },
    },
    {
      reason: SessionReason.session_data_without_token,
      how: "better-auth's session-data cookie without the session-token cookie (a proxy dropped one Set-Cookie)",
      prepare: async () => ({ gw, headers: { 'user-agent': 'curl/8.5.0', cookie: 'better-auth.session_data=eyJzZXNzaW9uIjp7fX0.c2ln' } }),
    },
    {
      reason: SessionReason.session_not_found,
      how: 'a correctly signed cookie over a token that never existed',
      prepare: async () => {
        const token = randomBytes(24).toString('base64url')
        return { gw, headers: { cookie: signedSessionCookie(token, { name: COOKIE }) } }
      },
    },
    {
      reason: SessionReason.session_expired,
      how: 'a real cookie whose session row expired a minute ago',
      prepare: async () => {
        const s = await freshSession(gw)
        await sql(gw.databaseUrl, `UPDATE "session" SET "expiresAt" = now() - interval '1 minute' WHERE token = $1`, [s.token])
        return { gw, headers: { cookie: `${COOKIE}=${s.cookieValue}` } }
      },
    },
    {
      reason: SessionReason.user_not_found,
      how: 'a real cookie whose session row outlived its user row',
      prepare: async () => {
        // better-auth's schema declares session."userId" REFERENCES "user"(id)
        // ON DELETE CASCADE, so here a session cannot outlive its user; stores
        // without that constraint (hand-written migrations, other adapters,
        // a user removed by another system) can. Drop it in this test's own
        // database to construct the state.
        const fks = await sql(gw.databaseUrl, `SELECT conname FROM pg_constraint WHERE conrelid = '"session"'::regclass AND contype = 'f'`)
        for (const fk of fks) await sql(gw.databaseUrl, `ALTER TABLE "session" DROP CONSTRAINT "${String(fk.conname)}"`)
        const s = await freshSession(gw)
        await sql(gw.databaseUrl, 'DELETE FROM "user" WHERE id = $1', [s.userId])
        const left = await sql(gw.databaseUrl, 'SELECT count(*)::int AS n FROM "session" WHERE token = $1', [s.token])
        if (left[0]?.n !== 1) throw new Error('the session row did not survive the user row')
        return { gw, headers: { cookie: `${COOKIE}=${s.cookieValue}` } }
      },
    },
  ]

  t.same(new Set(cases.map((c) => c.reason)), new Set(valuesOf(SessionReason)), 'every SessionReason has a case')

  for (const c of cases) {
    for (const path of ['gateway', 'auth'] as const) {
      await t.test(`${c.reason} via ${path === 'gateway' ? 'GET /api/me' : 'GET /api/auth/token'}: ${c.how}`, async (t) => {
        const { gw: target, headers } = await c.prepare(path)
        const before = await scrape(target)
        const res = await send(target, path, headers)
        const after = await scrape(target)
        checkDenial(t, target, res, c.reason, path)
        const expected: Record<string, number> =
          path === 'gateway'
            ? {
                [seriesKey('authgw_unauthorized_total', { source: 'gateway', mechanism: 'session', reason: c.reason })]: 1,
                [seriesKey('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'denied' })]: 1,
                [seriesKey('authgw_session_nulls_total', { reason: c.reason })]: 1,
                [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/*', status_code: 401 })]: 1,
              }
            : {
                [seriesKey('authgw_unauthorized_total', { source: 'auth', mechanism: 'session', reason: c.reason })]: 1,
                [seriesKey('authgw_session_nulls_total', { reason: c.reason })]: 1,
                [seriesKey('authgw_token_issue_failures_total', { reason: 'no_session' })]: 1,
                [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/auth/token', status_code: 401 })]: 1,
              }
        // better-auth deletes an expired session row when it meets it; the
        // gateway's delete hook counts that as a session ended.
        if (path === 'auth' && c.reason === SessionReason.session_expired) {
          expected.authgw_sessions_revoked_total = 1
          // ... and announces it to the other replicas (issue 13): the session and its minted JWT.
          expected[seriesKey('authgw_cache_invalidations_total', { kind: 'session', origin: 'local' })] = 1
          expected[seriesKey('authgw_cache_invalidations_total', { kind: 'jwt', origin: 'local' })] = 1
        }
        t.same(unexpectedMovements(delta(before, after), expected), [], 'exactly the expected series moved')
      })
    }
  }
})

function checkDenial(t: Test, gw: TestGateway, res: Res, reason: SessionReasonT, path: Path): void {
  t.equal(res.status, 401, res.text)
  const requestId = res.headers.get('x-request-id')
  t.ok(requestId, 'x-request-id header')
  if (path === 'gateway') {
    t.same(res.body, { error: 'unauthorized', reason, requestId }, 'JSON body names the reason')
    t.notOk(res.headers.get('www-authenticate'), 'no bearer challenge for a cookie client')
  } else {
    // better-auth's own answer goes out unchanged: its clients read `code`.
    t.match(res.body, { code: 'UNAUTHORIZED' }, "better-auth's body")
  }
  const line = gw.logs.accessLines().find((r) => r.reqId === requestId)
  t.ok(line, 'one access log line for the request')
  t.match(line, {
    status: 401,
    route: path === 'gateway' ? '/api/*' : '/api/auth/token',
    mechanism: 'session',
    outcome: 'denied',
    reason,
    source: path === 'gateway' ? 'gateway' : 'auth',
  })
}

t.test('verify-once cookie cache: after a valid cookie is accepted, tampered variants of it are still bad_signature', async (t) => {
  const gw = await startTestGateway(t)
  const s = await freshSession(gw)
  const raw = decodeURIComponent(s.cookieValue)
  const signature = raw.slice(raw.lastIndexOf('.') + 1)
  const cookie = (value: string) => ({ cookie: `${COOKIE}=${encodeURIComponent(value)}` })
  // Accepted twice: the second time from the verified-value cache.
  for (let i = 0; i < 2; i++) t.equal((await send(gw, 'gateway', cookie(raw))).status, 200, `valid cookie accepted (${i + 1})`)

  const flip = (c: string) => (c === 'A' ? 'B' : 'A')
  const variants: Array<[string, string]> = [
    ['one signature character changed', `${s.token}.${flip(signature[0] as string)}${signature.slice(1)}`],
    ['another token under the cached signature', `${randomBytes(24).toString('base64url')}.${signature}`],
    ['the token with one character changed, same signature', `${flip(s.token[0] as string)}${s.token.slice(1)}.${signature}`],
  ]
  for (const [how, value] of variants) {
    const res = await send(gw, 'gateway', cookie(value))
    t.equal(res.status, 401, how)
    t.equal(res.body.reason, SessionReason.bad_signature, `${how}: bad_signature`)
  }
  t.equal((await send(gw, 'gateway', cookie(raw))).status, 200, 'the valid cookie still works')
})

/** A read-only database, as after a failover to a standby: reads answer, writes fail. Every open connection is ended so the setting applies. */
async function setReadOnly(gw: TestGateway, on: boolean): Promise<void> {
  const name = new URL(gw.databaseUrl).pathname.slice(1)
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`unexpected database name ${name}`)
  const admin = new URL(gw.databaseUrl)
  admin.pathname = '/postgres'
  await sql(admin.toString(), `ALTER DATABASE ${name} SET default_transaction_read_only = ${on ? 'on' : 'off'}`)
  await sql(admin.toString(), 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name])
  await eventually(
    async () => {
      if (gw.pool.totalCount !== 0) return undefined
      const rows = (await gw.pool.query('SHOW transaction_read_only')).rows as Array<{ transaction_read_only: string }>
      return rows[0]?.transaction_read_only === (on ? 'on' : 'off') ? true : undefined
    },
    { limitMs: 10_000, what: `gateway pool reconnected with read-only ${on}` },
  )
  // The terminated backends include the invalidation bus's LISTEN connection (issue 13).
  await eventually(async () => ((await scrape(gw)).get('authgw_invalidation_bus_up') === 1 ? true : undefined), { limitMs: 10_000, what: 'invalidation bus reconnected' })
}

t.test('auth_disagrees: better-auth refuses a session the gateway, re-reading a store that answers, finds valid', async (t) => {
  // updateAge 1 s: better-auth's getSession must write a new expiry one second
  // after sign-in, which a read-only database refuses.
  const gw = await startTestGateway(t, { env: { SESSION_EXPIRES_IN_SECONDS: '3600', SESSION_UPDATE_AGE_SECONDS: '1' } })
  const s = await freshSession(gw)
  const cookie = { cookie: `${COOKIE}=${s.cookieValue}` }
  t.equal((await send(gw, 'gateway', cookie)).status, 200, 'the session works')
  // Due for extension in better-auth's eyes: expiresAt - expiresIn + updateAge <= now.
  await eventually(
    async () => {
      const rows = await sql(gw.databaseUrl, 'SELECT "expiresAt" AS exp FROM "session" WHERE token = $1', [s.token])
      return new Date(rows[0]?.exp as Date).getTime() - 3600_000 + 1000 <= Date.now() - 50 ? true : undefined
    },
    { limitMs: 10_000, what: 'session due for extension' },
  )
  await setReadOnly(gw, true)
  t.teardown(() => setReadOnly(gw, false))

  await t.test('/api/auth/token: 401 from better-auth, labelled auth_disagrees (not session_not_found)', async (t) => {
    const before = await scrape(gw)
    const res = await send(gw, 'auth', cookie)
    const after = await scrape(gw)
    t.equal(res.status, 401, res.text)
    t.match(res.body, { code: 'UNAUTHORIZED' }, "better-auth's body goes out unchanged")
    const expected = {
      [seriesKey('authgw_unauthorized_total', { source: 'auth', mechanism: 'session', reason: 'auth_disagrees' })]: 1,
      [seriesKey('authgw_session_nulls_total', { reason: 'auth_disagrees' })]: 1,
      [seriesKey('authgw_token_issue_failures_total', { reason: 'no_session' })]: 1,
      [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/auth/token', status_code: 401 })]: 1,
    }
    t.same(unexpectedMovements(delta(before, after), expected), [], 'exactly the expected series moved')
    const line = gw.logs.accessLines().find((r) => r.reqId === res.headers.get('x-request-id'))
    t.match(line, { status: 401, route: '/api/auth/token', mechanism: 'session', outcome: 'denied', reason: 'auth_disagrees', source: 'auth', code: 'UNAUTHORIZED' })
  })

  await t.test('/api/auth/get-session: better-auth\'s 500 stays a 500 (the store answers; not a credential problem)', async (t) => {
    const before = await scrape(gw)
    const res = await new Client(gw.url).get('/api/auth/get-session', { headers: cookie })
    const after = await scrape(gw)
    t.equal(res.status, 500, res.text)
    const expected = {
      [seriesKey('authgw_http_request_duration_seconds_count', { method: 'GET', route: '/api/auth/get-session', status_code: 500 })]: 1,
    }
    t.same(unexpectedMovements(delta(before, after), expected), [], 'no 401, no session null, no unavailability')
  })

  await t.test('the protected API keeps serving the session; the failed extension is a session_refresh database error', async (t) => {
    const before = await scrape(gw)
    const res = await send(gw, 'gateway', cookie)
    const d = delta(before, await scrape(gw))
    t.equal(res.status, 200, res.text)
    t.same(res.headers.getSetCookie(), [], 'no cookie: nothing was extended')
    t.equal(d.get('authgw_db_errors_total{operation="session_refresh"}'), 1)
    t.equal(d.get(seriesKey('authgw_auth_decisions_total', { mechanism: 'session', outcome: 'allowed' })), 1)
    // Within the retry interval the next request does not ask better-auth again.
    const again = await send(gw, 'gateway', cookie)
    t.equal(again.status, 200)
    t.equal(delta(before, await scrape(gw)).get('authgw_db_errors_total{operation="session_refresh"}'), 1, 'not retried on every request')
  })
})
