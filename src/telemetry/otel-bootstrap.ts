// Loaded with `node --import ./src/telemetry/otel-bootstrap.ts` before the app,
// so the pg instrumentation patches the driver before anything requires it.
// Configured only through OTEL_* variables (tracing-sdk.ts). With no OTLP
// endpoint (or OTEL_SDK_DISABLED=true) it loads nothing beyond this check.
import { tracingConfigured } from './tracing.ts'

if (tracingConfigured(process.env)) {
  const { startTracing } = await import('./tracing-sdk.ts')
  const handle = await startTracing()
  // A process that ends on its own exports what is still buffered; one that
  // calls process.exit should await shutdownTracing() from tracing.ts first.
  // An unreachable collector must not turn a clean exit into a crash.
  process.once('beforeExit', () => {
    handle?.shutdown().catch(() => undefined)
  })
}
