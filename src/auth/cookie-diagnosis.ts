// Why a request has no usable session cookie, from what the request itself
// shows (Sec-Fetch-*, User-Agent, the whole cookie jar) and what this instance
// remembers (a sign-in seconds ago). One function decides, so the guard and
// the /api/auth/* labelling can never disagree. Precedence (docs/reasons.md):
// session_data_without_token › cookie_not_returned › credentials_omitted ›
// cross_site_no_cookie › mobile_no_cookie › server_side_no_cookie › no_cookie
// › no_credentials.
import type { IncomingHttpHeaders } from 'node:http'
import { NoCredentialReason, SessionReason } from '../reasons.ts'

export const ClientKind = { browser: 'browser', mobile: 'mobile', server: 'server', unknown: 'unknown' } as const
export type ClientKind = (typeof ClientKind)[keyof typeof ClientKind]

// Platform HTTP stacks of Expo / React Native apps: OkHttp and Dalvik on
// Android, CFNetwork/Darwin on iOS, and the frameworks' own tokens.
const MOBILE_UA = /\b(?:okhttp\/|Dalvik\/|CFNetwork\/|Expo\b|ExpoClient|React-?Native|okhttp3)/i
// Server runtimes that SSR pages, server actions and backends call from.
const SERVER_UA =
  /^(?:node(?:-fetch)?(?:\/|$)|undici\b|axios\/|got\b|ky\/|Next\.js\b|Deno\/|Bun\/|python-requests\/|python-httpx\/|aiohttp\/|Python-urllib\/|Go-http-client\/|Java-http-client\/|Java\/|Apache-HttpClient\/|Ruby\b|Faraday\b|GuzzleHttp\/|Dart\/|vercel-)/i

/** Who is calling, from its headers alone. */
export function clientKind(headers: IncomingHttpHeaders): ClientKind {
  // Browsers send Sec-Fetch-Site with every request to a potentially
  // trustworthy origin; Node's fetch (undici) sends `Sec-Fetch-Mode: cors`
  // alone, so the mode is no browser evidence.
  if (headers['sec-fetch-site'] !== undefined) return ClientKind.browser
  if (headers['expo-origin'] !== undefined) return ClientKind.mobile
  const ua = headers['user-agent']
  if (typeof ua !== 'string' || ua === '') return ClientKind.unknown
  if (MOBILE_UA.test(ua)) return ClientKind.mobile
  if (SERVER_UA.test(ua)) return ClientKind.server
  return ClientKind.unknown
}

export type MissingCookieEvidence = {
  headers: IncomingHttpHeaders
  protocol: string
  /** The request's cookies by name. */
  cookies: ReadonlyMap<string, string>
  /** The configured session cookie is `__Secure-` (never sent over http). */
  secureCookie: boolean
  /** better-auth's session-data cookie name (chunks `<name>.N` count too). */
  sessionDataName?: string
  /** Seconds since this client received a session cookie, when within FRESH_SIGN_IN_WINDOW_SECONDS. */
  sinceSignIn?: number
}

export type MissingCookieReason =
  | typeof SessionReason.session_data_without_token
  | typeof SessionReason.cookie_not_returned
  | typeof SessionReason.credentials_omitted
  | typeof SessionReason.cross_site_no_cookie
  | typeof SessionReason.mobile_no_cookie
  | typeof SessionReason.server_side_no_cookie
  | typeof SessionReason.no_cookie
  | typeof NoCredentialReason.no_credentials

/** The reason for a request that carried no session-token cookie at all. */
export function missingCookieReason(e: MissingCookieEvidence): MissingCookieReason {
  const site = e.headers['sec-fetch-site']
  const mode = e.headers['sec-fetch-mode']
  if (e.sessionDataName !== undefined && hasCookie(e.cookies, e.sessionDataName)) return SessionReason.session_data_without_token
  if (e.sinceSignIn !== undefined) return SessionReason.cookie_not_returned
  // A same-site (cross-origin) fetch sends cookies only with
  // `credentials: "include"`; with none at all, the page did not ask. A
  // same-origin fetch sends them by default, so there an empty jar is the
  // likelier story (no_cookie).
  if (mode === 'cors' && site === 'same-site' && e.cookies.size === 0) return SessionReason.credentials_omitted
  // Only the browser says a request is cross-site: an Origin that differs
  // from Host is just as often a server forwarding its page's origin.
  if (site === 'cross-site') return SessionReason.cross_site_no_cookie
  const kind = clientKind(e.headers)
  if (kind === ClientKind.mobile) return SessionReason.mobile_no_cookie
  // A server that forwards other cookies but not the session one passes on a
  // browser's jar that lacks it (no_cookie); forwarding none at all is the SSR bug.
  if (kind === ClientKind.server && e.cookies.size === 0) return SessionReason.server_side_no_cookie
  // A browser or a client with other cookies is a cookie client whose session cookie is missing.
  if (e.cookies.size > 0 || kind === ClientKind.browser) return SessionReason.no_cookie
  // A Secure (`__Secure-`) session cookie is never sent over plain http, and
  // browsers send no Sec-Fetch-* to such origins: every cookie client lands here.
  if (e.secureCookie && e.protocol === 'http') return SessionReason.no_cookie
  return NoCredentialReason.no_credentials
}

/** The log fields that explain a missing cookie (names only, never values). */
export function missingCookieDetail(e: MissingCookieEvidence): Record<string, unknown> {
  return {
    cookieNames: [...e.cookies.keys()].slice(0, 20),
    origin: e.headers.origin,
    secFetchSite: e.headers['sec-fetch-site'],
    secFetchMode: e.headers['sec-fetch-mode'],
    clientKind: clientKind(e.headers),
    ...(e.sinceSignIn !== undefined ? { sinceSignInSeconds: e.sinceSignIn } : {}),
  }
}

function hasCookie(cookies: ReadonlyMap<string, string>, name: string): boolean {
  if (cookies.has(name)) return true
  for (const n of cookies.keys()) if (n.startsWith(`${name}.`) && /^\d+$/.test(n.slice(name.length + 1))) return true
  return false
}

/** How often `name` occurs in a Cookie header (host-only and Domain cookies of one name both arrive). */
export function cookieOccurrences(header: string | undefined, name: string): number {
  if (!header) return 0
  let n = 0
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) n++
  }
  return n
}
