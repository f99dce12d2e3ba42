// Experiment: src/telemetry/logging.ts writing through an asynchronous pino
// destination that batches lines into ≥ 4 KiB writes (one write syscall per
// ~15 access lines instead of one per line; lines still buffered at a crash
// are lost, which is the trade-off).
import pino from 'pino'
import type { DestinationStream, Logger } from 'pino'
import { loggerOptions } from '../../src/telemetry/logging.ts'

export { REDACT_PATHS, loggerOptions, safePath } from '../../src/telemetry/logging.ts'

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 })
  return pino(loggerOptions(level), dest)
}
