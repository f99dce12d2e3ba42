// Experiment: no CORS handling at all.
import fp from 'fastify-plugin'

export { CORS_PATH_PREFIX, EXPOSED_HEADERS } from '../../src/web/cors.ts'

export const cors = fp(async () => undefined, { name: 'authgw-cors', fastify: '5.x' })
