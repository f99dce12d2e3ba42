// Starts the OpenTelemetry SDK: traces only, configured through the standard
// OTEL_* variables. otel-bootstrap.ts calls startTracing() before the app is
// imported; tests call it in-process with their own exporter and sampler.
//
// What is instrumented and why (measured: docs/adr/0020-traces-only-opentelemetry.md):
// - routes: @fastify/otel, one request span per request (no hook or handler
//   spans), registered by buildServer through getFastifyOtelPlugin();
// - the upstream hop: one CLIENT span and W3C `traceparent`, made by hand in
//   the header policy (tracing.ts injectTraceContext); instrumentation-undici
//   cost ~36 µs per request even unsampled and duplicated a client's
//   traceparent;
// - pg: query spans only under a parent, no connect spans, no parameters;
// - never fs, dns, net, http or undici; no OpenTelemetry metrics or logs (metrics come
//   from prom-client, logs from pino with trace ids mixed in).
import { FastifyOtelInstrumentation } from '@fastify/otel'
import type { FastifyRequest } from 'fastify'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import type { Attributes, AttributeValue } from '@opentelemetry/api'
import type { ExportResult } from '@opentelemetry/core'
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg'
import { NodeSDK } from '@opentelemetry/sdk-node'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base'
import { OutcomeSpanProcessor, RecordUnsampledSampler } from './outcome-sampling.ts'
import type { ReadableSpan, Sampler, SpanExporter } from '@opentelemetry/sdk-trace-base'
import { Attr } from './attributes.ts'
import { withoutQuery } from '../proxy/request-target.ts'
import { markTracingEnabled, setTracingRuntime, tracingConfigured } from './tracing.ts'

export type TracingOptions = {
  /** Where spans go; default: the OTLP exporter OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL names. */
  exporter?: SpanExporter
  /** Default: OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (parentbased_always_on when unset). */
  sampler?: Sampler
  env?: NodeJS.ProcessEnv
  /** Keep every 401, 403 and 5xx trace whatever the sampler said; default: TRACE_DENIALS (on). */
  traceDenials?: boolean
}

export type TracingHandle = {
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
}

const DEFAULT_SERVICE_NAME = 'authgw'
// Smaller than the SDK's 512 so one export's synchronous serialisation stays short.
const DEFAULT_MAX_EXPORT_BATCH_SIZE = 128

/**
 * Start tracing if it is configured (an OTLP endpoint, or an exporter passed
 * in) and not disabled (OTEL_SDK_DISABLED). Returns undefined when off.
 */
export async function startTracing(opts: TracingOptions = {}): Promise<TracingHandle | undefined> {
  const env = opts.env ?? process.env
  if (opts.exporter === undefined && !tracingConfigured(env)) return undefined
  if (isTrue(env.OTEL_SDK_DISABLED)) return undefined

  const exporter = new RedactingSpanExporter(opts.exporter ?? (await otlpExporterFromEnv(env)))
  const processor = new BatchSpanProcessor(
    exporter,
    env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE === undefined ? { maxExportBatchSize: DEFAULT_MAX_EXPORT_BATCH_SIZE } : {},
  )
  const fastify = new FastifyOtelInstrumentation({
    // Only the request span: hook and handler spans cost more than they tell here.
    instrumentHooks: false,
    instrumentHandler: false,
    // Exception messages can carry values (a pg error's detail, a URL).
    recordExceptions: false,
    requestHook: nameRequestSpan,
  })
  const serviceNamed = env.OTEL_SERVICE_NAME !== undefined || /(^|,)\s*service\.name=/.test(env.OTEL_RESOURCE_ATTRIBUTES ?? '')

  // The configured sampler decides; what it drops is still recorded and
  // exported when the request turns out a denial or a 5xx (outcome-sampling.ts),
  // unless TRACE_DENIALS=off: then what it drops is not even recorded.
  const configured = opts.sampler ?? samplerFromEnv(env)
  const keepDenials = configured !== undefined && (opts.traceDenials ?? traceDenialsFromEnv(env))
  const sdk = new NodeSDK({
    serviceName: serviceNamed ? undefined : DEFAULT_SERVICE_NAME,
    sampler: configured === undefined ? undefined : keepDenials ? new RecordUnsampledSampler(configured) : configured,
    spanProcessors: [keepDenials ? new OutcomeSpanProcessor(processor) : processor],
    // Traces only: prom-client owns metrics, pino owns logs.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      fastify,
      ...(instrumentationOn(env, 'pg') ? [new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true, enhancedDatabaseReporting: false })] : []),
    ],
  })
  sdk.start()
  const handle: TracingHandle = {
    forceFlush: () => processor.forceFlush(),
    shutdown: () => sdk.shutdown(),
  }
  setTracingRuntime({ fastifyPlugin: () => fastify.plugin(), handle })
  markTracingEnabled()
  return handle
}

/**
 * TRACE_DENIALS as config/load.ts accepts it (on unless off, false, 0 or no).
 * The bootstrap runs before the configuration is loaded; an invalid value is
 * refused there, at startup, so here it may fall back to the default.
 */
export function traceDenialsFromEnv(env: NodeJS.ProcessEnv): boolean {
  return !['0', 'false', 'off', 'no'].includes((env.TRACE_DENIALS ?? '').trim().toLowerCase())
}

/**
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG as the SDK reads them, for the
 * built-in samplers (default parentbased_always_on); undefined for others
 * (jaeger_remote …), which the SDK then builds itself, without the
 * every-denial guarantee.
 */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler | undefined {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase()
  const arg = Number(env.OTEL_TRACES_SAMPLER_ARG)
  const ratio = () => new TraceIdRatioBasedSampler(Number.isFinite(arg) && arg >= 0 && arg <= 1 && env.OTEL_TRACES_SAMPLER_ARG?.trim() !== '' ? arg : 1)
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return ratio()
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() })
    default:
      return undefined
  }
}

async function otlpExporterFromEnv(env: NodeJS.ProcessEnv): Promise<SpanExporter> {
  // The same choice sdk-node makes when it builds the exporter itself.
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim()
  switch (protocol) {
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter()
    default:
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter()
  }
}

/**
 * OTEL_NODE_ENABLED_INSTRUMENTATIONS / OTEL_NODE_DISABLED_INSTRUMENTATIONS, as
 * auto-instrumentations-node reads them, for the optional one: `pg`. The
 * request span is not optional: without it there is no trace to join.
 */
function instrumentationOn(env: NodeJS.ProcessEnv, name: 'pg'): boolean {
  const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  const enabled = list(env.OTEL_NODE_ENABLED_INSTRUMENTATIONS)
  if (enabled.length > 0 && !enabled.includes(name)) return false
  return !list(env.OTEL_NODE_DISABLED_INSTRUMENTATIONS).includes(name)
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && v.trim().toLowerCase() === 'true'
}

/** `GET /api/*` instead of @fastify/otel's generic `request`; the path without its query string. */
function nameRequestSpan(span: { isRecording(): boolean; updateName(n: string): unknown; setAttribute(k: string, v: AttributeValue): unknown }, request: FastifyRequest): void {
  if (!span.isRecording()) return
  const route = request.routeOptions.url
  span.updateName(route === undefined ? request.method : `${request.method} ${route}`)
  span.setAttribute(Attr.urlPath, withoutQuery(request.url))
}

// ---------------------------------------------------------------------------
// Redaction before export: the second line of defence behind attribute choices
// made at the source. Nothing that can carry a credential leaves the process.

const URL_KEYS = new Set(['url.full', 'url.path', 'http.url', 'http.target', 'url.original'])
const DROPPED_KEYS = new Set(['url.query', 'db.postgresql.values', 'db.statement.parameters', 'db.query.parameters'])
const ALLOWED_KEYS = new Set<string>([Attr.cookieNames])
const CREDENTIAL_KEY = /authorization|cookie|password|passwd|secret|token|api[-_.]?key|session[-_.]?id/i
// A JWT, a Bearer credential, or a better-auth signed cookie value.
const CREDENTIAL_VALUE = /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.|\bBearer\s+\S+|[A-Za-z0-9]{20,}\.[A-Za-z0-9+/]{43}=/
const REDACTED = '[redacted]'

type KeyRule = 'keep' | 'drop' | 'url'
// Attribute names are a small, bounded set: decide each once.
const keyRules = new Map<string, KeyRule>()
function keyRule(key: string): KeyRule {
  let rule = keyRules.get(key)
  if (rule === undefined) {
    if (DROPPED_KEYS.has(key) || key.startsWith('db.query.parameter.')) rule = 'drop'
    else if (!ALLOWED_KEYS.has(key) && CREDENTIAL_KEY.test(key)) rule = 'drop'
    else rule = URL_KEYS.has(key) ? 'url' : 'keep'
    if (keyRules.size < 1024) keyRules.set(key, rule)
  }
  return rule
}

/** The value as exported: the same value when nothing is to hide, undefined to drop it. */
function redactValue(key: string, value: AttributeValue | undefined): AttributeValue | undefined {
  if (value === undefined) return undefined
  const rule = keyRule(key)
  if (rule === 'drop') return undefined
  if (typeof value === 'string') {
    const v = rule === 'url' ? withoutQuery(value) : value
    return CREDENTIAL_VALUE.test(v) ? REDACTED : v
  }
  if (Array.isArray(value) && value.some((x) => typeof x === 'string' && CREDENTIAL_VALUE.test(x))) {
    return value.map((x) => (typeof x === 'string' && CREDENTIAL_VALUE.test(x) ? REDACTED : x)) as AttributeValue
  }
  return value
}

/** Attributes as exported; the same object when nothing changes (the common case). */
export function redactAttributes(attributes: Attributes): Attributes {
  let out: Attributes | undefined
  const keys = Object.keys(attributes)
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string
    const v = attributes[k]
    const r = redactValue(k, v)
    if (r !== v && out === undefined) {
      out = {}
      for (let j = 0; j < i; j++) out[keys[j] as string] = attributes[keys[j] as string]
    }
    if (out !== undefined && r !== undefined) out[k] = r
  }
  return out ?? attributes
}

/**
 * A span as exported: credentials dropped from attributes, event attributes
 * and status messages; a server span that answered 4xx keeps an Unset status
 * (semantic conventions), whatever an error hook recorded on the way. The span
 * itself when nothing changes.
 */
export function redactSpan(span: ReadableSpan): ReadableSpan {
  const attributes = redactAttributes(span.attributes)
  let events = span.events
  for (let i = 0; i < span.events.length; i++) {
    const e = span.events[i] as ReadableSpan['events'][number]
    const a = e.attributes === undefined ? undefined : redactAttributes(e.attributes)
    if (a !== e.attributes) {
      if (events === span.events) events = [...span.events]
      events[i] = { ...e, attributes: a }
    }
  }
  let status = span.status
  const httpStatus = span.attributes[Attr.httpStatus]
  if (span.kind === SpanKind.SERVER && typeof httpStatus === 'number' && httpStatus < 500 && status.code === SpanStatusCode.ERROR) {
    status = { code: SpanStatusCode.UNSET }
  } else if (status.message !== undefined && CREDENTIAL_VALUE.test(status.message)) {
    status = { code: status.code, message: REDACTED }
  }
  if (attributes === span.attributes && events === span.events && status === span.status) return span
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    parentSpanContext: span.parentSpanContext,
    startTime: span.startTime,
    endTime: span.endTime,
    status,
    attributes,
    links: span.links,
    events,
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  }
}

class RedactingSpanExporter implements SpanExporter {
  readonly #inner: SpanExporter
  constructor(inner: SpanExporter) {
    this.#inner = inner
  }
  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.#inner.export(spans.map(redactSpan), resultCallback)
  }
  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }
  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve()
  }
}
