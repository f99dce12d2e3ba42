// better-auth's own generic OAuth plugin, configured from OIDC_* settings
// (docs/sso.md): discovery, PKCE, nonce-bound and JWKS-verified ID tokens are
// better-auth's; the gateway only adds the session column naming the provider.
import type { GenericOAuthConfig } from 'better-auth/plugins'
import type { OidcProviderConfig } from './config.ts'
import { discoveryUrl } from './config.ts'

/** Session column and JWT claim naming the SSO provider of a session (absent for email sign-in). */
export const IDP_CLAIM = 'idp'

const CALLBACK_PATH = /^\/callback\/([^/]+)$/

export function ssoOptions(providers: readonly OidcProviderConfig[]) {
  if (providers.length === 0) return undefined
  const ids = new Set(providers.map((p) => p.id))
  return {
    providers: providers.map(
      (p): GenericOAuthConfig => ({
        providerId: p.id,
        discoveryUrl: discoveryUrl(p.issuer),
        clientId: p.clientId,
        clientSecret: p.clientSecret,
        scopes: p.scopes,
        pkce: p.pkce,
        // An ID token that does not verify against the provider's JWKS,
        // issuer, audience and nonce never signs anyone in.
        requireIdTokenVerification: true,
        // The account is only created or linked for an address the provider
        // vouches for (`email_verified`); otherwise email_not_verified.
        requireEmailVerification: true,
        // Sign-out ends the gateway's session only (as oauth2-proxy does by
        // default); better-auth would otherwise send the browser on to the
        // provider's end-session page.
        disableProviderLogout: true,
      }),
    ),
    sessionFields: { [IDP_CLAIM]: { type: 'string', required: false, input: false } } as const,
    /** databaseHooks.session.create.before: sessions created by a provider callback carry its id. */
    tagSession: async (session: Record<string, unknown>, ctx: { path?: string; params?: Record<string, string | undefined> } | null) => {
      // ctx.path is the route template (`/callback/:id`), the id is in params.
      const id = ctx?.params?.id
      if (ctx?.path === undefined || !CALLBACK_PATH.test(ctx.path) || id === undefined || !ids.has(id)) return undefined
      return { data: { ...session, [IDP_CLAIM]: id } }
    },
  }
}
