// On-call overview: is the gateway serving, who gets 401s and why, and are
// its dependencies (session store, JWKS, upstream) healthy.
import { dashboard, increase, quantile, rate, sel } from './grafana.ts'
import type { BuiltDashboard } from './grafana.ts'

const REQUESTS = 'authgw_http_request_duration_seconds_count'
const DURATION = 'authgw_http_request_duration_seconds'

export const OVERVIEW_UID = 'authgw-overview'

export function overviewDashboard(): BuiltDashboard {
  return dashboard({
    uid: OVERVIEW_UID,
    title: 'Auth Gateway / Overview',
    description: 'On-call view of the auth gateway: traffic, errors, latency, 401s by reason, tokens, sign-ins and dependencies.',
    tags: ['authgw'],
    links: [{ title: 'Auth Gateway / Auth debug', uid: 'authgw-auth-debug' }],
    rows: [
      {
        row: 'Service level',
        panels: [
          {
            type: 'stat',
            title: 'Requests',
            description: 'Requests answered by the selected replicas, per second (probes included).',
            unit: 'reqps',
            w: 4,
            h: 4,
            targets: [`sum(${rate(REQUESTS)})`],
          },
          {
            type: 'stat',
            title: '5xx ratio',
            description: 'Share of requests answered 5xx: what the availability SLO counts (503 store/JWKS unavailable, 502/504 upstream).',
            unit: 'percentunit',
            w: 4,
            h: 4,
            thresholds: [
              [0.001, 'orange'],
              [0.01, 'red'],
            ],
            targets: [`(sum(${rate(REQUESTS, 'status_code=~"5.."')}) or vector(0)) / sum(${rate(REQUESTS)})`],
          },
          {
            type: 'stat',
            title: '401 ratio',
            description: 'Share of requests answered 401, whoever produced it (gateway, better-auth or upstream).',
            unit: 'percentunit',
            w: 4,
            h: 4,
            thresholds: [
              [0.1, 'orange'],
              [0.5, 'red'],
            ],
            targets: [`sum(${rate('authgw_unauthorized_total')}) / sum(${rate(REQUESTS)})`],
          },
          {
            type: 'stat',
            title: 'p99 latency',
            description: '99th percentile of request duration; the latency SLO threshold is 0.25 s.',
            unit: 's',
            w: 4,
            h: 4,
            thresholds: [[0.25, 'red']],
            targets: [quantile(0.99, DURATION)],
          },
          {
            type: 'stat',
            title: 'Targets down',
            description: 'Gateway replicas Prometheus fails to scrape.',
            unit: 'none',
            w: 4,
            h: 4,
            thresholds: [[1, 'red']],
            targets: [`count(${sel('up')} == 0) or vector(0)`],
          },
          {
            type: 'stat',
            title: 'Secret fingerprints',
            description: 'Distinct BETTER_AUTH_SECRET fingerprints among the replicas: more than one means sessions break on some of them.',
            unit: 'none',
            w: 4,
            h: 4,
            thresholds: [[2, 'red']],
            targets: [`count(count by (secret_fingerprint) (${sel('authgw_config_info')}))`],
          },
        ],
      },
      {
        row: 'Traffic',
        panels: [
          {
            type: 'timeseries',
            title: 'Request rate by status',
            description: 'Requests per second by HTTP status code.',
            unit: 'reqps',
            w: 8,
            stack: true,
            targets: [{ expr: `sum by (status_code) (${rate(REQUESTS)})`, legend: '{{status_code}}' }],
          },
          {
            type: 'timeseries',
            title: '5xx and 401 ratios',
            description: 'Share of requests answered 5xx (availability SLO errors) and 401 (all sources).',
            unit: 'percentunit',
            w: 8,
            min: 0,
            targets: [
              { expr: `(sum(${rate(REQUESTS, 'status_code=~"5.."')}) or vector(0)) / sum(${rate(REQUESTS)})`, legend: '5xx' },
              { expr: `sum(${rate('authgw_unauthorized_total')}) / sum(${rate(REQUESTS)})`, legend: '401' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Latency p50 / p99',
            description: 'Request duration quantiles from the histogram; exemplars link to traces.',
            unit: 's',
            w: 8,
            targets: [
              { expr: quantile(0.5, DURATION), legend: 'p50' },
              { expr: quantile(0.99, DURATION), legend: 'p99' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Request rate by route',
            description: 'Requests per second by route template.',
            unit: 'reqps',
            targets: [{ expr: `sum by (route) (${rate(REQUESTS)})`, legend: '{{route}}' }],
          },
          {
            type: 'timeseries',
            title: 'p99 latency by route',
            description: '99th percentile of request duration by route template.',
            unit: 's',
            targets: [{ expr: quantile(0.99, DURATION, ['route']), legend: '{{route}}' }],
          },
        ],
      },
      {
        row: 'Unauthorized (401)',
        panels: [
          {
            type: 'timeseries',
            title: '401s by source',
            description: 'Who answered 401: the gateway (session/JWT checks), better-auth (sign-in, token, get-session) or the upstream API.',
            unit: 'reqps',
            w: 8,
            stack: true,
            targets: [{ expr: `sum by (source) (${rate('authgw_unauthorized_total')})`, legend: '{{source}}' }],
          },
          {
            type: 'timeseries',
            title: '401s by mechanism',
            description: 'Which credential the 401 was about: session cookie, bearer JWT or none presented.',
            unit: 'reqps',
            w: 8,
            stack: true,
            targets: [{ expr: `sum by (mechanism) (${rate('authgw_unauthorized_total')})`, legend: '{{mechanism}}' }],
          },
          {
            type: 'timeseries',
            title: '401s by reason',
            description: 'Every 401 by source, mechanism and closed reason; exemplars link to the denied request\'s trace.',
            unit: 'reqps',
            w: 8,
            targets: [
              {
                expr: `sum by (source, mechanism, reason) (${rate('authgw_unauthorized_total')})`,
                legend: '{{source}} {{mechanism}} {{reason}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Auth decisions',
            description: 'Decisions on protected routes by mechanism and outcome (error = could not decide, answered 503).',
            unit: 'ops',
            targets: [{ expr: `sum by (mechanism, outcome) (${rate('authgw_auth_decisions_total')})`, legend: '{{mechanism}} {{outcome}}' }],
          },
          {
            type: 'timeseries',
            title: 'Unavailable (503) by reason',
            description: 'Decisions the gateway could not make: session store or JWKS unreachable.',
            unit: 'reqps',
            targets: [
              { expr: `sum by (mechanism, reason) (${rate('authgw_auth_unavailable_total')})`, legend: '{{mechanism}} {{reason}}' },
            ],
          },
        ],
      },
      {
        row: 'Sessions and JWTs',
        panels: [
          {
            type: 'timeseries',
            title: 'Session nulls by reason',
            description: 'Session lookups that yielded no session, by reason (no cookie, bad signature, expired …).',
            unit: 'ops',
            targets: [{ expr: `sum by (reason) (${rate('authgw_session_nulls_total')})`, legend: '{{reason}}' }],
          },
          {
            type: 'timeseries',
            title: 'JWT validation failures by reason',
            description: 'Bearer JWTs rejected, by reason (expired, bad signature, unknown kid, issuer/audience mismatch …).',
            unit: 'ops',
            targets: [{ expr: `sum by (reason) (${rate('authgw_jwt_validation_failures_total')})`, legend: '{{reason}}' }],
          },
        ],
      },
      {
        row: 'Tokens and sign-ins',
        panels: [
          {
            type: 'timeseries',
            title: 'Tokens issued',
            description: 'Tokens issued by kind (jwt, session) and path (token endpoint, set-auth-jwt header, gateway exchange, sign-in, sign-up).',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (kind, via) (${rate('authgw_tokens_issued_total')})`, legend: '{{kind}} {{via}}' }],
          },
          {
            type: 'timeseries',
            title: 'Token issue failures',
            description: 'Failed token issuances by reason (no session, signing failed, store unavailable).',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (reason) (${rate('authgw_token_issue_failures_total')})`, legend: '{{reason}}' }],
          },
          {
            type: 'timeseries',
            title: 'Sign-in attempts',
            description: 'Email sign-ins by outcome and reason (none on success).',
            unit: 'ops',
            w: 8,
            stack: true,
            targets: [{ expr: `sum by (outcome, reason) (${rate('authgw_sign_in_attempts_total')})`, legend: '{{outcome}} {{reason}}' }],
          },
        ],
      },
      {
        row: 'Sign-in probe',
        panels: [
          {
            type: 'stat',
            title: 'Probe up',
            description: 'Whether the last run of the synthetic sign-in probe passed every step (1) on the replica that runs it (PROBE_INTERVAL_SECONDS; one replica per database). 0 on every replica: the login path is broken (AuthGatewayProbeFailing).',
            unit: 'none',
            w: 4,
            h: 6,
            thresholds: [
              [0, 'red'],
              [1, 'green'],
            ],
            targets: [`max(${sel('authgw_probe_up')})`],
          },
          {
            type: 'stat',
            title: 'Since the last probe success',
            description: 'Age of the newest successful probe run on any replica. Growing while runs fail: the login path is broken; growing with no runs at all: the probe stopped (AuthGatewayProbeStale).',
            unit: 's',
            w: 4,
            h: 6,
            thresholds: [[90, 'red']],
            // Empty until a probe run succeeded (PROBE_INTERVAL_SECONDS=0: always).
            targets: [{ expr: `time() - max(${sel('authgw_probe_last_success_timestamp_seconds')} > 0)`, mayBeEmpty: true }],
          },
          {
            type: 'timeseries',
            title: 'Probe runs by outcome',
            description: 'Probe runs per second by outcome (success, failure), per replica: the replica holding the probe lock runs it.',
            unit: 'ops',
            w: 8,
            h: 6,
            targets: [{ expr: `sum by (instance, outcome) (${rate('authgw_probe_runs_total')})`, legend: '{{instance}} {{outcome}}' }],
          },
          {
            type: 'timeseries',
            title: 'Probe step duration p95',
            description: 'Duration of each probe step (sign_in, get_session, cookie_call, token, jwks_verify, bearer_call, sign_out, revoked) through PROBE_URL, failed steps included; a step at PROBE_STEP_TIMEOUT_MS timed out.',
            unit: 's',
            w: 8,
            h: 6,
            // Only steps that ran in the window: empty, not NaN, where the probe is off.
            targets: [
              {
                expr: `${quantile(0.95, 'authgw_probe_step_duration_seconds', ['step'])} and on (step) sum by (step) (${rate('authgw_probe_step_duration_seconds_count')}) > 0`,
                legend: '{{step}}',
                mayBeEmpty: true,
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Probe failures by step and reason',
            description: 'Failed probe runs by the step that failed and its reason: the closed reason the gateway answered (reasons table; upstream_rejected for an upstream 401) or the probe\'s own timeout, connect_error, jwks_verify_failed, unexpected_answer, not_revoked. The runbook explains each step.',
            unit: 'short',
            w: 24,
            h: 6,
            targets: [{ expr: `sum by (step, reason) (${increase('authgw_probe_failures_total')}) > 0`, legend: '{{step}} {{reason}}', mayBeEmpty: true }],
          },
        ],
      },
      {
        row: 'Upstream',
        panels: [
          {
            type: 'timeseries',
            title: 'Upstream latency p50 / p99',
            description: 'Time from proxying a request to the upstream\'s response headers.',
            unit: 's',
            w: 8,
            targets: [
              { expr: quantile(0.5, 'authgw_upstream_request_duration_seconds'), legend: 'p50' },
              { expr: quantile(0.99, 'authgw_upstream_request_duration_seconds'), legend: 'p99' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Upstream responses by status',
            description: 'Upstream answers per second by status code (401 here are counted as source=upstream).',
            unit: 'reqps',
            w: 8,
            stack: true,
            targets: [{ expr: `sum by (status_code) (${rate('authgw_upstream_request_duration_seconds_count')})`, legend: '{{status_code}}' }],
          },
          {
            type: 'timeseries',
            title: 'Upstream failures by reason',
            description: 'Upstream calls without a usable response: timeout (504), connect error, reset, bad response (502); and idempotent requests retried once because a reused keep-alive connection was reset before any byte (a steady rate means the upstream closes idle connections before UPSTREAM_KEEP_ALIVE_TIMEOUT_MS).',
            unit: 'ops',
            w: 8,
            targets: [
              { expr: `sum by (reason) (${rate('authgw_upstream_failures_total')})`, legend: '{{reason}}' },
              { expr: `sum by (reason) (${rate('authgw_upstream_retries_total')})`, legend: 'retried: {{reason}}' },
            ],
          },
        ],
      },
      {
        row: 'Session store and JWKS',
        panels: [
          {
            type: 'timeseries',
            title: 'DB pool connections',
            description: 'PostgreSQL pool per replica: total, idle and clients waiting for a connection.',
            unit: 'short',
            w: 8,
            targets: [{ expr: sel('authgw_db_pool_connections'), legend: '{{instance}} {{state}}' }],
          },
          {
            type: 'timeseries',
            title: 'DB errors by operation',
            description: 'Database errors by operation (session lookup, token mint, health check, migrate, pool).',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (operation) (${rate('authgw_db_errors_total')})`, legend: '{{operation}}' }],
          },
          {
            type: 'timeseries',
            title: 'Cache hit ratios',
            description: 'Gateway session cache and verify-once JWT cache: hits per lookup.',
            unit: 'percentunit',
            w: 8,
            min: 0,
            max: 1,
            targets: [
              {
                expr: `sum(${rate('authgw_session_cache_lookups_total', 'result="hit"')}) / sum(${rate('authgw_session_cache_lookups_total')})`,
                legend: 'session cache',
              },
              {
                expr: `sum(${rate('authgw_jwt_cache_lookups_total', 'result="hit"')}) / sum(${rate('authgw_jwt_cache_lookups_total')})`,
                legend: 'JWT cache',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'JWKS age',
            description: 'Seconds since the last successful JWKS refresh, per replica (empty before the first refresh).',
            unit: 's',
            w: 8,
            targets: [
              {
                expr: `time() - max by (instance) (${sel('authgw_jwks_last_refresh_timestamp_seconds')} > 0)`,
                legend: '{{instance}}',
                mayBeEmpty: true,
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'JWKS keys',
            description: 'Keys in each replica\'s in-memory JWKS.',
            unit: 'short',
            w: 8,
            min: 0,
            targets: [{ expr: `max by (instance) (${sel('authgw_jwks_keys')})`, legend: '{{instance}}' }],
          },
          {
            type: 'timeseries',
            title: 'JWKS refreshes by outcome',
            description: 'JWKS refreshes: success, failure, or suppressed by the unknown-kid cooldown.',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (outcome) (${rate('authgw_jwks_refreshes_total')})`, legend: '{{outcome}}' }],
          },
        ],
      },
      {
        row: 'Replicas and shared state',
        panels: [
          {
            type: 'table',
            title: 'Coherence mode per replica',
            description: 'How each replica learns of sign-outs and key changes on the others (redis, postgres, none; docs/replicas.md). Every replica should show the same mode.',
            unit: 'none',
            w: 8,
            h: 6,
            targets: [{ expr: `${sel('authgw_coherence_mode_info')} == 1`, instant: true, format: 'table' }],
          },
          {
            type: 'timeseries',
            title: 'Redis and invalidation bus up',
            description: 'Per replica: Redis connection ready (redis mode only) and invalidation bus connected. 0 = degraded: reads from PostgreSQL, other replicas learn of sign-outs only within the session cache TTL.',
            unit: 'short',
            w: 8,
            min: 0,
            max: 1,
            targets: [
              { expr: `min by (instance) (${sel('authgw_redis_up')}) and on (instance) (${sel('authgw_coherence_mode_info', 'mode="redis"')} == 1)`, legend: 'redis {{instance}}', mayBeEmpty: true },
              { expr: `min by (instance) (${sel('authgw_invalidation_bus_up')})`, legend: 'bus {{instance}}' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Invalidation lag',
            description: 'Publication on one replica to application on another (target: p99 under 1 s).',
            unit: 's',
            w: 8,
            targets: [
              { expr: quantile(0.5, 'authgw_invalidation_lag_seconds'), legend: 'p50' },
              { expr: quantile(0.99, 'authgw_invalidation_lag_seconds'), legend: 'p99' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Cache invalidations by kind and origin',
            description: 'Sessions, minted JWTs and key-set changes invalidated: local (this replica ended it) or remote (announced by another).',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (kind, origin) (${rate('authgw_cache_invalidations_total')})`, legend: '{{kind}} {{origin}}' }],
          },
          {
            type: 'timeseries',
            title: 'Redis command latency p99',
            description: 'Redis commands the gateway sends, by command; above 0.5 s a command fails and falls back.',
            unit: 's',
            w: 8,
            // The series exist only with REDIS_URL set, hence mayBeEmpty.
            targets: [{ expr: quantile(0.99, 'authgw_redis_command_duration_seconds', ['command']), legend: '{{command}}', mayBeEmpty: true }],
          },
          {
            type: 'timeseries',
            title: 'Redis errors and rate-limit fallbacks',
            description: 'Redis failures by operation, and rate-limit decisions made without the shared store by policy (ADR 0030).',
            unit: 'ops',
            w: 8,
            targets: [
              { expr: `sum by (operation) (${rate('authgw_redis_errors_total')})`, legend: '{{operation}}' },
              { expr: `sum by (policy) (${rate('authgw_rate_limit_store_failures_total')})`, legend: 'rate limit {{policy}}' },
            ],
          },
        ],
      },
      {
        row: 'Config and build',
        panels: [
          {
            type: 'table',
            title: 'Config per instance',
            description: 'Issuer, audience, JWKS URL, cookie prefix and secret fingerprint of each replica: every column should hold one value.',
            unit: 'none',
            w: 16,
            h: 6,
            targets: [{ expr: sel('authgw_config_info'), instant: true, format: 'table' }],
          },
          {
            type: 'table',
            title: 'Build per instance',
            description: 'Version and Node.js version of each replica.',
            unit: 'none',
            w: 8,
            h: 6,
            targets: [{ expr: sel('authgw_build_info'), instant: true, format: 'table' }],
          },
        ],
      },
      {
        row: 'Process',
        panels: [
          {
            type: 'timeseries',
            title: 'CPU',
            description: 'CPU time per second of each replica (1 = one core).',
            unit: 'percentunit',
            w: 8,
            targets: [{ expr: rate('authgw_process_cpu_seconds_total'), legend: '{{instance}}' }],
          },
          {
            type: 'timeseries',
            title: 'Event loop lag p99',
            description: '99th percentile of event loop delay per replica: high values delay every request.',
            unit: 's',
            w: 8,
            targets: [{ expr: sel('authgw_nodejs_eventloop_lag_p99_seconds'), legend: '{{instance}}' }],
          },
          {
            type: 'timeseries',
            title: 'Resident memory',
            description: 'Resident set size per replica.',
            unit: 'bytes',
            w: 8,
            targets: [{ expr: sel('authgw_process_resident_memory_bytes'), legend: '{{instance}}' }],
          },
        ],
      },
    ],
  })
}
