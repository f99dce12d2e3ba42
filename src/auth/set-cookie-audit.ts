// Every Set-Cookie better-auth sends, checked against the request as the
// browser sees it (scheme under TRUST_PROXY, Host): the attribute mistakes
// after which a browser silently drops the cookie and the next call is a 401
// (docs/reasons.md, "Set-Cookie audit"). Public suffixes come from the Public
// Suffix List (tldts), never from a hand-written list.
import { isIP } from 'node:net'
import { getPublicSuffix } from 'tldts'
import { SetCookieProblem } from '../reasons.ts'

/** What the browser knows when the cookie arrives. */
export type CookieAudience = {
  scheme: 'http' | 'https' | string
  /** Host name without port, as the browser addressed it. */
  host: string
  /** Session lifetime: a session-token cookie that expires sooner logs users out early. */
  sessionExpiresInSeconds: number
  /** The session-token cookie's name (only it is checked against the session lifetime). */
  sessionTokenName: string
}

export type CookieAttributes = {
  name: string
  valueLength: number
  domain?: string
  secure: boolean
  sameSite?: string
  partitioned: boolean
  maxAgeSeconds?: number
}

// RFC 6265bis §5.7: a cookie's name plus value over 4096 octets is ignored.
const MAX_NAME_VALUE_BYTES = 4096

/** Parse one Set-Cookie header value into the attributes that matter here. */
export function parseSetCookie(header: string): CookieAttributes | undefined {
  const [pair = '', ...attrs] = header.split(';')
  const eq = pair.indexOf('=')
  if (eq <= 0) return undefined
  const name = pair.slice(0, eq).trim()
  const out: CookieAttributes = { name, valueLength: Buffer.byteLength(pair.slice(eq + 1).trim()), secure: false, partitioned: false }
  for (const raw of attrs) {
    const i = raw.indexOf('=')
    const key = (i === -1 ? raw : raw.slice(0, i)).trim().toLowerCase()
    const value = i === -1 ? '' : raw.slice(i + 1).trim()
    if (key === 'domain') out.domain = value.replace(/^\./, '').toLowerCase()
    else if (key === 'secure') out.secure = true
    else if (key === 'samesite') out.sameSite = value.toLowerCase()
    else if (key === 'partitioned') out.partitioned = true
    else if (key === 'max-age' && /^-?\d+$/.test(value)) out.maxAgeSeconds = Number(value)
    else if (key === 'expires' && out.maxAgeSeconds === undefined) {
      const at = Date.parse(value)
      if (!Number.isNaN(at)) out.maxAgeSeconds = Math.round((at - Date.now()) / 1000)
    }
  }
  return out
}

// Browsers treat loopback origins as potentially trustworthy and keep Secure cookies there.
const isLoopback = (host: string): boolean => host === 'localhost' || host.endsWith('.localhost') || host === '::1' || host === '[::1]' || /^127\./.test(host)

/** The problems of one cookie for this audience; empty when the browser will keep it. */
export function cookieProblems(c: CookieAttributes, to: CookieAudience): SetCookieProblem[] {
  // A deletion (sign-out) only has to reach the browser; it stores nothing.
  if (c.maxAgeSeconds !== undefined && c.maxAgeSeconds <= 0) return []
  const problems: SetCookieProblem[] = []
  const host = to.host.toLowerCase().replace(/^\[|\]$/g, '')
  if (c.domain !== undefined && c.domain !== '' && c.domain !== host) {
    if (isIP(c.domain) !== 0) problems.push(SetCookieProblem.domain_ip)
    else if (getPublicSuffix(c.domain, { allowPrivateDomains: true }) === c.domain) problems.push(SetCookieProblem.domain_public_suffix)
    else if (!host.endsWith(`.${c.domain}`)) problems.push(SetCookieProblem.domain_not_host_suffix)
  }
  if (c.secure && to.scheme !== 'https' && !isLoopback(host)) problems.push(SetCookieProblem.secure_over_http)
  if (c.sameSite === 'none' && !c.secure) problems.push(SetCookieProblem.samesite_none_without_secure)
  if (c.partitioned && !c.secure) problems.push(SetCookieProblem.partitioned_without_secure)
  if (c.name.length + c.valueLength > MAX_NAME_VALUE_BYTES) problems.push(SetCookieProblem.too_large)
  if (c.name === to.sessionTokenName && c.maxAgeSeconds !== undefined && c.maxAgeSeconds < to.sessionExpiresInSeconds - 60) {
    problems.push(SetCookieProblem.max_age_shorter_than_session)
  }
  return problems
}

export type CookieFinding = { cookie: string; problem: SetCookieProblem }

/** Every problem of every Set-Cookie value, one finding per (cookie, problem). */
export function auditSetCookies(headers: readonly string[], to: CookieAudience): CookieFinding[] {
  const out: CookieFinding[] = []
  for (const h of headers) {
    const c = parseSetCookie(h)
    if (c === undefined) continue
    for (const problem of cookieProblems(c, to)) out.push({ cookie: c.name, problem })
  }
  return out
}

/** better-auth's cookie attributes as `getCookies(options)` reports them. */
export type ConfiguredCookie = {
  name: string
  attributes: { secure?: boolean; sameSite?: string; domain?: string; partitioned?: boolean; maxAge?: number }
}

/**
 * The startup audit: the configured session cookie against BETTER_AUTH_URL
 * (a browser on that origin) and each TRUSTED_ORIGINS page's host when a
 * cookie Domain is meant to cover it.
 */
export function configuredCookieProblems(
  cookie: ConfiguredCookie,
  opts: { baseUrl: string; trustedOrigins: readonly string[]; sessionExpiresInSeconds: number },
): Array<CookieFinding & { host: string }> {
  const c: CookieAttributes = {
    name: cookie.name,
    // A signed session token: 32 characters, a dot and a 44-character signature, URL-encoded.
    valueLength: 80,
    domain: cookie.attributes.domain?.replace(/^\./, '').toLowerCase(),
    // better-call adds Secure to SameSite=None and Partitioned cookies itself.
    secure: cookie.attributes.secure === true || cookie.attributes.partitioned === true || cookie.attributes.sameSite?.toLowerCase() === 'none',
    sameSite: cookie.attributes.sameSite?.toLowerCase(),
    partitioned: cookie.attributes.partitioned === true,
    maxAgeSeconds: cookie.attributes.maxAge,
  }
  const base = new URL(opts.baseUrl)
  const out: Array<CookieFinding & { host: string }> = []
  const check = (scheme: string, host: string) => {
    for (const problem of cookieProblems(c, { scheme: scheme.replace(/:$/, ''), host, sessionTokenName: cookie.name, sessionExpiresInSeconds: opts.sessionExpiresInSeconds })) {
      if (!out.some((f) => f.problem === problem)) out.push({ cookie: cookie.name, problem, host })
    }
  }
  check(base.protocol, base.hostname)
  // Pages on sibling subdomains only receive the cookie through a Domain that covers them.
  if (c.domain !== undefined) for (const o of opts.trustedOrigins) check(base.protocol, new URL(o).hostname)
  return out
}
