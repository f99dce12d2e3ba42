// /metrics on its own port and Fastify instance: never proxied, never behind
// the guard, and its cost stays off the gateway's request path.
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import { renderMetrics } from './telemetry/metrics.ts'

export function buildMetricsServer(registry: Registry): FastifyInstance {
  const app = Fastify({ logger: false })
  app.get('/metrics', async (request, reply) => {
    const { body, contentType } = await renderMetrics(registry, request.headers.accept)
    return reply.header('content-type', contentType).send(body)
  })
  return app
}
