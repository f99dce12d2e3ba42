// A real Prometheus (Debian's `prometheus` package, 2.42) for the live SRE
// tests: started on loopback with a throw-away TSDB, scraping the given
// targets and evaluating the repo's rule files every second (or the interval
// given), optionally sending alerts to Alertmanagers, stopped by pid in
// teardown. A small client for the HTTP API goes with it.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { stringify } from 'yaml'
import type { Teardown } from '../../helpers/private-postgres.ts'

export const PROMETHEUS_MISSING =
  'prometheus not found: install it with `apt-get install -y prometheus` (Debian) or set PROMETHEUS=/path/to/prometheus'

/** The prometheus binary (PROMETHEUS or /usr/bin/prometheus), or undefined when it is not installed. */
export function findPrometheus(): string | undefined {
  const bin = process.env.PROMETHEUS ?? '/usr/bin/prometheus'
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? bin : undefined
}

export type Sample = [number, string]
export type InstantSeries = { metric: Record<string, string>; value: Sample }
export type RangeSeries = { metric: Record<string, string>; values: Sample[] }

export type RuleHealth = 'ok' | 'err' | 'unknown'
export type ApiRule = {
  type: 'recording' | 'alerting'
  name: string
  query: string
  health: RuleHealth
  lastError?: string
  lastEvaluation: string
  state?: 'inactive' | 'pending' | 'firing'
  alerts?: Array<{ labels: Record<string, string>; state: string; activeAt: string; value: string }>
  labels?: Record<string, string>
  duration?: number
}
export type ApiRuleGroup = { name: string; file: string; rules: ApiRule[]; lastEvaluation: string; interval: number }
export type ApiTarget = {
  labels: Record<string, string>
  scrapeUrl: string
  health: 'up' | 'down' | 'unknown'
  lastError: string
  lastScrape: string
}

type ApiResponse<T> = { status: 'success' | 'error'; data: T; errorType?: string; error?: string; warnings?: string[] }

export class PrometheusApiError extends Error {}

export type PrometheusOptions = {
  bin: string
  job: string
  /** host:port of each metrics listener. */
  targets: string[]
  /** Absolute paths (globs allowed) of the rule files to load. */
  ruleFiles: string[]
  port: number
  /** Scrape and rule evaluation interval (default 1s). */
  interval?: string
  /** host:port of Alertmanagers to send alerts to. */
  alertmanagers?: string[]
}

export type Prometheus = {
  url: string
  /** Lines Prometheus wrote to stderr (its log), for diagnostics. */
  log: string[]
  api<T>(path: string, params?: Record<string, string | string[]>): Promise<T>
  query(expr: string, time?: number): Promise<InstantSeries[]>
  queryRange(expr: string, start: number, end: number, step: number): Promise<RangeSeries[]>
  labelValues(label: string, match: string, start: number, end: number): Promise<string[]>
  rules(): Promise<ApiRuleGroup[]>
  targets(): Promise<ApiTarget[]>
}

export async function startPrometheus(t: Teardown, opts: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'authgw-prometheus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const configFile = join(dir, 'prometheus.yml')
  writeFileSync(
    configFile,
    stringify({
      // scrape_timeout may not exceed the interval (the default is 10 s).
      global: { scrape_interval: opts.interval ?? '1s', scrape_timeout: opts.interval ?? '1s', evaluation_interval: opts.interval ?? '1s' },
      rule_files: opts.ruleFiles,
      ...(opts.alertmanagers ? { alerting: { alertmanagers: [{ static_configs: [{ targets: opts.alertmanagers }] }] } } : {}),
      scrape_configs: [{ job_name: opts.job, static_configs: [{ targets: opts.targets }] }],
    }),
  )
  const listen = `127.0.0.1:${opts.port}`
  const child = spawn(
    opts.bin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${listen}`,
      '--enable-feature=exemplar-storage',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  if (child.pid === undefined) throw new Error(`could not start ${opts.bin}`)
  const pid = child.pid
  const log: string[] = []
  let rest = ''
  child.stderr.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString('utf8')).split('\n')
    rest = lines.pop() ?? ''
    for (const l of lines) if (l.trim() !== '') log.push(l)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    const killer = setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000)
    await exited
    clearTimeout(killer)
  })

  const url = `http://${listen}`
  async function api<T>(path: string, params: Record<string, string | string[]> = {}): Promise<T> {
    const qs = new URLSearchParams()
    for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) qs.append(k, one)
    const res = await fetch(`${url}${path}?${qs}`)
    const parsed = (await res.json()) as ApiResponse<T>
    if (parsed.status !== 'success') throw new PrometheusApiError(`${path} ${JSON.stringify(params)}: ${parsed.errorType}: ${parsed.error}`)
    return parsed.data
  }
  const seconds = (ms: number) => (ms / 1000).toFixed(3)

  const prom: Prometheus = {
    url,
    log,
    api,
    async query(expr, time) {
      const data = await api<{ resultType: string; result: InstantSeries[] }>('/api/v1/query', {
        query: expr,
        ...(time === undefined ? {} : { time: seconds(time) }),
      })
      // Scalars and strings come back as a single [t, v]; the queries here are all vectors.
      if (data.resultType !== 'vector') throw new PrometheusApiError(`${expr}: result type ${data.resultType}, expected vector`)
      return data.result
    },
    async queryRange(expr, start, end, step) {
      const data = await api<{ resultType: string; result: RangeSeries[] }>('/api/v1/query_range', {
        query: expr,
        start: seconds(start),
        end: seconds(end),
        step: String(step),
      })
      return data.result
    },
    labelValues(label, match, start, end) {
      return api<string[]>(`/api/v1/label/${encodeURIComponent(label)}/values`, { 'match[]': match, start: seconds(start), end: seconds(end) })
    },
    async rules() {
      return (await api<{ groups: ApiRuleGroup[] }>('/api/v1/rules')).groups
    },
    async targets() {
      return (await api<{ activeTargets: ApiTarget[] }>('/api/v1/targets', { state: 'active' })).activeTargets
    },
  }

  await eventually(
    'Prometheus answers /-/ready',
    async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${log.slice(-20).join('\n')}`)
      const res = await fetch(`${url}/-/ready`).catch(() => undefined)
      return res?.status === 200 ? true : undefined
    },
    20_000,
  )
  return prom
}

/**
 * Polls `probe` until it returns something other than undefined; throws with
 * `what` and the last error after `timeoutMs`. For waiting on a scrape or a
 * rule evaluation, never for asserting how long something takes.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (true) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) {
      last = err
      if (err instanceof PrometheusApiError) throw err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * Resolves once every target has been scraped after `since` (ms) and every
 * rule group has been evaluated twice after that scrape (the second round so
 * that alerts built on recorded series see the recording of the first): from
 * then on queries, recorded series and alert states include everything the
 * gateways counted before `since`. Returns the last evaluation time.
 */
export async function settle(prom: Prometheus, since: number, timeoutMs = 15_000): Promise<number> {
  const scraped = await eventually(
    `every target scraped after ${new Date(since).toISOString()}`,
    async () => {
      const targets = await prom.targets()
      if (targets.length === 0) return undefined
      const times = targets.map((x) => Date.parse(x.lastScrape))
      return times.every((s) => s > since) ? Math.max(...times) : undefined
    },
    timeoutMs,
  )
  // The sample carries the scrape's start time but lands a few ms later.
  let after = scraped + 250
  for (const round of [1, 2]) {
    after = await eventually(
      `every rule group evaluated (round ${round}) after ${new Date(after).toISOString()}`,
      async () => {
        const times = (await prom.rules()).map((g) => Date.parse(g.lastEvaluation))
        return times.length > 0 && times.every((e) => e > after) ? Math.max(...times) : undefined
      },
      timeoutMs,
    )
  }
  return after
}
