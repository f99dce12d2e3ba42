// check-config's look at each SSO provider: the redirect URI to register,
// whether discovery answers with a document for the configured issuer, and
// whether its JWKS answers with signing keys. Never prints the client secret.
import type { OidcProviderConfig } from './config.ts'
import { discoveryUrl, oidcRedirectUri } from './config.ts'

export type CheckLine = { ok: boolean; check: string; detail: string }

const TIMEOUT_MS = 5000

export async function checkOidcProvider(p: OidcProviderConfig, baseUrl: string): Promise<CheckLine[]> {
  const check = `oidc:${p.id}`
  const lines: CheckLine[] = [{ ok: true, check, detail: `redirect URI to register with the provider: ${oidcRedirectUri(baseUrl, p.id)}` }]
  const url = discoveryUrl(p.issuer)
  let doc: Record<string, unknown>
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' })
    if (res.status !== 200) {
      lines.push({ ok: false, check, detail: `discovery ${url} answered ${res.status}` })
      return lines
    }
    doc = (await res.json()) as Record<string, unknown>
  } catch (err) {
    lines.push({ ok: false, check, detail: `discovery ${url} unreachable (${failureCode(err)})` })
    return lines
  }
  const problems: string[] = []
  if (doc.issuer !== p.issuer) problems.push(`its issuer is ${JSON.stringify(doc.issuer)}, not ${JSON.stringify(p.issuer)} (ID tokens would fail with id_token_invalid/issuer)`)
  for (const field of ['authorization_endpoint', 'token_endpoint', 'jwks_uri']) {
    if (typeof doc[field] !== 'string') problems.push(`no ${field}`)
  }
  const methods = doc.code_challenge_methods_supported
  if (p.pkce && Array.isArray(methods) && !methods.includes('S256')) problems.push('PKCE is on but the provider does not list S256 in code_challenge_methods_supported')
  const authMethods = doc.token_endpoint_auth_methods_supported
  if (Array.isArray(authMethods) && !authMethods.includes('client_secret_post')) problems.push('the provider does not list client_secret_post (the method better-auth uses) in token_endpoint_auth_methods_supported')
  lines.push({ ok: problems.length === 0, check, detail: problems.length === 0 ? `discovery ${url} ok` : `discovery ${url}: ${problems.join('; ')}` })
  if (typeof doc.jwks_uri !== 'string') return lines
  try {
    const res = await fetch(doc.jwks_uri, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' })
    const body = (await res.json().catch(() => ({}))) as { keys?: Array<{ use?: string }> }
    const keys = Array.isArray(body.keys) ? body.keys.filter((k) => k.use === undefined || k.use === 'sig').length : 0
    lines.push({ ok: res.ok && keys > 0, check, detail: `jwks ${doc.jwks_uri} answered ${res.status} with ${keys} signing key(s)` })
  } catch (err) {
    lines.push({ ok: false, check, detail: `jwks ${doc.jwks_uri} unreachable (${failureCode(err)})` })
  }
  return lines
}

function failureCode(err: unknown): string {
  const e = err as Error & { cause?: { code?: string } }
  return e.cause?.code ?? e.name
}
