// Recording rules and alerts of the gateway, monitoring-mixin style. Rendered
// to alerts/authgw.rules.yml and alerts/authgw.alerts.yml by build.ts; the
// promtool tests in alerts/tests/ pin their behaviour.
import {
  BURN_RATE_TIERS,
  JOB_SELECTOR,
  PROBE_ROUTES,
  RUNBOOK_URL,
  SLO_WINDOWS,
  thresholds as th,
} from './thresholds.ts'
import type { SloWindow } from './thresholds.ts'

export type RecordingRule = { record: string; expr: string }
export type AlertRule = {
  alert: string
  expr: string
  for: string
  labels: Record<string, string>
  annotations: { summary: string; description: string; runbook_url: string }
}
export type RuleGroup<R> = { name: string; rules: R[] }

/** A selector on the gateway's job, plus extra matchers. */
function sel(metric: string, ...matchers: string[]): string {
  return `${metric}{${[JOB_SELECTOR, ...matchers].join(',')}}`
}

const REQUESTS = 'authgw_http_request_duration_seconds_count'
const BUCKETS = 'authgw_http_request_duration_seconds_bucket'
const NOT_PROBE = `route!~"${PROBE_ROUTES}"`
/** Client requests: every route except the probes. */
const requests = (...m: string[]) => sel(REQUESTS, NOT_PROBE, ...m)
const sumRate = (by: string, selector: string, w: string) => `sum by (${by}) (rate(${selector}[${w}]))`

/** 401s, minus wrong passwords at sign-in: those are the user's mistake (see AuthGatewaySignInFailureSurge). */
function unexpected401Rate(w: string): string {
  return [
    'sum by (job) (',
    `  rate(${sel('authgw_unauthorized_total')}[${w}])`,
    '  unless',
    `  rate(${sel('authgw_unauthorized_total', 'source="auth"', 'reason="invalid_credentials"')}[${w}])`,
    ')',
  ].join('\n')
}

const COOKIE_MISSING = 'no_cookie|cross_site_no_cookie|cookie_name_mismatch'

function cookieMissingPerSignIn(w: string): string {
  return [
    sumRate('job', sel('authgw_session_nulls_total', `reason=~"${COOKIE_MISSING}"`), w),
    '/',
    sumRate('job', sel('authgw_sign_in_attempts_total', 'outcome="success"'), w),
  ].join('\n')
}

export function recordingRuleGroups(): Array<RuleGroup<RecordingRule>> {
  const rules: RecordingRule[] = [
    { record: 'job:authgw_http_requests:rate5m', expr: sumRate('job', requests(), '5m') },
    { record: 'job_status_code:authgw_http_requests:rate5m', expr: sumRate('job, status_code', requests(), '5m') },
    { record: 'job_le:authgw_http_request_duration_seconds_bucket:rate5m', expr: sumRate('job, le', sel(BUCKETS, NOT_PROBE), '5m') },
    { record: 'job:authgw_unauthorized:rate5m', expr: sumRate('job', sel('authgw_unauthorized_total'), '5m') },
    {
      record: 'job_source_mechanism_reason:authgw_unauthorized:rate5m',
      expr: sumRate('job, source, mechanism, reason', sel('authgw_unauthorized_total'), '5m'),
    },
    ...(['5m', '1h'] as const).map((w) => ({
      record: `job:authgw_unauthorized_per_requests:ratio_rate${w}`,
      expr: [sumRate('job', sel('authgw_unauthorized_total'), w), '/', sumRate('job', requests(), w)].join('\n'),
    })),
    { record: 'job:authgw_unauthorized_unexpected:rate5m', expr: unexpected401Rate('5m') },
    ...(['5m', '1h'] as const).map((w) => ({
      record: `job:authgw_unauthorized_unexpected_per_requests:ratio_rate${w}`,
      expr: [unexpected401Rate(w), '/', sumRate('job', requests(), w)].join('\n'),
    })),
    {
      record: 'job_mechanism_outcome:authgw_auth_decisions:rate5m',
      expr: sumRate('job, mechanism, outcome', sel('authgw_auth_decisions_total'), '5m'),
    },
    { record: 'job_reason:authgw_session_nulls:rate5m', expr: sumRate('job, reason', sel('authgw_session_nulls_total'), '5m') },
    {
      record: 'job_reason:authgw_jwt_validation_failures:rate5m',
      expr: sumRate('job, reason', sel('authgw_jwt_validation_failures_total'), '5m'),
    },
    {
      record: 'job_outcome_reason:authgw_sign_in_attempts:rate5m',
      expr: sumRate('job, outcome, reason', sel('authgw_sign_in_attempts_total'), '5m'),
    },
    { record: 'job_kind_via:authgw_tokens_issued:rate5m', expr: sumRate('job, kind, via', sel('authgw_tokens_issued_total'), '5m') },
    {
      record: 'job_reason:authgw_token_issue_failures:rate5m',
      expr: sumRate('job, reason', sel('authgw_token_issue_failures_total'), '5m'),
    },
    {
      record: 'job_mechanism_reason:authgw_auth_unavailable:rate5m',
      expr: sumRate('job, mechanism, reason', sel('authgw_auth_unavailable_total'), '5m'),
    },
    { record: 'job:authgw_upstream_requests:rate5m', expr: sumRate('job', sel('authgw_upstream_request_duration_seconds_count'), '5m') },
    { record: 'job_reason:authgw_upstream_failures:rate5m', expr: sumRate('job, reason', sel('authgw_upstream_failures_total'), '5m') },
    {
      // Attempts = answered calls + failed ones; `or` keeps the ratio defined before the first answer.
      record: 'job:authgw_upstream_failures_per_attempts:ratio_rate5m',
      expr: [
        sumRate('job', sel('authgw_upstream_failures_total'), '5m'),
        '/',
        '(',
        `  ${sumRate('job', sel('authgw_upstream_failures_total'), '5m')}`,
        '  +',
        `  (${sumRate('job', sel('authgw_upstream_request_duration_seconds_count'), '5m')} or 0 * ${sumRate('job', sel('authgw_upstream_failures_total'), '5m')})`,
        ')',
      ].join('\n'),
    },
    ...(['5m', '1h'] as const).map((w) => ({
      record: `job:authgw_session_cookie_missing_per_sign_in_successes:ratio_rate${w}`,
      expr: cookieMissingPerSignIn(w),
    })),
  ]

  const slo: RecordingRule[] = []
  const le = th.slo.latencyThresholdSeconds.value
  for (const w of SLO_WINDOWS) {
    slo.push({
      // Status codes appear at runtime: without a 5xx series yet, the ratio is 0, not missing.
      record: `job:authgw_slo_errors_per_requests:ratio_rate${w}`,
      expr: [
        '(',
        `  ${sumRate('job', requests('status_code=~"5.."'), w)}`,
        `  or 0 * ${sumRate('job', requests(), w)}`,
        ')',
        '/',
        sumRate('job', requests(), w),
      ].join('\n'),
    })
  }
  for (const w of SLO_WINDOWS) {
    slo.push({
      record: `job:authgw_slo_latency_errors_per_requests:ratio_rate${w}`,
      expr: [
        '1 - (',
        `  ${sumRate('job', sel(BUCKETS, NOT_PROBE, `le="${le}"`), w)}`,
        '  /',
        `  ${sumRate('job', requests(), w)}`,
        ')',
      ].join('\n'),
    })
  }
  return [
    { name: 'authgw.rules', rules },
    { name: 'authgw.slo.rules', rules: slo },
  ]
}

function runbookUrl(alert: string): string {
  return `${RUNBOOK_URL}#alert-name-${alert.toLowerCase()}`
}

type AlertSpec = {
  alert: string
  expr: string
  for: string
  severity: 'critical' | 'warning' | 'info'
  labels?: Record<string, string>
  summary: string
  description: string
}

function alert(s: AlertSpec): AlertRule {
  return {
    alert: s.alert,
    expr: s.expr,
    for: s.for,
    labels: { severity: s.severity, ...s.labels },
    annotations: { summary: s.summary, description: s.description, runbook_url: runbookUrl(s.alert) },
  }
}

/** `n` per second over 5 m, written as a count: `rate * 300 >= n`. */
const atLeastIn5m = (rateExpr: string, n: number) => `${rateExpr} * 300 >= ${n}`

function burnRateAlerts(): AlertRule[] {
  const out: AlertRule[] = []
  const slos = [
    {
      alert: 'AuthGatewayErrorBudgetBurn',
      slo: 'availability',
      series: 'job:authgw_slo_errors_per_requests',
      objective: th.slo.availabilityObjective.value,
      summary: 'The auth gateway is burning its availability error budget too fast.',
      what: 'were answered 5xx',
    },
    {
      alert: 'AuthGatewayLatencyBudgetBurn',
      slo: 'latency',
      series: 'job:authgw_slo_latency_errors_per_requests',
      objective: th.slo.latencyObjective.value,
      summary: 'The auth gateway is burning its latency error budget too fast.',
      what: `took longer than ${th.slo.latencyThresholdSeconds.value}s`,
    },
  ]
  for (const s of slos) {
    for (const tier of BURN_RATE_TIERS) {
      const limit = `(${tier.factor} * (1 - ${s.objective}))`
      out.push(
        alert({
          alert: s.alert,
          expr: [
            `${s.series}:ratio_rate${tier.long} > ${limit}`,
            'and on (job)',
            `${s.series}:ratio_rate${tier.short} > ${limit}`,
          ].join('\n'),
          for: tier.for,
          severity: tier.severity,
          labels: { slo: s.slo, long: tier.long, short: tier.short },
          summary: s.summary,
          description:
            `{{ $value | humanizePercentage }} of {{ $labels.job }} requests ${s.what} over the last ${tier.long} ` +
            `(and over ${tier.short}): at least ${tier.factor}x the rate the ${s.slo} objective of ${s.objective * 100}% allows.`,
        }),
      )
    }
  }
  return out
}

/** Share of JWT decisions failing with `reasons`, per reason, with a minimum count. */
function jwtReasonExpr(reasons: string, ratio: number, minCount: number): string {
  const failures = `job_reason:authgw_jwt_validation_failures:rate5m{reason=~"${reasons}"}`
  return [
    failures,
    '  / on (job) group_left',
    'sum by (job) (job_mechanism_outcome:authgw_auth_decisions:rate5m{mechanism="jwt"})',
    `> ${ratio}`,
    'and',
    atLeastIn5m(failures, minCount),
  ].join('\n')
}

/** `current > factor × max(yesterday, floor)`, or above an absolute ceiling. */
function surgeExpr(series: string, factor: number, floor: number, ceiling: number): string {
  return [
    '(',
    `  ${series}:ratio_rate5m`,
    `    > ${factor} * clamp_min(${series}:ratio_rate1h offset 1d, ${floor})`,
    '  or',
    `  ${series}:ratio_rate5m > ${ceiling}`,
    ')',
  ].join('\n')
}

function authAlerts(): AlertRule[] {
  const spike = th.unauthorizedSpike
  const cookie = th.sessionCookieMissing
  const jwks = th.jwks
  const stuffing = th.signInFailureSurge
  const stuffingRate =
    'sum by (job) (job_outcome_reason:authgw_sign_in_attempts:rate5m{outcome="failure",reason=~"invalid_credentials|rate_limited"})'

  const rules: AlertRule[] = [
    alert({
      alert: 'AuthGatewayUnauthorizedSpike',
      expr: [
        surgeExpr('job:authgw_unauthorized_unexpected_per_requests', spike.factor.value, spike.baselineFloor.value, spike.ceiling.value),
        `and on (job) job:authgw_http_requests:rate5m > ${spike.minRequestsPerSecond.value}`,
        `and on (job) ${atLeastIn5m('job:authgw_unauthorized_unexpected:rate5m', spike.minCountIn5m.value)}`,
      ].join('\n'),
      for: spike.for.value,
      severity: 'warning',
      summary: 'Share of 401 responses from the auth gateway is far above normal.',
      description:
        '{{ $value | humanizePercentage }} of {{ $labels.job }} requests were answered 401 over the last 5m ' +
        '(wrong passwords at sign-in not counted).',
    }),
    alert({
      alert: 'AuthGatewayJwtKeyMismatch',
      expr: jwtReasonExpr('bad_signature|kid_unknown', th.jwtKeyMismatch.ratio.value, th.jwtKeyMismatch.minCountIn5m.value),
      for: th.jwtKeyMismatch.for.value,
      severity: 'warning',
      summary: 'Bearer JWTs fail signature or key lookup at the auth gateway.',
      description: '{{ $value | humanizePercentage }} of JWT decisions at {{ $labels.job }} failed with {{ $labels.reason }} over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayJwtClaimMismatch',
      expr: jwtReasonExpr('issuer_mismatch|audience_mismatch', th.jwtClaimMismatch.ratio.value, th.jwtClaimMismatch.minCountIn5m.value),
      for: th.jwtClaimMismatch.for.value,
      severity: 'warning',
      summary: 'Bearer JWTs carry an issuer or audience the auth gateway does not expect.',
      description: '{{ $value | humanizePercentage }} of JWT decisions at {{ $labels.job }} failed with {{ $labels.reason }} over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayJwtExpiredSurge',
      expr: jwtReasonExpr('expired|not_yet_valid', th.jwtExpiredSurge.ratio.value, th.jwtExpiredSurge.minCountIn5m.value),
      for: th.jwtExpiredSurge.for.value,
      severity: 'warning',
      summary: 'Many bearer JWTs reach the auth gateway outside their validity window.',
      description: '{{ $value | humanizePercentage }} of JWT decisions at {{ $labels.job }} failed with {{ $labels.reason }} over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewaySessionBadSignature',
      expr: [
        'job_reason:authgw_session_nulls:rate5m{reason="bad_signature"}',
        '  / on (job) group_left',
        'job:authgw_http_requests:rate5m',
        `> ${th.sessionBadSignature.ratio.value}`,
        'and',
        atLeastIn5m('job_reason:authgw_session_nulls:rate5m{reason="bad_signature"}', th.sessionBadSignature.minCountIn5m.value),
      ].join('\n'),
      for: th.sessionBadSignature.for.value,
      severity: 'warning',
      summary: 'Session cookies fail signature checks at the auth gateway.',
      description:
        '{{ $value | humanizePercentage }} of {{ $labels.job }} requests carried a session cookie whose signature did not verify over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewaySessionCookieMissing',
      expr: [
        surgeExpr('job:authgw_session_cookie_missing_per_sign_in_successes', cookie.factor.value, cookie.baselineFloor.value, cookie.ceiling.value),
        `and on (job) ${atLeastIn5m('sum by (job) (job_outcome_reason:authgw_sign_in_attempts:rate5m{outcome="success"})', cookie.minSignInsIn5m.value)}`,
        `and on (job) ${atLeastIn5m(`sum by (job) (job_reason:authgw_session_nulls:rate5m{reason=~"${COOKIE_MISSING}"})`, cookie.minCountIn5m.value)}`,
      ].join('\n'),
      for: cookie.for.value,
      severity: 'warning',
      summary: 'Signed-in users reach the auth gateway without their session cookie.',
      description:
        '{{ $labels.job }} saw {{ $value | humanize }} session lookups without a usable cookie per successful sign-in over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayTokenIssuanceStopped',
      expr: [
        `sum by (job) (increase(${sel('authgw_sign_in_attempts_total', 'outcome="success"')}[15m])) >= ${th.tokenIssuanceStopped.minSignInsIn15m.value}`,
        `and on (job) sum by (job) (rate(${sel('authgw_tokens_issued_total', 'kind="jwt"')}[15m])) == 0`,
        `and on (job) sum by (job) (increase(${sel('authgw_tokens_issued_total', 'kind="jwt"')}[1d])) > 0`,
      ].join('\n'),
      for: th.tokenIssuanceStopped.for.value,
      severity: 'warning',
      summary: 'The auth gateway stopped issuing JWTs while sign-ins succeed.',
      description:
        '{{ $value | printf "%.0f" }} sign-ins succeeded at {{ $labels.job }} in the last 15m but no JWT was issued (JWTs were issued earlier today).',
    }),
    alert({
      alert: 'AuthGatewayTokenSigningFailed',
      expr: atLeastIn5m('job_reason:authgw_token_issue_failures:rate5m{reason="signing_failed"}', th.tokenSigningFailed.minCountIn5m.value),
      for: th.tokenSigningFailed.for.value,
      severity: 'warning',
      summary: 'The auth gateway fails to sign tokens.',
      description: '{{ $value | printf "%.0f" }} token issuances failed to sign at {{ $labels.job }} over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayJwksRefreshFailing',
      expr: [
        `sum by (job, instance) (increase(${sel('authgw_jwks_refreshes_total', 'outcome="failure"')}[${jwks.refreshWindow.value}])) > 0`,
        'unless on (job, instance)',
        `sum by (job, instance) (increase(${sel('authgw_jwks_refreshes_total', 'outcome="success"')}[${jwks.refreshWindow.value}])) > 0`,
      ].join('\n'),
      for: jwks.refreshFailingFor.value,
      severity: 'warning',
      summary: 'The auth gateway cannot refresh its JWKS.',
      description: `JWKS refreshes on {{ $labels.instance }} ({{ $labels.job }}) failed and none succeeded in the last ${jwks.refreshWindow.value}.`,
    }),
    alert({
      alert: 'AuthGatewayJwksStale',
      expr: [
        `time() - max by (job, instance) (max_over_time(${sel('authgw_jwks_last_refresh_timestamp_seconds')}[5m])) > ${jwks.maxAgeSeconds.value}`,
        'and on (job, instance)',
        '(',
        `  max by (job, instance) (max_over_time(${sel('authgw_jwks_keys')}[5m])) > 0`,
        '  or',
        `  sum by (job, instance) (increase(${sel('authgw_jwks_refreshes_total', 'outcome="failure"')}[${jwks.refreshWindow.value}])) > 0`,
        ')',
      ].join('\n'),
      for: jwks.staleFor.value,
      severity: 'warning',
      summary: 'The JWKS held by the auth gateway is stale.',
      description: 'The JWKS on {{ $labels.instance }} ({{ $labels.job }}) was last refreshed {{ $value | humanizeDuration }} ago.',
    }),
    alert({
      alert: 'AuthGatewayJwksUnavailable',
      expr: atLeastIn5m(
        'sum by (job) (job_mechanism_reason:authgw_auth_unavailable:rate5m{reason="jwks_unavailable"})',
        jwks.unavailableMinCountIn5m.value,
      ),
      for: jwks.unavailableFor.value,
      severity: 'warning',
      summary: 'The auth gateway answers 503 because it cannot fetch the JWKS.',
      description: '{{ $value | printf "%.0f" }} requests to {{ $labels.job }} were answered 503 jwks_unavailable over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayStoreUnavailable',
      expr: atLeastIn5m(
        [
          'sum by (job) (',
          '    job_mechanism_reason:authgw_auth_unavailable:rate5m{reason="store_unavailable"}',
          '  or job_reason:authgw_token_issue_failures:rate5m{reason="store_unavailable"}',
          '  or job_outcome_reason:authgw_sign_in_attempts:rate5m{reason="store_unavailable"}',
          ')',
        ].join('\n'),
        th.storeUnavailable.minCountIn5m.value,
      ),
      for: th.storeUnavailable.for.value,
      severity: 'warning',
      summary: 'The auth gateway cannot reach its session store.',
      description:
        '{{ $value | printf "%.0f" }} session lookups, token mints or sign-ins at {{ $labels.job }} failed with store_unavailable over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayDatabaseErrors',
      expr: `sum by (job, operation) (increase(${sel('authgw_db_errors_total')}[5m])) >= ${th.databaseErrors.minCountIn5m.value}`,
      for: th.databaseErrors.for.value,
      severity: 'warning',
      summary: 'The auth gateway sees database errors.',
      description: '{{ $value | printf "%.0f" }} database errors during {{ $labels.operation }} at {{ $labels.job }} over the last 5m.',
    }),
    alert({
      alert: 'AuthGatewayUpstreamFailures',
      expr: [
        `job:authgw_upstream_failures_per_attempts:ratio_rate5m > ${th.upstreamFailures.ratio.value}`,
        `and on (job) ${atLeastIn5m('sum by (job) (job_reason:authgw_upstream_failures:rate5m)', th.upstreamFailures.minCountIn5m.value)}`,
      ].join('\n'),
      for: th.upstreamFailures.for.value,
      severity: 'warning',
      summary: 'Calls from the auth gateway to the protected API fail.',
      description:
        '{{ $value | humanizePercentage }} of upstream calls from {{ $labels.job }} got no usable response (timeout, connection error, reset or bad response) over the last 5m.',
    }),
  ]

  const drift = [
    { field: 'secret_fingerprint', severity: 'critical' as const },
    { field: 'issuer', severity: 'warning' as const },
    { field: 'audience', severity: 'warning' as const },
    { field: 'cookie_prefix', severity: 'warning' as const },
  ]
  for (const d of drift) {
    rules.push(
      alert({
        alert: 'AuthGatewayConfigDrift',
        expr: `count by (job) (count by (job, ${d.field}) (${sel('authgw_config_info')})) > 1`,
        for: th.configDrift.for.value,
        severity: d.severity,
        labels: { field: d.field },
        summary: 'Auth gateway replicas run with different auth configuration.',
        description: `{{ $value }} different ${d.field} values are live across the {{ $labels.job }} instances.`,
      }),
    )
  }

  rules.push(
    alert({
      alert: 'AuthGatewayTargetDown',
      expr: `${sel('up')} == 0`,
      for: th.targetDown.for.value,
      severity: 'warning',
      summary: 'Prometheus cannot scrape an auth gateway instance.',
      description: 'Prometheus has failed to scrape {{ $labels.instance }} of {{ $labels.job }} for 5 minutes.',
    }),
    alert({
      // Fires both when no target is discovered and when every target is down:
      // either way the other alerts of this file cannot fire.
      alert: 'AuthGatewayMetricsAbsent',
      expr: `absent(${sel('up')} == 1)`,
      for: th.metricsAbsent.for.value,
      severity: 'critical',
      labels: { job: 'authgw' },
      summary: 'Prometheus has no live auth gateway target.',
      description: 'No authgw target has been scraped successfully for 5 minutes: the auth gateway alerts are blind.',
    }),
    alert({
      alert: 'AuthGatewaySignInFailureSurge',
      expr: [
        `${stuffingRate} > ${stuffing.failuresPerSecond.value}`,
        'and on (job)',
        stuffingRate,
        '  / on (job)',
        'sum by (job) (job_outcome_reason:authgw_sign_in_attempts:rate5m)',
        `> ${stuffing.failureRatio.value}`,
      ].join('\n'),
      for: stuffing.for.value,
      severity: 'warning',
      labels: { team: 'security' },
      summary: 'Failed sign-ins at the auth gateway surge: possible credential stuffing.',
      description:
        '{{ $value | humanize }} sign-ins per second failed at {{ $labels.job }} (wrong password or rate-limited) over the last 5m.',
    }),
  )
  return rules
}

export function alertRuleGroups(): Array<RuleGroup<AlertRule>> {
  return [
    { name: 'authgw.slo', rules: burnRateAlerts() },
    { name: 'authgw.alerts', rules: authAlerts() },
  ]
}

// Re-exported so tests can derive windows without importing two modules.
export type { SloWindow }
