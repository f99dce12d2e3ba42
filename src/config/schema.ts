// Every environment variable the gateway reads, with its default and meaning.
// docs/configuration.md's table is checked against this list by
// test/readme.test.ts. Names continue the deployment authgw grew out of:
// add, never rename.

export type Setting = {
  name: string
  /** Human-readable default for docs/configuration.md; `—` when there is none. */
  default: string
  description: string
  secret?: boolean
}

export const settings: readonly Setting[] = [
  { name: 'NODE_ENV', default: '`development`', description: '`production` removes every development default, requires `HOST`, and makes a weak secret fatal.' },
  { name: 'DATABASE_URL', default: 'embedded PostgreSQL under `.data/pg` (dev only)', description: 'PostgreSQL connection URL for better-auth and session lookups.', secret: true },
  { name: 'BETTER_AUTH_SECRET', default: 'generated once into `.data/secret` (dev only)', description: 'Signs session cookies and encrypts JWT signing keys; every replica must share it. Generate it: `openssl rand -base64 32`. In production (and in `check-config`) a secret shorter than 32 characters, better-auth\'s built-in default, or one a strength estimator (zxcvbn) can guess (words, phrases, sequences, repeats, keyboard walks, l33t, hex or base64 of such text) is refused.', secret: true },
  { name: 'BETTER_AUTH_URL', default: '`http://localhost:$PORT` (dev only)', description: 'Public base URL of the gateway (scheme decides `Secure`/`__Secure-` cookies). No trailing slash.' },
  { name: 'BETTER_AUTH_ISSUER', default: 'origin of `BETTER_AUTH_URL`', description: '`iss` of every JWT minted and the only issuer accepted.' },
  { name: 'BETTER_AUTH_AUDIENCE', default: 'origin of `BETTER_AUTH_URL`', description: '`aud` of every JWT minted and the only audience accepted.' },
  { name: 'BETTER_AUTH_JWKS_URL', default: '`$BETTER_AUTH_URL/api/auth/jwks`', description: 'The JWKS URL external verifiers use (announced in logs and `authgw_config_info`).' },
  { name: 'UPSTREAM_URL', default: 'built-in demo API on a loopback port (dev only)', description: 'Base URL of the protected API that `/api/*` is proxied to. An `https://` upstream\'s certificate is verified (a private CA goes in `NODE_EXTRA_CA_CERTS`).' },
  { name: 'PORT', default: '`3000`', description: 'Gateway listen port.' },
  { name: 'HOST', default: '`127.0.0.1` outside production; required in production', description: 'Gateway listen address. `0.0.0.0` for every interface (the Docker image sets it).' },
  { name: 'METRICS_PORT', default: '`9464`', description: 'Port of the separate `/metrics` listener (never proxied, never behind auth).' },
  { name: 'METRICS_HOST', default: 'same as `HOST`', description: 'Listen address of the metrics listener (unauthenticated: prefer an internal interface).' },
  { name: 'TRUSTED_ORIGINS', default: 'none (the `BETTER_AUTH_URL` origin is always trusted)', description: 'Comma-separated origins allowed for CORS with credentials and better-auth origin checks. Outside production a loopback `BETTER_AUTH_URL` also trusts its other loopback spellings (`localhost`, `127.0.0.1`, `[::1]` on the same port).' },
  { name: 'TRUST_PROXY', default: '`false`', description: 'Fastify `trustProxy`: `true`, a hop count, or comma-separated addresses/CIDRs whose `X-Forwarded-*` are believed.' },
  { name: 'PUBLIC_PATHS', default: 'none', description: 'Comma-separated path prefixes under `/api/` proxied without authentication, matched by whole segments: `/api/public` covers `/api/public` and `/api/public/…`, not `/api/public-admin`.' },
  { name: 'REDIS_URL', default: 'none (coherence over PostgreSQL `LISTEN/NOTIFY`)', description: 'Redis for state shared between replicas (`redis://` or `rediss://` for TLS): better-auth secondary storage (sessions stay in PostgreSQL too), the shared sign-in rate limit, and cross-replica invalidation over pub/sub. Without it replicas stay coherent over PostgreSQL `LISTEN/NOTIFY` and rate limits live in PostgreSQL (production) or memory (development). See docs/replicas.md.', secret: true },
  { name: 'REDIS_KEY_PREFIX', default: '`authgw:`', description: 'Prefix of every Redis key and of the pub/sub channel. Replicas of one deployment share it; deployments sharing one Redis need different ones.' },
  { name: 'DATABASE_LISTEN', default: '`on`', description: 'Without `REDIS_URL`: announce and receive invalidations over PostgreSQL `LISTEN/NOTIFY` on one dedicated connection. `off` where LISTEN cannot work (a transaction-pooling PgBouncer): coherence mode `none`, other replicas honour a sign-out within `SESSION_CACHE_TTL_SECONDS`.' },
  { name: 'RATE_LIMIT_STORAGE', default: '`redis` with `REDIS_URL`, else `database` in production, else `memory`', description: "Where better-auth's rate-limit counters live: `redis` and `database` are shared by every replica (the limit holds across all of them together), `memory` is per process. `redis` requires `REDIS_URL`." },
  { name: 'DB_POOL_MAX', default: '`10`', description: 'Maximum PostgreSQL connections in the pool.' },
  { name: 'DB_POOL_IDLE_TIMEOUT_MS', default: '`10000`', description: 'Idle time after which a pooled connection is closed.' },
  { name: 'DB_CONNECT_TIMEOUT_MS', default: '`2000`', description: 'Wait for a pooled connection (or a new one) before the lookup fails with 503 `store_unavailable`.' },
  { name: 'DB_STATEMENT_TIMEOUT_MS', default: '`5000`', description: 'Per-statement timeout for session lookups.' },
  { name: 'SESSION_COOKIE_CACHE_MAX_AGE', default: '`0` (off)', description: "better-auth's signed session-data cookie cache, in seconds. A cached session outlives revocation by up to this long." },
  { name: 'SESSION_CACHE_TTL_SECONDS', default: '`30`', description: "The gateway's in-memory session cache. Revocation on another instance takes effect within this TTL (same instance: at once)." },
  { name: 'SESSION_CACHE_MAX_ENTRIES', default: '`10000`', description: 'Bound on the session cache.' },
  { name: 'SESSION_EXPIRES_IN_SECONDS', default: '`604800` (7 days)', description: "Session lifetime (better-auth `session.expiresIn`) and the session cookie's `Max-Age`. At most 34560000 (400 days, the cookie limit)." },
  { name: 'SESSION_UPDATE_AGE_SECONDS', default: '`86400` (1 day)', description: "better-auth `session.updateAge`: once a session is this old since its last extension, the next `/api/auth/get-session` or proxied `/api/*` request extends it to `SESSION_EXPIRES_IN_SECONDS` and re-sets the cookie (not for \"don't remember me\" sessions). Must be less than `SESSION_EXPIRES_IN_SECONDS`; `0` extends on every request." },
  { name: 'FRESH_SIGN_IN_WINDOW_SECONDS', default: '`300`', description: 'How long after a sign-in a missing cookie is `cookie_not_returned` (this client — a keyed hash of client IP and User-Agent — just received one) and a missing session is `fresh_session_not_found` (this instance issued it). Per instance, at most 50 000 clients and 50 000 sessions (≈ 20 MiB when full); `0` turns both off. At most 86400.' },
  { name: 'JWT_ALGORITHMS', default: '`EdDSA`', description: 'Accepted JWT algorithms (comma list); the first one signs new keys.' },
  { name: 'JWT_EXPIRATION_SECONDS', default: '`900`', description: 'Lifetime of JWTs from `/api/auth/token` and of the JWT the gateway mints for the upstream.' },
  { name: 'JWT_CACHE_MAX_ENTRIES', default: '`10000`', description: 'Bound on the verify-once cache of accepted JWTs (keyed by SHA-256 of the whole token).' },
  { name: 'JWKS_REFRESH_INTERVAL_SECONDS', default: '`300`', description: 'Background JWKS refresh interval.' },
  { name: 'JWKS_REFRESH_COOLDOWN_SECONDS', default: '`30`', description: 'Minimum time between refreshes triggered by an unknown `kid`. Inside it an unknown `kid` is looked up by id in the `jwks` table (at most 20 look-ups a second, misses remembered until the next refresh): a key another replica created since the last refresh is fetched at once, a junk `kid` stays `kid_unknown`.' },
  { name: 'JWKS_ROTATION_INTERVAL_SECONDS', default: '`0` (no rotation)', description: 'better-auth key rotation interval; a new key is minted on the first signing after expiry.' },
  { name: 'JWKS_GRACE_PERIOD_SECONDS', default: '`2592000` (30 days)', description: 'How long rotated-out public keys stay published. Must be at least `JWT_EXPIRATION_SECONDS`.' },
  { name: 'UPSTREAM_TIMEOUT_MS', default: '`30000`', description: 'Upstream response-headers and body timeout; exceeded → 504 `timeout`.' },
  { name: 'UPSTREAM_CONNECT_TIMEOUT_MS', default: '`5000`', description: 'Upstream connect timeout; exceeded → 502 `connect_error`.' },
  { name: 'UPSTREAM_CONNECTIONS', default: '`128`', description: 'Keep-alive connections to the upstream.' },
  { name: 'UPSTREAM_KEEP_ALIVE_TIMEOUT_MS', default: '`4000`', description: "Idle time after which the gateway closes a kept-alive upstream connection; keep it below the upstream's own idle timeout (Node's default is 5 s). An upstream's `Keep-Alive: timeout=N` is believed instead (less 2 s)." },
  { name: 'IDENTITY_HEADERS_DENYLIST', default: 'see "Header policy"', description: 'Extra comma-separated header names or `prefix*` patterns stripped from client requests before proxying.' },
  { name: 'AUTH_BODY_LIMIT_BYTES', default: '`65536`', description: 'Largest request body accepted on `/api/auth/*` (larger → 413).' },
  { name: 'PROXY_BODY_LIMIT_BYTES', default: '`10485760`', description: 'Largest request body proxied upstream (larger → 413).' },
  { name: 'MAX_HEADER_SIZE', default: '`16384`', description: 'Largest request header block (larger → 431).' },
  { name: 'HEADERS_TIMEOUT_MS', default: '`10000`', description: 'Time a client has to send the request headers (slowloris cut-off) → 408; checked at least once a second.' },
  { name: 'REQUEST_TIMEOUT_MS', default: '`60000`', description: 'Time a client has to send the whole request → 408; checked at least once a second.' },
  { name: 'KEEP_ALIVE_TIMEOUT_MS', default: '`72000`', description: 'Idle keep-alive time (above common load-balancer idle timeouts of 60 s); the socket closes 1 s after the advertised timeout.' },
  { name: 'SHUTDOWN_DRAIN_MS', default: '`10000`', description: 'On SIGTERM, how long in-flight requests may take before the process exits.' },
  { name: 'SHUTDOWN_DELAY_MS', default: '`0`', description: 'On SIGTERM, how long /readyz reports 503 before the listener closes (lets load balancers notice).' },
  { name: 'COOKIE_DOMAIN', default: 'none (host-only cookies)', description: 'Share the session cookie with sibling subdomains: `example.com` sends it to `app.example.com` and `api.example.com` (better-auth `crossSubDomainCookies`). Must be the host of `BETTER_AUTH_URL` or a parent of it, and not a public suffix (the startup cookie audit warns).' },
  { name: 'COOKIE_SAME_SITE', default: '`lax`', description: '`lax`, `strict` or `none` for better-auth\'s cookies. `none` (a cross-site app) needs an https `BETTER_AUTH_URL`: refused in production, warned elsewhere (better-call adds `Secure` to `SameSite=None` cookies, so over http the audit says `secure_over_http`). A browser that blocks third-party cookies also needs `COOKIE_PARTITIONED=true` for a page on another site.' },
  { name: 'COOKIE_PARTITIONED', default: '`false`', description: '`true` adds `Partitioned` (CHIPS) to better-auth\'s cookies: a page on another site (with `COOKIE_SAME_SITE=none`) or another site\'s iframe keeps its session where third-party cookies are blocked; the cookie lives in that site\'s partition. Needs `Secure` (an https `BETTER_AUTH_URL`; better-call adds it).' },
  { name: 'COOKIE_PREFIX', default: '`better-auth`', description: 'better-auth `cookiePrefix`: the session cookie is `<prefix>.session_token` (`__Secure-` in front over https). The gateway reads the cookie under the same name.' },
  { name: 'AUTH_RATE_LIMIT', default: '`on` in production, else `off`', description: "better-auth's rate limiter (sign-in: 3 per 10 s per client IP)." },
  { name: 'AUTH_DELETE_USER', default: '`off`', description: "better-auth's `POST /api/auth/delete-user`: a signed-in user deletes their own account (with their password, or within a day of signing in). Every session of the user ends on every replica, and the JWTs minted for them are refused (`session_revoked`)." },
  { name: 'DEMO_APP', default: '`on` outside production', description: 'Serve the demo sign-in page at `/`.' },
  { name: 'OIDC_PROVIDERS', default: 'none (no single sign-on)', description: 'Comma-separated ids of OpenID Connect providers offered for sign-in (lower-case letter, then letters, digits, `_`). Each id needs the `OIDC_<ID>_*` settings below; see docs/sso.md.' },
  { name: 'OIDC_<ID>_ISSUER', default: '—', description: "The provider's issuer URL; its discovery document (`/.well-known/openid-configuration`) and JWKS are fetched at startup and by `check-config`. `https://` in production." },
  { name: 'OIDC_<ID>_CLIENT_ID', default: '—', description: 'The client id registered with the provider. Register the redirect URI `$BETTER_AUTH_URL/api/auth/callback/<id>` (printed at startup and by `check-config`).' },
  { name: 'OIDC_<ID>_CLIENT_SECRET', default: '—', description: 'The client secret registered with the provider (sent in the token request body); never logged.', secret: true },
  { name: 'OIDC_<ID>_SCOPES', default: '`openid email profile`', description: 'Space- or comma-separated scopes requested; must include `openid`.' },
  { name: 'OIDC_<ID>_PKCE', default: '`on`', description: 'Send a PKCE S256 challenge (RFC 7636). Turn off only for a provider that rejects it.' },
  { name: 'PROBE_INTERVAL_SECONDS', default: '`0` (off)', description: 'Seconds between runs of the synthetic sign-in probe (sign in, session, cookie call, token, JWKS verification, Bearer call, sign-out, revocation) through `PROBE_URL`; one replica per database runs it. `0` turns it off; otherwise at least 5.' },
  { name: 'PROBE_URL', default: '`BETTER_AUTH_URL`', description: 'Base URL the probe calls: the public address as this replica reaches it, so it crosses the load balancer as a user does; a `BETTER_AUTH_JWKS_URL` under `BETTER_AUTH_URL` is fetched through it too. No trailing slash.' },
  { name: 'PROBE_PATH', default: '`/api/me`', description: 'Protected path the probe calls with its cookie and with its JWT; must answer 2xx to a signed-in user. Under `/api/`, not under `/api/auth/`.' },
  { name: 'PROBE_STEP_TIMEOUT_MS', default: '`5000`', description: 'Time each probe step may take before it fails with reason `timeout`.' },
  { name: 'TRACE_DENIALS', default: '`on`', description: "With tracing on: keep the trace of every 401, 403 and 5xx whatever the sampler decided (its access line and exemplars name it; [ADR 0040](adr/0040-trace-every-denial.md)). Costs the recording of every request the sampler drops (spans built, then discarded when the request is allowed). `off`: the sampler alone decides, a dropped request is not recorded, and a denial is traced only when sampled. Read by the tracing bootstrap; no effect without tracing." },
  { name: 'LOG_LEVEL', default: '`info`', description: 'pino log level.' },
  { name: 'LOG_SYNC', default: '`false`', description: '`true` writes every log line to stdout before the request completes. Default: 4 KiB batches, written at least every 250 ms and flushed at exit (SIGKILL can lose the last batch).' },
]

export const settingNames: ReadonlySet<string> = new Set(settings.map((s) => s.name))
