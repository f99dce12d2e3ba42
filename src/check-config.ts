// `npm run check-config`: the deploy-time check. Validates the environment
// (a weak BETTER_AUTH_SECRET fails here whatever NODE_ENV says), connects to
// the database, reports migration state, proves the secret by a test signing
// with the stored keys, and checks that the JWKS URL answers with keys. Exit 0
// when all is well, 1 otherwise; never prints a secret. Its output is JSON
// lines: one per check ({event: "check", check, ok, detail}), then a summary.
import { getCookies } from 'better-auth/cookies'
import { createAuth } from './auth/better-auth.ts'
import { configuredCookieProblems } from './auth/set-cookie-audit.ts'
import { ConfigError, deriveUrlDefaults, loadConfig } from './config/load.ts'
import type { Config } from './config/load.ts'
import { migrationState } from './db/migrate.ts'
import { checkConnectivity, createPool, describeDatabase } from './db/pool.ts'
import { SigningState, trySigning } from './health/signing-check.ts'
import { secretFingerprint } from './telemetry/fingerprint.ts'
import { createLogger } from './telemetry/logging.ts'
import { checkOidcProvider } from './oauth/discovery-check.ts'

type Line = { ok: boolean; check: string; detail: string }

export async function checkConfig(env: Record<string, string | undefined>): Promise<Line[]> {
  const lines: Line[] = []
  let config: Config
  try {
    config = loadConfig(env, { strictSecret: true })
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    for (const p of err.problems) lines.push({ ok: false, check: 'config', detail: p })
    return lines
  }
  const missing = (['DATABASE_URL', 'BETTER_AUTH_SECRET', 'BETTER_AUTH_URL', 'UPSTREAM_URL'] as const).filter((n) => !env[n])
  if (missing.length > 0) {
    lines.push({ ok: false, check: 'config', detail: `not set (development defaults are not checked here): ${missing.join(', ')}` })
    return lines
  }
  const resolved = deriveUrlDefaults({
    ...config,
    databaseUrl: config.databaseUrl as string,
    secret: config.secret as string,
    baseUrl: config.baseUrl as string,
    upstreamUrl: config.upstreamUrl as string,
  })
  lines.push({ ok: true, check: 'config', detail: `valid; secret fingerprint ${secretFingerprint(resolved.secret, resolved.issuer)}, issuer ${resolved.issuer}, audience ${resolved.audience}` })
  for (const provider of resolved.oidc) lines.push(...(await checkOidcProvider(provider, resolved.baseUrl)))

  const pool = createPool(resolved.databaseUrl, { ...resolved.pool, max: 2 })
  try {
    await checkConnectivity(pool, resolved.databaseUrl)
    lines.push({ ok: true, check: 'database', detail: `reachable at ${describeDatabase(resolved.databaseUrl)}` })
    const auth = createAuth(resolved, { pool, log: createLogger('silent') })
    const cookieProblems = configuredCookieProblems(getCookies(auth.options).sessionToken, {
      baseUrl: resolved.baseUrl,
      trustedOrigins: resolved.trustedOrigins,
      sessionExpiresInSeconds: resolved.session.expiresInSeconds,
    })
    lines.push(
      cookieProblems.length === 0
        ? { ok: true, check: 'cookies', detail: `${getCookies(auth.options).sessionToken.name}: browsers on ${new URL(resolved.baseUrl).origin} will keep it` }
        : { ok: false, check: 'cookies', detail: cookieProblems.map((f) => `${f.problem} (${f.cookie} for ${f.host})`).join(', ') },
    )
    const state = await migrationState(auth)
    const pending = [...state.pendingTables.map((t) => `table ${t}`), ...state.pendingColumns.map((c) => `column ${c}`)]
    lines.push({
      ok: true,
      check: 'migrations',
      detail: pending.length === 0 ? 'up to date' : `pending (applied at startup): ${pending.join(', ')}`,
    })
    // Only against a live stored key: with none, signJWT would create one
    // encrypted under the secret being checked, which may be the wrong one.
    const live = state.pendingTables.includes('jwks')
      ? 0
      : Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM jwks WHERE "expiresAt" IS NULL OR "expiresAt" > now()')).rows[0]?.n ?? 0)
    if (live === 0) {
      lines.push({ ok: true, check: 'signing', detail: 'no signing key stored yet (the gateway creates one at its first start)' })
    } else {
      const signing = await trySigning(auth)
      lines.push(
        signing.state === SigningState.ok
          ? { ok: true, check: 'signing', detail: 'BETTER_AUTH_SECRET decrypts the stored signing keys (test signing succeeded)' }
          : { ok: false, check: 'signing', detail: signing.detail ?? signing.state },
      )
    }
  } catch (err) {
    lines.push({ ok: false, check: 'database', detail: (err as Error).message })
  } finally {
    await pool.end().catch(() => undefined)
  }

  try {
    const res = await fetch(resolved.jwksUrl, { signal: AbortSignal.timeout(3000) })
    const body = (await res.json().catch(() => ({}))) as { keys?: unknown[] }
    const n = Array.isArray(body.keys) ? body.keys.length : 0
    lines.push({ ok: res.ok && n > 0, check: 'jwks', detail: `${resolved.jwksUrl} answered ${res.status} with ${n} key(s)` })
  } catch (err) {
    const code = ((err as Error).cause as { code?: string } | undefined)?.code ?? (err as Error).name
    lines.push({ ok: false, check: 'jwks', detail: `${resolved.jwksUrl} unreachable (${code})` })
  }
  return lines
}

/** One JSON object a line, like every other line the project writes: each check, then a summary. */
export function reportLines(lines: Line[]): string[] {
  const failed = lines.filter((l) => !l.ok).map((l) => l.check)
  return [
    ...lines.map((l) => JSON.stringify({ event: 'check', check: l.check, ok: l.ok, detail: l.detail })),
    JSON.stringify({ event: 'check_config', ok: failed.length === 0, checks: lines.length, failed, msg: failed.length === 0 ? 'every check passed' : `failed: ${[...new Set(failed)].join(', ')}` }),
  ]
}

if (import.meta.main) {
  const lines = await checkConfig(process.env)
  process.stdout.write(`${reportLines(lines).join('\n')}\n`)
  process.exit(lines.every((l) => l.ok) ? 0 : 1)
}
