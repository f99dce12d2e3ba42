// The audit trail of better-auth's answers: one `audit` log line per sign-in,
// sign-up, JWT issued and sign-out. A step of the /api/auth/* mount.
import { TokenVia } from '../reasons.ts'
import { signInReason } from './accounting.ts'
import { errorCode } from './exchange.ts'
import type { AuthExchange } from './exchange.ts'
import { AuthRoute } from './routes.ts'

export function auditAuthEvent(x: AuthExchange): void {
  const { request, status } = x
  switch (x.route) {
    case AuthRoute.signIn: {
      const ok = status === 200
      request.log.info({ event: 'sign_in', outcome: ok ? 'success' : 'failure', reason: signInReason(status), code: ok ? undefined : errorCode(x.body) }, 'audit')
      break
    }
    case AuthRoute.signUp:
      if (status === 200) request.log.info({ event: 'sign_up', outcome: 'success' }, 'audit')
      break
    case AuthRoute.token:
      if (status === 200) request.log.info({ event: 'token_issued', via: TokenVia.token_endpoint }, 'audit')
      break
    case AuthRoute.signOut:
      if (status === 200) request.log.info({ event: 'signed_out' }, 'audit')
      break
  }
}
