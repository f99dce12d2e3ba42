// The better-auth instance: PostgreSQL through the injected pg.Pool,
// email + password, the jwt plugin with pinned issuer/audience/algorithm.
// Each option says why it is set; docs/architecture.md ("How a request is
// decided") and docs/failure-behaviour.md describe what they add up to.
import { betterAuth } from 'better-auth'
import { genericOAuth, jwt } from 'better-auth/plugins'
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { ResolvedConfig } from '../config/load.ts'
import { IDP_CLAIM, ssoOptions } from '../oauth/better-auth-options.ts'
import type { SharedAuthOptions } from '../shared-state/coherence.ts'

/** The header better-auth reads the client IP from; clients' own copies are stripped. */
export const CLIENT_IP_HEADER = 'x-gateway-client-ip'
export const AUTH_BASE_PATH = '/api/auth'

export type AuthHooks = {
  /** A session row was deleted (sign-out, revocation, expiry clean-up). */
  onSessionDeleted?: (session: { id: string; token: string }) => void | Promise<void>
  /** better-auth created a signing key (first start, rotation). */
  onSigningKeyCreated?: () => void | Promise<void>
}

type JwtAlg = 'EdDSA' | 'ES256' | 'RS256' | 'PS256'

export function createAuth(config: ResolvedConfig, deps: { pool: Pool; log: Logger; hooks?: AuthHooks; shared?: SharedAuthOptions }) {
  const log = deps.log.child({ component: 'better-auth' })
  const alg = (config.jwt.algorithms[0] ?? 'EdDSA') as JwtAlg
  const cookieCacheMaxAge = config.session.cookieCacheMaxAge
  const sso = ssoOptions(config.oidc)

  const auth = betterAuth({
    appName: 'authgw',
    database: deps.pool,
    secret: config.secret,
    baseURL: config.baseUrl,
    basePath: AUTH_BASE_PATH,
    trustedOrigins: config.trustedOrigins,
    // Never phones home; BETTER_AUTH_TELEMETRY, which would override this, is refused by config/load.ts.
    telemetry: { enabled: false },
    emailAndPassword: { enabled: true },
    // AUTH_DELETE_USER: ending the user's sessions ends their JWTs too (databaseHooks below).
    ...(config.authDeleteUser ? { user: { deleteUser: { enabled: true } } } : {}),
    // Redis mode (docs/replicas.md): a copy every replica reads; PostgreSQL
    // keeps every session too, so losing Redis loses none.
    secondaryStorage: deps.shared?.secondaryStorage,
    session: {
      storeSessionInDatabase: deps.shared?.secondaryStorage !== undefined,
      // The gateway's own session path (session.ts) extends sessions with the
      // same two numbers, read back from these options.
      expiresIn: config.session.expiresInSeconds,
      updateAge: config.session.updateAgeSeconds,
      cookieCache: cookieCacheMaxAge > 0 ? { enabled: true, maxAge: cookieCacheMaxAge } : { enabled: false },
      // Only with SSO configured: the column naming the provider a session came from.
      ...(sso ? { additionalFields: sso.sessionFields } : {}),
    },
    // Shared by every replica in Redis or database storage (RATE_LIMIT_STORAGE).
    rateLimit: { enabled: config.authRateLimit, ...deps.shared?.rateLimit },
    advanced: {
      ipAddress: { ipAddressHeaders: [CLIENT_IP_HEADER] },
      // COOKIE_*: what a user changes when a reason names a cookie attribute
      // (docs/reasons.md); the gateway reads the cookie under better-auth's name.
      ...(config.cookies.prefix !== undefined ? { cookiePrefix: config.cookies.prefix } : {}),
      ...(config.cookies.domain !== undefined ? { crossSubDomainCookies: { enabled: true, domain: config.cookies.domain } } : {}),
      defaultCookieAttributes: { sameSite: config.cookies.sameSite, ...(config.cookies.partitioned ? { partitioned: true } : {}) },
    },
    // Every line better-auth writes goes through pino, at pino's level.
    logger: {
      level: betterAuthLevel(deps.log.level),
      disabled: deps.log.level === 'silent',
      disableColors: true,
      log(level, message, ...args) {
        // Only error names and messages: argument objects may carry request data.
        const errors = args.filter((a): a is Error => a instanceof Error).map((e) => ({ type: e.name, message: e.message }))
        // better-auth logs client mistakes ("Invalid origin") at error level;
        // without an Error attached they are warnings, not gateway failures.
        log[level === 'error' && errors.length === 0 ? 'warn' : level]({ errors: errors.length > 0 ? errors : undefined }, message)
      },
    },
    // better-auth's router writes outside the `logger` option: every APIError
    // (a 403 for a request without Origin, a 400 for a bad body) through its
    // global logger ("ERROR [Better Auth]: …" via console.error), and any other
    // error as "# SERVER_ERROR:" with console.error (better-call's router).
    // `throw` skips both: APIErrors still become their responses, other errors
    // leave auth.handler, which answers them below as better-call would (500,
    // empty body) after logging them through pino. Client mistakes are already
    // on the access line.
    onAPIError: { throw: true },
    databaseHooks: {
      session: {
        ...(sso ? { create: { before: sso.tagSession } } : {}),
        delete: {
          after: async (session) => {
            // Awaited: the answer to a sign-out leaves once every replica has been told.
            await deps.hooks?.onSessionDeleted?.({ id: session.id, token: session.token })
          },
        },
      },
    },
    plugins: [
      // Without providers the plugin has nothing to register (it adds no routes of its own).
      genericOAuth({ config: sso?.providers ?? [] }),
      jwt({
        disableSettingJwtHeader: true,
        jwks: {
          keyPairConfig: { alg } as { alg: 'EdDSA' },
          rotationInterval: config.jwt.rotationIntervalSeconds > 0 ? config.jwt.rotationIntervalSeconds : undefined,
          gracePeriod: config.jwt.gracePeriodSeconds,
        },
        adapter: {
          // The default key creation, plus a signal so this instance learns a
          // rotated key without waiting out the unknown-kid cooldown.
          createJwk: async (data, ctx) => {
            const key = await ctx.context.adapter.create<typeof data & { createdAt: Date }, typeof data & { id: string; createdAt: Date }>({
              model: 'jwks',
              data: { ...data, createdAt: new Date() },
            })
            // Awaited: a token signed with the new key leaves once every replica has been told.
            await deps.hooks?.onSigningKeyCreated?.()
            return key
          },
        },
        jwt: {
          issuer: config.issuer,
          audience: config.audience,
          expirationTime: `${config.jwt.expirationSeconds}s`,
          definePayload: ({ user, session }) => upstreamClaims(user, session),
        },
      }),
    ],
  })
  return answerServerErrors(auth, log)
}

/** auth.handler, answering what escapes better-auth's router with a logged 500 instead of a console line. */
function answerServerErrors<A extends { handler: (request: Request) => Promise<Response> }>(auth: A, log: Logger): A {
  const handle = auth.handler
  auth.handler = async (request) => {
    try {
      return await handle(request)
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err))
      log.error({ errors: [{ type: e.name, message: e.message, code: (e as { code?: string }).code }] }, 'better-auth request failed')
      return new Response(null, { status: 500, statusText: 'Internal Server Error' })
    }
  }
  return auth
}

/** better-auth's logger level for a pino level (better-auth has no trace or fatal). */
function betterAuthLevel(level: string): 'debug' | 'info' | 'warn' | 'error' {
  if (level === 'trace' || level === 'debug') return 'debug'
  if (level === 'info' || level === 'warn') return level
  return 'error'
}

/**
 * The identity claims every JWT carries (token endpoint and gateway exchange
 * alike); a session signed in through an SSO provider adds `idp`, its id.
 */
export function upstreamClaims(user: { email: string; name: string }, session: { id: string; [IDP_CLAIM]?: string | null }) {
  const idp = session[IDP_CLAIM]
  return { email: user.email, name: user.name, sid: session.id, ...(typeof idp === 'string' && idp !== '' ? { [IDP_CLAIM]: idp } : {}) }
}

export type Auth = ReturnType<typeof createAuth>
