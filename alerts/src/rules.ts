// Recording rules and alerts of the gateway, monitoring-mixin style. Rendered
// to alerts/authgw.rules.yml and alerts/authgw.alerts.yml by build.ts; the
// promtool tests in alerts/tests/ pin their behaviour.
//
// Cost: raw series are read over windows of at most an hour; longer windows
// (the 401 baselines, the SLO's 2h … 3d) sum the recorded 5m rates
// (test/sre/rules.test.ts enforces it).
import { cases, guideChain, guideText, probeCases, queryValue, withDominant, withReason } from './annotations.ts'
import { guideFor } from '../../src/reason-guide.ts'
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

/** A selector for an annotation query: the alert's job goes in as `%[1]q`. */
function jobSel(metric: string, ...matchers: string[]): string {
  return `${metric}{${['job=%[1]q', ...matchers].join(',')}}`
}

const REQUESTS = 'authgw_http_request_duration_seconds_count'
const BUCKETS = 'authgw_http_request_duration_seconds_bucket'
const NOT_PROBE = `route!~"${PROBE_ROUTES}"`
/** Client requests: every route except the probes. */
const requests = (...m: string[]) => sel(REQUESTS, NOT_PROBE, ...m)
const sumRate = (by: string, selector: string, w: string) => `sum by (${by}) (rate(${selector}[${w}]))`

/** 401s everybody expects: no credentials at all (bots, signed-out clients) and wrong passwords at sign-in. */
const EXPECTED_401 = 'no_credentials|invalid_credentials'
/** Protected-route decisions on credentials that were presented. */
const CREDENTIALED = 'session|jwt'
// docs/reasons.md splits "a signed-in client without its cookie" into named causes; all of them are this alert's.
const COOKIE_MISSING =
  'no_cookie|cross_site_no_cookie|cookie_name_mismatch|cookie_not_returned|credentials_omitted|server_side_no_cookie|mobile_no_cookie|duplicate_session_cookie|session_data_without_token'

const seconds = (w: string): number => {
  const m = /^(\d+)([smhd])$/.exec(w)
  if (!m) throw new Error(`bad window ${w}`)
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd']
}

function cookieMissingPerSignIn(w: string): string {
  return [
    sumRate('job', sel('authgw_session_nulls_total', `reason=~"${COOKIE_MISSING}"`), w),
    '/',
    sumRate('job', sel('authgw_sign_in_attempts_total', 'outcome="success"'), w),
  ].join('\n')
}

/** `sum(recorded 5m numerator over w) / sum(recorded 5m denominator over w)`: a ratio over w from 5m records. */
const ratioOverTime = (numerator: string, denominator: string, w: string) =>
  [`sum by (job) (sum_over_time(${numerator}[${w}]))`, '/', `sum by (job) (sum_over_time(${denominator}[${w}]))`].join('\n')

export function recordingRuleGroups(): Array<RuleGroup<RecordingRule>> {
  const outage = th.unauthorizedOutage
  const spike = th.unauthorizedSpike
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
    // "Unexpected" 401s: all but the expected no_credentials / invalid_credentials mix.
    {
      record: 'job:authgw_unauthorized_unexpected:rate5m',
      expr: `sum by (job) (job_source_mechanism_reason:authgw_unauthorized:rate5m{reason!~"${EXPECTED_401}"})`,
    },
    {
      record: 'job:authgw_unauthorized_unexpected_per_requests:ratio_rate5m',
      expr: 'job:authgw_unauthorized_unexpected:rate5m\n/\njob:authgw_http_requests:rate5m',
    },
    ...(['1h', spike.sameDayWindow.value] as const).map((w) => ({
      record: `job:authgw_unauthorized_unexpected_per_requests:ratio_rate${w}`,
      expr: ratioOverTime('job:authgw_unauthorized_unexpected:rate5m', 'job:authgw_http_requests:rate5m', w),
    })),
    // The catastrophic page's short window.
    {
      record: `job_source_mechanism_reason:authgw_unauthorized:rate${outage.window.value}`,
      expr: sumRate('job, source, mechanism, reason', sel('authgw_unauthorized_total'), outage.window.value),
    },
    {
      record: `job_mechanism_outcome:authgw_auth_decisions:rate${outage.window.value}`,
      expr: sumRate('job, mechanism, outcome', sel('authgw_auth_decisions_total'), outage.window.value),
    },
    {
      // Refused by the gateway, or by the upstream after the gateway allowed them.
      record: `job:authgw_unauthorized_credentialed:rate${outage.window.value}`,
      expr: `sum by (job) (job_source_mechanism_reason:authgw_unauthorized:rate${outage.window.value}{source=~"gateway|upstream",mechanism=~"${CREDENTIALED}"})`,
    },
    {
      record: `job:authgw_auth_decisions_credentialed:rate${outage.window.value}`,
      expr: `sum by (job) (job_mechanism_outcome:authgw_auth_decisions:rate${outage.window.value}{mechanism=~"${CREDENTIALED}"})`,
    },
    {
      record: `job:authgw_unauthorized_credentialed_per_decisions:ratio_rate${outage.window.value}`,
      expr: `job:authgw_unauthorized_credentialed:rate${outage.window.value}\n/\njob:authgw_auth_decisions_credentialed:rate${outage.window.value}`,
    },
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
    // The synthetic sign-in probe: whether it runs at all (AuthGatewayProbeStale looks back a day).
    { record: 'job:authgw_probe_runs:rate5m', expr: sumRate('job', sel('authgw_probe_runs_total'), '5m') },
  ]

  // SLO ratios. 5m from the 5m records; 30m and 1h from the raw counters
  // (a page must not wait for 5m rates to fill the window); 2h to 3d as sums
  // of the 5m records over the window, so no evaluation re-reads days of raw
  // series.
  const le = th.slo.latencyThresholdSeconds.value
  const slo: RecordingRule[] = [
    {
      // Status codes appear at runtime: without a 5xx series yet, the rate is 0, not missing.
      record: 'job:authgw_slo_errors:rate5m',
      expr: 'sum by (job) (job_status_code:authgw_http_requests:rate5m{status_code=~"5.."})\nor 0 * job:authgw_http_requests:rate5m',
    },
    {
      record: 'job:authgw_slo_latency_errors:rate5m',
      expr: `job:authgw_http_requests:rate5m\n- on (job)\nsum by (job) (job_le:authgw_http_request_duration_seconds_bucket:rate5m{le="${le}"})`,
    },
  ]
  const rawWindow = (w: SloWindow) => w === '30m' || w === '1h'
  for (const w of SLO_WINDOWS) {
    slo.push({
      record: `job:authgw_slo_errors_per_requests:ratio_rate${w}`,
      expr:
        w === '5m'
          ? 'job:authgw_slo_errors:rate5m\n/\njob:authgw_http_requests:rate5m'
          : rawWindow(w)
            ? ['(', `  ${sumRate('job', requests('status_code=~"5.."'), w)}`, `  or 0 * ${sumRate('job', requests(), w)}`, ')', '/', sumRate('job', requests(), w)].join('\n')
            : ratioOverTime('job:authgw_slo_errors:rate5m', 'job:authgw_http_requests:rate5m', w),
    })
  }
  for (const w of SLO_WINDOWS) {
    slo.push({
      record: `job:authgw_slo_latency_errors_per_requests:ratio_rate${w}`,
      expr:
        w === '5m'
          ? 'job:authgw_slo_latency_errors:rate5m\n/\njob:authgw_http_requests:rate5m'
          : rawWindow(w)
            ? ['1 - (', `  ${sumRate('job', sel(BUCKETS, NOT_PROBE, `le="${le}"`), w)}`, '  /', `  ${sumRate('job', requests(), w)}`, ')'].join('\n')
            : ratioOverTime('job:authgw_slo_latency_errors:rate5m', 'job:authgw_http_requests:rate5m', w),
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
  /** Ends the description with the runbook link (the texts that name a cause). */
  runbookInDescription?: boolean
}

function alert(s: AlertSpec): AlertRule {
  const description = s.runbookInDescription ? `${s.description} Runbook: ${runbookUrl(s.alert)}` : s.description
  return {
    alert: s.alert,
    expr: s.expr,
    for: s.for,
    labels: { severity: s.severity, ...s.labels },
    annotations: { summary: s.summary, description, runbook_url: runbookUrl(s.alert) },
  }
}

/** At least `n` events in window `w`, from a per-second rate over `w`: `rate * seconds(w) >= n`. */
const atLeastIn = (rateExpr: string, n: number, w = '5m') => `${rateExpr} * ${seconds(w)} >= ${n}`
const atLeastIn5m = (rateExpr: string, n: number) => atLeastIn(rateExpr, n, '5m')

/** "top reason X (mechanism, N% of them)", for summaries. */
const topReason = (of: string) => `top reason {{ $reason }}{{ if $mechanism }} ({{ $mechanism }}){{ end }}, {{ $share | humanizePercentage }} of ${of}`

/** The share of each 5xx cause over `w`: 503 reasons by mechanism, upstream failures as mechanism "upstream". */
function fiveXxBreakdown(w: string): string {
  return (
    'topk(1, clamp_max(' +
    `(sum by (job, mechanism, reason) (rate(${jobSel('authgw_auth_unavailable_total')}[${w}]))` +
    ` or label_replace(sum by (job, reason) (rate(${jobSel('authgw_upstream_failures_total')}[${w}])), "mechanism", "upstream", "", ""))` +
    ` / ignoring (mechanism, reason) group_left sum by (job) (rate(${jobSel(REQUESTS, NOT_PROBE, 'status_code=~"5.."')}[${w}])), 1))`
  )
}

function burnRateAlerts(): AlertRule[] {
  const out: AlertRule[] = []
  const minBad = th.slo.minBadInShortWindow.value
  const fiveXxCases = [...cases('unavailable'), ...cases('upstream_failure')]
  const slos = [
    {
      alert: 'AuthGatewayErrorBudgetBurn',
      slo: 'availability',
      series: 'job:authgw_slo_errors_per_requests',
      bad: 'job:authgw_slo_errors:rate5m',
      objective: th.slo.availabilityObjective.value,
      summary: (short: string) =>
        'The auth gateway is burning its availability error budget too fast' +
        withDominant(fiveXxBreakdown(short), `: ${topReason('the 5xx')}`, ': no 503 or upstream-failure reason, so 500s from the gateway itself') +
        '.',
      what: 'were answered 5xx',
      cause: (short: string) =>
        ' ' +
        withDominant(
          fiveXxBreakdown(short),
          `Over the last ${short} the top reason is {{ $reason }}{{ if $mechanism }} ({{ $mechanism }}){{ end }}, {{ $share | humanizePercentage }} of the 5xx. ${guideChain(fiveXxCases)}`,
          `No 503 or upstream-failure reason over the last ${short}: the 5xx are the gateway's own 500s; read its error log lines (trace ids in the exemplars).`,
        ),
    },
    {
      alert: 'AuthGatewayLatencyBudgetBurn',
      slo: 'latency',
      series: 'job:authgw_slo_latency_errors_per_requests',
      bad: 'job:authgw_slo_latency_errors:rate5m',
      objective: th.slo.latencyObjective.value,
      summary: () => 'The auth gateway is burning its latency error budget too fast.',
      what: `took longer than ${th.slo.latencyThresholdSeconds.value}s`,
      cause: () => '',
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
            // Minimum traffic: enough failed requests in the short window that a handful cannot page.
            'and on (job)',
            atLeastIn(tier.short === '5m' ? s.bad : `avg_over_time(${s.bad}[${tier.short}])`, minBad, tier.short),
          ].join('\n'),
          for: tier.for,
          severity: tier.severity,
          labels: { slo: s.slo, long: tier.long, short: tier.short },
          summary: s.summary(tier.short),
          description:
            `{{ $value | humanizePercentage }} of {{ $labels.job }} requests ${s.what} over the last ${tier.long} ` +
            `(and over ${tier.short}): at least ${tier.factor}x the rate the ${s.slo} objective of ${s.objective * 100}% allows.` +
            s.cause(tier.short),
          runbookInDescription: s.slo === 'availability',
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

/** A JWT-reason alert: the reason is a label; its text comes from the guide. */
function jwtReasonAlert(name: string, reasons: string, t: { ratio: { value: number }; minCountIn5m: { value: number }; for: { value: string } }, what: string): AlertRule {
  return alert({
    alert: name,
    expr: jwtReasonExpr(reasons, t.ratio.value, t.minCountIn5m.value),
    for: t.for.value,
    severity: 'warning',
    summary: `Bearer JWTs fail with {{ $labels.reason }} on {{ $value | humanizePercentage }} of JWT decisions at the auth gateway (${what}).`,
    description:
      '{{ $value | humanizePercentage }} of JWT decisions at {{ $labels.job }} failed with {{ $labels.reason }} over the last 5m. ' +
      withReason('$labels.reason', '"jwt"', guideChain(cases('unauthorized', reasons.split('|')).filter((c) => c.mechanism !== 'session'))),
    runbookInDescription: true,
  })
}

function authAlerts(): AlertRule[] {
  const outage = th.unauthorizedOutage
  const spike = th.unauthorizedSpike
  const cookie = th.sessionCookieMissing
  const jwks = th.jwks
  const stuffing = th.signInFailureSurge
  const stuffingRate =
    'sum by (job) (job_outcome_reason:authgw_sign_in_attempts:rate5m{outcome="failure",reason=~"invalid_credentials|rate_limited"})'
  const ow = outage.window.value
  // Yesterday at this time; without it, the same day's last hours before the offset.
  const spikeBaseline =
    '(job:authgw_unauthorized_unexpected_per_requests:ratio_rate1h offset 1d' +
    ` or job:authgw_unauthorized_unexpected_per_requests:ratio_rate${spike.sameDayWindow.value} offset ${spike.sameDayOffset.value})`
  const unexpectedCases = cases('unauthorized').filter((c) => !EXPECTED_401.split('|').includes(c.reason))

  const outageBreakdown =
    `topk(1, sum by (job, mechanism, reason) (${jobSel(`job_source_mechanism_reason:authgw_unauthorized:rate${ow}`, 'source=~"gateway|upstream"', `mechanism=~"${CREDENTIALED}"`)})` +
    ` / ignoring (mechanism, reason) group_left ${jobSel(`job:authgw_unauthorized_credentialed:rate${ow}`)})`
  const spikeBreakdown =
    `topk(1, sum by (job, mechanism, reason) (${jobSel('job_source_mechanism_reason:authgw_unauthorized:rate5m', `reason!~"${EXPECTED_401}"`)})` +
    ` / ignoring (mechanism, reason) group_left ${jobSel('job:authgw_unauthorized_unexpected:rate5m')})`
  const cookieBreakdown =
    `topk(1, ${jobSel('job_reason:authgw_session_nulls:rate5m', `reason=~"${COOKIE_MISSING}"`)}` +
    ` / ignoring (reason) group_left sum by (job) (${jobSel('job_reason:authgw_session_nulls:rate5m', `reason=~"${COOKIE_MISSING}"`)}))`
  const upstreamBreakdown =
    `topk(1, ${jobSel('job_reason:authgw_upstream_failures:rate5m')}` +
    ` / ignoring (reason) group_left sum by (job) (${jobSel('job_reason:authgw_upstream_failures:rate5m')}))`
  const storeRate = [
    'sum by (job) (',
    '    job_mechanism_reason:authgw_auth_unavailable:rate5m{reason="store_unavailable"}',
    '  or job_reason:authgw_token_issue_failures:rate5m{reason="store_unavailable"}',
    '  or job_outcome_reason:authgw_sign_in_attempts:rate5m{reason="store_unavailable"}',
    ')',
  ].join('\n')
  const sessionBadSignature = guideFor('unauthorized', 'bad_signature', 'session')
  const storeUnavailable = guideFor('unavailable', 'store_unavailable')
  if (!sessionBadSignature || !storeUnavailable) throw new Error('src/reason-guide.ts lacks bad_signature (session) or store_unavailable')

  const rules: AlertRule[] = [
    alert({
      // The catastrophic case: signed-in users are being signed out. A ratio of
      // the whole job, so a secret rotated the same way on every replica pages
      // too (AuthGatewayConfigDrift cannot see that).
      alert: 'AuthGatewayUnauthorizedOutage',
      expr: [
        `job:authgw_unauthorized_credentialed_per_decisions:ratio_rate${ow} >= ${outage.ratio.value}`,
        `and on (job) job:authgw_auth_decisions_credentialed:rate${ow} >= ${outage.minDecisionsPerSecond.value}`,
      ].join('\n'),
      for: outage.for.value,
      severity: 'critical',
      summary:
        'Requests with credentials are refused by the auth gateway: {{ $value | humanizePercentage }} answered 401' +
        withDominant(outageBreakdown, `, ${topReason('them')}`) +
        '.',
      description:
        `{{ $value | humanizePercentage }} of the session and JWT decisions on protected routes at {{ $labels.job }} were answered 401 over the last ${ow} ` +
        '(by the gateway or by the upstream; requests without credentials not counted): signed-in users are being signed out. ' +
        withDominant(outageBreakdown, `{{ $reason }}{{ if $mechanism }} ({{ $mechanism }}){{ end }} is {{ $share | humanizePercentage }} of them. ${guideChain(unexpectedCases)}`),
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewayUnauthorizedSpike',
      expr: [
        '(',
        '  job:authgw_unauthorized_unexpected_per_requests:ratio_rate5m',
        `    > ${spike.factor.value} * clamp_min(${spikeBaseline}, ${spike.baselineFloor.value})`,
        '  or',
        '  (',
        `    job:authgw_unauthorized_unexpected_per_requests:ratio_rate5m > ${spike.ceiling.value}`,
        `    unless on (job) ${spikeBaseline}`,
        '  )',
        ')',
        `and on (job) job:authgw_http_requests:rate5m > ${spike.minRequestsPerSecond.value}`,
        `and on (job) ${atLeastIn5m('job:authgw_unauthorized_unexpected:rate5m', spike.minCountIn5m.value)}`,
      ].join('\n'),
      for: spike.for.value,
      severity: 'warning',
      summary:
        'Share of 401 responses from the auth gateway is far above normal: {{ $value | humanizePercentage }}' +
        withDominant(spikeBreakdown, `, ${topReason('them')}`) +
        '.',
      description:
        '{{ $value | humanizePercentage }} of {{ $labels.job }} requests were answered 401 over the last 5m ' +
        `(no_credentials and wrong passwords at sign-in not counted), more than ${spike.factor.value}x the share at this time yesterday ` +
        `(or over the ${spike.sameDayWindow.value} before the last ${spike.sameDayOffset.value} without yesterday). ` +
        withDominant(spikeBreakdown, `{{ $reason }}{{ if $mechanism }} ({{ $mechanism }}){{ end }} is {{ $share | humanizePercentage }} of them. ${guideChain(unexpectedCases)}`),
      runbookInDescription: true,
    }),
    jwtReasonAlert('AuthGatewayJwtKeyMismatch', 'bad_signature|kid_unknown', th.jwtKeyMismatch, 'signature or key'),
    jwtReasonAlert('AuthGatewayJwtClaimMismatch', 'issuer_mismatch|audience_mismatch', th.jwtClaimMismatch, 'issuer or audience'),
    jwtReasonAlert('AuthGatewayJwtExpiredSurge', 'expired|not_yet_valid', th.jwtExpiredSurge, 'validity window'),
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
      summary: 'Session cookies fail with bad_signature on {{ $value | humanizePercentage }} of requests at the auth gateway.',
      description:
        '{{ $value | humanizePercentage }} of {{ $labels.job }} requests carried a session cookie whose signature did not verify (bad_signature) over the last 5m. ' +
        guideText(sessionBadSignature),
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewaySessionCookieMissing',
      expr: [
        '(',
        '  job:authgw_session_cookie_missing_per_sign_in_successes:ratio_rate5m',
        `    > ${cookie.factor.value} * clamp_min(job:authgw_session_cookie_missing_per_sign_in_successes:ratio_rate1h offset 1d, ${cookie.baselineFloor.value})`,
        '  or',
        `  job:authgw_session_cookie_missing_per_sign_in_successes:ratio_rate5m > ${cookie.ceiling.value}`,
        ')',
        `and on (job) ${atLeastIn5m('sum by (job) (job_outcome_reason:authgw_sign_in_attempts:rate5m{outcome="success"})', cookie.minSignInsIn5m.value)}`,
        `and on (job) ${atLeastIn5m(`sum by (job) (job_reason:authgw_session_nulls:rate5m{reason=~"${COOKIE_MISSING}"})`, cookie.minCountIn5m.value)}`,
      ].join('\n'),
      for: cookie.for.value,
      severity: 'warning',
      summary:
        'Signed-in users reach the auth gateway without their session cookie' +
        withDominant(cookieBreakdown, `: ${topReason('the cookie-less lookups')}`) +
        '.',
      description:
        '{{ $labels.job }} saw {{ $value | humanize }} session lookups without a usable cookie per successful sign-in over the last 5m. ' +
        withDominant(
          cookieBreakdown,
          `{{ $reason }} is {{ $share | humanizePercentage }} of them. ${guideChain(cases('unauthorized', COOKIE_MISSING.split('|')))}`,
        ),
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewayTokenIssuanceStopped',
      expr: [
        `sum by (job) (increase(${sel('authgw_sign_in_attempts_total', 'outcome="success"')}[15m])) >= ${th.tokenIssuanceStopped.minSignInsIn15m.value}`,
        `and on (job) sum by (job) (rate(${sel('authgw_tokens_issued_total', 'kind="jwt"')}[15m])) == 0`,
        // "JWTs were issued today": a day of the recorded 5m rate, not of the raw counters.
        'and on (job) sum by (job) (max_over_time(job_kind_via:authgw_tokens_issued:rate5m{kind="jwt"}[1d])) > 0',
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
      // Per mechanism, because the two paths fail for different reasons: on the
      // session path the signing key cannot be decrypted (signing_failed moves
      // too), on the JWT path no verification keys could be loaded.
      alert: 'AuthGatewayJwksUnavailable',
      expr: atLeastIn5m(
        'sum by (job, mechanism) (job_mechanism_reason:authgw_auth_unavailable:rate5m{reason="jwks_unavailable"})',
        jwks.unavailableMinCountIn5m.value,
      ),
      for: jwks.unavailableFor.value,
      severity: 'warning',
      summary:
        'The auth gateway answers 503 jwks_unavailable ({{ $labels.mechanism }}' +
        queryValue(
          `sum by (job) (${jobSel('job_mechanism_reason:authgw_auth_unavailable:rate5m', 'mechanism=%[2]q', 'reason="jwks_unavailable"')}) / ${jobSel('job:authgw_http_requests:rate5m')}`,
          'humanizePercentage',
          { args: ['$labels.mechanism'], before: ', ', after: ' of requests' },
        ) +
        '): ' +
        '{{ if eq $labels.mechanism "session" }}the signing key cannot be decrypted{{ else }}the verification keys cannot be loaded{{ end }}.',
      description:
        '{{ $value | printf "%.0f" }} {{ $labels.mechanism }} requests to {{ $labels.job }} were answered 503 jwks_unavailable over the last 5m; ' +
        queryValue(`${jobSel('job_reason:authgw_token_issue_failures:rate5m', 'reason="signing_failed"')} * 300`, 'printf "%.0f"', { fallback: '0' }) +
        ' token signings failed with signing_failed (a key that cannot be decrypted) in the same 5m. ' +
        withReason('"jwks_unavailable"', '$labels.mechanism', guideChain(cases('unavailable', ['jwks_unavailable']))),
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewayStoreUnavailable',
      expr: atLeastIn5m(storeRate, th.storeUnavailable.minCountIn5m.value),
      for: th.storeUnavailable.for.value,
      severity: 'warning',
      summary:
        'The auth gateway answers store_unavailable: {{ $value | printf "%.0f" }} failures in 5m' +
        queryValue(`${storeRate.replaceAll('\n', ' ').replaceAll(/\{reason=/g, '{job=%[1]q,reason=')} / ${jobSel('job:authgw_http_requests:rate5m')}`, 'humanizePercentage', {
          before: ' (',
          after: ' of requests)',
        }) +
        '.',
      description:
        '{{ $value | printf "%.0f" }} session lookups, token mints or sign-ins at {{ $labels.job }} failed with store_unavailable over the last 5m. ' +
        guideText(storeUnavailable),
      runbookInDescription: true,
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
      summary:
        'Calls from the auth gateway to the protected API fail: {{ $value | humanizePercentage }} of them' +
        withDominant(upstreamBreakdown, `, ${topReason('the failures')}`) +
        '.',
      description:
        '{{ $value | humanizePercentage }} of upstream calls from {{ $labels.job }} got no usable response (timeout, connection error, reset or bad response) over the last 5m. ' +
        withDominant(upstreamBreakdown, `{{ $reason }} is {{ $share | humanizePercentage }} of them. ${guideChain(cases('upstream_failure'))}`),
      runbookInDescription: true,
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

  // Shared state between replicas (docs/replicas.md).
  rules.push(
    alert({
      alert: 'AuthGatewayRedisDown',
      expr: `${sel('authgw_redis_up')} == 0\nand on (job, instance) ${sel('authgw_coherence_mode_info', 'mode="redis"')} == 1`,
      for: th.redisDown.for.value,
      severity: 'warning',
      summary: 'An auth gateway replica cannot reach Redis: shared state is degraded.',
      description:
        '{{ $labels.instance }} of {{ $labels.job }} runs with REDIS_URL but its Redis connection has been down for 2 minutes. ' +
        'Sessions are read from PostgreSQL (no false 401s), but other replicas learn of sign-outs only within SESSION_CACHE_TTL_SECONDS and the sign-in limit holds per replica.',
    }),
    alert({
      alert: 'AuthGatewayInvalidationLagHigh',
      expr: [
        `histogram_quantile(0.99, sum by (job, le) (rate(${sel('authgw_invalidation_lag_seconds_bucket')}[5m])))`,
        `> ${th.invalidationLag.p99Seconds.value}`,
      ].join('\n'),
      for: th.invalidationLag.for.value,
      severity: 'warning',
      summary: 'Sign-outs reach the other auth gateway replicas late.',
      description: 'The 99th percentile of the time from an invalidation on one {{ $labels.job }} replica to its application on another is {{ $value | humanizeDuration }} (target: under 1 s).',
    }),
    alert({
      alert: 'AuthGatewayCoherenceModeMismatch',
      expr: `count by (job) (count by (job, mode) (${sel('authgw_coherence_mode_info')} == 1)) > 1`,
      for: th.coherenceModeMismatch.for.value,
      severity: 'warning',
      summary: 'Auth gateway replicas keep their caches coherent in different ways.',
      description: '{{ $value }} different coherence modes are live across the {{ $labels.job }} instances: replicas in one mode do not hear sign-outs announced in the other.',
    }),
  )

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
    ...probeAlerts(),
    ...ssoAlerts(),
  )
  return rules
}

/** Single sign-on: callbacks failing for one provider; a provider that stopped answering. */
function ssoAlerts(): AlertRule[] {
  const f = th.ssoCallbackFailures
  const w = f.window.value
  const failed = sel('authgw_oauth_callbacks_total', 'outcome="failure"', 'reason!="access_denied"')
  const topFailure =
    `topk(1, sum by (job, provider, reason) (increase(${jobSel('authgw_oauth_callbacks_total', 'provider=%[2]q', 'outcome="failure"', 'reason!="access_denied"')}[${w}])))`
  const unavailableRate = sumRate('job, provider', sel('authgw_oauth_callbacks_total', 'reason="provider_unavailable"'), '5m')
  return [
    alert({
      alert: 'AuthGatewaySsoCallbackFailureSurge',
      expr: [
        `${sumRate('job, provider', failed, w)}`,
        `  / ${sumRate('job, provider', sel('authgw_oauth_callbacks_total'), w)}`,
        `> ${f.ratio.value}`,
        'and on (job, provider)',
        atLeastIn(sumRate('job, provider', failed, w), f.minCountIn10m.value, w),
      ].join('\n'),
      for: f.for.value,
      severity: 'warning',
      summary: 'SSO sign-ins through {{ $labels.provider }} fail: {{ $value | humanizePercentage }} of its callbacks in the last ' + w + '.',
      description:
        'Callbacks from provider {{ $labels.provider }} at {{ $labels.job }} that signed nobody in (users declining excluded)' +
        `{{ with printf \`${topFailure}\` $labels.job $labels.provider | query }}{{ with first . }}; most often {{ label "reason" . }} ({{ value . | printf "%.0f" }} in ${w}){{ end }}{{ end }}. ` +
        'The reasons table of docs/sso.md says what the reason means and what to check first; the log lines (msg "audit", method "oauth") carry the provider\'s error code, the ID token check that failed and the cookie names that arrived.',
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewaySsoProviderUnavailable',
      expr: atLeastIn5m(unavailableRate, th.ssoProviderUnavailable.minCountIn5m.value),
      for: th.ssoProviderUnavailable.for.value,
      severity: 'warning',
      summary: 'SSO provider {{ $labels.provider }} does not answer the auth gateway: {{ $value | printf "%.0f" }} sign-ins answered 503 in 5m.',
      description:
        'Callbacks from provider {{ $labels.provider }} at {{ $labels.job }} found its token, JWKS or userinfo endpoint unreachable; those users got 503 provider_unavailable, not an error blaming them. ' +
        guideText(guideFor('unavailable', 'provider_unavailable') as NonNullable<ReturnType<typeof guideFor>>),
      runbookInDescription: true,
    }),
  ]
}

/** The synthetic sign-in probe (issue 15): blackbox monitoring of the login path, whatever the traffic. */
function probeAlerts(): AlertRule[] {
  const failing = th.probeFailing
  const stale = th.probeStale
  const breakdown =
    `topk(1, sum by (job, step, reason) (increase(${jobSel('authgw_probe_failures_total')}[5m]))` +
    ` / ignoring (step, reason) group_left sum by (job) (increase(${jobSel('authgw_probe_failures_total')}[5m])))`
  const stepAndReason = '{{ $step := label "step" $top }}'
  // The call with the JWT is the JWT mechanism; every other step uses the session cookie.
  const mechanismOfStep = '{{ $mechanism = "session" }}{{ if eq $step "bearer_call" }}{{ $mechanism = "jwt" }}{{ end }}'
  return [
    alert({
      // probe_up is 1 when a replica's last run succeeded: max over the job is
      // 0 only when no replica's probe succeeds. The age of the newest success
      // covers a replica that stopped probing with its probe_up left at 1.
      // Failed runs in the window prove the probe runs, so a deployment
      // without the probe never pages.
      alert: 'AuthGatewayProbeFailing',
      expr: [
        '(',
        `  max by (job) (${sel('authgw_probe_up')}) == 0`,
        '  or',
        `  time() - max by (job) (${sel('authgw_probe_last_success_timestamp_seconds')}) > ${failing.maxSuccessAgeSeconds.value}`,
        ')',
        `and on (job) sum by (job) (increase(${sel('authgw_probe_failures_total')}[${failing.window.value}])) > 0`,
      ].join('\n'),
      for: failing.for.value,
      severity: 'critical',
      summary:
        'The sign-in probe fails, so users cannot sign in or use their session' +
        withDominant(breakdown, `${stepAndReason}: step {{ $step }} fails with {{ $reason }}, {{ $share | humanizePercentage }} of the failed runs`) +
        '.',
      description:
        'Every run of the synthetic sign-in probe at {{ $labels.job }} has failed for at least ' +
        `${failing.for.value}; last success: ` +
        queryValue(`time() - max by (job) (${jobSel('authgw_probe_last_success_timestamp_seconds')})`, 'humanizeDuration', { fallback: 'never', after: ' ago' }) +
        '. The probe signs in, calls PROBE_PATH with the cookie and with a JWT, and signs out through the public URL, as a user does. ' +
        withDominant(
          breakdown,
          `${stepAndReason}${mechanismOfStep}Step {{ $step }} fails with {{ $reason }} ({{ $share | humanizePercentage }} of the failed runs in 5m). ` +
            guideChain([...probeCases(), ...cases('unauthorized'), ...cases('unavailable')]),
        ),
      runbookInDescription: true,
    }),
    alert({
      alert: 'AuthGatewayProbeStale',
      expr: [
        // Ran in the last day (recorded rate, not a day of raw counters), but not in the window.
        'max_over_time(job:authgw_probe_runs:rate5m[1d]) > 0',
        `unless on (job) sum by (job) (increase(${sel('authgw_probe_runs_total')}[${stale.window.value}])) > 0`,
      ].join('\n'),
      for: stale.for.value,
      severity: 'warning',
      summary: 'The synthetic sign-in probe stopped running: a broken login would go unnoticed at low traffic.',
      description: `No run of the sign-in probe at {{ $labels.job }} in the last ${stale.window.value}, although it ran during the last day.`,
    }),
  ]
}

export function alertRuleGroups(): Array<RuleGroup<AlertRule>> {
  return [
    { name: 'authgw.slo', rules: burnRateAlerts() },
    { name: 'authgw.alerts', rules: authAlerts() },
  ]
}

// Re-exported so tests can derive windows without importing two modules.
export type { SloWindow }
