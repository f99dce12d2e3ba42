// Every tunable of the alerts, in one place, each with the reason for its
// value. build.ts writes the rule files from these and renders this table into
// alerts/runbook.md, so the numbers on-call reads are the numbers Prometheus uses.

export type Threshold<V = number | string> = { value: V; why: string }

const t = <V extends number | string>(value: V, why: string): Threshold<V> => ({ value, why })

/** The one place that says which scrape job is the gateway. */
export const JOB_SELECTOR = 'job="authgw"'

/** Where runbook_url points; anchors are `#alert-name-<lowercased alert name>`. */
export const RUNBOOK_URL = 'https://github.com/authgw/authgw/blob/main/alerts/runbook.md'

/** Probe routes are not user traffic: they stay out of every request denominator. */
export const PROBE_ROUTES = '/healthz|/readyz'

export const SLO_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const
export type SloWindow = (typeof SLO_WINDOWS)[number]

export type BurnRateTier = {
  long: SloWindow
  short: SloWindow
  factor: number
  for: string
  severity: 'critical' | 'warning'
}

/** Google SRE Workbook ch. 5, 30-day budget: 2 % / 5 % / 10 % / 10 % of the budget spent. */
export const BURN_RATE_TIERS: readonly BurnRateTier[] = [
  { long: '1h', short: '5m', factor: 14.4, for: '2m', severity: 'critical' },
  { long: '6h', short: '30m', factor: 6, for: '15m', severity: 'critical' },
  { long: '1d', short: '2h', factor: 3, for: '1h', severity: 'warning' },
  { long: '3d', short: '6h', factor: 1, for: '3h', severity: 'warning' },
]

export const thresholds = {
  slo: {
    availabilityObjective: t(0.999, 'At most 0.1 % of client requests may be answered 5xx over 30 days (503 store_unavailable / jwks_unavailable and 502/504 from the upstream count; 401s do not).'),
    latencyObjective: t(0.99, 'At least 99 % of client requests must be answered within the latency threshold.'),
    latencyThresholdSeconds: t('0.25', 'Must be a bucket bound of authgw_http_request_duration_seconds; non-integer so `le` renders the same on Prometheus 2 and 3.'),
  },
  unauthorizedSpike: {
    factor: t(3, 'Fire when the 401 share is three times what it was at the same time yesterday.'),
    baselineFloor: t(0.05, 'Yesterday counts as at least 5 %, so a near-zero baseline cannot make "3× normal" trivial.'),
    ceiling: t(0.5, 'Half of all requests answered 401 is never normal; also covers a fresh Prometheus with no history for `offset 1d`.'),
    minRequestsPerSecond: t(1, 'About 300 requests in 5 m; below that a handful of 401s swings the ratio.'),
    minCountIn5m: t(30, 'At least 30 counted 401s in 5 m before the ratio means anything.'),
    for: t('10m', 'Ratio alert: ride out a client retry storm or a single misbehaving script.'),
  },
  jwtKeyMismatch: {
    ratio: t(0.1, 'bad_signature or kid_unknown on 10 % of JWT decisions: keys or secret differ between issuer and gateway, or the JWKS is stale.'),
    minCountIn5m: t(10, 'Ignore a few forged or truncated tokens.'),
    for: t('5m', 'A key mismatch is abrupt and does not heal by waiting.'),
  },
  jwtClaimMismatch: {
    ratio: t(0.05, 'issuer_mismatch or audience_mismatch on 5 % of JWT decisions: the base URL, issuer or audience differs between the token issuer and the gateway.'),
    minCountIn5m: t(10, 'Ignore a single misconfigured client trying a few times.'),
    for: t('5m', 'Config drift after a deploy: binary, no need to wait longer.'),
  },
  jwtExpiredSurge: {
    ratio: t(0.25, 'expired or not_yet_valid on a quarter of JWT decisions: clients are not refreshing tokens, or clocks are skewed.'),
    minCountIn5m: t(30, 'Some expired tokens are normal (clients refresh after a 401).'),
    for: t('15m', 'Token lifetimes are minutes long; give clients one refresh cycle.'),
  },
  sessionBadSignature: {
    ratio: t(0.05, 'Session cookies whose signature fails on 5 % of requests: replicas sign with different secrets, or the secret was rotated.'),
    minCountIn5m: t(10, 'Ignore a few tampered or stale cookies.'),
    for: t('5m', 'A secret mismatch is abrupt and does not heal by waiting.'),
  },
  sessionCookieMissing: {
    factor: t(3, 'Fire when cookie-less session lookups per successful sign-in are three times yesterday\'s.'),
    baselineFloor: t(1, 'Yesterday counts as at least one cookie-less lookup per sign-in (anonymous page loads call get-session too).'),
    ceiling: t(10, 'Ten cookie-less lookups per successful sign-in: the cookie is not being stored or sent.'),
    minSignInsIn5m: t(10, 'The alert is about signed-in users losing their cookie; it needs sign-ins to compare with.'),
    minCountIn5m: t(30, 'At least 30 cookie-less lookups in 5 m.'),
    for: t('10m', 'Ratio alert.'),
  },
  tokenIssuanceStopped: {
    minSignInsIn15m: t(10, 'Enough successful sign-ins that some of them should have led to a JWT.'),
    for: t('5m', 'On top of the 15 m window: no JWT for 20 m while sign-ins succeed.'),
  },
  tokenSigningFailed: {
    minCountIn5m: t(5, 'Signing never fails on a healthy key; five failures rule out a one-off.'),
    for: t('5m', 'Binary signal.'),
  },
  jwks: {
    maxAgeSeconds: t(3600, 'The gateway refreshes its JWKS every JWKS_REFRESH_INTERVAL_SECONDS (default 300 s): an hour is twelve missed refreshes.'),
    refreshWindow: t('15m', 'Window for counting refresh failures and successes.'),
    refreshFailingFor: t('5m', 'Failures with no success in 15 m, sustained for 5 m more.'),
    staleFor: t('5m', 'Age is already an hour; confirm it over a few scrapes.'),
    unavailableMinCountIn5m: t(5, 'Requests answered 503 jwks_unavailable in 5 m.'),
    unavailableFor: t('5m', 'Binary signal.'),
  },
  storeUnavailable: {
    minCountIn5m: t(5, 'Store failures (503 store_unavailable, token mint, sign-in) in 5 m.'),
    for: t('2m', 'The database being gone is binary and user-visible; the availability SLO pages on the impact.'),
  },
  databaseErrors: {
    minCountIn5m: t(5, 'Database errors of one operation in 5 m (covers health checks and migrations even without traffic).'),
    for: t('5m', 'Binary signal.'),
  },
  upstreamFailures: {
    ratio: t(0.05, 'One upstream call in 20 without a usable response (timeout, connect error, reset, bad response).'),
    minCountIn5m: t(10, 'Ignore a few resets during an upstream deploy.'),
    for: t('5m', 'Upstream deploys take a minute or two; longer is an outage.'),
  },
  configDrift: {
    for: t('5m', 'Longer than a rolling deploy of two replicas; drift after that is not a rollout in progress.'),
  },
  targetDown: {
    for: t('5m', 'Longer than a restart.'),
  },
  metricsAbsent: {
    for: t('5m', 'Longer than a Prometheus or gateway restart.'),
  },
  signInFailureSurge: {
    failuresPerSecond: t(1, 'About 300 failed sign-ins (wrong password or rate-limited) in 5 m.'),
    failureRatio: t(0.5, 'Most attempts fail: credential stuffing, not a busy morning with typos.'),
    for: t('10m', 'Sustained attack, not a user hammering the button.'),
  },
} as const satisfies Record<string, Record<string, Threshold>>
