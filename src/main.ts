// Entry point: load config → development defaults → start → signals.
// The only place that calls process.exit. Every line it writes is JSON, fatal
// ones included.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { applyDevDefaults } from './config/dev-defaults.ts'
import { ConfigError, loadConfig } from './config/load.ts'
import { ListenError, startGateway } from './start.ts'
import { createLogger, stdoutDestination } from './telemetry/logging.ts'
import { shutdownTracing } from './telemetry/tracing.ts'

const root = join(import.meta.dirname, '..')
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version

let config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (err instanceof ConfigError) {
    // LOG_LEVEL itself may be what is wrong: this line is written whatever it says.
    createLogger('info', stdoutDestination(true)).fatal({ event: 'config_invalid', problems: err.problems }, 'invalid configuration')
    process.exit(1)
  }
  throw err
}

const log = createLogger(config.logLevel, stdoutDestination(config.logSync))
// Node's default for these is a stack trace on stderr: a JSON line instead.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err))
    log.fatal({ event, err: { type: e.name, message: e.message, stack: e.stack } }, 'crashed')
    process.exit(1)
  })
}
const dev = await applyDevDefaults(config, { dataDir: join(root, '.data'), log }).catch((err: unknown) => {
  log.fatal({ err: { message: (err as Error).message } }, 'startup failed')
  process.exit(1)
})
const running = await startGateway(dev.config, { logger: log, version }).catch(async (err: unknown) => {
  const setting = err instanceof ListenError ? err.setting : undefined
  log.fatal({ event: 'startup_failed', setting, err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'startup failed')
  await dev.close()
  process.exit(1)
})

let stopping = false
async function shutdown(signal: string) {
  if (stopping) return
  stopping = true
  const { drainMs, delayMs } = dev.config.shutdown
  log.info({ event: 'shutdown', signal, drain_ms: drainMs }, 'draining')
  // /readyz fails first so load balancers stop sending new work.
  running.setDraining()
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs))
  const forced = setTimeout(() => {
    log.warn({ event: 'shutdown', drain_ms: drainMs }, 'drain time exceeded, exiting')
    process.exit(1)
  }, drainMs)
  forced.unref()
  try {
    await running.close()
    await dev.close()
    log.info({ event: 'shutdown' }, 'stopped')
    // Spans still buffered in the batch processor are exported before exit.
    await shutdownTracing()
    process.exit(0)
  } catch (err) {
    log.error({ err: { message: (err as Error).message } }, 'shutdown failed')
    process.exit(1)
  }
}
process.once('SIGTERM', () => void shutdown('SIGTERM'))
process.once('SIGINT', () => void shutdown('SIGINT'))
