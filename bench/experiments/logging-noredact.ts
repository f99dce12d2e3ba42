// Experiment: src/telemetry/logging.ts without pino's redaction paths.
import pino from 'pino'
import type { DestinationStream, Logger, LoggerOptions } from 'pino'
import { loggerOptions as original } from '../../src/telemetry/logging.ts'

export { REDACT_PATHS, safePath } from '../../src/telemetry/logging.ts'

export function loggerOptions(level: string): LoggerOptions {
  const { redact: _omitted, ...rest } = original(level)
  return rest
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return destination ? pino(loggerOptions(level), destination) : pino(loggerOptions(level))
}
