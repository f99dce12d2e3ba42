// Single sign-on wiring, only when OIDC providers are configured:
// the observer that watches better-auth's OAuth client, and the mount's SSO
// routes. server.ts registers it; everything SSO lives under src/oauth/.
import type { Logger } from 'pino'
import type { Auth } from '../auth/better-auth.ts'
import { AUTH_BASE_PATH } from '../auth/better-auth.ts'
import type { ResolvedConfig } from '../config/load.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { SsoRoutes } from './mount-hook.ts'
import { OAuthObserver } from './observer.ts'

export type Sso = { observer: OAuthObserver; routes: SsoRoutes }

export function createSso(config: ResolvedConfig, deps: { auth: Auth; metrics: Metrics; log: Logger }): Sso | undefined {
  if (config.oidc.length === 0) return undefined
  const { metrics, log } = deps
  const observer = new OAuthObserver({
    providers: config.oidc,
    authContext: deps.auth.$context as Promise<{ socialProviders: unknown }>,
    observe: (provider, endpoint, seconds) => metrics.observeOAuthProvider(provider, endpoint, seconds),
    log,
  })
  // Endpoints are learnt in the background; the first callback waits for them.
  void observer.start().catch((err: unknown) => log.warn({ err: { message: (err as Error).message } }, 'SSO observer start failed'))
  return { observer, routes: new SsoRoutes({ observer, metrics, basePath: AUTH_BASE_PATH }) }
}
