// Every metric name of the gateway, written once. Names are a contract with
// dashboards/, alerts/ and the docs (test/readme.test.ts and test/sre/ keep
// them in step): add names, never rename.
export const MetricName = {
  httpRequestDuration: 'authgw_http_request_duration_seconds',
  authDecisions: 'authgw_auth_decisions_total',
  unauthorized: 'authgw_unauthorized_total',
  sessionNulls: 'authgw_session_nulls_total',
  jwtValidationFailures: 'authgw_jwt_validation_failures_total',
  tokensIssued: 'authgw_tokens_issued_total',
  tokenIssueFailures: 'authgw_token_issue_failures_total',
  signInAttempts: 'authgw_sign_in_attempts_total',
  jwksRefreshes: 'authgw_jwks_refreshes_total',
  jwksKeys: 'authgw_jwks_keys',
  jwksLastRefresh: 'authgw_jwks_last_refresh_timestamp_seconds',
  upstreamRequestDuration: 'authgw_upstream_request_duration_seconds',
  upstreamFailures: 'authgw_upstream_failures_total',
  dbPoolConnections: 'authgw_db_pool_connections',
  dbErrors: 'authgw_db_errors_total',
  configInfo: 'authgw_config_info',
  buildInfo: 'authgw_build_info',
  // additions beyond the original contract (all in docs/metrics.md)
  authUnavailable: 'authgw_auth_unavailable_total',
  rateLimited: 'authgw_rate_limited_total',
  sessionCache: 'authgw_session_cache_lookups_total',
  jwtCache: 'authgw_jwt_cache_lookups_total',
  sessionsRevoked: 'authgw_sessions_revoked_total',
  upstreamRetries: 'authgw_upstream_retries_total',
  // state shared between replicas (docs/replicas.md)
  redisUp: 'authgw_redis_up',
  redisCommandDuration: 'authgw_redis_command_duration_seconds',
  redisErrors: 'authgw_redis_errors_total',
  cacheInvalidations: 'authgw_cache_invalidations_total',
  invalidationLag: 'authgw_invalidation_lag_seconds',
  coherenceModeInfo: 'authgw_coherence_mode_info',
  invalidationBusUp: 'authgw_invalidation_bus_up',
  rateLimitStoreFailures: 'authgw_rate_limit_store_failures_total',
  setCookieProblems: 'authgw_set_cookie_problems_total',
  // single sign-on
  oauthCallbacks: 'authgw_oauth_callbacks_total',
  oauthRedirects: 'authgw_oauth_redirects_total',
  oauthProviderRequestDuration: 'authgw_oauth_provider_request_duration_seconds',
  // the synthetic sign-in probe (docs/adr/0050-sign-in-probe.md)
  probeRuns: 'authgw_probe_runs_total',
  probeLastSuccess: 'authgw_probe_last_success_timestamp_seconds',
  probeStepDuration: 'authgw_probe_step_duration_seconds',
  probeFailures: 'authgw_probe_failures_total',
  probeUp: 'authgw_probe_up',
} as const

/** Prefix of the process metrics prom-client collects (`authgw_process_…`, `authgw_nodejs_…`). */
export const DEFAULT_METRICS_PREFIX = 'authgw_'
