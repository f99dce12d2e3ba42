// The closed vocabularies of shared state (label values, log fields, event
// kinds). Add values; never rename them.

/** How a replica keeps its caches coherent with the others. */
export const CoherenceMode = {
  /** REDIS_URL set: secondary storage, shared rate limit, pub/sub invalidation. */
  redis: 'redis',
  /** PostgreSQL LISTEN/NOTIFY on a dedicated connection. */
  postgres: 'postgres',
  /** DATABASE_LISTEN=off and no Redis: other replicas learn only when their cache TTL ends. */
  none: 'none',
} as const
export type CoherenceMode = (typeof CoherenceMode)[keyof typeof CoherenceMode]

/** What an invalidation event invalidates. */
export const InvalidationKind = {
  /** A session ended: its cached lookup (id = SHA-256 of the token, never the token). */
  session: 'session',
  /** The upstream JWT minted for a session (id = session id). */
  jwt: 'jwt',
  /** A signing key was created or removed (id = kid when known). */
  jwks: 'jwks',
} as const
export type InvalidationKind = (typeof InvalidationKind)[keyof typeof InvalidationKind]

export const InvalidationOrigin = {
  local: 'local',
  remote: 'remote',
} as const
export type InvalidationOrigin = (typeof InvalidationOrigin)[keyof typeof InvalidationOrigin]

/** Redis commands the gateway sends (the `command` label). */
export const RedisCommand = {
  get: 'get',
  set: 'set',
  del: 'del',
  incr: 'incr',
  publish: 'publish',
  scan: 'scan',
} as const
export type RedisCommand = (typeof RedisCommand)[keyof typeof RedisCommand]

/** What the gateway was doing when Redis failed (the `operation` label). */
export const RedisOperation = {
  /** better-auth secondary-storage read (falls back to PostgreSQL). */
  storage_read: 'storage_read',
  /** better-auth secondary-storage write (best effort; deletes are repaired). */
  storage_write: 'storage_write',
  /** The gateway's own session read (falls back to PostgreSQL). */
  session_lookup: 'session_lookup',
  /** Shared rate-limit counter (policy per route, ADR 0030). */
  rate_limit: 'rate_limit',
  /** Publishing an invalidation (other replicas fall back to their cache TTL). */
  publish: 'publish',
  /** The connection itself (lost, refused). */
  connection: 'connection',
} as const
export type RedisOperation = (typeof RedisOperation)[keyof typeof RedisOperation]

/** What a rate-limit decision did when its shared store failed (ADR 0030). */
export const RateLimitStorePolicy = {
  /** Credential routes: counted on this replica alone (the limit holds per replica). */
  local_limit: 'local_limit',
  /** Every other route: allowed. */
  open: 'open',
} as const
export type RateLimitStorePolicy = (typeof RateLimitStorePolicy)[keyof typeof RateLimitStorePolicy]

/** Where better-auth keeps rate-limit counters (RATE_LIMIT_STORAGE). */
export const RateLimitStorage = {
  redis: 'redis',
  database: 'database',
  memory: 'memory',
} as const
export type RateLimitStorage = (typeof RateLimitStorage)[keyof typeof RateLimitStorage]

export const valuesOf = <T extends Record<string, string>>(o: T): Array<T[keyof T]> => Object.values(o) as Array<T[keyof T]>
