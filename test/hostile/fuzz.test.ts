// Seeded fuzzing of the gateway's front door: malformed and adversarial
// cookies, bearer tokens, paths, Host headers (invalid, with injected paths,
// IPv6 literals, huge ports, non-ASCII bytes) and request targets
// (absolute-form, asterisk-form, dot segments on /api/auth/* plain and
// encoded) over real keep-alive sockets. Properties: never a 5xx, the process
// keeps serving, no new metric series, every answer from the gateway a 4xx
// whose JSON `reason` is in a closed set (exactly 400 `bad_request` where the
// request line or Host is refused), and nothing denied ever reaches the
// upstream. A second test sends sign-ins through the same path and Host
// mutations and checks, request by request, that what better-auth acted on is
// what the gateway labelled, counted and audited.
//
// The seed is printed (`# FUZZ_SEED=…` and in the test name). Re-run a failure
// with exactly the same requests:
//   FUZZ_SEED=123 npx tap test/hostile/fuzz.test.ts
// FUZZ_REQUESTS sets the count (default 10000), FUZZ_AUTH_REQUESTS the
// sign-in cases (default 200).
import { createHmac, randomBytes } from 'node:crypto'
import { Agent, request as httpRequest } from 'node:http'
import t from 'tap'
import { AUTH_ROUTES } from '../../src/auth/mount.ts'
import { RequestErrorReason } from '../../src/reasons.ts'
import { UnauthorizedReason, UnavailableReason, valuesOf } from '../../src/reasons.ts'
import { Client, PASSWORD, uniqueEmail } from '../helpers/client.ts'
import { signedSessionCookie, startTestGateway } from '../helpers/gateway.ts'
import { added, delta, scrape } from '../helpers/metrics.ts'
import { recordingUpstream } from '../faults/support.ts'

const SEED = Number(process.env.FUZZ_SEED ?? randomBytes(4).readUInt32LE(0))
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000)
const AUTH_REQUESTS = Number(process.env.FUZZ_AUTH_REQUESTS ?? 200)
const CONCURRENCY = 24

/** mulberry32: small, fast, good enough to pick cases reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T
  const str = (n: number, alphabet: string): string => {
    if (n > 256) {
      // Long values: a random 256-char block tiled from a random offset is as
      // adversarial for a parser and much cheaper to make.
      const block = str(256, alphabet)
      return block.repeat(Math.ceil(n / 256) + 1).slice(int(256), int(256) + n).padEnd(n, block)
    }
    let out = ''
    for (let i = 0; i < n; i++) out += alphabet[int(alphabet.length)]
    return out
  }
  return { next, int, pick, str }
}
type Rng = ReturnType<typeof prng>

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const B64URL = `${ALNUM}-_`
const PRINTABLE = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join('').replace(/[;,"\\]/g, '')
const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
/** UTF-8 bytes carried as a latin1 string: node:http sends each char as one byte. */
const utf8Bytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1')
const NON_ASCII = ['é', 'ü', '日本', '🙂', '\u00ff\u00fe', 'Ω≈ç√', '\u200b']

type Known = {
  cookieName: string
  validCookie: string
  validJwt: string
  kid: string
  publicX: string
}

type Case = {
  method: string
  path: string
  host: string
  headers: Record<string, string>
  body?: string
  kind: string
  expectUpstream: boolean
  /** The one status the gateway must answer (a refused request line or Host). */
  expectStatus?: number
}

// Cookie and bearer cases never carry a usable credential.
const CREDENTIALS: Record<string, (r: Rng, k: Known) => Record<string, string>> = {
  none: () => ({}),
  cookie_garbage: (r, k) => ({ cookie: `${k.cookieName}=${r.str(1 + r.int(80), PRINTABLE)}` }),
  cookie_wrong_signature: (r, k) => ({ cookie: `${k.cookieName}=${r.str(32, ALNUM)}.${r.str(43, ALNUM)}=` }),
  cookie_signed_unknown_session: (r, k) => {
    const token = r.str(32, ALNUM)
    return { cookie: signedSessionCookie(token, { name: k.cookieName }) }
  },
  cookie_tampered: (r, k) => {
    const v = decodeURIComponent(k.validCookie)
    const i = r.int(v.indexOf('.'))
    const flipped = v.slice(0, i) + (v[i] === 'A' ? 'B' : 'A') + v.slice(i + 1)
    return { cookie: `${k.cookieName}=${encodeURIComponent(flipped)}` }
  },
  cookie_bad_percent: (r, k) => ({ cookie: `${k.cookieName}=${r.pick(['%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80'])}${r.str(r.int(20), ALNUM)}.${r.str(43, ALNUM)}=` }),
  cookie_huge: (r, k) => ({ cookie: `${k.cookieName}=${r.str(2000 + r.int(6000), ALNUM)}` }),
  cookie_non_ascii: (r, k) => ({ cookie: `${k.cookieName}=${utf8Bytes(r.pick(NON_ASCII) + r.str(10, ALNUM))}.${r.str(43, ALNUM)}=` }),
  cookie_secure_variant: (r, k) => ({ cookie: `__Secure-${k.cookieName}=${k.validCookie}` }),
  cookie_other_prefix: (r, k) => ({ cookie: `${r.pick(['app', 'auth', 'better_auth', 'x'])}.session_token=${k.validCookie}` }),
  cookie_unrelated: (r) => ({ cookie: Array.from({ length: 1 + r.int(5) }, () => `${r.str(1 + r.int(10), ALNUM)}=${r.str(r.int(30), ALNUM)}`).join('; ') }),
  cookie_syntax: (r, k) => ({ cookie: r.pick([';;;', '=', `=${k.cookieName}`, `${k.cookieName}`, ` ; ${k.cookieName}= ; `, `${k.cookieName}=a=b=c.d`, `${k.cookieName}="quoted"`]) }),
  cookie_duplicate: (r, k) => ({ cookie: `${k.cookieName}=${r.str(20, ALNUM)}; ${k.cookieName}=${k.validCookie}` }),
  bearer_garbage: (r) => ({ authorization: `Bearer ${r.str(1 + r.int(200), B64URL)}` }),
  bearer_part_count: (r) => ({ authorization: `Bearer ${Array.from({ length: r.pick([1, 2, 4, 5, 9]) }, () => r.str(r.int(40), B64URL)).join('.')}` }),
  bearer_bad_base64: (r) => ({ authorization: `Bearer ${r.str(20, '+/=!$*~')}.${r.str(20, B64URL)}.${r.str(20, '+/=')}` }),
  bearer_alg_none: (r, k) => ({
    authorization: `Bearer ${b64url({ alg: r.pick(['none', 'None', 'NONE', '']), kid: k.kid, typ: 'JWT' })}.${b64url({ sub: 'admin', exp: 4102444800 })}.${r.pick(['', 'AA', r.str(86, B64URL)])}`,
  }),
  bearer_hs256_public_key: (r, k) => {
    const h = b64url({ alg: r.pick(['HS256', 'HS512']), kid: k.kid })
    const p = b64url({ sub: 'admin', exp: 4102444800, iss: 'x', aud: 'x' })
    const s = createHmac('sha256', r.pick([k.publicX, Buffer.from(k.publicX, 'base64url').toString('latin1')])).update(`${h}.${p}`).digest('base64url')
    return { authorization: `Bearer ${h}.${p}.${s}` }
  },
  bearer_odd_kid: (r, k) => {
    const kid = r.pick<unknown>([r.str(300 + r.int(2000), ALNUM), '__proto__', 'constructor', '../../etc/passwd', '', 12, null, ['a'], { k: 1 }, `${k.kid}\u0000`, utf8Bytes('kïd🙂'), k.kid.toUpperCase()])
    return { authorization: `Bearer ${b64url({ alg: 'EdDSA', kid })}.${b64url({ sub: 'x', exp: 4102444800 })}.${r.str(86, B64URL)}` }
  },
  bearer_unknown_kid: (r) => ({ authorization: `Bearer ${b64url({ alg: 'EdDSA', kid: r.str(32, ALNUM) })}.${b64url({ sub: 'x', exp: 4102444800 })}.${r.str(86, B64URL)}` }),
  bearer_non_object_json: (r, k) => {
    const header = r.pick<unknown>([[{ alg: 'EdDSA', kid: k.kid }], 'EdDSA', 42, null, true, { alg: { alg: 'EdDSA' }, kid: k.kid }, { alg: ['EdDSA'], kid: k.kid }])
    const raw = r.next() < 0.2 ? b64url('{"alg":"EdDSA",') : b64url(header)
    return { authorization: `Bearer ${raw}.${b64url(r.pick<unknown>([[1], 'x', null, { a: { b: { c: {} } } }]))}.${r.str(86, B64URL)}` }
  },
  bearer_crit: (r, k) => ({ authorization: `Bearer ${b64url({ alg: 'EdDSA', kid: k.kid, crit: ['exp'] })}.${b64url({ sub: 'x', exp: 4102444800 })}.${r.str(86, B64URL)}` }),
  bearer_real_kid_bad_signature: (r, k) => ({ authorization: `Bearer ${b64url({ alg: 'EdDSA', kid: k.kid })}.${b64url({ sub: 'admin', exp: 4102444800 })}.${r.str(86, B64URL)}` }),
  bearer_tampered_payload: (r, k) => {
    const [h, , s] = k.validJwt.split('.')
    return { authorization: `Bearer ${h}.${b64url({ sub: r.str(10, ALNUM), exp: 4102444800, admin: true })}.${s}` }
  },
  bearer_non_ascii: (r, k) => ({ authorization: `Bearer ${utf8Bytes(r.pick(NON_ASCII))}${k.validJwt.slice(r.int(20))}` }),
  bearer_huge: (r) => ({ authorization: `Bearer ${r.str(9000 + r.int(3000), B64URL)}` }),
  authorization_other: (r, k) => ({ authorization: r.pick(['Basic YWRtaW46YWRtaW4=', 'Bearer', 'Bearer ', `bearer  ${k.validJwt} extra`, `Token ${k.validJwt}`, 'Negotiate x', '', `Bearer ${k.validJwt},${k.validJwt}`]) }),
}

/** Path kinds; each one always ends in the same class of answer, whatever the random part. */
const PATHS: Record<string, (r: Rng) => string> = {
  api: (r) => `/api/${Array.from({ length: 1 + r.int(4) }, () => r.str(1 + r.int(12), `${ALNUM}-._~`).replace(/^\.+$/, 'x')).join('/')}`,
  api_encoded: (r) => `/api/${Array.from({ length: 1 + r.int(6) }, () => r.pick(['%20', '%2F', '%00', '%C3%A9', '%F0%9F%99%82', '%3B', '%25', 'a'])).join('')}`,
  api_raw_bytes: (r) => `/api/${utf8Bytes(r.pick(NON_ASCII))}`,
  api_query: (r) => `/api/q?${r.pick(['%zz', 'a=..%2f..', 'token=x&token=y', `x=${r.str(200, ALNUM)}`, 'a[b][c]=1', '&&&=', '%E0%A4%A'])}`,
  api_traversal: (r) => r.pick(['/api/x/../../etc/passwd', '/api/..', '/api/%2e%2e/admin', '/api/.%2e/x', '/api/a/..%5c..%5cb', '/api/..\\x']),
  api_long: (r) => `/api/${r.str(1000 + r.int(3000), ALNUM)}`,
  bad_encoding: (r) => r.pick(['/api/%zz', '/%E0%A4%A', '/api/%', '/api/x%G0', '/%C0']),
  not_api: (r) => r.pick(['/', '/x', '//api/me', '/API/me', '/api', '/apix', '/.env', '/metrics', `/${r.str(20, ALNUM)}`]),
  absolute: (r) => r.pick(ABSOLUTE_TARGETS)(r),
}

/**
 * Request targets not in origin-form, one generator per shape (each shape
 * lands on one route label, so the warm-up can create every series).
 * The gateway refuses them all (400), except `OPTIONS *` (204).
 */
const ABSOLUTE_TARGETS: Array<(r: Rng) => string> = [
  (r) => `http://${r.pick(['evil.example:8443', 'x', '127.0.0.1', 'user:pw@x'])}/api/${r.str(1 + r.int(8), ALNUM)}`,
  (r) => `${r.pick(['https', 'http', 'HTTP'])}://x/api/auth/${r.pick(['ok', 'get-session', 'token', 'sign-in/email', r.str(4, ALNUM)])}`,
  () => 'http://a/healthz',
  (r) => `http://a/${r.str(1 + r.int(8), ALNUM)}`,
  () => '*',
]

/**
 * Host header families. `default`, `valid` and `ipv6` are served as usual;
 * the others are not `host[:port]` and are refused with 400 whatever the path.
 */
const HOSTS: Record<string, { refused: boolean; make: (r: Rng) => string }> = {
  default: { refused: false, make: () => '127.0.0.1' },
  valid: { refused: false, make: (r) => r.pick(['localhost', '127.0.0.1:3000', 'EXAMPLE.com', 'a-b.example', 'my_host', 'localhost:', '']) },
  ipv6: { refused: false, make: (r) => r.pick(['[::1]', '[::1]:8080', '[fe80::1]', '[2001:db8::1]:65535', '[::ffff:127.0.0.1]']) },
  invalid: { refused: true, make: (r) => r.pick(['a b', 'a\tb', 'a@b', 'a,b', 'h:1:2', 'x:8o', '{x}', `${r.str(1 + r.int(10), ALNUM)} ${r.str(3, ALNUM)}`]) },
  injected_path: { refused: true, make: (r) => r.pick(['gw/api/auth/sign-in/email?', 'gw/api/auth/token#', `h/${r.str(5, ALNUM)}/../x`, 'h?x=1', 'h#frag', 'h\\x', 'gw/api/auth/ok']) },
  ipv6_broken: { refused: true, make: (r) => r.pick(['[::1', '::1', '[zz]', '[::1]x', '[::1]:99999', `[${r.str(4, 'ghij')}::1]`]) },
  huge_port: { refused: true, make: (r) => `${r.pick(['x', '127.0.0.1', '[::1]'])}:${r.pick(['65536', '99999', '123456789', String(65_536 + r.int(1_000_000)), '-1', '+80', '0x50'])}` },
  non_ascii: { refused: true, make: (r) => utf8Bytes(`${r.pick(NON_ASCII)}.example`) },
}
const HOST_KINDS = Object.keys(HOSTS)

/**
 * One spelling of a better-auth path that a URL parser, a router or an
 * upstream framework would read as another path: never forwarded (400).
 */
const AUTH_DOT_PREFIXES = ['./', 'x/../', '%2e/', '%2E/', 'x/%2e%2e/', 'x/.%2e/', 'x/%2E./', '/', 'x;y/../', 'x\\..\\', 'ok#/../', 'x/..%2f', 'x%2f..%2f', 'x%5c..%5c', '.%2E/']
const AUTH_DOT_SUFFIXES = ['/.', '/x/..', '/%2e', '/%2e%2e', ';x', ';', '#', '#x', '//', '%2f', '/..%2f..']
function authDots(r: Rng, route: string): string {
  return r.next() < 0.5 ? `/api/auth/${r.pick(AUTH_DOT_PREFIXES)}${route.slice(1)}` : `/api/auth${route}${r.pick(AUTH_DOT_SUFFIXES)}`
}
// better-auth answers these itself (its own bodies, 200 `null` from get-session):
// checked for "never 5xx" and series only.
const KNOWN_AUTH_PATHS = new Set<string>(AUTH_ROUTES)
const AUTH_PATHS: Record<string, (r: Rng) => string> = {
  // Never a real endpoint: a random name that happens to be one (`/ok`) would be
  // a legitimate, bounded series the warm-up did not create.
  auth_unknown: (r) => {
    let name: string
    do name = r.str(1 + r.int(20), ALNUM)
    while (KNOWN_AUTH_PATHS.has(`/${name}`))
    return `/api/auth/${name}`
  },
  auth_get_session: () => '/api/auth/get-session',
  auth_token: () => '/api/auth/token',
  auth_dots: (r) => authDots(r, r.pick(AUTH_ROUTES)),
}
const REFUSED_PATH_KINDS = new Set(['absolute', 'auth_dots'])
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const
const BODIES = ['', '{', '{"email":1}', '[]', 'null', '\u0000\u0001', 'a=b&c', '{"email":"a@b.c","password":"x".repeat(9)}']
const CONTENT_TYPES = ['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'x/y', '']
const ODD_HEADERS: Array<(r: Rng) => [string, string]> = [
  () => ['x-user-id', 'admin'],
  () => ['x-forwarded-user', 'admin'],
  (r) => ['x-forwarded-for', `${r.int(256)}.${r.int(256)}.0.1, 10.0.0.1`],
  () => ['sec-fetch-site', 'cross-site'],
  (r) => ['origin', r.pick(['null', 'https://evil.example', 'http://127.0.0.1', '::'])],
  (r) => ['x-request-id', r.str(1 + r.int(200), PRINTABLE)],
  () => ['connection', 'keep-alive, authorization, x-forwarded-for'],
  (r) => r.pick<[string, string]>([
    ['keep-alive', 'timeout=5'],
    ['upgrade', 'websocket'],
    ['te', 'trailers'],
    ['proxy-connection', 'keep-alive'],
  ]),
]

function makeCase(r: Rng, k: Known, method: string, pathKind: string, credKind: string, hostKind = 'default'): Case {
  const auth = pathKind in AUTH_PATHS
  const path = (auth ? AUTH_PATHS[pathKind] : PATHS[pathKind])!(r)
  const host = HOSTS[hostKind]!
  const headers: Record<string, string> = { ...CREDENTIALS[credKind]!(r, k) }
  if (r.next() < 0.3) {
    const [name, value] = r.pick(ODD_HEADERS)(r)
    if (headers[name] === undefined) headers[name] = value
  }
  let body: string | undefined
  if (method !== 'GET' && method !== 'HEAD' && r.next() < 0.7) {
    body = r.pick(BODIES)
    const ct = r.pick(CONTENT_TYPES)
    if (ct !== '') headers['content-type'] = ct
  }
  return {
    method,
    path,
    host: host.make(r),
    headers,
    body,
    kind: `${method} ${pathKind} ${credKind} host:${hostKind}`,
    expectUpstream: false,
    expectStatus: expectedStatus(method, pathKind, path, hostKind),
  }
}

/** Refused before any route: the Host first, then a target that is not origin-form or not canonical. */
function expectedStatus(method: string, pathKind: string, path: string, hostKind: string): number | undefined {
  if (HOSTS[hostKind]!.refused) return 400
  if (path === '*' && method === 'OPTIONS') return 204
  return REFUSED_PATH_KINDS.has(pathKind) ? 400 : undefined
}

// Valid credentials on hostile paths: the answer is the upstream's 200 or a 4xx, never a 5xx.
function makeValidCase(r: Rng, k: Known, method: string, pathKind: string, hostKind = 'default'): Case {
  const headers: Record<string, string> = r.next() < 0.5 ? { cookie: `${k.cookieName}=${k.validCookie}` } : { authorization: `Bearer ${k.validJwt}` }
  const c = makeCase(r, k, method, pathKind, 'none', hostKind)
  return { ...c, headers: { ...c.headers, ...headers }, kind: `${method} ${pathKind} valid`, expectUpstream: true }
}

type Outcome = { status: number; body: string; headers: Record<string, string | string[] | undefined> }

function send(agent: Agent, port: number, c: Case): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const headers = { ...c.headers, host: c.host } as Record<string, string>
    if (c.body !== undefined) headers['content-length'] = String(Buffer.byteLength(c.body, 'latin1'))
    const req = httpRequest({ host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(c.body === undefined ? undefined : Buffer.from(c.body, 'latin1'))
  })
}

const ALLOWED_REASONS = new Set<string>([...valuesOf(UnauthorizedReason), ...valuesOf(UnavailableReason), ...valuesOf(RequestErrorReason)])

/** Problems with one answer; empty when it is acceptable. */
function judge(c: Case, o: Outcome): string[] {
  const problems: string[] = []
  if (o.status >= 500) problems.push(`status ${o.status}`)
  if (c.expectStatus !== undefined) {
    if (o.status !== c.expectStatus) problems.push(`status ${o.status}, expected ${c.expectStatus}`)
    if (c.expectStatus === 204) return problems
  }
  const gatewayAnswer = c.expectStatus !== undefined || (!c.path.startsWith('/api/auth/') && !(c.expectUpstream && o.status < 300))
  if (!gatewayAnswer) return problems
  if (o.status < 400 || o.status >= 500) problems.push(`status ${o.status}, expected a 4xx`)
  if (c.method === 'HEAD') return problems
  let parsed: { error?: unknown; reason?: unknown }
  try {
    parsed = JSON.parse(o.body) as typeof parsed
  } catch {
    problems.push(`body is not JSON: ${JSON.stringify(o.body.slice(0, 120))}`)
    return problems
  }
  if (typeof parsed.error !== 'string') problems.push('no error field')
  if (typeof parsed.reason !== 'string' || !ALLOWED_REASONS.has(parsed.reason)) problems.push(`reason ${JSON.stringify(parsed.reason)} not in the closed sets`)
  if (c.expectStatus === 400 && parsed.reason !== 'bad_request') problems.push(`reason ${JSON.stringify(parsed.reason)}, expected bad_request`)
  return problems
}

/** Default Node.js/process metrics come and go with runtime activity (GC kinds, handle types); they carry no request input. */
const RUNTIME = /^authgw_(nodejs|process)_/

t.test(`fuzz: ${REQUESTS} adversarial requests (seed ${SEED})`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED}`)
  const upstream = await recordingUpstream(t)
  // warn: the access lines of 10,000 requests would cost more than the requests.
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { LOG_LEVEL: 'warn' } })
  const port = Number(new URL(gw.url).port)

  const client = new Client(gw.url)
  t.equal((await client.signUp(uniqueEmail('fuzz'), PASSWORD)).status, 200)
  const cookieName = gw.sessions.cookieNames.sessionToken
  const validJwt = await client.token()
  const jwks = (await (await fetch(`${gw.url}/api/auth/jwks`)).json()) as { keys: Array<{ kid: string; x: string }> }
  const key = jwks.keys[0]!
  const known: Known = { cookieName, validCookie: client.jar.get(cookieName)!, validJwt, kid: key.kid, publicX: key.x }

  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  t.teardown(() => agent.destroy())

  const failures: string[] = []
  const run = async (cases: Case[]) => {
    let next = 0
    let passedThrough = 0
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!
        let o: Outcome
        try {
          o = await send(agent, port, c)
        } catch (err) {
          failures.push(`${c.kind} ${JSON.stringify(c.path.slice(0, 80))}: request failed: ${(err as Error).message}`)
          continue
        }
        const problems = judge(c, o)
        if (problems.length > 0 && failures.length < 20) {
          failures.push(`${c.kind} ${JSON.stringify(c.path.slice(0, 80))} Host ${JSON.stringify(c.host)} ${JSON.stringify(c.headers).slice(0, 200)}: ${problems.join('; ')} — ${o.body.slice(0, 160)}`)
        }
        if (c.expectUpstream && o.status < 300 && c.expectStatus === undefined) passedThrough++
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    return passedThrough
  }

  // Warm-up: every (method, path kind, credential kind) once, with a fixed
  // seed, so each route/status series that legitimate variation can produce
  // exists before the measured run.
  const warm = prng(1)
  const warmCases: Case[] = []
  for (const method of METHODS) {
    for (const pathKind of [...Object.keys(PATHS), ...Object.keys(AUTH_PATHS)]) {
      for (const credKind of Object.keys(CREDENTIALS)) warmCases.push(makeCase(warm, known, method, pathKind, credKind))
      if (pathKind in PATHS) warmCases.push(makeValidCase(warm, known, method, pathKind))
      for (const hostKind of HOST_KINDS) warmCases.push(makeCase(warm, known, method, pathKind, 'none', hostKind))
    }
    // Every shape of request target that is not origin-form, with and without a usable credential.
    for (const shape of ABSOLUTE_TARGETS) {
      for (const c of [makeCase(warm, known, method, 'absolute', 'none'), makeValidCase(warm, known, method, 'absolute')]) {
        const path = shape(warm)
        warmCases.push({ ...c, path, expectStatus: expectedStatus(method, 'absolute', path, 'default') })
      }
    }
  }
  await run(warmCases)
  const upstreamBefore = upstream.received.length
  const before = await scrape(gw)

  const r = prng(SEED)
  const pathKinds = [...Object.keys(PATHS), ...Object.keys(AUTH_PATHS)]
  const credKinds = Object.keys(CREDENTIALS)
  const cases: Case[] = []
  let validSent = 0
  for (let i = 0; i < REQUESTS; i++) {
    const method = r.pick(METHODS)
    // One in five has an unusual Host header, valid or not.
    const hostKind = r.next() < 0.2 ? r.pick(HOST_KINDS) : 'default'
    // One in twenty carries a valid credential on a hostile path.
    if (r.next() < 0.05) {
      const pathKind = r.pick(Object.keys(PATHS))
      cases.push(makeValidCase(r, known, method, pathKind, hostKind))
      validSent++
    } else {
      cases.push(makeCase(r, known, method, r.pick(pathKinds), r.pick(credKinds), hostKind))
    }
  }
  const started = performance.now()
  const passedThrough = await run(cases)
  t.comment(`${REQUESTS} requests in ${Math.round(performance.now() - started)} ms (${validSent} with valid credentials)`)

  t.same(failures, [], `every answer acceptable (FUZZ_SEED=${SEED})`)

  // Nothing without a valid credential reached the upstream; the valid ones
  // on proxied paths that the gateway did not refuse did.
  const reached = upstream.received.length - upstreamBefore
  t.equal(reached, passedThrough, `the upstream received exactly the ${passedThrough} valid requests the gateway passed on`)
  t.ok(passedThrough > 0 && passedThrough <= validSent, `${passedThrough} of ${validSent} valid requests passed`)
  const leaked = upstream.received.filter((req) => req.headers['x-user-id'] !== undefined || req.headers['x-forwarded-user'] !== undefined)
  t.equal(leaked.length, 0, 'no client identity header reached the upstream')

  const after = await scrape(gw)
  // The generators reach what they claim to: each of these reasons was produced.
  const moved = delta(before, after)
  const missing = [
    ...['malformed', 'alg_not_allowed', 'kid_unknown', 'bad_signature'].map((r) => `authgw_jwt_validation_failures_total{reason="${r}"}`),
    ...['malformed_cookie', 'bad_signature', 'session_not_found', 'cookie_name_mismatch', 'no_cookie', 'cross_site_no_cookie'].map((r) => `authgw_session_nulls_total{reason="${r}"}`),
    'authgw_unauthorized_total{mechanism="none",reason="no_credentials",source="gateway"}',
  ].filter((k) => !((moved.get(k) ?? 0) > 0))
  t.same(missing, [], 'every targeted reason was exercised')
  const newSeries = added(before, after).filter((k) => !RUNTIME.test(k))
  t.same(newSeries, [], `no new metric series (FUZZ_SEED=${SEED})`)

  // better-auth logs some client mistakes (an untrusted Origin) at error
  // level; that is its vocabulary, reported separately. The gateway's own
  // lines must have no error: an error line means a 5xx or a crash path.
  const errors = gw.logs.records().filter((rec) => (rec.level ?? 0) >= 50)
  const own = errors.filter((rec) => rec.component !== 'better-auth')
  t.same(own.map((e) => e.msg), [], 'no error-level log line from the gateway')
  const fromAuth = new Set(errors.filter((rec) => rec.component === 'better-auth').map((e) => String(e.msg).replace(/:.*/, '')))
  if (fromAuth.size > 0) t.comment(`better-auth error lines caused by client input: ${[...fromAuth].join(', ')}`)
  const health = await fetch(`${gw.url}/healthz`)
  t.equal(health.status, 200, 'still serving')
  // The valid credential still works after the storm.
  t.equal((await client.get('/api/me')).status, 200)
})

// Sign-ins through the same mutations: valid and wrong passwords on canonical,
// dot-segment (plain and encoded), injected-Host and absolute-form spellings
// of the sign-in path and of other endpoints. Per request (matched by
// X-Request-Id): if better-auth's sign-in answered, the access line says
// /api/auth/sign-in/email and there is one sign_in audit line; if it did not,
// there is no audit line, and the label says sign-in only for a request to
// that path refused at the front door for its Host (400). In total: the sign-in counters moved by exactly what the answers
// show, and no wrong password was ever counted as auth_rejected.
t.test(`fuzz: ${AUTH_REQUESTS} sign-in spellings, labelled, counted and audited as better-auth acted (seed ${SEED})`, async (t) => {
  t.comment(`FUZZ_SEED=${SEED}`)
  const gw = await startTestGateway(t)
  const port = Number(new URL(gw.url).port)
  const email = uniqueEmail('fuzz-auth')
  const client = new Client(gw.url)
  t.equal((await client.signUp(email, PASSWORD)).status, 200)
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  t.teardown(() => agent.destroy())

  const r = prng(SEED ^ 0x5eed)
  const targets: Array<(r: Rng) => string> = [
    () => '/api/auth/sign-in/email',
    (r) => `/api/auth/sign-in/email${r.pick(['?', '?x=1', '?a=..%2f', '?#'])}`,
    (r) => authDots(r, '/sign-in/email'),
    (r) => authDots(r, r.pick(AUTH_ROUTES)),
    (r) => `/api/auth/${r.pick(['ok', 'sign-up/email', 'get-session', 'sign-in/social'])}`,
    (r) => `http://${r.pick(['x', '127.0.0.1'])}/api/auth/sign-in/email`,
    (r) => `/api/auth/sign-in/${r.pick(['%65mail', 'email/', 'EMAIL', 'email%20'])}`,
  ]
  const hosts: Array<(r: Rng) => string> = [
    () => '127.0.0.1',
    (r) => HOSTS.valid!.make(r),
    (r) => HOSTS.ipv6!.make(r),
    (r) => HOSTS.injected_path!.make(r),
    (r) => HOSTS.invalid!.make(r),
  ]
  type Sent = { id: string; path: string; host: string; good: boolean; status: number; signedIn: boolean; wrongPassword: boolean }
  const cases = Array.from({ length: AUTH_REQUESTS }, (_, i) => ({
    id: `fuzz-auth-${SEED}-${i}`,
    path: r.next() < 0.6 ? r.pick(targets)(r) : '/api/auth/sign-in/email',
    host: r.next() < 0.7 ? '127.0.0.1' : r.pick(hosts)(r),
    good: r.next() < 0.5,
  }))
  const before = await scrape(gw)
  const sent: Sent[] = []
  let next = 0
  const failures: string[] = []
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < cases.length) {
        const c = cases[next++]!
        const body = JSON.stringify({ email, password: c.good ? PASSWORD : `${PASSWORD}!` })
        const o = await send(agent, port, {
          method: 'POST',
          path: c.path,
          host: c.host,
          headers: { origin: gw.url, 'x-request-id': c.id, 'content-type': 'application/json' },
          body,
          kind: 'sign-in',
          expectUpstream: false,
        }).catch((err: Error) => ({ status: 0, body: err.message, headers: {} }))
        if (o.status >= 500 || o.status === 0) failures.push(`${c.path} Host ${JSON.stringify(c.host)}: ${o.status} ${o.body.slice(0, 120)}`)
        let parsed: { token?: unknown; user?: { email?: unknown }; code?: unknown } | undefined
        try {
          parsed = JSON.parse(o.body) as typeof parsed
        } catch {
          parsed = undefined
        }
        const signedIn = o.status === 200 && typeof parsed?.token === 'string' && parsed.user?.email === email
        const wrongPassword = o.status === 401 && parsed?.code === 'INVALID_EMAIL_OR_PASSWORD'
        sent.push({ ...c, status: o.status, signedIn, wrongPassword })
      }
    }),
  )
  t.same(failures, [], `no 5xx (FUZZ_SEED=${SEED})`)

  const records = gw.logs.records()
  const access = new Map(records.filter((l) => l.msg === 'request').map((l) => [String(l.reqId), l]))
  const audited = new Map(records.filter((l) => l.msg === 'audit' && l.event === 'sign_in').map((l) => [String(l.reqId), l]))
  const disagreements: string[] = []
  for (const c of sent) {
    const line = access.get(c.id)
    const fromSignIn = c.signedIn || c.wrongPassword
    const labelledSignIn = line?.route === '/api/auth/sign-in/email'
    const audit = audited.get(c.id)
    if (line === undefined) disagreements.push(`${c.path}: no access line`)
    else if (fromSignIn && !labelledSignIn) disagreements.push(`${c.path} Host ${JSON.stringify(c.host)}: answered by sign-in, labelled ${String(line.route)}`)
    // A request for the sign-in path refused at the front door (a bad Host) keeps its route label; nothing else may.
    else if (!fromSignIn && labelledSignIn && !(c.status === 400 && line.refused === 'host')) disagreements.push(`${c.path} Host ${JSON.stringify(c.host)}: labelled sign-in, status ${c.status}, not answered by sign-in`)
    if (fromSignIn !== (audit !== undefined)) disagreements.push(`${c.path} Host ${JSON.stringify(c.host)}: answered by sign-in ${fromSignIn}, audit line ${audit !== undefined}`)
    if (audit !== undefined && (audit.outcome === 'success') !== c.signedIn) disagreements.push(`${c.path}: audit outcome ${String(audit.outcome)} for status ${c.status}`)
  }
  t.same(disagreements.slice(0, 20), [], `every request labelled and audited as better-auth acted (FUZZ_SEED=${SEED})`)

  const moved = delta(before, await scrape(gw))
  const signIns = sent.filter((c) => c.signedIn).length
  const wrong = sent.filter((c) => c.wrongPassword).length
  t.ok(signIns > 0 && wrong > 0, `both kinds were answered (${signIns} sign-ins, ${wrong} wrong passwords)`)
  t.equal(moved.get('authgw_sign_in_attempts_total{method="email",outcome="success",reason="none"}') ?? 0, signIns, 'every sign-in counted, nothing else')
  t.equal(moved.get('authgw_sign_in_attempts_total{method="email",outcome="failure",reason="invalid_credentials"}') ?? 0, wrong, 'every wrong password counted as invalid_credentials')
  t.equal(moved.get('authgw_unauthorized_total{mechanism="none",reason="auth_rejected",source="auth"}') ?? 0, 0, 'never auth_rejected')
  t.ok(sent.some((c) => c.status === 400), 'refused spellings were drawn too')
})
