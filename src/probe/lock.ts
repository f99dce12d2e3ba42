// One prober per database: a session-level PostgreSQL advisory lock held on a
// connection of its own (not from the pool). The replica holding it probes;
// when its process or connection dies, the server drops the lock and the next
// replica to try takes it over (docs/adr/0050).
import pg from 'pg'

// Arbitrary but fixed: every replica must ask for the same lock ("authgw" + 1).
const PROBE_LOCK_ID = '27432215569200897'

export class ProbeLock {
  readonly #databaseUrl: string
  readonly #connectTimeoutMs: number
  #client: pg.Client | undefined
  #held = false

  constructor(databaseUrl: string, connectTimeoutMs: number) {
    this.#databaseUrl = databaseUrl
    this.#connectTimeoutMs = connectTimeoutMs
  }

  get held(): boolean {
    return this.#held
  }

  /** Whether this replica holds the lock now, trying to take it when it does not. Throws when the database cannot answer. */
  async tryHold(): Promise<boolean> {
    if (this.#held && this.#client !== undefined) return true
    const client = new pg.Client({
      connectionString: this.#databaseUrl,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      query_timeout: this.#connectTimeoutMs,
      keepAlive: true,
      application_name: 'authgw-probe-lock',
    })
    // A lost connection loses the lock: the next tick asks again.
    client.on('error', () => this.#drop(client))
    client.on('end', () => this.#drop(client))
    try {
      await client.connect()
      const r = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [PROBE_LOCK_ID])
      if (r.rows[0]?.locked === true) {
        this.#client = client
        this.#held = true
        return true
      }
    } catch (err) {
      await client.end().catch(() => undefined)
      throw err
    }
    await client.end().catch(() => undefined)
    return false
  }

  async release(): Promise<void> {
    const client = this.#client
    this.#client = undefined
    this.#held = false
    // Closing the session releases its advisory locks.
    if (client !== undefined) await client.end().catch(() => undefined)
  }

  #drop(client: pg.Client): void {
    if (this.#client !== client) return
    this.#client = undefined
    this.#held = false
  }
}
