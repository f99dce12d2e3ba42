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
    minBadInShortWindow: t(10, 'Minimum traffic of a burn-rate tier: at least 10 failed (or slow) requests in its short window. A handful of 503s in a quiet hour is a large share of little traffic, not an outage; a real outage at night (0.2 req/s) still fails 60 requests in 5 m.'),
  },
  unauthorizedOutage: {
    ratio: t(0.4, 'Share of session and JWT decisions on protected routes answered 401 (by the gateway, or by the upstream after the gateway allowed them). One replica of two with another secret refuses exactly half; rate noise puts that on either side of 50 %, so the page starts at 40 %.'),
    window: t('1m', 'Short enough to page within 3 minutes of onset, `for` included. Needs a scrape interval of at most 20 s (the shipped 15 s gives four samples a window).'),
    minDecisionsPerSecond: t(0.5, 'A job with real traffic: 30 session or JWT decisions a minute. Below it a few stale cookies are most of the traffic; the sign-in probe pages for quiet hours.'),
    for: t('1m', 'Onset to page: under a minute for the 1m share to pass 40 %, this minute, and up to 30 s of scrape and evaluation delay.'),
  },
  unauthorizedSpike: {
    factor: t(2.5, 'Fire above 2.5x the baseline share, so that a tripling (2 % → 6 %) fires with a margin for rate noise instead of on the threshold.'),
    baselineFloor: t(0.01, 'The baseline counts as at least 1 %: from a 0 % baseline it takes 2.5 % of requests, sustained and above the count floor, to fire.'),
    sameDayWindow: t('6h', 'Without a day of history (or with a gap at this time yesterday) the baseline is the share over the 6 hours before the offset below.'),
    sameDayOffset: t('30m', 'The same-day baseline ends 30 minutes ago, so a spike is not part of its own baseline until well after the alert fires.'),
    ceiling: t(0.25, 'Only without any baseline (a Prometheus younger than the offset): a quarter of requests answered with an unexpected 401 is never normal.'),
    minRequestsPerSecond: t(1, 'About 300 requests in 5 m; below that a handful of 401s swings the ratio.'),
    minCountIn5m: t(30, 'At least 30 counted 401s in 5 m before the ratio means anything.'),
    for: t('8m', 'Ride out a client retry storm or one misbehaving script; a tripling still warns within 15 minutes (the 5m share needs under 4 minutes to pass 2.5x).'),
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
  redisDown: {
    for: t('2m', 'Longer than a Redis restart or failover (replicas reconnect within a second of Redis answering); degraded, not down: sessions are read from PostgreSQL, so a warning.'),
  },
  invalidationLag: {
    p99Seconds: t(1, 'A sign-out must be honoured by every replica within 1 s (docs/replicas.md); the measured p99 is under 0.2 s.'),
    for: t('5m', 'A few slow events during a reconnect are not a trend.'),
  },
  coherenceModeMismatch: {
    for: t('5m', 'Longer than a rolling deploy that adds or removes REDIS_URL.'),
  },
  metricsAbsent: {
    for: t('5m', 'Longer than a Prometheus or gateway restart.'),
  },
  probeFailing: {
    for: t('1m', 'Every probe run failed for a minute (four runs at the compose stack\'s 15 s interval): the login path is broken whatever the traffic. Onset to page stays under 3 minutes.'),
    window: t('1m', 'Failed runs counted over this window prove the probe is running (a disabled probe never pages).'),
    maxSuccessAgeSeconds: t(90, 'Also page when the newest success of any replica is older than this, for a replica whose probe_up still says 1 from before it stopped probing: six runs at the compose stack\'s 15 s. Raise it with PROBE_INTERVAL_SECONDS above 45 s.'),
  },
  probeStale: {
    window: t('10m', 'No probe run in 10 minutes, after runs in the last day: the probe stopped (or was turned off without a silence).'),
    for: t('5m', 'Longer than a rolling restart of the replica that runs the probe.'),
  },
  signInFailureSurge: {
    failuresPerSecond: t(1, 'About 300 failed sign-ins (wrong password or rate-limited) in 5 m.'),
    failureRatio: t(0.5, 'Most attempts fail: credential stuffing, not a busy morning with typos.'),
    for: t('10m', 'Sustained attack, not a user hammering the button.'),
  },
  ssoCallbackFailures: {
    ratio: t(0.3, 'Share of SSO callbacks of one provider that failed (access_denied excluded: a user may decline). Normal traffic fails a few percent (replayed callbacks, expired codes); a third is a broken client registration, key rotation, clock or cookie path.'),
    minCountIn10m: t(10, 'At least 10 failed callbacks of the provider in 10 m: a handful of users retrying is not a surge.'),
    window: t('10m', 'SSO sign-ins are rare next to API calls; 10 m collects enough callbacks to judge a share.'),
    for: t('10m', 'Ride out one user retrying; a broken registration or key does not heal by waiting.'),
  },
  ssoProviderUnavailable: {
    minCountIn5m: t(3, 'Three callbacks answered 503 provider_unavailable in 5 m: the provider (or the path to it) is down for every user who tries.'),
    for: t('2m', 'Binary and user-visible; the provider\'s own status page is the next stop.'),
  },
} as const satisfies Record<string, Record<string, Threshold>>
