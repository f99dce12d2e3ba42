// Drill-down behind the overview: which replica, route and reason the 401s
// come from, sessions vs JWTs, sign-ins, latency distribution, config drift.
import { dashboard, increase, quantile, rate, sel } from './grafana.ts'
import type { BuiltDashboard } from './grafana.ts'
import { OVERVIEW_UID } from './overview.ts'

const REQUESTS = 'authgw_http_request_duration_seconds_count'
const DURATION = 'authgw_http_request_duration_seconds'
const ROUTE = 'route=~"$route"'

export const AUTH_DEBUG_UID = 'authgw-auth-debug'

export function authDebugDashboard(): BuiltDashboard {
  return dashboard({
    uid: AUTH_DEBUG_UID,
    title: 'Auth Gateway / Auth debug',
    description: 'Drill-down for auth incidents: 401s per replica, route and reason, session and JWT failures, sign-ins, latency, config drift.',
    tags: ['authgw'],
    links: [{ title: 'Auth Gateway / Overview', uid: OVERVIEW_UID }],
    variables: [
      {
        name: 'route',
        label: 'route',
        query: 'label_values(authgw_http_request_duration_seconds_count{job=~"$job",instance=~"$instance"}, route)',
        description: 'Route templates (applies to the request panels).',
      },
    ],
    rows: [
      {
        row: '401s in detail',
        panels: [
          {
            type: 'timeseries',
            title: '401 responses by route',
            description: 'Requests answered 401 per route template.',
            unit: 'reqps',
            targets: [{ expr: `sum by (route) (${rate(REQUESTS, 'status_code="401"', ROUTE)})`, legend: '{{route}}' }],
          },
          {
            type: 'timeseries',
            title: '401s by instance and reason',
            description: 'A reason that only one replica produces points at that replica (secret, config, clock).',
            unit: 'reqps',
            targets: [
              {
                expr: `sum by (instance, source, mechanism, reason) (${rate('authgw_unauthorized_total')}) > 0`,
                legend: '{{instance}} {{source}} {{mechanism}} {{reason}}',
                mayBeEmpty: true,
              },
            ],
          },
          {
            type: 'table',
            title: 'Current 401 rate by source, mechanism and reason',
            description: '401s per second right now, largest first.',
            unit: 'reqps',
            w: 24,
            h: 7,
            tableValue: true,
            targets: [
              {
                expr: `sort_desc(sum by (source, mechanism, reason) (${rate('authgw_unauthorized_total')}))`,
                instant: true,
                format: 'table',
              },
            ],
          },
        ],
      },
      {
        row: 'Sessions',
        panels: [
          {
            type: 'timeseries',
            title: 'Session nulls by instance and reason',
            description: 'bad_signature on some replicas only: their BETTER_AUTH_SECRET differs.',
            unit: 'ops',
            targets: [{ expr: `sum by (instance, reason) (${rate('authgw_session_nulls_total')})`, legend: '{{instance}} {{reason}}' }],
          },
          {
            type: 'timeseries',
            title: 'Session decisions by instance and outcome',
            description: 'Session-cookie decisions on protected routes per replica.',
            unit: 'ops',
            targets: [
              {
                expr: `sum by (instance, outcome) (${rate('authgw_auth_decisions_total', 'mechanism="session"')})`,
                legend: '{{instance}} {{outcome}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Cookie-less lookups per successful sign-in',
            description: 'Session lookups without a usable cookie (no_cookie, cross_site_no_cookie, cookie_name_mismatch, cookie_not_returned, credentials_omitted, server_side_no_cookie, mobile_no_cookie, duplicate_session_cookie, session_data_without_token) per successful sign-in.',
            unit: 'none',
            w: 8,
            targets: [
              {
                expr: `sum(${rate('authgw_session_nulls_total', 'reason=~"no_cookie|cross_site_no_cookie|cookie_name_mismatch|cookie_not_returned|credentials_omitted|server_side_no_cookie|mobile_no_cookie|duplicate_session_cookie|session_data_without_token"')}) / sum(${rate('authgw_sign_in_attempts_total', 'outcome="success"')})`,
                legend: 'per sign-in',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Session cache hit ratio',
            description: 'Gateway session-cache hits per lookup, per replica.',
            unit: 'percentunit',
            w: 8,
            min: 0,
            max: 1,
            targets: [
              {
                expr: `sum by (instance) (${rate('authgw_session_cache_lookups_total', 'result="hit"')}) / sum by (instance) (${rate('authgw_session_cache_lookups_total')})`,
                legend: '{{instance}}',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Sessions revoked',
            description: 'Sessions ended by sign-out or revocation.',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum(${rate('authgw_sessions_revoked_total')})`, legend: 'revoked' }],
          },
          {
            type: 'timeseries',
            title: 'Set-Cookie problems by problem',
            description:
              'Set-Cookie headers better-auth sent that the browser will drop or cut short (the Set-Cookie audit): the cause behind cookie_not_returned. See docs/reasons.md#set-cookie-audit.',
            unit: 'ops',
            w: 24,
            targets: [{ expr: `sum by (problem) (${rate('authgw_set_cookie_problems_total')})`, legend: '{{problem}}' }],
          },
        ],
      },
      {
        row: 'JWTs and JWKS',
        panels: [
          {
            type: 'timeseries',
            title: 'JWT failures by instance and reason',
            description: 'Rejected bearer JWTs per replica and reason; exemplars link to traces carrying kid and alg.',
            unit: 'ops',
            targets: [
              { expr: `sum by (instance, reason) (${rate('authgw_jwt_validation_failures_total')})`, legend: '{{instance}} {{reason}}' },
            ],
          },
          {
            type: 'timeseries',
            title: 'JWT decisions by outcome',
            description: 'Bearer-JWT decisions on protected routes.',
            unit: 'ops',
            targets: [{ expr: `sum by (outcome) (${rate('authgw_auth_decisions_total', 'mechanism="jwt"')})`, legend: '{{outcome}}' }],
          },
          {
            type: 'timeseries',
            title: 'JWKS refreshes by instance and outcome',
            description: 'Per-replica JWKS refreshes; suppressed = an unknown kid inside the refetch cooldown.',
            unit: 'ops',
            w: 8,
            targets: [{ expr: `sum by (instance, outcome) (${rate('authgw_jwks_refreshes_total')})`, legend: '{{instance}} {{outcome}}' }],
          },
          {
            type: 'timeseries',
            title: 'JWKS age by instance',
            description: 'Seconds since each replica last refreshed its JWKS (empty before the first refresh).',
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
            title: 'JWT cache hit ratio',
            description: 'Verify-once JWT cache hits per lookup, per replica.',
            unit: 'percentunit',
            w: 8,
            min: 0,
            max: 1,
            targets: [
              {
                expr: `sum by (instance) (${rate('authgw_jwt_cache_lookups_total', 'result="hit"')}) / sum by (instance) (${rate('authgw_jwt_cache_lookups_total')})`,
                legend: '{{instance}}',
              },
            ],
          },
        ],
      },
      {
        row: 'Sign-in and tokens',
        panels: [
          {
            type: 'timeseries',
            title: 'Sign-in failures by reason',
            description: 'Failed email sign-ins by reason: invalid_credentials and rate_limited are the credential-stuffing signal.',
            unit: 'ops',
            targets: [
              { expr: `sum by (reason) (${rate('authgw_sign_in_attempts_total', 'outcome="failure"')})`, legend: '{{reason}}' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Sign-in failure share',
            description: 'Failed sign-ins per attempt.',
            unit: 'percentunit',
            min: 0,
            max: 1,
            targets: [
              {
                expr: `sum(${rate('authgw_sign_in_attempts_total', 'outcome="failure"')}) / sum(${rate('authgw_sign_in_attempts_total')})`,
                legend: 'failure share',
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'Rate-limited requests by route',
            description: 'Requests answered 429 by better-auth rate limiting (no series before the first one).',
            unit: 'reqps',
            w: 8,
            targets: [{ expr: `sum by (route) (${rate('authgw_rate_limited_total')})`, legend: '{{route}}', mayBeEmpty: true }],
          },
          {
            type: 'timeseries',
            title: 'JWTs issued vs successful sign-ins',
            description: 'JWT issuance should follow sign-ins; a flat JWT line while sign-ins go on means issuance broke.',
            unit: 'ops',
            w: 8,
            targets: [
              { expr: `sum(${rate('authgw_tokens_issued_total', 'kind="jwt"')})`, legend: 'JWTs issued' },
              { expr: `sum(${rate('authgw_sign_in_attempts_total', 'outcome="success"')})`, legend: 'successful sign-ins' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Token issue failures by instance and reason',
            description: 'Failed token issuances per replica.',
            unit: 'ops',
            w: 8,
            targets: [
              { expr: `sum by (instance, reason) (${rate('authgw_token_issue_failures_total')})`, legend: '{{instance}} {{reason}}' },
            ],
          },
        ],
      },
      {
        // Issue 18; the series exist only with OIDC_PROVIDERS set, hence mayBeEmpty.
        row: 'Single sign-on',
        panels: [
          {
            type: 'timeseries',
            title: 'SSO redirects vs successful callbacks by provider',
            description: 'Sign-ins sent to each provider against callbacks that signed someone in. A gap with no failures below: users stuck at the provider (a redirect URI the provider refuses, a login page that does not load).',
            unit: 'ops',
            targets: [
              { expr: `sum by (provider) (${rate('authgw_oauth_redirects_total')})`, legend: 'redirects {{provider}}', mayBeEmpty: true },
              {
                expr: `sum by (provider) (${rate('authgw_oauth_callbacks_total', 'outcome="success"')})`,
                legend: 'signed in {{provider}}',
                mayBeEmpty: true,
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'SSO callback failures by provider and reason',
            description: 'Callbacks that signed nobody in; the reasons table in docs/sso.md says what each means and what to check first. outcome="error" (provider_unavailable) is the provider, never the user.',
            unit: 'ops',
            targets: [
              {
                expr: `sum by (provider, outcome, reason) (${rate('authgw_oauth_callbacks_total', 'outcome!="success"')}) > 0`,
                legend: '{{provider}} {{reason}}',
                mayBeEmpty: true,
              },
            ],
          },
          {
            type: 'timeseries',
            title: 'SSO provider latency p95 by endpoint',
            description: "The gateway's requests to each provider (discovery, token, JWKS, userinfo), failed ones included: the token exchange is inside every SSO callback.",
            unit: 's',
            targets: [
              {
                expr: quantile(0.95, 'authgw_oauth_provider_request_duration_seconds', ['provider', 'endpoint']),
                legend: '{{provider}} {{endpoint}}',
                mayBeEmpty: true,
              },
            ],
          },
        ],
      },
      {
        row: 'Latency',
        panels: [
          {
            type: 'heatmap',
            title: 'Request latency distribution',
            description: 'Requests per latency bucket for the selected routes; exemplars link to traces.',
            unit: 's',
            w: 24,
            h: 10,
            targets: [
              { expr: `sum by (le) (${increase(`${DURATION}_bucket`, ROUTE)})`, legend: '{{le}}', format: 'heatmap' },
            ],
          },
          {
            type: 'timeseries',
            title: 'Latency quantiles by route',
            description: 'p50 and p99 of request duration per selected route.',
            unit: 's',
            w: 24,
            targets: [
              { expr: quantile(0.5, DURATION, ['route'], ROUTE), legend: 'p50 {{route}}' },
              { expr: quantile(0.99, DURATION, ['route'], ROUTE), legend: 'p99 {{route}}' },
            ],
          },
        ],
      },
      {
        row: 'Config drift',
        panels: [
          {
            type: 'stat',
            title: 'Distinct secret fingerprints',
            description: 'Distinct BETTER_AUTH_SECRET fingerprints among the selected replicas (should be 1).',
            unit: 'none',
            w: 6,
            h: 4,
            thresholds: [[2, 'red']],
            targets: [`count(count by (secret_fingerprint) (${sel('authgw_config_info')}))`],
          },
          {
            type: 'stat',
            title: 'Distinct issuers',
            description: 'Distinct expected JWT issuers among the selected replicas (should be 1).',
            unit: 'none',
            w: 6,
            h: 4,
            thresholds: [[2, 'red']],
            targets: [`count(count by (issuer) (${sel('authgw_config_info')}))`],
          },
          {
            type: 'stat',
            title: 'Distinct audiences',
            description: 'Distinct expected JWT audiences among the selected replicas (should be 1).',
            unit: 'none',
            w: 6,
            h: 4,
            thresholds: [[2, 'red']],
            targets: [`count(count by (audience) (${sel('authgw_config_info')}))`],
          },
          {
            type: 'stat',
            title: 'Distinct cookie prefixes',
            description: 'Distinct session cookie prefixes among the selected replicas (should be 1).',
            unit: 'none',
            w: 6,
            h: 4,
            thresholds: [[2, 'red']],
            targets: [`count(count by (cookie_prefix) (${sel('authgw_config_info')}))`],
          },
          {
            type: 'table',
            title: 'Config per instance',
            description: 'Auth configuration of each replica, to spot which one differs.',
            unit: 'none',
            w: 24,
            h: 6,
            targets: [{ expr: sel('authgw_config_info'), instant: true, format: 'table' }],
          },
        ],
      },
    ],
  })
}
