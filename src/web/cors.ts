// CORS for /api/* driven by TRUSTED_ORIGINS: credentials allowed, and only the
// headers a browser client needs exposed. better-auth sets no CORS headers itself.
import fastifyCors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'

/** Headers a browser client may read: the request id for support, better-auth's token headers, the retry hint. */
export const EXPOSED_HEADERS = ['x-request-id', 'set-auth-jwt', 'set-auth-token', 'retry-after', 'www-authenticate']

async function corsPlugin(app: FastifyInstance, opts: { baseUrl: string; trustedOrigins: string[] }) {
  const allowed = new Set([new URL(opts.baseUrl).origin, ...opts.trustedOrigins])
  await app.register(fastifyCors, {
    // Answer only for trusted origins; others get no CORS headers at all.
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['content-type', 'authorization', 'x-request-id'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
    strictPreflight: true,
  })
}

export const cors = fp(corsPlugin, { name: 'authgw-cors', fastify: '5.x' })
