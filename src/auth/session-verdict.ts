// The gateway's own reading of the session on a better-auth session route:
// checked before better-auth answers /token and /get-session (an outage is a
// 503 before better-auth spends its connect timeout on it), and read again
// when better-auth refuses or fails, so a refusal is labelled by the store.
import type { FastifyRequest } from 'fastify'
import { AuthDisagreementReason, NoCredentialReason, SessionReason } from '../reasons.ts'
import type { SessionNullReason } from '../reasons.ts'
import type { FreshSignIns } from './fresh-sign-ins.ts'
import { duplicateCookieReason, noCookieReason } from './guard.ts'
import { parseCookieHeader } from './session.ts'
import type { SessionValidator } from './session.ts'

export type SessionVerdict = SessionReason | 'valid'

export type SessionVerdicts = {
  /**
   * Session state as the gateway sees it. `revalidate` re-reads a session the
   * cache holds as valid, so the verdict is the store's own. Throws
   * StoreUnavailableError when the store cannot answer.
   */
  verdict(request: FastifyRequest, revalidate?: boolean): Promise<SessionVerdict>
  /**
   * Why better-auth refused (or failed) a session route, decided by the store.
   * better-auth's session middleware turns any error while loading the session
   * into a 401 and getSession into a 500, so neither says anything about the
   * credential until the store has answered: a known-bad session keeps its
   * reason, a session the gateway saw as valid is read again, and when that
   * read also finds it valid the two disagree (`auth_disagrees`).
   */
  refusalReason(request: FastifyRequest, known: SessionVerdict | undefined): Promise<SessionNullReason>
}

export function createSessionVerdicts(sessions: SessionValidator, fresh?: FreshSignIns): SessionVerdicts {
  const secureCookie = sessions.cookieNames.sessionToken.startsWith('__Secure-')

  async function verdict(request: FastifyRequest, revalidate = false): Promise<SessionVerdict> {
    const cookies = parseCookieHeader(request.headers.cookie)
    const result = await sessions.validate(cookies, { revalidate })
    if (result === undefined) {
      // Same classification as the guard; on a better-auth endpoint the client is a session client.
      const reason = noCookieReason(request, cookies.size > 0, secureCookie, { sessions, fresh })
      return reason === NoCredentialReason.no_credentials ? SessionReason.no_cookie : reason
    }
    return result.ok ? 'valid' : duplicateCookieReason(request, sessions, result.reason).reason
  }

  async function refusalReason(request: FastifyRequest, known: SessionVerdict | undefined): Promise<SessionNullReason> {
    const v = known === undefined || known === 'valid' ? await verdict(request, true) : known
    return v === 'valid' ? AuthDisagreementReason.auth_disagrees : v
  }

  return { verdict, refusalReason }
}
