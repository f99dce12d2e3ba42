// Differential test for the gateway's own session-cookie verification
// (docs/adr/0005-own-session-cookie-verification.md): the same Cookie headers go
// through the gateway's parse + HMAC check (src/auth/session.ts) and through
// better-call's `getSignedCookie`, the very function better-auth's getSession
// and sign-out call, from the copy of better-call better-auth itself loads. Both
// must accept exactly the same cookies and yield the same session token.
import { createHmac, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import t from 'tap'
import { SessionValidator, cookieNamesFor, parseCookieHeader } from '../../src/auth/session.ts'

const NAME = 'better-auth.session_token'
const SECRET = 'differential-secret-Jk3s9Qw7Zx2Lp5Vb8Nm1Rt4Yh6Gf0Dc'
const OTHER_SECRET = 'another-secret-Pq8Wm2Zr5Tx9Lk3Nb7Vc1Hs4Jd6Gf0Aa'

type BetterCall = {
  createEndpoint: (path: string, options: { method: 'GET' }, handler: (ctx: { getSignedCookie(key: string, secret: string): Promise<string | null | false> }) => Promise<unknown>) => (ctx: { headers: Headers }) => Promise<unknown>
  serializeSignedCookie: (key: string, value: string, secret: string) => Promise<string>
}

// better-call as better-auth resolves it (the copy its getSession runs), not
// whatever copy the project might hoist.
const fromBetterAuth = createRequire(import.meta.resolve('better-auth'))
const betterCall = (await import(pathToFileURL(fromBetterAuth.resolve('better-call')).href)) as BetterCall

/** better-call's verdict: the session token, or undefined when the cookie is refused. */
const readByBetterCall = betterCall.createEndpoint('/differential', { method: 'GET' }, async (ctx) => ({ value: await ctx.getSignedCookie(NAME, SECRET) }))
async function betterCallVerdict(cookieHeader: string): Promise<string | undefined> {
  const { value } = (await readByBetterCall({ headers: new Headers({ cookie: cookieHeader }) })) as { value: string | null | false }
  return typeof value === 'string' ? value : undefined
}

/** The signed cookie value exactly as better-auth sets it (name=value, value URL-encoded). */
async function signedValue(token: string, secret = SECRET): Promise<string> {
  const serialized = await betterCall.serializeSignedCookie(NAME, token, secret)
  return serialized.slice(NAME.length + 1).split(';')[0] as string
}

/** A correct signature of exactly these characters (what better-call computes over a value it could not URL-decode). */
const hmac = (value: string) => createHmac('sha256', SECRET).update(value).digest('base64')

const token = () => randomBytes(24).toString('base64url').replace(/[-_]/g, 'x').slice(0, 32)

t.test('the gateway and better-call accept and refuse the same session cookies', async (t) => {
  const pool = new pg.Pool({ max: 1 }) // never queried: only the cookie check runs
  t.teardown(() => pool.end())
  const validator = (cacheMaxEntries = 100) =>
    new SessionValidator({ pool, secret: SECRET, cookieNames: cookieNamesFor(NAME, []), cacheTtlSeconds: 30, cacheMaxEntries })
  // A warm validator keeps the verify-once cache across cases (a tampered cookie
  // must not slip through after its valid twin was seen); a cold one per case does not.
  const warm = validator()
  const gatewayVerdict = (v: SessionValidator, cookieHeader: string): string | undefined => {
    const found = v.findToken(parseCookieHeader(cookieHeader))
    if (found === undefined || 'reason' in found) return undefined
    const verified = v.verifyCookie(found.value)
    return 'token' in verified ? verified.token : undefined
  }

  const tok = token()
  const encoded = await signedValue(tok)
  const raw = decodeURIComponent(encoded)
  const [, signature] = raw.split('.') as [string, string]
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1)
  const dotted = `${tok}.part`
  const cases: Array<[string, string]> = [
    ['valid, as better-auth sets it (URL-encoded)', `${NAME}=${encoded}`],
    ['valid, not URL-encoded', `${NAME}=${raw}`],
    ['valid, lower-case percent escapes', `${NAME}=${encoded.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())}`],
    ['valid, every character percent-encoded', `${NAME}=${[...raw].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')}`],
    ['valid, among other cookies', `theme=dark; ${NAME}=${encoded}; other=1`],
    ['valid, spaces around the value', `${NAME}=  ${encoded}  `],
    ['valid, a token that contains a dot', `${NAME}=${await signedValue(dotted)}`],
    ['valid, first of two', `${NAME}=${encoded}; ${NAME}=garbage`],
    ['invalid first of two', `${NAME}=garbage; ${NAME}=${encoded}`],
    ['tampered token', `${NAME}=${encodeURIComponent(`${flip(tok, 3)}.${signature}`)}`],
    ['tampered signature', `${NAME}=${encodeURIComponent(`${tok}.${flip(signature, 5)}`)}`],
    ['signature of another secret', `${NAME}=${await signedValue(tok, OTHER_SECRET)}`],
    ['signature truncated', `${NAME}=${encodeURIComponent(`${tok}.${signature.slice(0, 40)}`)}`],
    ['signature without padding', `${NAME}=${encodeURIComponent(`${tok}.${signature.slice(0, 43)}`)}`],
    ['signature in base64url', `${NAME}=${`${tok}.${signature.replace(/\+/g, '-').replace(/\//g, '_')}`}`],
    ['no signature', `${NAME}=${tok}`],
    ['empty token', `${NAME}=${encodeURIComponent(`.${signature}`)}`],
    ['empty value', `${NAME}=`],
    ['bare token from the sign-in body', `${NAME}=${tok}`],
    ['invalid percent escape', `${NAME}=${tok}%zz.${encodeURIComponent(signature)}`],
    ['invalid percent escape, signed as it stands', `${NAME}=${tok}%zz.${hmac(`${tok}%zz`)}`],
    ['valid, in double quotes', `${NAME}="${encoded}"`],
    ['valid, not URL-encoded, in double quotes', `${NAME}="${raw}"`],
    ['valid, one double quote', `${NAME}="${encoded}`],
    ['another cookie name only', `__Secure-${NAME}=${encoded}`],
    ['non-ASCII token', `${NAME}=${encodeURIComponent(`tökén.${signature}`)}`],
    ['signature twice', `${NAME}=${encodeURIComponent(`${tok}.${signature}.${signature}`)}`],
  ]
  let same = 0
  let accepted = 0
  for (const [what, header] of cases) {
    const theirs = await betterCallVerdict(header)
    const cold = gatewayVerdict(validator(), header)
    const hot = gatewayVerdict(warm, header)
    t.same({ cold, warm: hot }, { cold: theirs, warm: theirs }, `${what}: ${theirs === undefined ? 'refused' : 'accepted'} by better-call`)
    if (cold === theirs && hot === theirs) same++
    if (theirs !== undefined) accepted++
  }
  t.equal(same, cases.length, 'every case agrees')
  t.ok(accepted >= 7 && accepted < cases.length, `both kinds occur (${accepted} of ${cases.length} accepted)`)

  t.test('random mutations of a valid cookie', async (t) => {
    // Seeded so a disagreement can be replayed.
    let seed = 0x5eed
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const alphabet = 'AB+/=.%"; -_~zZ09\u00e9'
    let disagreements = 0
    let accepted = 0
    const N = 400
    for (let i = 0; i < N; i++) {
      let v = rand(2) === 0 ? encoded : raw
      for (let k = 0, edits = 1 + rand(3); k < edits; k++) {
        const at = rand(v.length + 1)
        const c = alphabet[rand(alphabet.length)] as string
        const op = rand(3)
        v = op === 0 ? v.slice(0, at) + c + v.slice(at) : op === 1 ? v.slice(0, at) + v.slice(at + 1) : v.slice(0, at) + c + v.slice(at + 1)
      }
      const header = `${NAME}=${v}`
      const theirs = await betterCallVerdict(header)
      const cold = gatewayVerdict(validator(), header)
      const hot = gatewayVerdict(warm, header)
      if (theirs !== undefined) accepted++
      if (cold !== theirs || hot !== theirs) {
        disagreements++
        t.fail(`mutation ${i} (${JSON.stringify(header)}): better-call ${theirs ?? 'refused'}, gateway cold ${cold ?? 'refused'}, warm ${hot ?? 'refused'}`)
      }
    }
    t.equal(disagreements, 0, `${N} mutations, ${accepted} still accepted by both, no disagreement`)
  })
})
