// The gateway's own spans, and the glue between the tracing SDK (started by
// otel-bootstrap.ts through tracing-sdk.ts) and the app. When the SDK was not
// started (no OTLP endpoint), `tracingEnabled()` is false, no span objects are
// created at all and buildServer registers no tracing plugin.
import { SpanKind, SpanStatusCode, TraceFlags, context, propagation, trace } from '@opentelemetry/api'
import type { AttributeValue, Attributes, Context, Exception, Link, Span, SpanContext, SpanStatus, TimeInput } from '@opentelemetry/api'
import { performance } from 'node:perf_hooks'
import type { FastifyPluginAsync, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import fp from 'fastify-plugin'
import type { AuthState } from '../auth/auth-state.ts'
import { Attr, SpanName } from './attributes.ts'
import { withoutQuery } from '../proxy/request-target.ts'

export type TraceIds = { trace_id: string; span_id: string }

/** Tracing's per-request state, owned by this module; others write to it only through its functions. */
export type TracingState = {
  /** The request span's ids, captured when it starts (the active context is gone by onResponse). */
  ids?: TraceIds
  /** The ids of a recorded but unsampled request span: its trace is exported only for a denial or a 5xx (outcome-sampling.ts). */
  recordedIds?: TraceIds
  /** The request span (recording or not) and the context holding it, set in onRequest. */
  requestSpan?: Span
  context?: Context
  /** The CLIENT span of the upstream call, ended when its answer (or failure) is sent on. */
  upstreamSpan?: Span
  /** The upstream call failed without a usable answer (noteUpstreamFailure). */
  upstreamFailure?: string
  /** Type of the error a 5xx answered (noteRequestError). */
  errorType?: string
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set in onRequest by the tracing plugin; undefined when tracing is off. */
    tracing?: TracingState
  }
}

/** The upstream call failed without a usable answer: its CLIENT span and the request span say why. */
export function noteUpstreamFailure(request: FastifyRequest, reason: string): void {
  if (request.tracing !== undefined) request.tracing.upstreamFailure = reason
}

/** A 5xx from an error: the request span's `error.type`, unless a reason says more. */
export function noteRequestError(request: FastifyRequest, type: string): void {
  if (request.tracing !== undefined) request.tracing.errorType = type
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

/**
 * Run fn inside a child span of the active one; a thrown error marks the span
 * as an error. Under an unsampled request nothing is created: its children
 * would not be recorded either.
 */
export async function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!tracingEnabled()) return fn(undefined)
  const parent = context.active()
  const parentSpan = trace.getSpan(parent)
  if (parentSpan !== undefined && !parentSpan.isRecording() && (parentSpan.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) {
    return fn(undefined)
  }
  const span: Span = parentSpan !== undefined && FOLDED_ON_CACHE_HIT.has(name) ? new DeferredSpan(name, attributes, parent, parentSpan) : tracer().startSpan(name, { attributes }, parent)
  return context.with(trace.setSpan(parent, span), async () => {
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

// A verify-once cache hit is a map lookup, not work worth a span of its own
// (a span costs more than the lookup): its attributes go on the parent span.
// A miss, a denial or an error is a span as before.
const FOLDED_ON_CACHE_HIT = new Set<string>([SpanName.jwtVerify])

/**
 * A child span that only becomes a real one when it must: when someone needs
 * its context (a child span, a log line, a traceparent) or when it ends as
 * anything but a clean cache hit. It is then started with the time it was
 * created, so the exported span is the one inSpan would have made.
 */
class DeferredSpan implements Span {
  readonly #name: string
  readonly #attributes: Attributes
  readonly #parent: Context
  readonly #parentSpan: Span
  readonly #start = performance.now()
  #status: SpanStatus | undefined
  #real: Span | undefined
  #ended = false

  constructor(name: string, attributes: Attributes, parent: Context, parentSpan: Span) {
    this.#name = name
    this.#attributes = { ...attributes }
    this.#parent = parent
    this.#parentSpan = parentSpan
  }

  #materialize(): Span {
    if (this.#real === undefined) {
      this.#real = tracer().startSpan(this.#name, { attributes: this.#attributes, startTime: this.#start }, this.#parent)
      if (this.#status !== undefined) this.#real.setStatus(this.#status)
    }
    return this.#real
  }

  spanContext(): SpanContext {
    return this.#materialize().spanContext()
  }
  setAttribute(key: string, value: AttributeValue): this {
    if (this.#real !== undefined) this.#real.setAttribute(key, value)
    else if (!this.#ended) this.#attributes[key] = value
    return this
  }
  setAttributes(attributes: Attributes): this {
    if (this.#real !== undefined) this.#real.setAttributes(attributes)
    else if (!this.#ended) Object.assign(this.#attributes, attributes)
    return this
  }
  addEvent(name: string, attributesOrStartTime?: Attributes | TimeInput, startTime?: TimeInput): this {
    this.#materialize().addEvent(name, attributesOrStartTime, startTime)
    return this
  }
  addLink(link: Link): this {
    this.#materialize().addLink(link)
    return this
  }
  addLinks(links: Link[]): this {
    this.#materialize().addLinks(links)
    return this
  }
  setStatus(status: SpanStatus): this {
    if (this.#real !== undefined) this.#real.setStatus(status)
    else if (!this.#ended && status.code !== SpanStatusCode.UNSET) this.#status = status
    return this
  }
  updateName(name: string): this {
    this.#materialize().updateName(name)
    return this
  }
  end(endTime?: TimeInput): void {
    if (this.#ended) return
    if (this.#real === undefined && this.#status === undefined && this.#attributes[Attr.cacheHit] === true) {
      this.#ended = true
      this.#parentSpan.setAttributes(this.#attributes)
      return
    }
    this.#materialize().end(endTime ?? performance.now())
    this.#ended = true
  }
  isRecording(): boolean {
    return this.#real !== undefined ? this.#real.isRecording() : !this.#ended
  }
  recordException(exception: Exception, time?: TimeInput): void {
    this.#materialize().recordException(exception, time)
  }
}

/**
 * trace_id/span_id of the active span when it is sampled — or, with
 * `recorded`, when it is recorded at all: a denial's or a 5xx's trace is
 * exported whatever the sampler said (outcome-sampling.ts).
 */
export function activeTraceIds(opts: { recorded?: boolean } = {}): TraceIds | undefined {
  if (!tracingEnabled()) return undefined
  const span = trace.getSpan(context.active())
  const sc = span?.spanContext()
  if (!sc) return undefined
  if ((sc.traceFlags & 1) === 0 && !(opts.recorded === true && span?.isRecording() === true)) return undefined
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
      // Added before @fastify/otel's onResponse hook, which ends the request
      // span if its onSend did not: a hijacked reply (the proxy's direct hop)
      // or one that failed before sending never runs onSend hooks.
      app.addHook('onResponse', (request, reply, done) => {
        endUpstreamSpan(request, reply)
        annotateRequestSpan(request, reply)
        done()
      })
      await app.register(otel)
      app.decorateRequest('tracing', undefined)
      app.addHook('onRequest', (request, _reply, done) => {
        // Runs after @fastify/otel's onRequest: read its span once, here.
        const otel = (request as OtelRequest).opentelemetry?.()
        const span = otel?.span ?? undefined
        const state: TracingState = { requestSpan: span, context: otel?.context ?? undefined }
        request.tracing = state
        if (span !== undefined) {
          const sc = span.spanContext()
          if ((sc.traceFlags & TraceFlags.SAMPLED) !== 0) state.ids = { trace_id: sc.traceId, span_id: sc.spanId }
          else if (span.isRecording()) state.recordedIds = { trace_id: sc.traceId, span_id: sc.spanId }
          if (span.isRecording()) span.setAttribute(Attr.requestId, request.id)
        }
        done()
      })
      // Re-enter the request span before the handler, so child spans (auth
      // decisions, better-auth, pg, the upstream call) and log lines attach to
      // it even if body parsing continued in another async context. Node 24's
      // AsyncContextFrame keeps it (test/telemetry/span-tree.test.ts sends a
      // late body); async_hooks-based AsyncLocalStorage (Node 22) may not.
      app.addHook('preHandler', (request, _reply, done) => {
        const ctx = request.tracing?.context
        if (ctx !== undefined && context.active() !== ctx) context.with(ctx, done)
        else done()
      })
      app.addHook('onSend', (request, reply, payload, done) => {
        endUpstreamSpan(request, reply)
        annotateRequestSpan(request, reply)
        done(null, payload)
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
 * traceparent when the client had sent one (docs/adr/0020-traces-only-opentelemetry.md).
 */
export function injectTraceContext(request: FastifyRequest, headers: IncomingHttpHeaders): void {
  if (!tracingEnabled()) return
  delete headers.traceparent
  delete headers.tracestate
  const parent = request.tracing?.context ?? context.active()
  let ctx = parent
  if ((request.tracing?.requestSpan ?? trace.getSpan(parent))?.isRecording()) {
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
    ;(request.tracing ??= {}).upstreamSpan = span
    ctx = trace.setSpan(parent, span)
  }
  propagation.inject(ctx, headers)
}

function endUpstreamSpan(request: FastifyRequest, reply: FastifyReply): void {
  const state = request.tracing
  const span = state?.upstreamSpan
  if (state === undefined || span === undefined) return
  state.upstreamSpan = undefined
  const failure = state.upstreamFailure
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

/** Auth outcome on the request span; 5xx is an error with `error.type`, denials are not. */
function annotateRequestSpan(request: FastifyRequest, reply: FastifyReply): void {
  const state = request.tracing
  const span = state?.requestSpan
  if (state === undefined || span === undefined || !span.isRecording()) return
  const a: AuthState = request.authgw ?? {}
  const attrs: Attributes = {}
  if (a.mechanism) attrs[Attr.mechanism] = a.mechanism
  if (a.outcome) attrs[Attr.outcome] = a.outcome
  if (a.reason) attrs[Attr.reason] = a.reason
  if (a.source) attrs[Attr.source] = a.source
  if (a.userId) attrs[Attr.userPseudoId] = a.userId
  const status = reply.statusCode
  if (status >= 500) {
    const type = a.reason ?? state.upstreamFailure ?? state.errorType ?? String(status)
    attrs[Attr.errorType] = type
    span.setStatus({ code: SpanStatusCode.ERROR, message: type })
  }
  span.setAttributes(attrs)
}
