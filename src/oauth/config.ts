// Single sign-on providers: OIDC_PROVIDERS names them, each one's
// OIDC_<ID>_* variables describe it. Parsed and validated with the rest of
// the configuration (config/load.ts), never logged with its client secret.

export type OidcProviderConfig = {
  /** Lower-case id: the callback path segment and the `provider` label. */
  id: string
  /** Issuer URL; discovery is `<issuer>/.well-known/openid-configuration`. */
  issuer: string
  clientId: string
  clientSecret: string
  scopes: string[]
  pkce: boolean
}

export const OIDC_DEFAULT_SCOPES = ['openid', 'email', 'profile'] as const

/** An id that is safe in a URL path, a label value and (upper-cased) an env var name. */
const PROVIDER_ID = /^[a-z][a-z0-9_]{0,31}$/
const PER_PROVIDER = ['ISSUER', 'CLIENT_ID', 'CLIENT_SECRET', 'SCOPES', 'PKCE'] as const

type Env = Record<string, string | undefined>

/** `OIDC_<ID>_<SETTING>` for a provider id. */
export function oidcVar(id: string, setting: (typeof PER_PROVIDER)[number]): string {
  return `OIDC_${id.toUpperCase()}_${setting}`
}

/** Where better-auth's callback for this provider lives (`/api/auth/callback/<id>`). */
export function oidcRedirectUri(baseUrl: string, id: string): string {
  return `${baseUrl}/api/auth/callback/${id}`
}

/** The discovery document URL of an issuer (OpenID Connect Discovery 1.0 §4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
}

export function parseOidcProviders(env: Env, problems: string[], production: boolean): OidcProviderConfig[] {
  const str = (name: string): string | undefined => {
    const v = env[name]
    return v === undefined || v.trim() === '' ? undefined : v.trim()
  }
  const ids = (str('OIDC_PROVIDERS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  const providers: OidcProviderConfig[] = []
  const seen = new Set<string>()
  for (const id of ids) {
    if (!PROVIDER_ID.test(id)) {
      problems.push(`OIDC_PROVIDERS entry ${JSON.stringify(id)} must be a lower-case letter followed by up to 31 letters, digits or underscores`)
      continue
    }
    if (seen.has(id)) {
      problems.push(`OIDC_PROVIDERS names ${id} twice`)
      continue
    }
    seen.add(id)
    const issuerVar = oidcVar(id, 'ISSUER')
    const issuer = str(issuerVar)
    if (issuer === undefined) problems.push(`${issuerVar} is required (provider ${id} is in OIDC_PROVIDERS)`)
    else {
      try {
        const u = new URL(issuer)
        if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push(`${issuerVar} must be an http(s) URL`)
        else if (production && u.protocol === 'http:' && !isLoopback(u.hostname)) problems.push(`${issuerVar} must be https:// when NODE_ENV=production`)
        if (u.search !== '' || u.hash !== '') problems.push(`${issuerVar} must not carry a query or fragment (OpenID Connect Discovery §4)`)
      } catch {
        problems.push(`${issuerVar} is not a valid URL`)
      }
    }
    const clientIdVar = oidcVar(id, 'CLIENT_ID')
    const clientId = str(clientIdVar)
    if (clientId === undefined) problems.push(`${clientIdVar} is required (provider ${id} is in OIDC_PROVIDERS)`)
    const secretVar = oidcVar(id, 'CLIENT_SECRET')
    const clientSecret = str(secretVar)
    if (clientSecret === undefined) problems.push(`${secretVar} is required (provider ${id} is in OIDC_PROVIDERS)`)
    const scopesVar = oidcVar(id, 'SCOPES')
    const scopes = (str(scopesVar) ?? OIDC_DEFAULT_SCOPES.join(' ')).split(/[\s,]+/).filter(Boolean)
    if (!scopes.includes('openid')) problems.push(`${scopesVar} must include openid (got ${JSON.stringify(scopes.join(' '))})`)
    if (scopes.some((s) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))) problems.push(`${scopesVar} has a scope with characters RFC 6749 §3.3 does not allow`)
    const pkceVar = oidcVar(id, 'PKCE')
    const pkceRaw = str(pkceVar)?.toLowerCase()
    let pkce = true
    if (pkceRaw !== undefined) {
      if (['1', 'true', 'on', 'yes'].includes(pkceRaw)) pkce = true
      else if (['0', 'false', 'off', 'no'].includes(pkceRaw)) pkce = false
      else problems.push(`${pkceVar} must be on/off, true/false or 1/0 (got ${JSON.stringify(pkceRaw)})`)
    }
    if (issuer !== undefined && clientId !== undefined && clientSecret !== undefined) {
      providers.push({ id, issuer, clientId, clientSecret, scopes, pkce })
    }
  }
  // A provider's settings without the provider in the list are a typo or a
  // half-finished change: say so instead of silently ignoring them.
  for (const name of Object.keys(env)) {
    const m = /^OIDC_(.+)_(ISSUER|CLIENT_ID|CLIENT_SECRET|SCOPES|PKCE)$/.exec(name)
    if (m && str(name) !== undefined && !seen.has((m[1] as string).toLowerCase())) {
      problems.push(`${name} is set but ${(m[1] as string).toLowerCase()} is not in OIDC_PROVIDERS`)
    }
  }
  return providers
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]'
}
