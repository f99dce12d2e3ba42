// The probe loop: every PROBE_INTERVAL_SECONDS, on the one replica holding the
// probe lock, one run (src/probe/run.ts), counted on the probe's own series.
// Runs never overlap (the next is scheduled when one ends); each step has its
// own timeout; stop() aborts a run in flight and releases the lock.
import type { Pool } from 'pg'
import type { Logger } from 'pino'
import type { Auth } from '../auth/better-auth.ts'
import type { ResolvedConfig } from '../config/load.ts'
import type { ProbeMetrics } from '../telemetry/metrics/probe.ts'
import { ProbeAccount } from './account.ts'
import { ProbeLock } from './lock.ts'
import { createProbeMark } from './mark.ts'
import { ProbeRun } from './run.ts'
import type { RunResult } from './run.ts'

export type ProberDeps = {
  run: ProbeRun
  account: ProbeAccount
  lock: ProbeLock
  metrics: ProbeMetrics
  log: Logger
  intervalSeconds: number
}

export type ProbeRole = 'prober' | 'standby'

export class Prober {
  readonly #deps: ProberDeps
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<unknown> | undefined
  #stopped = false
  #role: ProbeRole | undefined

  constructor(deps: ProberDeps) {
    this.#deps = deps
  }

  /** Whether this replica runs the probe (holds the lock), as of the last tick. */
  get role(): ProbeRole | undefined {
    return this.#role
  }

  start(): void {
    this.#schedule(0)
  }

  /** One tick: take or keep the lock, run when held. Exposed for tests. */
  async tick(): Promise<RunResult | undefined> {
    let held: boolean
    try {
      held = await this.#deps.lock.tryHold()
    } catch (err) {
      // The database cannot say whether another replica probes: probe
      // anyway, a run that fails at sign_in with store_unavailable is the
      // page this probe exists for, and silence would only be stale.
      this.#deps.log.warn({ event: 'probe_lock_failed', err: { code: (err as { code?: string }).code, message: (err as Error).message } }, 'probe lock unavailable; probing anyway')
      held = true
    }
    this.#setRole(held ? 'prober' : 'standby')
    if (!held || this.#stopped) return undefined
    return this.runOnce()
  }

  /** One run, counted and logged. */
  async runOnce(): Promise<RunResult> {
    const { metrics, log } = this.#deps
    const run = this.#deps.run.run(() => this.#deps.account.credentials(), this.#abort.signal)
    this.#running = run
    const result = await run
    this.#running = undefined
    // A run cut short by stop() says nothing about the login path.
    if (this.#stopped) return result
    for (const s of result.steps) metrics.stepObserved(s.step, s.seconds)
    if (result.ok) {
      metrics.runSucceeded()
      log.debug({ event: 'probe_run', outcome: 'success' }, 'probe run')
    } else {
      metrics.runFailed(result.step, result.reason)
      // A failed sign-in may be an account another replica replaced: read it again next time.
      if (result.step === 'sign_in') this.#deps.account.reset()
      log.warn({ event: 'probe_run', outcome: 'failure', step: result.step, reason: result.reason, status: result.status }, 'probe run failed')
    }
    return result
  }

  async stop(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#abort.abort()
    await this.#running?.catch(() => undefined)
    await this.#deps.lock.release()
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      const started = Date.now()
      this.tick()
        .catch((err: unknown) => this.#deps.log.error({ event: 'probe_error', err: { type: (err as Error).name, message: (err as Error).message } }, 'probe tick failed'))
        .finally(() => this.#schedule(Math.max(0, this.#deps.intervalSeconds * 1000 - (Date.now() - started))))
    }, delayMs)
    this.#timer.unref()
  }

  #setRole(role: ProbeRole): void {
    if (role === this.#role) return
    this.#role = role
    this.#deps.log.info({ event: 'probe_role', role }, role === 'prober' ? 'this replica runs the sign-in probe' : 'another replica runs the sign-in probe')
  }
}

/** A prober for this gateway's configuration (not started). */
export function createProber(
  config: ResolvedConfig,
  deps: { pool: Pool; auth: Auth; metrics: ProbeMetrics; log: Logger; sessionCookie: string },
): Prober {
  const mark = createProbeMark(config.secret)
  const url = config.probe.url ?? config.baseUrl
  const run = new ProbeRun(
    {
      url,
      path: config.probe.path,
      origin: new URL(config.baseUrl).origin,
      jwksUrl: probeJwksUrl(config.jwksUrl, config.baseUrl, url),
      issuer: config.issuer,
      audience: config.audience,
      sessionCookie: deps.sessionCookie,
      stepTimeoutMs: config.probe.stepTimeoutMs,
    },
    mark,
  )
  return new Prober({
    run,
    account: new ProbeAccount({ pool: deps.pool, auth: deps.auth, secret: config.secret }),
    lock: new ProbeLock(config.databaseUrl, config.pool.connectTimeoutMs),
    metrics: deps.metrics,
    log: deps.log.child({ component: 'probe' }),
    intervalSeconds: config.probe.intervalSeconds,
  })
}

/**
 * PROBE_URL is how this replica reaches the public address; a JWKS URL under
 * BETTER_AUTH_URL is fetched through it too (in the compose stack the public
 * `localhost:8080` is `lb:8080` from inside a container).
 */
export function probeJwksUrl(jwksUrl: string, baseUrl: string, probeUrl: string): string {
  return jwksUrl.startsWith(`${baseUrl}/`) ? probeUrl + jwksUrl.slice(baseUrl.length) : jwksUrl
}
