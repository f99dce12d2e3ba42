// What a client puts in the request line and the Host header, over raw TCP so
// every byte is the test's: Host values that made every /api/auth/* endpoint
// answer 500, Host and dot-segment tricks that signed in without being
// labelled, counted or audited, and absolute-form targets that reached the
// upstream's request line.
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { scrape, sumOf } from '../helpers/metrics.ts'
import { rawRequest, recordingUpstream } from '../faults/support.ts'
import type { RawResult } from '../faults/support.ts'

type Wire = { method: string; target: string; host?: string | string[]; headers?: Record<string, string>; body?: string }

function send(gw: TestGateway, w: Wire): Promise<RawResult> {
  const port = Number(new URL(gw.url).port)
  const hosts = w.host === undefined ? ['a'] : Array.isArray(w.host) ? w.host : [w.host]
  let head = `${w.method} ${w.target} HTTP/1.1\r\n`
  for (const h of hosts) head += `Host: ${h}\r\n`
  for (const [k, v] of Object.entries(w.headers ?? {})) head += `${k}: ${v}\r\n`
  if (w.body !== undefined) head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(w.body, 'latin1')}\r\n`
  head += 'Connection: close\r\n\r\n'
  // Connection: close: the server's close ends the read; the wait only bounds a hang.
  return rawRequest(port, [Buffer.from(head + (w.body ?? ''), 'latin1')], { waitMs: 30_000 })
}

const json = (r: RawResult): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(r.body) as Record<string, unknown>
  } catch {
    return undefined
  }
}

function assertBadRequest(t: Test, r: RawResult, what: string) {
  t.equal(r.status, 400, `${what}: ${r.text.slice(0, 160)}`)
  t.match(json(r), { error: 'bad_request', reason: 'bad_request' }, `${what}: the JSON 400 shape`)
}

const signIns = async (gw: TestGateway) => {
  const s = await scrape(gw)
  return {
    success: sumOf(s, 'authgw_sign_in_attempts_total', { outcome: 'success' }),
    invalid: sumOf(s, 'authgw_sign_in_attempts_total', { reason: 'invalid_credentials' }),
    rejected: sumOf(s, 'authgw_unauthorized_total', { reason: 'auth_rejected' }),
  }
}
const audits = (gw: TestGateway) => gw.logs.records().filter((r) => r.msg === 'audit' && r.event === 'sign_in').length

// Host values a client can send that are not `uri-host [ ":" port ]` (RFC 9110 §7.2).
const BAD_HOSTS = ['a b', 'a,b', '[::1', 'x:99999', '[::1]:99999', 'gw/api/auth/sign-in/email?', 'a@b', 'h:1:2', '[zz]', 'x:8o', '\u00e9.example', 'a\\b', 'ex%zzample']
// Odd but valid: served as usual.
const GOOD_HOSTS = ['[::1]', '[::1]:8080', '127.0.0.1:65535', 'localhost:', 'EXAMPLE.com', 'my_host', '']

t.test('Host header: an invalid value is a 400 everywhere, never a 500; odd valid values are served', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url })
  const c = new Client(gw.url)
  const email = uniqueEmail('host')
  t.equal((await c.signUp(email, PASSWORD)).status, 200)
  const signIn = JSON.stringify({ email, password: PASSWORD })
  const origin = { Origin: gw.url }
  const endpoints: Wire[] = [
    { method: 'POST', target: '/api/auth/sign-in/email', headers: origin, body: signIn },
    { method: 'POST', target: '/api/auth/sign-up/email', headers: origin, body: JSON.stringify({ email: uniqueEmail('host'), password: PASSWORD, name: 'x' }) },
    { method: 'GET', target: '/api/auth/get-session', headers: { Cookie: c.cookieHeader } },
    { method: 'GET', target: '/api/auth/token', headers: { Cookie: c.cookieHeader } },
    { method: 'GET', target: '/api/auth/ok' },
    { method: 'GET', target: '/api/auth/jwks' },
    { method: 'GET', target: '/api/auth/no-such-endpoint' },
    { method: 'GET', target: '/api/me', headers: { Cookie: c.cookieHeader } },
    { method: 'GET', target: '/api/me' },
    { method: 'GET', target: '/healthz' },
    { method: 'GET', target: '/nowhere' },
  ]
  const received = upstream.received.length
  for (const host of BAD_HOSTS) {
    for (const e of endpoints) assertBadRequest(t, await send(gw, { ...e, host }), `${e.method} ${e.target} Host: ${JSON.stringify(host)}`)
  }
  // Two Host fields: Node keeps the first, a proxy in front may keep the last.
  for (const e of endpoints) assertBadRequest(t, await send(gw, { ...e, host: ['a', 'b'] }), `${e.method} ${e.target} with two Host fields`)
  t.equal(upstream.received.length, received, 'nothing with a bad Host reached the upstream')

  for (const host of GOOD_HOSTS) {
    t.equal((await send(gw, { method: 'GET', target: '/api/auth/ok', host })).status, 200, `Host: ${JSON.stringify(host)} is served`)
    const signedIn = await send(gw, { method: 'POST', target: '/api/auth/sign-in/email', host, headers: origin, body: signIn })
    t.equal(signedIn.status, 200, `sign-in with Host: ${JSON.stringify(host)}: ${signedIn.body.slice(0, 120)}`)
    t.equal((await send(gw, { method: 'GET', target: '/api/me', host, headers: { Cookie: c.cookieHeader } })).status, 200)
  }

  const errors = gw.logs.records().filter((r) => (r.level ?? 0) >= 50)
  t.same(errors.map((e) => e.msg), [], 'no error-level line')
  const refused = gw.logs.accessLines().filter((l) => l.status === 400)
  t.ok(refused.length > 0 && refused.every((l) => l.reason === 'bad_request' && l.refused === 'host'), 'each refusal has an access line saying why')
})

t.test("Host through a trusted proxy: better-auth's URL never comes from X-Forwarded-Host, and a forwarded garbage host is not passed on", async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { TRUST_PROXY: '127.0.0.1' } })
  const c = new Client(gw.url)
  const email = uniqueEmail('xfh')
  t.equal((await c.signUp(email, PASSWORD)).status, 200)
  const before = await signIns(gw)
  const auditsBefore = audits(gw)
  const r = await send(gw, {
    method: 'POST',
    target: '/api/auth/ok',
    headers: { Origin: gw.url, 'X-Forwarded-Host': 'gw/api/auth/sign-in/email?' },
    body: JSON.stringify({ email, password: PASSWORD }),
  })
  // better-auth acted on the request line's path (it has no POST /ok), not on a path smuggled in a host.
  t.equal(r.status, 404, r.body)
  t.notOk(r.headers['set-cookie'], 'no session was created')
  t.same(await signIns(gw), before, 'no sign-in happened')
  t.equal(audits(gw), auditsBefore)
  t.equal(gw.logs.accessLines().at(-1)?.route, '/api/auth/ok')

  for (const [forwarded, expected] of [
    ['app.example:8443', 'app.example:8443'],
    ['gw/api/x?', 'a'],
    ['a b', 'a'],
    ['[::1', 'a'],
  ]) {
    const p = await send(gw, { method: 'GET', target: '/api/me', headers: { Cookie: c.cookieHeader, 'X-Forwarded-Host': forwarded! } })
    t.equal(p.status, 200, `X-Forwarded-Host: ${forwarded}`)
    t.equal(upstream.received.at(-1)?.headers['x-forwarded-host'], expected, `the upstream's X-Forwarded-Host for ${JSON.stringify(forwarded)}`)
  }
})

t.test('auth paths: the path better-auth acts on is the one labelled, counted and audited', async (t) => {
  const gw = await startTestGateway(t)
  const c = new Client(gw.url)
  const email = uniqueEmail('dots')
  t.equal((await c.signUp(email, PASSWORD)).status, 200)
  const good = JSON.stringify({ email, password: PASSWORD })
  const wrong = JSON.stringify({ email, password: `${PASSWORD}-wrong` })
  const origin = { Origin: gw.url }

  // Every spelling a URL parser, a router or a framework upstream reads as
  // another path: dot segments (plain, encoded, mixed case), encoded slashes
  // and back slashes, back slashes, empty segments, `;` parameters, fragments.
  const variants = [
    '/api/auth/./sign-in/email',
    '/api/auth/x/../sign-in/email',
    '/api/auth/%2e/sign-in/email',
    '/api/auth/%2E/sign-in/email',
    '/api/auth/x/%2e%2e/sign-in/email',
    '/api/auth/x/.%2e/sign-in/email',
    '/api/auth/x/%2E./sign-in/email',
    '/api/auth/sign-in/./email',
    '/api/auth/sign-in/x/../email',
    '/api/auth/sign-in/email/.',
    '/api/auth/sign-in/email/x/..',
    '/api/auth/sign-in%2femail',
    '/api/auth/sign-in%2Femail',
    '/api/auth/sign-in%5cemail',
    '/api/auth/x\\..\\sign-in/email',
    '/api/auth/sign-in\\email',
    '/api/auth//sign-in/email',
    '/api/auth/sign-in//email',
    '/api/auth/sign-in/email;x=1',
    '/api/auth/sign-in;/email',
    '/api/auth/ok#/../sign-in/email',
    '/api/auth/sign-in/email#',
    '/api/auth/sign-in/email#x',
    '/api/auth/ok/..%2fsign-in/email',
    '/api/auth/ok/%2e%2e/sign-in/email?x=1',
  ]
  const before = await signIns(gw)
  const auditsBefore = audits(gw)
  for (const target of variants) {
    for (const body of [good, wrong]) {
      const r = await send(gw, { method: 'POST', target, headers: origin, body })
      assertBadRequest(t, r, `POST ${target}`)
      t.notOk(r.headers['set-cookie'], 'no session cookie')
    }
  }
  // Host injection (the URL used to be built from Host): refused before better-auth runs.
  assertBadRequest(t, await send(gw, { method: 'POST', target: '/api/auth/ok', host: 'gw/api/auth/sign-in/email?', headers: origin, body: good }), 'Host: gw/api/auth/sign-in/email?')
  t.same(await signIns(gw), before, 'nothing counted: nothing was signed in')
  t.equal(audits(gw), auditsBefore, 'no sign_in audit line: nothing was signed in')
  const refusedPaths = gw.logs.accessLines().filter((l) => l.status === 400 && l.refused !== 'host')
  t.equal(refusedPaths.length, variants.length * 2)
  t.same([...new Set(refusedPaths.map((l) => l.route))], ['/api/auth/other'], 'refused paths are labelled /api/auth/other, whatever they spell')

  // Spellings that are not ambiguous stay served, and what signs in is counted and audited.
  const served: Array<{ target: string; signsIn: boolean }> = [
    { target: '/api/auth/sign-in/email', signsIn: true },
    { target: '/api/auth/sign-in/email?', signsIn: true },
    { target: '/api/auth/sign-in/email?x=..%2f', signsIn: true },
    { target: '/api/auth/sign-in/%65mail', signsIn: false },
    { target: '/api/auth/sign-in/email/', signsIn: false },
    { target: '/api/auth/SIGN-IN/email', signsIn: false },
  ]
  for (const { target, signsIn } of served) {
    const b = await signIns(gw)
    const a = audits(gw)
    const r = await send(gw, { method: 'POST', target, headers: origin, body: good })
    const line = gw.logs.accessLines().at(-1)
    if (signsIn) {
      t.equal(r.status, 200, `POST ${target} signs in`)
      t.equal((await signIns(gw)).success - b.success, 1, `${target}: counted`)
      t.equal(audits(gw) - a, 1, `${target}: audited`)
      t.equal(line?.route, '/api/auth/sign-in/email', `${target}: labelled as sign-in`)
      const w = await send(gw, { method: 'POST', target, headers: origin, body: wrong })
      t.equal(w.status, 401)
      const after = await signIns(gw)
      t.equal(after.invalid - b.invalid, 1, `${target} with a wrong password: invalid_credentials`)
      t.equal(after.rejected, b.rejected, 'never auth_rejected')
    } else {
      t.equal(r.status, 404, `POST ${target}: better-auth has no such endpoint`)
      t.same(await signIns(gw), b, `${target}: nothing counted`)
      t.equal(audits(gw), a)
      t.equal(line?.route, '/api/auth/other')
    }
  }
})

t.test('request targets in absolute, authority or asterisk form never reach a route or the upstream', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url })
  const c = new Client(gw.url)
  t.equal((await c.signUp(uniqueEmail('absolute'), PASSWORD)).status, 200)
  const cookie = { Cookie: c.cookieHeader }
  const received = upstream.received.length
  const absolute = [
    'http://evil.example:8443/api/me',
    'http://x/api/auth/ok',
    'https://x/api/auth/get-session',
    'http://127.0.0.1/api/me',
    'http://a/healthz',
    'HTTP://A/api/me',
    'ftp://x/api/me',
    'http://user:pw@x/api/me',
  ]
  for (const target of absolute) {
    for (const host of ['a', 'x', 'evil.example:8443']) {
      for (const method of ['GET', 'POST', 'OPTIONS']) {
        const r = await send(gw, { method, target, host, headers: cookie, body: method === 'POST' ? '{}' : undefined })
        assertBadRequest(t, r, `${method} ${target} (Host: ${host})`)
      }
    }
  }
  for (const method of ['GET', 'POST', 'DELETE', 'HEAD']) {
    const r = await send(gw, { method, target: '*', headers: cookie })
    t.equal(r.status, 400, `${method} * is refused`)
  }
  const options = await send(gw, { method: 'OPTIONS', target: '*' })
  t.equal(options.status, 204, 'OPTIONS * is about the server: answered')
  t.match(options.headers.allow, /GET/)
  const authority = await send(gw, { method: 'GET', target: 'evil.example:443', headers: cookie })
  t.equal(authority.status, 400, 'authority-form outside CONNECT is refused')
  const connect = await send(gw, { method: 'CONNECT', target: 'evil.example:443', headers: cookie })
  t.equal(connect.status, 400, `CONNECT is answered, not dropped: ${connect.text.slice(0, 80)}`)
  t.equal(upstream.received.length, received, 'the upstream received none of them')
  t.same(gw.logs.records().filter((r) => (r.level ?? 0) >= 50).map((e) => e.msg), [], 'no error-level line')
  // The valid request still goes through, in origin-form.
  t.equal((await send(gw, { method: 'GET', target: '/api/me', headers: cookie })).status, 200)
  t.equal(upstream.received.at(-1)?.url, '/api/me')
})
