// The better-auth endpoints the gateway knows by name: bounded route labels
// for metrics and logs, and which of them sit behind better-auth's session
// middleware.
import { canonicalPath } from '../proxy/request-target.ts'
import { AUTH_BASE_PATH } from './better-auth.ts'

/** better-auth endpoints that get their own route label; everything else is `/api/auth/other`. */
export const AUTH_ROUTES = [
  '/sign-up/email',
  '/sign-in/email',
  '/sign-out',
  '/get-session',
  '/token',
  '/jwks',
  '/list-sessions',
  '/revoke-session',
  '/revoke-sessions',
  '/revoke-other-sessions',
  '/update-user',
  '/change-password',
  '/change-email',
  '/delete-user',
  '/request-password-reset',
  '/reset-password',
  '/verify-email',
  '/send-verification-email',
  '/ok',
  '/error',
] as const
const AUTH_ROUTE_SET = new Set<string>(AUTH_ROUTES)
export const AUTH_OTHER_ROUTE = `${AUTH_BASE_PATH}/other`

/** Route labels the mount's steps switch on. */
export const AuthRoute = {
  signIn: `${AUTH_BASE_PATH}/sign-in/email`,
  signUp: `${AUTH_BASE_PATH}/sign-up/email`,
  signOut: `${AUTH_BASE_PATH}/sign-out`,
  getSession: `${AUTH_BASE_PATH}/get-session`,
  token: `${AUTH_BASE_PATH}/token`,
} as const

/**
 * Endpoints behind better-auth's session middlewares (plus getSession itself):
 * a 401 there means "no usable session", whatever the reason was inside.
 */
export const SESSION_ROUTES: ReadonlySet<string> = new Set(
  [
    '/get-session',
    '/token',
    '/list-sessions',
    '/revoke-session',
    '/revoke-sessions',
    '/revoke-other-sessions',
    '/update-user',
    '/change-password',
    '/change-email',
    '/delete-user',
  ].map((p) => AUTH_BASE_PATH + p),
)

/**
 * Bounded route label for a better-auth URL, from the same canonical path
 * better-auth routes on; a target that is not canonical is never forwarded
 * (400) and labels as `/api/auth/other`.
 */
export function authRouteLabel(url: string): string {
  const path = authPath(url)
  if (path === undefined) return AUTH_OTHER_ROUTE
  const endpoint = path.slice(AUTH_BASE_PATH.length)
  return AUTH_ROUTE_SET.has(endpoint) ? path : AUTH_OTHER_ROUTE
}

/** The path better-auth will act on, or undefined when the target must be refused. */
export function authPath(url: string): string | undefined {
  const path = canonicalPath(url)
  return path !== undefined && path.startsWith(`${AUTH_BASE_PATH}/`) ? path : undefined
}
