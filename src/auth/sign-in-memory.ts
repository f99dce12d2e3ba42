// The /api/auth/* step that tells FreshSignIns what this client just got: a
// session cookie from a sign-in or sign-up (and its token), or a sign-out.
import { AuthRoute } from './routes.ts'
import type { AuthResponseStep } from './exchange.ts'
import type { FreshSignIns } from './fresh-sign-ins.ts'
import type { SessionValidator } from './session.ts'

export function rememberSignIns(fresh: FreshSignIns, sessions: SessionValidator): AuthResponseStep {
  return (x) => {
    if (x.status !== 200) return
    const client = () => fresh.clientKey(x.request.ip, x.request.headers['user-agent'])
    if (x.route === AuthRoute.signOut) return fresh.signedOut(client())
    if (x.route !== AuthRoute.signIn && x.route !== AuthRoute.signUp) return
    const setCookie = x.reply.getHeader('set-cookie')
    for (const c of Array.isArray(setCookie) ? setCookie : typeof setCookie === 'string' ? [setCookie] : []) {
      const end = c.indexOf(';')
      const pair = end === -1 ? c : c.slice(0, end)
      const eq = pair.indexOf('=')
      if (eq <= 0 || pair.slice(0, eq).trim() !== sessions.cookieNames.sessionToken) continue
      const verified = sessions.verifyCookie(pair.slice(eq + 1).trim())
      fresh.signedIn(client(), 'token' in verified ? verified.token : undefined)
      return
    }
  }
}
