// Experiment: @opentelemetry/instrumentation-undici replaced by an
// instrumentation that patches nothing, to measure what the upstream client
// span (and its traceparent injection) costs per request.
import { InstrumentationBase } from '@opentelemetry/instrumentation'
import type { InstrumentationConfig } from '@opentelemetry/instrumentation'

export class UndiciInstrumentation extends InstrumentationBase {
  constructor(config: InstrumentationConfig = {}) {
    super('authgw-bench-undici-off', '0.0.0', config)
  }
  protected init() {
    return []
  }
}
