// The invalidation bus: one replica announces that a session, a minted JWT or
// the key set changed; every other replica applies it at once. One interface,
// two transports (Redis pub/sub, PostgreSQL LISTEN/NOTIFY on a dedicated
// connection). Delivery is at most once: a replica whose connection dropped
// may have missed events, so on reconnect it drops its local caches.
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import type { Pool } from 'pg'
import type { Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { SharedStateMetrics } from '../telemetry/metrics/shared-state.ts'
import { timed } from './redis.ts'
import { InvalidationKind, InvalidationOrigin, RedisCommand, RedisOperation } from './vocabulary.ts'

export type InvalidationEvent = {
  kind: InvalidationKind
  id: string
  /** Publication time (ms since the epoch) on the origin replica. */
  ts: number
  /** The replica that published it. */
  origin: string
}

export type TransportHandlers = {
  message(raw: string): void
  /** The connection came back after a loss: events may have been missed. */
  reconnected(): void
  up(isUp: boolean): void
}

export interface InvalidationTransport {
  readonly name: 'redis' | 'postgres'
  start(handlers: TransportHandlers): Promise<void>
  publish(message: string): Promise<void>
  close(): Promise<void>
}

export type InvalidationHandler = (id: string) => void

const KINDS = new Set<string>(Object.values(InvalidationKind))
// An id longer than this is not one the gateway published.
const MAX_ID_LENGTH = 256

export class InvalidationBus {
  /** This replica's name on the bus. */
  readonly origin: string
  readonly #transport: InvalidationTransport
  readonly #metrics: SharedStateMetrics
  readonly #log: Logger
  readonly #handlers = new Map<InvalidationKind, InvalidationHandler[]>()
  readonly #reconnectHandlers: Array<() => void> = []

  constructor(transport: InvalidationTransport, opts: { metrics: SharedStateMetrics; log: Logger; origin?: string }) {
    this.#transport = transport
    this.#metrics = opts.metrics
    this.#log = opts.log
    this.origin = opts.origin ?? randomUUID()
  }

  get transport(): 'redis' | 'postgres' {
    return this.#transport.name
  }

  on(kind: InvalidationKind, handler: InvalidationHandler): void {
    const list = this.#handlers.get(kind) ?? []
    list.push(handler)
    this.#handlers.set(kind, list)
  }

  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.push(handler)
  }

  async start(): Promise<void> {
    await this.#transport.start({
      message: (raw) => this.#receive(raw),
      reconnected: () => {
        this.#log.warn({ event: 'invalidation_bus_reconnected', transport: this.#transport.name }, 'invalidation bus reconnected; local caches dropped (events may have been missed)')
        for (const h of this.#reconnectHandlers) h()
      },
      up: (isUp) => this.#metrics.busUp(isUp),
    })
  }

  /**
   * Apply locally (counted as local) and announce to every other replica. A
   * publish that fails is counted and logged, never thrown: the others then
   * learn within their cache TTL.
   */
  async publish(kind: InvalidationKind, id: string): Promise<void> {
    this.#apply(kind, id)
    this.#metrics.invalidation(kind, InvalidationOrigin.local)
    const event: InvalidationEvent = { kind, id, ts: Date.now(), origin: this.origin }
    try {
      await this.#transport.publish(JSON.stringify(event))
    } catch (err) {
      if (this.#transport.name === 'redis') this.#metrics.redisError(RedisOperation.publish)
      this.#log.warn({ event: 'invalidation_publish_failed', kind, transport: this.#transport.name, err: { message: (err as Error).message } }, 'invalidation not announced; other replicas fall back to their cache TTL')
    }
  }

  close(): Promise<void> {
    return this.#transport.close()
  }

  #receive(raw: string): void {
    let event: Partial<InvalidationEvent>
    try {
      event = JSON.parse(raw) as Partial<InvalidationEvent>
    } catch {
      return
    }
    if (typeof event.kind !== 'string' || !KINDS.has(event.kind) || typeof event.id !== 'string' || event.id.length > MAX_ID_LENGTH) return
    if (event.origin === this.origin) return
    const kind = event.kind as InvalidationKind
    this.#apply(kind, event.id)
    this.#metrics.invalidation(kind, InvalidationOrigin.remote)
    if (typeof event.ts === 'number' && Number.isFinite(event.ts)) this.#metrics.invalidationLag((Date.now() - event.ts) / 1000)
  }

  #apply(kind: InvalidationKind, id: string): void {
    for (const h of this.#handlers.get(kind) ?? []) {
      try {
        h(id)
      } catch (err) {
        this.#log.error({ event: 'invalidation_failed', kind, err: { message: (err as Error).message } }, 'applying an invalidation failed')
      }
    }
  }
}

/** Redis pub/sub: publishes on the command connection, listens on a dedicated subscriber connection. */
export class RedisTransport implements InvalidationTransport {
  readonly name = 'redis'
  readonly #commands: Redis
  readonly #subscriber: Redis
  readonly #channel: string
  readonly #metrics: SharedStateMetrics

  constructor(commands: Redis, subscriber: Redis, channel: string, metrics: SharedStateMetrics) {
    this.#commands = commands
    this.#subscriber = subscriber
    this.#channel = channel
    this.#metrics = metrics
  }

  async start(h: TransportHandlers): Promise<void> {
    let subscribedOnce = false
    let lost = false
    this.#subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) h.message(message)
    })
    this.#subscriber.on('close', () => {
      if (subscribedOnce) lost = true
      h.up(false)
    })
    // ioredis re-subscribes by itself after a reconnect, before 'ready'.
    this.#subscriber.on('ready', () => {
      if (!subscribedOnce) return
      h.up(true)
      if (lost) {
        lost = false
        h.reconnected()
      }
    })
    // Startup does not wait for Redis: a gateway whose Redis is down serves from PostgreSQL.
    void this.#subscriber.subscribe(this.#channel).then(
      () => {
        subscribedOnce = true
        h.up(true)
      },
      () => {
        // ioredis keeps the subscription queued and retries with the connection.
        subscribedOnce = true
        lost = true
      },
    )
  }

  async publish(message: string): Promise<void> {
    await timed(this.#metrics, RedisCommand.publish, () => this.#commands.publish(this.#channel, message))
  }

  async close(): Promise<void> {
    this.#subscriber.disconnect()
  }
}

const PG_CHANNEL = 'authgw_invalidation'
const PG_RETRY_MIN_MS = 250
const PG_RETRY_MAX_MS = 5_000
// LISTEN on a connection whose server vanished (partition, frozen host) hears
// nothing and reports nothing: a heartbeat notices it.
const PG_HEARTBEAT_MS = 5_000

/**
 * PostgreSQL LISTEN/NOTIFY: one dedicated connection listens (a pooled one
 * would be returned to the pool and lose its LISTEN); NOTIFY goes through the
 * pool. Reconnects with backoff after any error.
 */
export class PostgresTransport implements InvalidationTransport {
  readonly name = 'postgres'
  readonly #databaseUrl: string
  readonly #pool: Pool
  readonly #log: Logger
  #client: pg.Client | undefined
  #handlers: TransportHandlers | undefined
  #closed = false
  #connectedOnce = false
  #retryMs = PG_RETRY_MIN_MS
  #timer: NodeJS.Timeout | undefined
  #heartbeat: NodeJS.Timeout | undefined

  constructor(databaseUrl: string, pool: Pool, log: Logger) {
    this.#databaseUrl = databaseUrl
    this.#pool = pool
    this.#log = log
  }

  async start(h: TransportHandlers): Promise<void> {
    this.#handlers = h
    await this.#connect()
  }

  async #connect(): Promise<void> {
    if (this.#closed) return
    const h = this.#handlers as TransportHandlers
    const client = new pg.Client({ connectionString: this.#databaseUrl, keepAlive: true, application_name: 'authgw-listen', connectionTimeoutMillis: 2_000, query_timeout: 2_000 })
    let failed = false
    const fail = (err: unknown) => {
      if (failed || this.#closed) return
      failed = true
      clearInterval(this.#heartbeat)
      h.up(false)
      this.#log.warn({ event: 'invalidation_listen_lost', err: { message: (err as Error).message } }, 'LISTEN connection lost; reconnecting')
      client.removeAllListeners('notification')
      client.end().catch(() => undefined)
      this.#schedule()
    }
    client.on('error', fail)
    client.on('end', () => fail(new Error('connection ended')))
    client.on('notification', (n) => {
      if (n.channel === PG_CHANNEL && n.payload !== undefined) h.message(n.payload)
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${PG_CHANNEL}`)
    } catch (err) {
      fail(err)
      return
    }
    this.#client = client
    this.#retryMs = PG_RETRY_MIN_MS
    h.up(true)
    if (this.#connectedOnce) h.reconnected()
    this.#connectedOnce = true
    this.#heartbeat = setInterval(() => {
      client.query('SELECT 1').catch(fail)
    }, PG_HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  #schedule(): void {
    if (this.#closed) return
    // A first connection that failed still counts: events before it are missed too.
    this.#connectedOnce = true
    const delay = this.#retryMs
    this.#retryMs = Math.min(this.#retryMs * 2, PG_RETRY_MAX_MS)
    this.#timer = setTimeout(() => void this.#connect(), delay)
    this.#timer.unref()
  }

  async publish(message: string): Promise<void> {
    await this.#pool.query('SELECT pg_notify($1, $2)', [PG_CHANNEL, message])
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    clearInterval(this.#heartbeat)
    await this.#client?.end().catch(() => undefined)
  }
}
