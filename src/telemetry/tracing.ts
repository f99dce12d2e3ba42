// The gateway's own spans, and the glue between the tracing SDK (started by
// otel-bootstrap.ts through tracing-sdk.ts) and the app. When the SDK was not
// started (no OTLP endpoint), `tracingEnabled()` is false, no span objects are
// created at all and buildServer registers no tracing plugin.
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api'
import type { Attributes, Span } from '@opentelemetry/api'
import type { FastifyPluginAsync, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'
import type { AuthState } from '../auth/decision.ts'
import { Attr } from './attributes.ts'

export type TraceIds = { trace_id: string; span_id: string }

declare module 'fastify' {
  interface FastifyRequest {
    /** The request span's ids, captured when it starts (the active context is gone by onResponse). */
    traceIds?: TraceIds
    /** The CLIENT span of the upstream call, ended when its answer (or failure) is sent on. */
    upstreamSpan?: Span
  }
}

const TRACING_FLAG = Symbol.for('authgw.tracing.enabled')
const TRACING_RUNTIME = Symbol.for('authgw.tracing.runtime')

type TracingRuntime = {
  /** @fastify/otel's plugin, bound to the instrumentation the SDK registered. */
  fastifyPlugin: () => FastifyPluginCallback
  handle: { forceFlush(): Promise<void>; shutdown(): Promise<void> }
}

const globals = globalThis as Record<symbol, unknown>

/** Set by tracing-sdk.ts once the SDK runs. */
export function markTracingEnabled(): void {
  globals[TRACING_FLAG] = true
}

export function tracingEnabled(): boolean {
  return globals[TRACING_FLAG] === true
}

export function setTracingRuntime(runtime: TracingRuntime): void {
  globals[TRACING_RUNTIME] = runtime
}

function tracingRuntime(): TracingRuntime | undefined {
  return globals[TRACING_RUNTIME] as TracingRuntime | undefined
}

/** Tracing is on when an OTLP endpoint is configured and the SDK is not disabled. */
export function tracingConfigured(env: NodeJS.ProcessEnv): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false
  if ((env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim()).includes('none')) return false
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT
  return typeof endpoint === 'string' && endpoint.trim() !== ''
}

/** Export what is buffered and stop the SDK (graceful shutdown); a no-op when tracing is off. Never rejects. */
export async function shutdownTracing(): Promise<void> {
  await tracingRuntime()?.handle.shutdown().catch(() => undefined)
}

const tracer = () => trace.getTracer('authgw')

/** Run fn inside a child span of the active one; a thrown error marks the span as an error. */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return fn(undefined)
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span)
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR })
      span.setAttribute(Attr.errorType, err instanceof Error ? ((err as Error & { code?: string }).code ?? err.name) : 'unknown')
      throw err
    } finally {
      span.end()
    }
  })
}

/** trace_id/span_id of the active span when it is sampled. */
export function activeTraceIds(): TraceIds | undefined {
  if (!tracingEnabled()) return undefined
  const span = trace.getSpan(context.active())
  const sc = span?.spanContext()
  if (!sc || (sc.traceFlags & 1) === 0) return undefined
  return { trace_id: sc.traceId, span_id: sc.spanId }
}

export function activeSpan(): Span | undefined {
  if (!tracingEnabled()) return undefined
  return trace.getSpan(context.active())
}

type OtelRequest = FastifyRequest & { opentelemetry?: () => { span: Span | null; context: ReturnType<typeof context.active> | null } }

/**
 * The request-span plugin for buildServer, or undefined when tracing is off.
 * It registers @fastify/otel (one SERVER span per request, the W3C parent
 * taken from `traceparent`), keeps the request span active in the handler,
 * and puts the auth outcome and, for 5xx, the error on the request span.
 */
export function getFastifyOtelPlugin(): FastifyPluginAsync | undefined {
  const runtime = tracingRuntime()
  if (runtime === undefined) return undefined
  const otel = runtime.fastifyPlugin()
  return fp(
    async (app) => {
      await app.register(otel)
      app.decorateRequest('traceIds', undefined)
      app.decorateRequest('upstreamSpan', undefined)
      app.addHook('onRequest', (request, _reply, done) => {
        // Runs after @fastify/otel's onRequest, inside the request span's context.
        request.traceIds = activeTraceIds()
        done()
      })
      // Re-enter the request span before the handler, so child spans (auth
      // decisions, better-auth, pg, the upstream call) and log lines attach to
      // it even if body parsing continued in another async context. Node 24's
      // AsyncContextFrame keeps it (test/telemetry/span-tree.test.ts sends a
      // late body); async_hooks-based AsyncLocalStorage (Node 22) may not.
      app.addHook('preHandler', (request, _reply, done) => {
        const ctx = (request as OtelRequest).opentelemetry?.().context
        if (ctx) context.with(ctx, done)
        else done()
      })
      app.addHook('onSend', (request, reply, payload, done) => {
        endUpstreamSpan(request, reply)
        annotateRequestSpan(request, reply)
        done(null, payload)
      })
      app.addHook('onResponse', (request, reply, done) => {
        // Only if onSend never ran (the reply failed before sending).
        endUpstreamSpan(request, reply)
        done()
      })
    },
    { name: 'authgw-tracing', fastify: '5.x' },
  )
}

/**
 * W3C trace context for the upstream request, called by the header policy as
 * the last step of the rewrite. A sampled request gets a CLIENT span for the
 * hop and the upstream becomes its child; an unsampled one still propagates
 * (flags 00) so the upstream's parent-based sampler agrees. Any traceparent
 * or tracestate the client sent is replaced, never forwarded next to ours.
 *
 * Done here rather than by @opentelemetry/instrumentation-undici: that one
 * cost ~36 µs per request even when unsampled, and appended a second
 * traceparent when the client had sent one (see the tracing issue's report).
 */
export function injectTraceContext(request: FastifyRequest, headers: IncomingHttpHeaders): void {
  if (!tracingEnabled()) return
  delete headers.traceparent
  delete headers.tracestate
  const parent = (request as OtelRequest).opentelemetry?.().context ?? context.active()
  let ctx = parent
  if (trace.getSpan(parent)?.isRecording()) {
    const [address, port] = splitHost(headers.host)
    const span = tracer().startSpan(
      request.method,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [Attr.httpMethod]: request.method,
          [Attr.serverAddress]: address,
          [Attr.serverPort]: port,
          [Attr.urlPath]: withoutQuery(request.url),
        },
      },
      parent,
    )
    request.upstreamSpan = span
    ctx = trace.setSpan(parent, span)
  }
  propagation.inject(ctx, headers)
}

function endUpstreamSpan(request: FastifyRequest, reply: FastifyReply): void {
  const span = request.upstreamSpan
  if (span === undefined) return
  request.upstreamSpan = undefined
  const failure = stringField(request.authgw?.detail?.upstreamFailure)
  if (failure !== undefined) {
    // No usable answer: the status is the gateway's own 502/504.
    span.setAttribute(Attr.errorType, failure)
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure })
  } else {
    const status = reply.statusCode
    span.setAttribute(Attr.httpStatus, status)
    // Client spans: 4xx and 5xx are errors (semantic conventions).
    if (status >= 400) {
      span.setAttribute(Attr.errorType, String(status))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
  }
  span.end()
}

function splitHost(host: string | undefined): [string | undefined, number | undefined] {
  if (host === undefined) return [undefined, undefined]
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host)
  if (!m) return [host, undefined]
  return [m[1], m[2] === undefined ? undefined : Number(m[2])]
}

function withoutQuery(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Auth outcome on the request span; 5xx is an error with `error.type`, denials are not. */
function annotateRequestSpan(request: FastifyRequest, reply: FastifyReply): void {
  const span = (request as OtelRequest).opentelemetry?.().span
  if (!span || !span.isRecording()) return
  const a: AuthState = request.authgw ?? {}
  const attrs: Attributes = {}
  if (a.mechanism) attrs[Attr.mechanism] = a.mechanism
  if (a.outcome) attrs[Attr.outcome] = a.outcome
  if (a.reason) attrs[Attr.reason] = a.reason
  if (a.source) attrs[Attr.source] = a.source
  if (a.userId) attrs[Attr.userPseudoId] = a.userId
  const status = reply.statusCode
  if (status >= 500) {
    const detail = a.detail ?? {}
    const type = a.reason ?? stringField(detail.upstreamFailure) ?? stringField(detail.errorType) ?? String(status)
    attrs[Attr.errorType] = type
    span.setStatus({ code: SpanStatusCode.ERROR, message: type })
  }
  span.setAttributes(attrs)
}

function stringField(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}
