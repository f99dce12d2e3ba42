// The probe's own account: created on first use with a generated password,
// kept in the database encrypted with a key derived from BETTER_AUTH_SECRET
// (AES-256-GCM), so every replica that takes over the probe signs in with it
// and the password is never in a log, a metric, a span or the environment.
// A secret that changed cannot decrypt it: the account is then replaced.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import type { Pool } from 'pg'
import type { Auth } from '../auth/better-auth.ts'

export type ProbeCredentials = { email: string; password: string; userId: string }

const TABLE = 'authgw_probe_account'
const VERSION = 'v1'

export class ProbeAccount {
  readonly #pool: Pool
  readonly #auth: Auth
  readonly #key: Buffer
  #cached: ProbeCredentials | undefined

  constructor(deps: { pool: Pool; auth: Auth; secret: string }) {
    this.#pool = deps.pool
    this.#auth = deps.auth
    this.#key = Buffer.from(hkdfSync('sha256', deps.secret, 'authgw', 'authgw probe account v1', 32))
  }

  /** The account's credentials, creating the account on first use. Call it from one prober at a time (the probe lock). */
  async credentials(): Promise<ProbeCredentials> {
    if (this.#cached !== undefined) return this.#cached
    await this.#pool.query(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (id integer PRIMARY KEY CHECK (id = 1), user_id text NOT NULL, email text NOT NULL, password text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    )
    const row = (await this.#pool.query<{ user_id: string; email: string; password: string }>(`SELECT user_id, email, password FROM ${TABLE} WHERE id = 1`)).rows[0]
    if (row !== undefined) {
      const password = this.#decrypt(row.password)
      if (password !== undefined) {
        this.#cached = { email: row.email, password, userId: row.user_id }
        return this.#cached
      }
      // Encrypted under another secret: replace the account.
      await this.#deleteUser(row.user_id)
    }
    this.#cached = await this.#create()
    return this.#cached
  }

  /** Forget the cached credentials (the next run reads them again). */
  reset(): void {
    this.#cached = undefined
  }

  async #create(): Promise<ProbeCredentials> {
    const ctx = await this.#auth.$context
    const email = `probe-${randomBytes(6).toString('hex')}@authgw-probe.invalid`
    const password = randomBytes(24).toString('base64url')
    // What better-auth's sign-up does, without the session sign-up opens.
    const hash = await ctx.password.hash(password)
    const user = await ctx.internalAdapter.createUser({ email, name: 'authgw sign-in probe', emailVerified: true }, { method: 'email-password' })
    await ctx.internalAdapter.linkAccount({ userId: user.id, providerId: 'credential', accountId: user.id, password: hash })
    await this.#pool.query(
      `INSERT INTO ${TABLE} (id, user_id, email, password) VALUES (1, $1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, email = EXCLUDED.email, password = EXCLUDED.password, created_at = now()`,
      [user.id, email, this.#encrypt(password)],
    )
    return { email, password, userId: user.id }
  }

  async #deleteUser(userId: string): Promise<void> {
    const ctx = await this.#auth.$context
    await ctx.internalAdapter.deleteUser(userId).catch(() => undefined)
  }

  #encrypt(plain: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return [VERSION, iv.toString('base64url'), ct.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }

  #decrypt(stored: string): string | undefined {
    const [version, iv, ct, tag] = stored.split('.')
    if (version !== VERSION || iv === undefined || ct === undefined || tag === undefined) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'))
      decipher.setAuthTag(Buffer.from(tag, 'base64url'))
      return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8')
    } catch {
      return undefined
    }
  }
}
