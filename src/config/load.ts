// Validate the whole environment at once and return a frozen config, or throw
// one ConfigError that lists every problem. No side effects: development
// defaults that need the disk or a process (embedded PostgreSQL, the generated
// secret, the demo upstream) are filled in by dev-defaults.ts, not here.
import { AuthgwError } from '../errors.ts'
import { secretWeakness } from './secret-strength.ts'
import { parseOidcProviders } from '../oauth/config.ts'
import type { OidcProviderConfig } from '../oauth/config.ts'
import { RateLimitStorage } from '../shared-state/vocabulary.ts'

export type Config = {
  production: boolean
  databaseUrl: string | undefined
  redisUrl: string | undefined
  redisKeyPrefix: string
  secret: string | undefined
  baseUrl: string | undefined
  issuer: string | undefined
  audience: string | undefined
  jwksUrl: string | undefined
  upstreamUrl: string | undefined
  port: number
  host: string
  metricsPort: number
  metricsHost: string
  trustedOrigins: string[]
  trustProxy: boolean | number | string[]
  publicPaths: string[]
  pool: { max: number; idleTimeoutMs: number; connectTimeoutMs: number; statementTimeoutMs: number }
  session: {
    cookieCacheMaxAge: number
    cacheTtlSeconds: number
    cacheMaxEntries: number
    expiresInSeconds: number
    updateAgeSeconds: number
    freshSignInWindowSeconds: number
  }
  jwt: {
    algorithms: string[]
    expirationSeconds: number
    cacheMaxEntries: number
    jwksRefreshIntervalSeconds: number
    jwksRefreshCooldownSeconds: number
    rotationIntervalSeconds: number
    gracePeriodSeconds: number
  }
  upstream: { timeoutMs: number; connectTimeoutMs: number; connections: number; keepAliveTimeoutMs: number }
  identityHeadersDenylist: string[]
  limits: {
    authBodyBytes: number
    proxyBodyBytes: number
    maxHeaderSize: number
    headersTimeoutMs: number
    requestTimeoutMs: number
    keepAliveTimeoutMs: number
  }
  shutdown: { drainMs: number; delayMs: number }
  /** Session cookie attributes handed to better-auth; checked against BETTER_AUTH_URL by the startup cookie audit. */
  cookies: { domain: string | undefined; sameSite: 'lax' | 'strict' | 'none'; partitioned: boolean; prefix: string | undefined }
  /** The synthetic sign-in probe; `url` undefined means BETTER_AUTH_URL. */
  probe: { intervalSeconds: number; url: string | undefined; path: string; stepTimeoutMs: number }
  authRateLimit: boolean
  /** better-auth's `/delete-user` (self-service account deletion). */
  authDeleteUser: boolean
  /** LISTEN/NOTIFY invalidation when there is no Redis. */
  databaseListen: boolean
  rateLimitStorage: RateLimitStorage
  demoApp: boolean
  logLevel: string
  logSync: boolean
  /** Keep every denial's and 5xx's trace whatever the sampler said (read by the tracing bootstrap from TRACE_DENIALS; validated here). */
  traceDenials: boolean
  /** Single sign-on providers (empty: no SSO). */
  oidc: readonly OidcProviderConfig[]
}

/** A config whose development defaults have been filled in. */
export type ResolvedConfig = Config & {
  databaseUrl: string
  secret: string
  baseUrl: string
  issuer: string
  audience: string
  jwksUrl: string
  upstreamUrl: string
}

export class ConfigError extends AuthgwError {
  readonly problems: string[]
  constructor(problems: string[]) {
    super('AUTHGW_ERR_CONFIG', `invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** RFC 6265bis caps cookie lifetimes at 400 days; better-call refuses a larger Max-Age. */
const MAX_COOKIE_AGE_SECONDS = 34_560_000
const ALGORITHMS = new Set(['EdDSA', 'ES256', 'RS256', 'PS256'])
const MIN_PROBE_INTERVAL_SECONDS = 5
const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

type Env = Record<string, string | undefined>

/** Why a trailing slash breaks each URL setting that refuses one. */
const TRAILING_SLASH = {
  BETTER_AUTH_URL: 'better-auth would answer 404 on every /api/auth route',
  UPSTREAM_URL: 'every proxied path would reach the upstream with a double slash',
  PROBE_URL: 'every probe call would go to a path with a double slash',
} as const

/** The development listen address: nothing outside this machine can connect. */
export const DEV_HOST = '127.0.0.1'

export type LoadOptions = {
  /** Refuse a weak BETTER_AUTH_SECRET outside production too (check-config). */
  strictSecret?: boolean
}

export function loadConfig(env: Env, opts: LoadOptions = {}): Readonly<Config> {
  const problems: string[] = []
  const production = env.NODE_ENV === 'production'
  const str = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const int = (name: string, dflt: number, min = 0, max = Number.MAX_SAFE_INTEGER): number => {
    const v = str(name)
    if (v === undefined) return dflt
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name} must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`)
      return dflt
    }
    return Number(v)
  }
  const bool = (name: string, dflt: boolean): boolean => {
    const v = str(name)?.toLowerCase()
    if (v === undefined) return dflt
    if (['1', 'true', 'on', 'yes'].includes(v)) return true
    if (['0', 'false', 'off', 'no'].includes(v)) return false
    problems.push(`${name} must be on/off, true/false or 1/0 (got ${JSON.stringify(v)})`)
    return dflt
  }
  const list = (name: string): string[] =>
    (str(name) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  const url = (name: string, opts: { required: boolean; noTrailingSlash?: keyof typeof TRAILING_SLASH }): string | undefined => {
    const v = str(name)
    if (v === undefined) {
      if (opts.required) problems.push(`${name} is required when NODE_ENV=production`)
      return undefined
    }
    let parsed: URL
    try {
      parsed = new URL(v)
    } catch {
      // Never echo the value: a DATABASE_URL carries a password.
      problems.push(`${name} is not a valid URL`)
      return undefined
    }
    if (name === 'REDIS_URL') {
      if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') problems.push(`${name} must be a redis:// or rediss:// URL`)
      else if (parsed.hostname === '') problems.push(`${name} must name a host`)
      return v
    }
    if (name === 'DATABASE_URL') {
      if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') problems.push(`${name} must be a postgres:// URL`)
      return v
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') problems.push(`${name} must be an http(s) URL`)
    if (opts.noTrailingSlash !== undefined && v.endsWith('/')) {
      problems.push(`${opts.noTrailingSlash} must not end with a slash (${TRAILING_SLASH[opts.noTrailingSlash]})`)
    }
    return v
  }

  const databaseUrl = url('DATABASE_URL', { required: production })
  const redisUrl = url('REDIS_URL', { required: false })
  const baseUrl = url('BETTER_AUTH_URL', { required: production, noTrailingSlash: 'BETTER_AUTH_URL' })
  const upstreamUrl = url('UPSTREAM_URL', { required: production, noTrailingSlash: 'UPSTREAM_URL' })
  const jwksUrl = url('BETTER_AUTH_JWKS_URL', { required: false })
  const probeUrl = url('PROBE_URL', { required: false, noTrailingSlash: 'PROBE_URL' })
  const probeInterval = int('PROBE_INTERVAL_SECONDS', 0, 0, 86_400)
  if (probeInterval > 0 && probeInterval < MIN_PROBE_INTERVAL_SECONDS) {
    problems.push(`PROBE_INTERVAL_SECONDS must be 0 (off) or at least ${MIN_PROBE_INTERVAL_SECONDS} (got ${probeInterval})`)
  }
  const probePath = str('PROBE_PATH') ?? '/api/me'
  if (!probePath.startsWith('/api/') || probePath.startsWith('/api/auth/') || probePath === '/api/auth' || /[?#\s]/.test(probePath)) {
    problems.push('PROBE_PATH must be a path under /api/ (not under /api/auth/), without query string or fragment')
  }

  const secret = str('BETTER_AUTH_SECRET')
  if (secret === undefined) {
    if (production) problems.push('BETTER_AUTH_SECRET is required when NODE_ENV=production')
  } else if (production || opts.strictSecret === true) {
    // Outside production any secret is accepted: development and tests use
    // short readable ones, and the check's dictionaries cost a few hundred ms.
    const weakness = secretWeakness(secret)
    if (weakness) problems.push(`BETTER_AUTH_SECRET is too weak: ${weakness}`)
  }

  const issuer = str('BETTER_AUTH_ISSUER')
  const audience = str('BETTER_AUTH_AUDIENCE')

  const trustedOrigins: string[] = []
  for (const origin of list('TRUSTED_ORIGINS')) {
    try {
      const u = new URL(origin)
      if (u.origin === 'null') throw new Error('opaque')
      trustedOrigins.push(u.origin)
    } catch {
      problems.push(`TRUSTED_ORIGINS entry ${JSON.stringify(origin)} is not an origin like https://app.example.com`)
    }
  }

  const algorithms = list('JWT_ALGORITHMS')
  for (const alg of algorithms) {
    if (!ALGORITHMS.has(alg)) problems.push(`JWT_ALGORITHMS: ${JSON.stringify(alg)} is not one of ${[...ALGORITHMS].join(', ')}`)
  }

  const publicPaths = list('PUBLIC_PATHS')
  for (const p of publicPaths) {
    if (!p.startsWith('/api/') || p.startsWith('/api/auth')) problems.push(`PUBLIC_PATHS entry ${JSON.stringify(p)} must start with /api/ and not be under /api/auth`)
  }

  const cookieDomain = str('COOKIE_DOMAIN')?.toLowerCase().replace(/^\./, '')
  if (cookieDomain !== undefined && !/^[a-z0-9.-]+$/.test(cookieDomain)) problems.push('COOKIE_DOMAIN must be a host name like example.com (no scheme, port or path)')
  const sameSite = (str('COOKIE_SAME_SITE') ?? 'lax').toLowerCase()
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none') problems.push('COOKIE_SAME_SITE must be lax, strict or none')
  // Browsers drop a SameSite=None cookie without Secure, and Secure follows BETTER_AUTH_URL's scheme.
  if (sameSite === 'none' && production && baseUrl !== undefined && !baseUrl.startsWith('https://')) {
    problems.push('COOKIE_SAME_SITE=none requires an https BETTER_AUTH_URL (browsers drop SameSite=None cookies without Secure)')
  }
  const cookiePrefix = str('COOKIE_PREFIX')
  if (cookiePrefix !== undefined && !/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/.test(cookiePrefix)) problems.push('COOKIE_PREFIX must be 1-64 letters, digits, dots, dashes or underscores')

  const logLevel = str('LOG_LEVEL') ?? 'info'
  if (!LOG_LEVELS.has(logLevel)) problems.push(`LOG_LEVEL must be one of ${[...LOG_LEVELS].join(', ')}`)

  // Production names its listen address (0.0.0.0 inside a container, an
  // interface on a host); development listens on loopback only.
  const host = str('HOST') ?? (production ? undefined : DEV_HOST)
  if (host === undefined) problems.push('HOST is required when NODE_ENV=production (0.0.0.0 for every interface, e.g. in a container; 127.0.0.1 behind a local proxy)')
  const config: Config = {
    production,
    databaseUrl,
    redisUrl,
    redisKeyPrefix: redisKeyPrefix(str('REDIS_KEY_PREFIX'), problems),
    secret,
    baseUrl,
    issuer,
    audience,
    jwksUrl,
    upstreamUrl,
    port: int('PORT', 3000, 0, 65535),
    host: host ?? DEV_HOST,
    metricsPort: int('METRICS_PORT', 9464, 0, 65535),
    metricsHost: str('METRICS_HOST') ?? host ?? DEV_HOST,
    trustedOrigins,
    trustProxy: parseTrustProxy(str('TRUST_PROXY'), problems),
    publicPaths,
    pool: {
      max: int('DB_POOL_MAX', 10, 2, 1000),
      idleTimeoutMs: int('DB_POOL_IDLE_TIMEOUT_MS', 10_000),
      connectTimeoutMs: int('DB_CONNECT_TIMEOUT_MS', 2_000, 1),
      statementTimeoutMs: int('DB_STATEMENT_TIMEOUT_MS', 5_000, 1),
    },
    session: {
      cookieCacheMaxAge: int('SESSION_COOKIE_CACHE_MAX_AGE', 0),
      cacheTtlSeconds: int('SESSION_CACHE_TTL_SECONDS', 30),
      cacheMaxEntries: int('SESSION_CACHE_MAX_ENTRIES', 10_000, 1),
      expiresInSeconds: int('SESSION_EXPIRES_IN_SECONDS', 604_800, 1, MAX_COOKIE_AGE_SECONDS),
      updateAgeSeconds: int('SESSION_UPDATE_AGE_SECONDS', 86_400, 0, MAX_COOKIE_AGE_SECONDS),
      freshSignInWindowSeconds: int('FRESH_SIGN_IN_WINDOW_SECONDS', 300, 0, 86_400),
    },
    jwt: {
      algorithms: algorithms.length > 0 ? algorithms : ['EdDSA'],
      expirationSeconds: int('JWT_EXPIRATION_SECONDS', 900, 60),
      cacheMaxEntries: int('JWT_CACHE_MAX_ENTRIES', 10_000, 1),
      jwksRefreshIntervalSeconds: int('JWKS_REFRESH_INTERVAL_SECONDS', 300, 1),
      jwksRefreshCooldownSeconds: int('JWKS_REFRESH_COOLDOWN_SECONDS', 30, 0),
      rotationIntervalSeconds: int('JWKS_ROTATION_INTERVAL_SECONDS', 0),
      gracePeriodSeconds: int('JWKS_GRACE_PERIOD_SECONDS', 2_592_000),
    },
    upstream: {
      timeoutMs: int('UPSTREAM_TIMEOUT_MS', 30_000, 1),
      connectTimeoutMs: int('UPSTREAM_CONNECT_TIMEOUT_MS', 5_000, 1),
      connections: int('UPSTREAM_CONNECTIONS', 128, 1),
      keepAliveTimeoutMs: int('UPSTREAM_KEEP_ALIVE_TIMEOUT_MS', 4_000, 1),
    },
    identityHeadersDenylist: list('IDENTITY_HEADERS_DENYLIST').map((h) => h.toLowerCase()),
    limits: {
      authBodyBytes: int('AUTH_BODY_LIMIT_BYTES', 65_536, 1024),
      proxyBodyBytes: int('PROXY_BODY_LIMIT_BYTES', 10_485_760, 1024),
      maxHeaderSize: int('MAX_HEADER_SIZE', 16_384, 1024),
      headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 1),
      requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 60_000, 1),
      keepAliveTimeoutMs: int('KEEP_ALIVE_TIMEOUT_MS', 72_000, 1),
    },
    shutdown: { drainMs: int('SHUTDOWN_DRAIN_MS', 10_000), delayMs: int('SHUTDOWN_DELAY_MS', 0) },
    cookies: {
      domain: cookieDomain,
      sameSite: sameSite === 'strict' || sameSite === 'none' ? sameSite : 'lax',
      partitioned: bool('COOKIE_PARTITIONED', false),
      prefix: cookiePrefix,
    },
    probe: { intervalSeconds: probeInterval, url: probeUrl, path: probePath, stepTimeoutMs: int('PROBE_STEP_TIMEOUT_MS', 5_000, 100, 60_000) },
    authRateLimit: bool('AUTH_RATE_LIMIT', production),
    authDeleteUser: bool('AUTH_DELETE_USER', false),
    databaseListen: bool('DATABASE_LISTEN', true),
    rateLimitStorage: rateLimitStorage(str('RATE_LIMIT_STORAGE'), { redis: redisUrl !== undefined, production }, problems),
    demoApp: bool('DEMO_APP', !production),
    logLevel,
    logSync: bool('LOG_SYNC', false),
    traceDenials: bool('TRACE_DENIALS', true),
    oidc: parseOidcProviders(env, problems, production),
  }
  const { expiresInSeconds, updateAgeSeconds, cacheTtlSeconds } = config.session
  // better-auth extends a session once expiresAt - expiresIn + updateAge has
  // passed; with updateAge >= expiresIn that moment is at or after expiry.
  if (updateAgeSeconds >= expiresInSeconds) {
    problems.push(
      `SESSION_UPDATE_AGE_SECONDS (${updateAgeSeconds}) must be less than SESSION_EXPIRES_IN_SECONDS (${expiresInSeconds}): otherwise a session expires before it is ever extended`,
    )
  }
  if (cacheTtlSeconds >= expiresInSeconds) {
    problems.push(
      `SESSION_CACHE_TTL_SECONDS (${cacheTtlSeconds}) must be less than SESSION_EXPIRES_IN_SECONDS (${expiresInSeconds}): a revocation on another instance would take longer than a whole session lifetime to take effect`,
    )
  }
  if (config.jwt.gracePeriodSeconds < config.jwt.expirationSeconds) {
    // A rotated-out key must stay published until the last token it signed has expired.
    problems.push(`JWKS_GRACE_PERIOD_SECONDS (${config.jwt.gracePeriodSeconds}) must be at least JWT_EXPIRATION_SECONDS (${config.jwt.expirationSeconds}): tokens signed just before a rotation would fail verification with kid_unknown`)
  }
  if (config.limits.headersTimeoutMs > config.limits.requestTimeoutMs) {
    problems.push('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS')
  }
  // better-auth turns its usage telemetry on when this variable is set (any
  // value but "false"), whatever its options say. The gateway never phones
  // home, and it does not rewrite the environment to enforce that: it refuses.
  const telemetry = env.BETTER_AUTH_TELEMETRY
  if (telemetry !== undefined && telemetry !== '' && telemetry !== 'false') {
    problems.push('BETTER_AUTH_TELEMETRY is set: authgw never sends better-auth usage telemetry; unset it (or set it to false)')
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(config)
}

function redisKeyPrefix(v: string | undefined, problems: string[]): string {
  if (v === undefined) return 'authgw:'
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(v)) problems.push('REDIS_KEY_PREFIX must be 1-64 letters, digits or : _ . -')
  return v
}

function rateLimitStorage(v: string | undefined, has: { redis: boolean; production: boolean }, problems: string[]): RateLimitStorage {
  if (v === undefined) return has.redis ? RateLimitStorage.redis : has.production ? RateLimitStorage.database : RateLimitStorage.memory
  const known = Object.values(RateLimitStorage) as string[]
  if (!known.includes(v)) {
    problems.push(`RATE_LIMIT_STORAGE must be one of ${known.join(', ')}`)
    return RateLimitStorage.memory
  }
  if (v === RateLimitStorage.redis && !has.redis) problems.push('RATE_LIMIT_STORAGE=redis requires REDIS_URL')
  return v as RateLimitStorage
}

function parseTrustProxy(v: string | undefined, problems: string[]): boolean | number | string[] {
  if (v === undefined || v === 'false') return false
  if (v === 'true') return true
  if (/^\d+$/.test(v)) return Number(v)
  const parts = v.split(',').map((s) => s.trim()).filter(Boolean)
  if (parts.some((p) => !/^[0-9a-fA-F:.]+(\/\d+)?$/.test(p) && !['loopback', 'linklocal', 'uniquelocal'].includes(p))) {
    problems.push('TRUST_PROXY must be true, false, a hop count, or a comma list of addresses/CIDRs')
  }
  return parts
}

/** Fill issuer, audience and JWKS URL from BETTER_AUTH_URL once the required URLs are known. */
export function deriveUrlDefaults(
  config: Config & { databaseUrl: string; secret: string; baseUrl: string; upstreamUrl: string },
): ResolvedConfig {
  const origin = new URL(config.baseUrl).origin
  return Object.freeze({
    ...config,
    issuer: config.issuer ?? origin,
    audience: config.audience ?? origin,
    jwksUrl: config.jwksUrl ?? `${config.baseUrl}/api/auth/jwks`,
  })
}
