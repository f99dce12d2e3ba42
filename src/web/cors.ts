// CORS for the auth and API routes (/api/*) driven by TRUSTED_ORIGINS:
// credentials allowed, and only the headers a browser client needs exposed.
// better-auth sets no CORS headers itself; the health checks and the demo page
// answer no cross-origin reads at all.
import fastifyCors from '@fastify/cors'
import type { FastifyCorsOptions } from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/**
 * Response headers a cross-origin client may read beyond the CORS-safelisted
 * ones: the request id for support, the retry hints (the gateway's 503s send
 * `Retry-After`, better-auth's rate limiter sends `X-Retry-After` with its 429)
 * and the RFC 6750 challenge bearer clients parse. `set-auth-jwt` and
 * `set-auth-token` are not listed: the jwt plugin runs with
 * `disableSettingJwtHeader` and the bearer plugin is not installed, so the
 * gateway never sends them (test/browser/cors.test.ts holds it to that).
 */
export const EXPOSED_HEADERS = ['x-request-id', 'retry-after', 'x-retry-after', 'www-authenticate']

export const CORS_PATH_PREFIX = '/api/'

async function corsPlugin(app: FastifyInstance, opts: { baseUrl: string; trustedOrigins: string[] }) {
  const allowed = new Set([new URL(opts.baseUrl).origin, ...opts.trustedOrigins])
  const api: FastifyCorsOptions = {
    // Answer only for trusted origins; others get no CORS headers at all.
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization', 'x-request-id'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    strictPreflight: true,
  }
  const none: FastifyCorsOptions = { origin: false }
  await app.register(fastifyCors, {
    hook: 'onRequest',
    delegator: (request, cb) => cb(null, request.url.startsWith(CORS_PATH_PREFIX) ? api : none),
  })
}

export const cors = fp(corsPlugin, { name: 'authgw-cors', fastify: '5.x' })
