// A normal day of two replicas, as promtool input series: the day the alerts
// must sleep through. build.ts writes it to alerts/tests/quiet-day.test.yml
// and test/sre/generated.test.ts fails when the committed file is stale.
//
// The day (both replicas together; the load balancer splits evenly):
// - client traffic 0.2 req/s at night (00:00-06:00, 23:00-24:00), rising to a
//   30 req/s plateau from 09:00 to 17:00 and falling back by 23:00, of which
//   0.05 req/s are bots calling /api/* without credentials (no_credentials);
// - the users' requests: 55 % cookie calls and 15 % bearer calls to /api/*,
//   15 % get-session, 5 % token, 10 % sign-ins, of which a fifth (2 % of all
//   requests) with a wrong password;
// - the users' own 401s: 0.3 % session_expired, 0.2 % session_not_found and
//   0.2 % no_cookie of the cookie calls, 1 % expired of the bearer calls;
// - at night, every 20 to 60 minutes, a burst of 3 to 6 401s within 30 s (a
//   user back with an old cookie, a scanner, a client with an old token);
// - at 03:30 a database failover answers 3 requests 503 store_unavailable;
// - 0.3 % of requests slower than 0.25 s; the sign-in probe succeeding every
//   15 s on gateway-a; JWKS refreshes every 5 minutes; one configuration.
// Counts are Poisson draws per 10-minute block (a fixed seed), spread evenly
// over the block's scrapes in steps of 1/64.
import { stringify } from 'yaml'

export const QUIET_DAY_FILE = 'quiet-day.test.yml'

const STEP_SECONDS = 15
/**
 * Rules are evaluated every 30 s over the 15 s scrapes: at 15 s promtool needs
 * 2.5 minutes for the day (the 1d and 3d windows sum up to a day of samples
 * at every evaluation), at 30 s one.
 */
const EVALUATION_INTERVAL = '30s'
const STEPS = (24 * 3600) / STEP_SECONDS
const BLOCK_STEPS = 40
const INSTANCES = ['gateway-a:9464', 'gateway-b:9464'] as const
const SEED = 20261215

/** mulberry32: a small seeded PRNG, so the day is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Client requests per second (both replicas) at `hour` (0-24). */
export function clientRate(hour: number): number {
  const night = 0.2
  const peak = 30
  let shape = 0
  if (hour >= 6 && hour < 9) shape = (1 - Math.cos((Math.PI * (hour - 6)) / 3)) / 2
  else if (hour >= 9 && hour < 17) shape = 1
  else if (hour >= 17 && hour < 23) shape = (1 + Math.cos((Math.PI * (hour - 17)) / 6)) / 2
  return night + (peak - night) * shape
}

const BOT_RATE = 0.05
const SHARE = { cookie: 0.55, bearer: 0.15, getSession: 0.15, token: 0.05, signIn: 0.1 } as const
const WRONG_PASSWORD_OF_REQUESTS = 0.02
const SESSION_401 = { session_expired: 0.003, session_not_found: 0.002, no_cookie: 0.002 } as const
const JWT_EXPIRED = 0.01
const SLOW = 0.003

type Labels = Record<string, string>
/** One counter or gauge: per-step increments (counters) or values (gauges). */
type Series = { name: string; labels: Labels; kind: 'counter' | 'gauge'; steps: Float64Array }

class Day {
  readonly series = new Map<string, Series>()
  private readonly random: () => number
  constructor(random: () => number) {
    this.random = random
  }

  private get(name: string, labels: Labels, kind: Series['kind'] = 'counter'): Series {
    const key = `${name}${JSON.stringify(labels)}`
    let s = this.series.get(key)
    if (!s) {
      s = { name, labels, kind, steps: new Float64Array(STEPS + 1) }
      this.series.set(key, s)
    }
    return s
  }

  /** Declares a counter that stays at 0 (zero-initialised by the gateway). */
  zero(name: string, labels: Labels): void {
    this.get(name, labels)
  }

  /**
   * Adds about `n` events spread evenly over the block starting at `step`.
   * Increments are multiples of 1/64, exact in binary: promtool's `a+bxN`
   * then never computes a value above the next literal one, which `rate()`
   * would read as a counter reset.
   */
  spread(name: string, labels: Labels, step: number, n: number): void {
    const s = this.get(name, labels)
    const inc = Math.round((n / BLOCK_STEPS) * 64) / 64
    for (let i = 1; i <= BLOCK_STEPS && step + i <= STEPS; i++) (s.steps[step + i] as number) += inc
  }

  /** Adds `n` events at one scrape. */
  at(name: string, labels: Labels, step: number, n: number): void {
    const s = this.get(name, labels)
    ;(s.steps[step] as number) += n
  }

  gauge(name: string, labels: Labels, value: (step: number) => number): void {
    const s = this.get(name, labels, 'gauge')
    for (let i = 0; i <= STEPS; i++) s.steps[i] = value(i)
  }

  poisson(mean: number): number {
    // Knuth for small means, a rounded normal approximation above 30.
    if (mean <= 0) return 0
    if (mean > 30) {
      const u = 1 - this.random()
      const v = this.random()
      return Math.max(0, Math.round(mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)))
    }
    const limit = Math.exp(-mean)
    let k = 0
    let p = this.random()
    while (p > limit) {
      k++
      p *= this.random()
    }
    return k
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T
  }
}

const REQ = 'authgw_http_request_duration_seconds_count'
const FAST = 'authgw_http_request_duration_seconds_bucket'
const job = { job: 'authgw' }
const req = (instance: string, method: string, route: string, status: string) => ({ ...job, instance, method, route, status_code: status })

/** A request answered `status` on `route`: the count, and the 0.25 s bucket unless `slow`. */
function request(d: Day, instance: string, method: string, route: string, status: string, step: number, n: number, slow: number, spread = true): void {
  const add = spread ? d.spread.bind(d) : d.at.bind(d)
  add(REQ, req(instance, method, route, status), step, n)
  add(FAST, { ...req(instance, method, route, status), le: '0.25' }, step, n - slow)
}

function simulate(): Day {
  const d = new Day(prng(SEED))
  const blockSeconds = BLOCK_STEPS * STEP_SECONDS
  for (let step = 0; step < STEPS; step += BLOCK_STEPS) {
    const hour = (step * STEP_SECONDS) / 3600
    const users = clientRate(hour + blockSeconds / 7200) - BOT_RATE
    for (const instance of INSTANCES) {
      const mean = (users / INSTANCES.length) * blockSeconds
      const n = (share: number) => d.poisson(mean * share)
      const slowOf = (count: number) => Math.min(count, d.poisson(count * SLOW))

      // Cookie calls to /api/*: most allowed, a few stale cookies.
      const cookie = n(SHARE.cookie)
      const sessionDenied = Object.fromEntries(Object.entries(SESSION_401).map(([r, p]) => [r, d.poisson(cookie * p)])) as Record<keyof typeof SESSION_401, number>
      const cookieDenied = sessionDenied.session_expired + sessionDenied.session_not_found + sessionDenied.no_cookie
      const cookieOk = Math.max(0, cookie - cookieDenied)
      // Bearer calls: 1 % expired tokens (the client refreshes after the 401).
      const bearer = n(SHARE.bearer)
      const jwtExpired = d.poisson(bearer * JWT_EXPIRED)
      const bearerOk = Math.max(0, bearer - jwtExpired)
      const bots = d.poisson((BOT_RATE / INSTANCES.length) * blockSeconds)
      request(d, instance, 'GET', '/api/*', '200', step, cookieOk + bearerOk, slowOf(cookieOk + bearerOk))
      request(d, instance, 'GET', '/api/*', '401', step, cookieDenied + jwtExpired + bots, 0)
      d.spread('authgw_auth_decisions_total', { ...job, instance, mechanism: 'session', outcome: 'allowed' }, step, cookieOk)
      d.spread('authgw_auth_decisions_total', { ...job, instance, mechanism: 'session', outcome: 'denied' }, step, cookieDenied)
      d.spread('authgw_auth_decisions_total', { ...job, instance, mechanism: 'jwt', outcome: 'allowed' }, step, bearerOk)
      d.spread('authgw_auth_decisions_total', { ...job, instance, mechanism: 'jwt', outcome: 'denied' }, step, jwtExpired)
      d.spread('authgw_auth_decisions_total', { ...job, instance, mechanism: 'none', outcome: 'denied' }, step, bots)
      for (const [reason, count] of Object.entries(sessionDenied)) {
        d.spread('authgw_unauthorized_total', { ...job, instance, source: 'gateway', mechanism: 'session', reason }, step, count)
        d.spread('authgw_session_nulls_total', { ...job, instance, reason }, step, count)
      }
      d.spread('authgw_unauthorized_total', { ...job, instance, source: 'gateway', mechanism: 'jwt', reason: 'expired' }, step, jwtExpired)
      d.spread('authgw_jwt_validation_failures_total', { ...job, instance, reason: 'expired' }, step, jwtExpired)
      d.spread('authgw_unauthorized_total', { ...job, instance, source: 'gateway', mechanism: 'none', reason: 'no_credentials' }, step, bots)
      d.spread('authgw_upstream_request_duration_seconds_count', { ...job, instance, status_code: '200' }, step, cookieOk + bearerOk)
      d.spread('authgw_tokens_issued_total', { ...job, instance, kind: 'jwt', via: 'gateway_exchange' }, step, Math.round(cookieOk / 50))

      // better-auth endpoints.
      const getSession = n(SHARE.getSession)
      request(d, instance, 'GET', '/api/auth/get-session', '200', step, getSession, slowOf(getSession))
      d.spread('authgw_session_nulls_total', { ...job, instance, reason: 'no_cookie' }, step, Math.round(getSession / 3))
      const token = n(SHARE.token)
      request(d, instance, 'GET', '/api/auth/token', '200', step, token, slowOf(token))
      d.spread('authgw_tokens_issued_total', { ...job, instance, kind: 'jwt', via: 'token_endpoint' }, step, token)
      const signIns = n(SHARE.signIn)
      const wrong = Math.min(signIns, d.poisson(mean * WRONG_PASSWORD_OF_REQUESTS))
      request(d, instance, 'POST', '/api/auth/sign-in/email', '200', step, signIns - wrong, slowOf(signIns - wrong))
      request(d, instance, 'POST', '/api/auth/sign-in/email', '401', step, wrong, 0)
      d.spread('authgw_sign_in_attempts_total', { ...job, instance, method: 'email', outcome: 'success', reason: 'none' }, step, signIns - wrong)
      d.spread('authgw_sign_in_attempts_total', { ...job, instance, method: 'email', outcome: 'failure', reason: 'invalid_credentials' }, step, wrong)
      d.spread('authgw_unauthorized_total', { ...job, instance, source: 'auth', mechanism: 'none', reason: 'invalid_credentials' }, step, wrong)
      d.spread('authgw_tokens_issued_total', { ...job, instance, kind: 'session', via: 'sign_in' }, step, signIns - wrong)

      // The load balancer's health checks, every 2 s (outside every SLO: no bucket needed).
      d.spread(REQ, req(instance, 'GET', '/healthz', '200'), step, blockSeconds / 2)
    }
  }

  // Night bursts: 3 to 6 401s within 30 s at one replica.
  const nightSteps = (from: number, to: number) => [Math.round((from * 3600) / STEP_SECONDS), Math.round((to * 3600) / STEP_SECONDS)] as const
  for (const [from, to] of [nightSteps(0, 6), nightSteps(23, 24)]) {
    let step = from + Math.round((20 + d.poisson(20)) * (60 / STEP_SECONDS))
    while (step < to - 2) {
      const instance = d.pick(INSTANCES)
      const size = 3 + Math.floor(d.poisson(1.5)) % 4
      const kind = d.pick(['session_expired', 'no_credentials', 'expired', 'session_not_found'] as const)
      for (let i = 0; i < size; i++) {
        const at = step + (i % 2)
        d.at(REQ, req(instance, 'GET', '/api/*', '401'), at, 1)
        d.at(FAST, { ...req(instance, 'GET', '/api/*', '401'), le: '0.25' }, at, 1)
        const mechanism = kind === 'no_credentials' ? 'none' : kind === 'expired' ? 'jwt' : 'session'
        d.at('authgw_auth_decisions_total', { ...job, instance, mechanism, outcome: 'denied' }, at, 1)
        d.at('authgw_unauthorized_total', { ...job, instance, source: 'gateway', mechanism, reason: kind }, at, 1)
        if (mechanism === 'session') d.at('authgw_session_nulls_total', { ...job, instance, reason: kind }, at, 1)
        if (mechanism === 'jwt') d.at('authgw_jwt_validation_failures_total', { ...job, instance, reason: kind }, at, 1)
      }
      step += Math.round((20 + d.poisson(25)) * (60 / STEP_SECONDS))
    }
  }

  // 03:30: a database failover answers 3 cookie calls 503 at gateway-b.
  const failover = (3.5 * 3600) / STEP_SECONDS
  for (let i = 0; i < 3; i++) {
    request(d, 'gateway-b:9464', 'GET', '/api/*', '503', failover + i, 1, 0, false)
    d.at('authgw_auth_decisions_total', { ...job, instance: 'gateway-b:9464', mechanism: 'session', outcome: 'error' }, failover + i, 1)
    d.at('authgw_auth_unavailable_total', { ...job, instance: 'gateway-b:9464', mechanism: 'session', reason: 'store_unavailable' }, failover + i, 1)
    d.at('authgw_db_errors_total', { ...job, instance: 'gateway-b:9464', operation: 'session_lookup' }, failover + i, 1)
  }

  for (const instance of INSTANCES) {
    // Zero-initialised series the day never moves.
    for (const [mechanism, reason] of [['session', 'bad_signature'], ['jwt', 'bad_signature'], ['jwt', 'kid_unknown'], ['jwt', 'issuer_mismatch'], ['jwt', 'audience_mismatch']]) {
      d.zero('authgw_unauthorized_total', { ...job, instance, source: 'gateway', mechanism: mechanism as string, reason: reason as string })
    }
    d.zero('authgw_unauthorized_total', { ...job, instance, source: 'upstream', mechanism: 'session', reason: 'upstream_rejected' })
    d.zero('authgw_session_nulls_total', { ...job, instance, reason: 'bad_signature' })
    d.zero('authgw_session_nulls_total', { ...job, instance, reason: 'cross_site_no_cookie' })
    d.zero('authgw_session_nulls_total', { ...job, instance, reason: 'cookie_name_mismatch' })
    for (const reason of ['bad_signature', 'kid_unknown', 'issuer_mismatch', 'audience_mismatch', 'not_yet_valid']) d.zero('authgw_jwt_validation_failures_total', { ...job, instance, reason })
    d.zero('authgw_sign_in_attempts_total', { ...job, instance, method: 'email', outcome: 'failure', reason: 'rate_limited' })
    d.zero('authgw_sign_in_attempts_total', { ...job, instance, method: 'email', outcome: 'failure', reason: 'store_unavailable' })
    for (const reason of ['no_session', 'signing_failed', 'store_unavailable']) d.zero('authgw_token_issue_failures_total', { ...job, instance, reason })
    d.zero('authgw_auth_unavailable_total', { ...job, instance, mechanism: 'session', reason: 'store_unavailable' })
    d.zero('authgw_auth_unavailable_total', { ...job, instance, mechanism: 'session', reason: 'jwks_unavailable' })
    d.zero('authgw_auth_unavailable_total', { ...job, instance, mechanism: 'jwt', reason: 'jwks_unavailable' })
    for (const reason of ['timeout', 'connect_error', 'reset', 'bad_response']) d.zero('authgw_upstream_failures_total', { ...job, instance, reason })
    for (const operation of ['session_lookup', 'token_mint', 'jwks_fetch', 'health_check', 'migrate', 'pool']) d.zero('authgw_db_errors_total', { ...job, instance, operation })
    d.zero('authgw_jwks_refreshes_total', { ...job, instance, outcome: 'failure' })

    // JWKS refreshed every 5 minutes; two keys.
    const refresh = 300 / STEP_SECONDS
    for (let step = refresh; step <= STEPS; step += refresh) d.at('authgw_jwks_refreshes_total', { ...job, instance, outcome: 'success' }, step, 1)
    d.gauge('authgw_jwks_last_refresh_timestamp_seconds', { ...job, instance }, (step) => Math.floor(step / refresh) * refresh * STEP_SECONDS)
    d.gauge('authgw_jwks_keys', { ...job, instance }, () => 2)
    d.gauge('authgw_config_info', { ...job, instance, issuer: 'https://auth.example.com', audience: 'https://auth.example.com', jwks_url: 'https://auth.example.com/api/auth/jwks', cookie_prefix: 'better-auth', secret_fingerprint: '5f0c2a91' }, () => 1)
    d.gauge('up', { ...job, instance }, () => 1)
  }

  // The sign-in probe runs on gateway-a every 15 s and succeeds.
  const a = INSTANCES[0]
  for (let step = 1; step <= STEPS; step++) d.at('authgw_probe_runs_total', { ...job, instance: a, outcome: 'success' }, step, 1)
  d.zero('authgw_probe_runs_total', { ...job, instance: a, outcome: 'failure' })
  d.zero('authgw_probe_failures_total', { ...job, instance: a, step: 'sign_in', reason: 'timeout' })
  d.gauge('authgw_probe_up', { ...job, instance: a }, () => 1)
  d.gauge('authgw_probe_last_success_timestamp_seconds', { ...job, instance: a }, (step) => step * STEP_SECONDS)
  return d
}

const num = (v: number) => String(v)

/** promtool's expanding notation: runs of equal increments as `start+incxN`. */
export function expand(s: Series): string {
  const values: number[] = []
  let total = 0
  for (let i = 0; i <= STEPS; i++) {
    if (s.kind === 'gauge') values.push(s.steps[i] as number)
    else values.push((total += s.steps[i] as number))
  }
  const parts: string[] = []
  let i = 0
  while (i < values.length) {
    const start = values[i] as number
    if (i + 1 >= values.length) {
      parts.push(num(start))
      break
    }
    const inc = (values[i + 1] as number) - start
    let j = i + 1
    while (j + 1 < values.length && (values[j + 1] as number) - (values[j] as number) === inc) j++
    parts.push(`${num(start)}${inc >= 0 ? '+' : ''}${num(inc)}x${j - i}`)
    i = j + 1
  }
  return parts.join(' ')
}

const selector = (s: Series) => `${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`

/** The promtool test file: the day, then checks that nothing fired and that the day is the day described. */
export function renderQuietDayTest(groupEvalOrder: string[]): string {
  const day = simulate()
  const inputSeries = [...day.series.values()]
    .sort((x, y) => selector(x).localeCompare(selector(y)))
    .map((s) => ({ series: selector(s), values: expand(s) }))
  const check = (expr: string, value: number) => ({ expr, eval_time: '24h', exp_samples: [{ labels: '{job="authgw"}', value }] })
  const doc = {
    rule_files: ['../authgw.rules.yml', '../authgw.alerts.yml'],
    evaluation_interval: EVALUATION_INTERVAL,
    group_eval_order: groupEvalOrder,
    tests: [
      {
        name: 'a quiet day and two nights raise nothing',
        interval: `${STEP_SECONDS}s`,
        input_series: inputSeries,
        promql_expr_test: [
          // Nothing fired at any evaluation of the day: no page, no warning, no ticket.
          { expr: 'max_over_time(ALERTS{alertstate="firing"}[1d])', eval_time: '24h', exp_samples: [] },
          // The day is the one described: peak ~30 req/s, night ~0.2 req/s …
          check('max by (job) (max_over_time(job:authgw_http_requests:rate5m[1d])) > bool 25', 1),
          check('min by (job) (min_over_time(job:authgw_http_requests:rate5m[1d])) < bool 0.3', 1),
          // … 2 % wrong passwords at the peak …
          check('abs(sum by (job) (rate(authgw_unauthorized_total{reason="invalid_credentials"}[1h] @ 50400)) / sum by (job) (rate(authgw_http_request_duration_seconds_count{route!~"/healthz|/readyz"}[1h] @ 50400)) - 0.02) < bool 0.004', 1),
          // … bots without credentials all day (0.05 req/s) …
          check('sum by (job) (increase(authgw_unauthorized_total{reason="no_credentials"}[1d])) > bool 3000', 1),
          // … and bursts at night: some minute of 00:00-06:00 holds 3 or more 401s other than the bots' and wrong passwords.
          check('max_over_time(sum by (job) (job_source_mechanism_reason:authgw_unauthorized:rate1m{reason=~"session_expired|session_not_found|expired"})[6h:1m] @ 21600) * 60 >= bool 3', 1),
          // The page's share never came near its 40 % while its traffic floor was met.
          check('max_over_time((job:authgw_unauthorized_credentialed_per_decisions:ratio_rate1m and on (job) job:authgw_auth_decisions_credentialed:rate1m >= 0.5)[1d:1m]) < bool 0.2', 1),
        ],
      },
      {
        // The check above can fail: the same query sees an alert that fires.
        name: 'the nothing-fired check sees a firing alert',
        interval: `${STEP_SECONDS}s`,
        input_series: [
          { series: 'authgw_auth_decisions_total{job="authgw",instance="gateway-a:9464",mechanism="session",outcome="denied"}', values: '0+150x40' },
          { series: 'authgw_unauthorized_total{job="authgw",instance="gateway-a:9464",source="gateway",mechanism="session",reason="bad_signature"}', values: '0+150x40' },
          { series: 'up{job="authgw",instance="gateway-a:9464"}', values: '1x40' },
        ],
        promql_expr_test: [
          {
            expr: 'max_over_time(ALERTS{alertstate="firing"}[1d])',
            eval_time: '10m',
            exp_samples: [{ labels: '{alertname="AuthGatewayUnauthorizedOutage",alertstate="firing",job="authgw",severity="critical"}', value: 1 }],
          },
        ],
      },
    ],
  }
  return (
    '# Generated by alerts/src/quiet-day.ts (run `npx node alerts/src/build.ts`): a normal day of two\n' +
    '# replicas that must raise no alert. Edit the generator, never this file.\n' +
    stringify(doc, { lineWidth: 0 })
  )
}
