// Session extension on the gateway's own path, with better-auth's semantics
// because better-auth does it: when a session is due (`updateAge`), the
// gateway calls getSession once, which writes the new `expiresAt` and returns
// the refreshed session cookie (`Max-Age` = `expiresIn`, better-auth's own
// cookie attributes, its cookie cache when enabled), and hands those
// Set-Cookie values to the proxied response. The due check mirrors
// better-auth 1.7's getSession (api/routes/session.ts) so getSession is
// called only when it would write.
import { isAPIError } from 'better-auth/api'
import type { BetterAuthOptions } from 'better-auth'
import { getCookies } from 'better-auth/cookies'
import type { Auth } from './better-auth.ts'

/** better-auth's defaults when `session.expiresIn` / `updateAge` are not set (context/create-context.ts). */
const DEFAULT_EXPIRES_IN_SECONDS = 604_800
const DEFAULT_UPDATE_AGE_SECONDS = 86_400

export type RefreshOutcome =
  /** getSession answered with the session; `setCookie` is empty when it had nothing to write. */
  | { kind: 'ok'; expiresAt: number; setCookie: string[] }
  /** better-auth has no such session (gone, expired, or deleted while extending). */
  | { kind: 'gone' }
  /** The store could not answer or write: nothing changed. */
  | { kind: 'failed' }

export type SessionRefresherHooks = {
  /** getSession failed with a server error (its store failed to read or write). */
  onStoreError?: (err: unknown) => void
}

export class SessionRefresher {
  /** better-auth's "don't remember me" cookie: such sessions are never extended. */
  readonly dontRememberCookie: string
  readonly #auth: Auth
  readonly #expiresInMs: number
  readonly #updateAgeMs: number
  readonly #disabled: boolean
  readonly #hooks: SessionRefresherHooks

  constructor(auth: Auth, hooks: SessionRefresherHooks = {}) {
    this.#auth = auth
    this.#hooks = hooks
    // Read as better-auth reads its options, whatever the literal type of this instance's.
    const session: BetterAuthOptions['session'] = auth.options.session
    this.#expiresInMs = (session?.expiresIn || DEFAULT_EXPIRES_IN_SECONDS) * 1000
    this.#updateAgeMs = (session?.updateAge ?? DEFAULT_UPDATE_AGE_SECONDS) * 1000
    this.#disabled = session?.disableSessionRefresh === true
    this.dontRememberCookie = getCookies(auth.options).dontRememberToken.name
  }

  /** better-auth's `shouldBeUpdated`, and `disableSessionRefresh`. */
  isDue(expiresAt: number, now: number): boolean {
    return !this.#disabled && expiresAt - this.#expiresInMs + this.#updateAgeMs <= now
  }

  async refresh(cookieHeader: string): Promise<RefreshOutcome> {
    let answer: { headers: Headers; response: { session: { expiresAt: Date } } | null }
    try {
      // disableCookieCache: a session-data cookie would otherwise answer
      // without reading (or extending) the stored session.
      answer = await this.#auth.api.getSession({ headers: new Headers({ cookie: cookieHeader }), query: { disableCookieCache: true }, returnHeaders: true })
    } catch (err) {
      // 401 FAILED_TO_GET_SESSION: the row vanished between its read and its update.
      if (isAPIError(err) && err.statusCode === 401) return { kind: 'gone' }
      this.#hooks.onStoreError?.(err)
      return { kind: 'failed' }
    }
    if (answer.response === null) return { kind: 'gone' }
    return { kind: 'ok', expiresAt: new Date(answer.response.session.expiresAt).getTime(), setCookie: answer.headers.getSetCookie() }
  }
}
