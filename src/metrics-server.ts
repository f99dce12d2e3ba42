// /metrics on its own port and Fastify instance: never proxied, never behind
// the guard, and its cost stays off the gateway's request path.
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { createMetricsRenderer } from './telemetry/metrics-render.ts'

export function buildMetricsServer(registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false })
  const render = createMetricsRenderer(registry)
  app.get('/metrics', async (request, reply) => {
    const { body, contentType } = await render(request.headers.accept)
    return reply.header('content-type', contentType).send(body)
  })
  return app
}
