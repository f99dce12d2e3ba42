// What each closed reason means, its likely cause and the first thing to
// check: the one source for the docs/reasons.md tables (test/readme.test.ts
// compares them) and for the alert texts (alerts/src/ renders them into the
// annotation templates). A reason whose text differs by mechanism is keyed by
// mechanism: `bad_signature` of a session cookie is a secret problem, of a
// bearer JWT a key problem; `jwks_unavailable` on the session path means the
// signing key cannot be decrypted, on the JWT path that no verification keys
// could be loaded.
import { Mechanism, OAuthCallbackReason, UnauthorizedReason, UnavailableReason, UpstreamFailureReason, valuesOf } from './reasons.ts'

export type ReasonGuide = {
  /** What the gateway saw. */
  meaning: string
  /** Why it usually happens. */
  cause: string
  /** The first thing on-call checks. */
  check: string
}

type ByMechanism = { readonly session: ReasonGuide; readonly jwt: ReasonGuide }
type Entry = ReasonGuide | ByMechanism

export const unauthorizedGuide = {
  no_credentials: {
    meaning: 'neither a Bearer token nor a session cookie',
    cause: 'a client that never signed in (curl, scanners, health checkers); server runtimes, mobile apps and browsers get their own reasons',
    check: 'the routes and user agents of these requests: scanners and health checkers are expected, a first-party client is not',
  },
  no_cookie: {
    meaning: 'a cookie client (a browser, or other cookies present) without the session cookie',
    cause: 'cookie not stored or not sent: `credentials: "include"` missing, `Secure` cookie over http, cookie Domain',
    check: 'the `Set-Cookie` of a sign-in response through the load balancer (Domain, Path, Secure) and the access line\'s `cookieNames`',
  },
  cross_site_no_cookie: {
    meaning: 'no session cookie on a request the browser marked `Sec-Fetch-Site: cross-site`',
    cause: '`SameSite=Lax` cookies are not sent on cross-site fetches, and a browser that blocks third-party cookies drops `SameSite=None` ones too: serve the app same-site, or set `COOKIE_SAME_SITE=none` and `COOKIE_PARTITIONED=true` with an https `BETTER_AUTH_URL`',
    check: 'the access line\'s `origin` and `secFetchSite`: which app calls the gateway from another site',
  },
  cookie_not_returned: {
    meaning: 'this client (same IP and User-Agent) received a session cookie from a sign-in within `FRESH_SIGN_IN_WINDOW_SECONDS` and now calls without one',
    cause: 'the cookie was refused or not sent back: `Secure` over http, a `Domain` the page is not under, `SameSite` on a cross-site app, `credentials: "include"` missing, a client without a cookie jar',
    check: 'the access line\'s `secFetchSite`, `origin`, `clientKind` and `sinceSignInSeconds`, and `authgw_set_cookie_problems_total` for the sign-in\'s `Set-Cookie`',
  },
  credentials_omitted: {
    meaning: 'a same-site browser `fetch` (`Sec-Fetch-Mode: cors`) that carried no cookies at all',
    cause: 'the page calls the gateway on another origin of its site without `credentials: "include"` (fetch) or `withCredentials` (XHR, axios)',
    check: 'the calling page (the access line\'s `origin`): its fetch options and its HTTP client\'s defaults',
  },
  server_side_no_cookie: {
    meaning: 'a server runtime (Node, undici, Next.js, Deno, Bun, python-requests …, by User-Agent, no `Sec-Fetch-*`) without the session cookie',
    cause: 'an SSR page, server action or backend calls the gateway without forwarding the browser\'s `Cookie` header',
    check: 'the server code that calls the gateway: it must forward the incoming `Cookie` header (or send a Bearer JWT)',
  },
  mobile_no_cookie: {
    meaning: 'an Expo / React Native client (`expo-origin` header, OkHttp, CFNetwork or Dalvik User-Agent) without the session cookie',
    cause: 'native HTTP stacks keep no browser cookie jar: the app does not store the cookie from sign-in and send it back',
    check: 'the app\'s better-auth client: the Expo plugin (`@better-auth/expo`) with its secure cookie storage, or a Bearer JWT',
  },
  duplicate_session_cookie: {
    meaning: 'the session cookie name arrived more than once and the first value (the one better-auth and the gateway honour) was refused',
    cause: 'a host-only and a `Domain` cookie of one name (a changed `COOKIE_DOMAIN`, an app on a parent domain), or cookie tossing from a sibling subdomain',
    check: 'the access line\'s `sessionCookieCount` and `firstCookieReason`; clear the stale cookie (same name, both Domain variants) and keep one cookie Domain',
  },
  session_data_without_token: {
    meaning: 'better-auth\'s session-data (cookie cache) cookie arrived without the session-token cookie',
    cause: 'a proxy, CDN or framework folded several `Set-Cookie` headers into one or dropped one',
    check: 'the raw response of a sign-in through every proxy in front of the gateway: one `Set-Cookie` header per cookie',
  },
  cookie_name_mismatch: {
    meaning: 'a session cookie under another name (`__Secure-` vs plain, another `cookiePrefix`)',
    cause: '`BETTER_AUTH_URL` scheme differs from how the app is reached; two apps with different prefixes',
    check: '`authgw_config_info{cookie_prefix}` per replica and the access line\'s `cookieNames`',
  },
  malformed_cookie: {
    meaning: 'the cookie has no valid signature part',
    cause: 'a hand-built or truncated cookie; the unsigned token from a sign-in body used as cookie',
    check: 'which client builds the cookie: it must send the signed cookie from `Set-Cookie`, not the token from the sign-in body',
  },
  bad_signature: {
    session: {
      meaning: 'cookie HMAC does not match this instance\'s secret',
      cause: '`BETTER_AUTH_SECRET` differs between instances or environments, or was rotated',
      check: '`authgw_config_info{secret_fingerprint}` across replicas and whether it began with a deploy or a secret rotation',
    },
    jwt: {
      meaning: 'signature does not verify',
      cause: 'tampered token; keys differ between environments',
      check: 'the failing token\'s `iss` and `kid` (trace attributes) against `GET /api/auth/jwks` of this environment',
    },
  },
  session_not_found: {
    meaning: 'valid signature, no session row',
    cause: 'signed out or revoked, database reset, another environment\'s database',
    check: '`authgw_sessions_revoked_total` and whether the database was reset, restored or switched',
  },
  fresh_session_not_found: {
    meaning: 'valid signature, no session row, for a session this instance issued within `FRESH_SIGN_IN_WINDOW_SECONDS`',
    cause: 'the store lost or has not yet got a session written seconds ago: read-replica lag, secondary-storage eviction, replicas on different databases',
    check: 'replication lag of the database the gateway reads and that every replica\'s `DATABASE_URL` points at the database better-auth writes',
  },
  session_expired: {
    meaning: 'the session row has expired',
    cause: 'idle longer than the session lifetime; clock or timezone problems',
    check: 'the session lifetime setting and the clocks of the gateway and database hosts',
  },
  user_not_found: {
    meaning: 'the session\'s user row is gone',
    cause: 'user deleted while sessions remained',
    check: 'recent user deletions, and whether their sessions were deleted with them',
  },
  auth_disagrees: {
    meaning: 'a better-auth endpoint refused a session that the gateway, reading the store again, found valid',
    cause: "better-auth failed inside while the store answered reads: a failed session-extension write (read-only database, failover), a better-auth version skew; see the log line's better-auth `code` and better-auth's own error log",
    check: 'better-auth\'s error lines (`component: "better-auth"`) around these requests and whether the database accepts writes (read-only replica, failover in progress)',
  },
  malformed: {
    meaning: 'not a well-formed compact JWS with the required claims',
    cause: 'an opaque session token sent as Bearer; a truncated token',
    check: 'what the clients send as Bearer: it must be the JWT from `/api/auth/token`, not the session token',
  },
  alg_not_allowed: {
    meaning: 'algorithm not in `JWT_ALGORITHMS` (including `none` and HS256)',
    cause: 'a token from another issuer; an algorithm-confusion attempt',
    check: 'the token\'s `alg` (trace attribute `authgw.jwt.alg`) against `JWT_ALGORITHMS` and who sends it',
  },
  kid_unknown: {
    meaning: 'no key with this `kid`, even after a refresh',
    cause: 'key rotation with a JWKS from another database; a foreign token',
    check: 'that `GET /api/auth/jwks` serves the failing `kid` (trace attribute `authgw.jwt.kid`) and each replica\'s JWKS age',
  },
  expired: {
    meaning: '`exp` is past (5 s tolerance)',
    cause: 'client not refreshing tokens (15-minute default lifetime); clock skew',
    check: 'whether clients fetch new tokens (`authgw_tokens_issued_total{via="token_endpoint"}`) and the hosts\' clocks',
  },
  not_yet_valid: {
    meaning: '`nbf` is in the future',
    cause: 'clock skew between issuer and gateway',
    check: 'the clock offset (NTP) between the token issuer and the gateway hosts',
  },
  issuer_mismatch: {
    meaning: '`iss` differs from `BETTER_AUTH_ISSUER`',
    cause: 'config drift after a deploy; preview hosts with their own base URL',
    check: '`authgw_config_info{issuer}` per replica against the failing token\'s `iss`',
  },
  audience_mismatch: {
    meaning: '`aud` differs from `BETTER_AUTH_AUDIENCE`',
    cause: 'config drift; a token minted for another API',
    check: '`authgw_config_info{audience}` per replica against the failing token\'s `aud`',
  },
  session_revoked: {
    meaning: 'a valid JWT whose session (its `sid` claim) has ended: signed out, revoked, password changed, user deleted or expired',
    cause: 'a client still sending the JWT it fetched before signing out or being revoked (every replica refuses it within a second)',
    check: 'the audit line `event: "session_revoked"` for that session and the client: after a sign-out it must drop its JWT and sign in again',
  },
  invalid_credentials: {
    meaning: 'sign-in with a wrong email or password',
    cause: 'typos; credential stuffing (see the sign-in alert)',
    check: 'the failure share of `authgw_sign_in_attempts_total` and the sources in the edge logs',
  },
  auth_rejected: {
    meaning: 'any other 401 from a better-auth endpoint',
    cause: 'see the log line\'s better-auth `code`',
    check: 'the better-auth `code` in the access lines of these requests',
  },
  upstream_rejected: {
    meaning: 'the gateway allowed the request, the upstream answered 401',
    cause: 'the upstream verifies with another JWKS, issuer or audience',
    check: 'the upstream\'s JWKS URL, issuer and audience against `authgw_config_info` of the gateway',
  },
} as const satisfies Record<UnauthorizedReason, Entry>

export const unavailableGuide = {
  store_unavailable: {
    meaning: 'the session store or its pool cannot answer',
    cause: 'PostgreSQL down, failing over or out of connections; the pool exhausted',
    check: '`authgw_db_pool_connections` (waiting above 0: exhausted; total 0: no connection) and PostgreSQL itself',
  },
  jwks_unavailable: {
    session: {
      meaning: 'a valid session, but the JWT for the upstream could not be signed',
      cause: 'the signing key was encrypted with another `BETTER_AUTH_SECRET` and cannot be decrypted',
      check: '`authgw_token_issue_failures_total{reason="signing_failed"}` and `authgw_config_info{secret_fingerprint}` per replica',
    },
    jwt: {
      meaning: 'a bearer JWT whose key is not loaded, and the keys cannot be fetched',
      cause: 'the key store (PostgreSQL) unreachable, or the `jwks` table missing or empty',
      check: '`authgw_jwks_refreshes_total{outcome="failure"}`, `authgw_db_errors_total{operation="jwks_fetch"}` and `authgw_jwks_keys`',
    },
  },
  provider_unavailable: {
    meaning: "an SSO provider's discovery, token, JWKS or userinfo endpoint did not answer (refused, timed out, 5xx) during a callback",
    cause: 'the identity provider down or unreachable from the gateway (egress firewall, DNS, proxy); never the user\'s fault',
    check: '`authgw_oauth_provider_request_duration_seconds{provider,endpoint}` and `npm run check-config` from a gateway host (it fetches discovery and JWKS)',
  },
} as const satisfies Record<UnavailableReason, Entry>

/** SSO callback reasons, mechanism oauth: docs/sso.md's reasons table is checked against this. */
export const oauthGuide = {
  state_mismatch: {
    meaning: "the callback's `state` has no matching state cookie and stored state (cookie missing, different, expired or the state tampered with)",
    cause: 'the state cookie was not sent back: the callback reached another host or scheme than the sign-in (`BETTER_AUTH_URL` differs from the address users use), cookies blocked, the flow took over 10 minutes, or the link was replayed',
    check: "the log line's `cookieNames` (is `better-auth.state` there?), `secFetchSite` and `host` against `BETTER_AUTH_URL`",
  },
  pkce_verifier_missing: {
    meaning: 'the provider requires PKCE and the authorization request or code exchange carried no valid code verifier',
    cause: '`OIDC_<ID>_PKCE=off` for a provider whose client requires PKCE; a proxy rewriting the authorization URL',
    check: '`OIDC_<ID>_PKCE` against the client\'s PKCE setting at the provider, and the log line\'s `providerError`',
  },
  redirect_uri_mismatch: {
    meaning: 'the provider refused the redirect URI: not registered exactly, or not the one the code was issued for',
    cause: 'the registered redirect URI differs by scheme, host, port, path or a trailing slash from `$BETTER_AUTH_URL/api/auth/callback/<id>`',
    check: 'the redirect URI printed at startup and by `npm run check-config` against the client registration at the provider',
  },
  invalid_grant: {
    meaning: 'the provider refused the authorization code: expired, already used, or issued to another client',
    cause: 'a callback URL replayed (back button, double submit, a link shared); a slow user past the code lifetime; clocks far apart',
    check: "the log line's `providerError`/`providerErrorDescription` and whether the same user's callback arrived twice",
  },
  id_token_invalid: {
    meaning: "the ID token failed verification; `idTokenCause` names the check: issuer, audience, nonce, signature or expiry",
    cause: 'issuer: `OIDC_<ID>_ISSUER` differs from the provider\'s `iss`; audience: the client id differs; signature: a signing key not (yet) in the provider\'s JWKS; expiry: clock skew over 30 s; nonce: a replayed or mixed-up flow',
    check: "the log line's `idTokenCause`, then `npm run check-config` (issuer and JWKS) and the gateway host's clock",
  },
  provider_unavailable: {
    meaning: "the provider's discovery, token, JWKS or userinfo endpoint did not answer during the callback (answered 503)",
    cause: 'the identity provider down or unreachable from the gateway (egress firewall, DNS, proxy); never the user\'s fault',
    check: '`authgw_oauth_provider_request_duration_seconds{provider,endpoint}` and `npm run check-config` from a gateway host',
  },
  email_not_verified: {
    meaning: "the provider did not vouch for the user's email (`email_verified` false or absent); no session was created",
    cause: 'the user has not verified the address at the provider; the provider does not release `email_verified` for the requested scopes',
    check: "the user's account at the provider and whether `OIDC_<ID>_SCOPES` includes `email`",
  },
  account_not_linked: {
    meaning: 'a user with this email exists already (email sign-up or another provider) and was not linked automatically',
    cause: "better-auth links only when both the provider's and the local address are verified; the local account signed up with an unverified email",
    check: 'the existing user\'s `emailVerified` and accounts; link from a signed-in session instead',
  },
  access_denied: {
    meaning: 'the user declined at the provider (cancelled login or consent), or the provider refused this user for the client',
    cause: 'a user choice; a provider policy (group or app assignment) excluding the user',
    check: "whether one user repeats it (a choice) or many do (an assignment or consent policy at the provider); `providerErrorDescription` in the log line",
  },
  provider_error: {
    meaning: 'any other error from the provider or the callback, its code in the log line (`providerError`)',
    cause: 'misconfiguration at the provider (invalid_client: wrong client secret; unauthorized_client, invalid_scope), a missing email claim, or an unexpected answer',
    check: "the log line's `providerError` and `code`, then the client registration (secret, grant types, scopes)",
  },
} as const satisfies Record<Exclude<OAuthCallbackReason, 'none'>, ReasonGuide>

export const upstreamFailureGuide = {
  timeout: {
    meaning: 'the upstream sent no response headers within `UPSTREAM_TIMEOUT_MS`, or its body stalled',
    cause: 'the upstream overloaded or stuck; a timeout below its normal latency',
    check: 'upstream latency p99 and the upstream\'s own saturation',
  },
  connect_error: {
    meaning: 'no connection to the upstream within `UPSTREAM_CONNECT_TIMEOUT_MS`',
    cause: 'the upstream down or restarting; `UPSTREAM_URL` wrong',
    check: 'the upstream\'s health and the `UPSTREAM_URL` of the replicas',
  },
  reset: {
    meaning: 'the upstream closed the connection before or while answering',
    cause: 'an upstream crash or deploy; a proxy in between closing idle connections',
    check: 'upstream restarts and the keep-alive timeouts on both sides',
  },
  bad_response: {
    meaning: 'the upstream\'s answer is not parseable HTTP',
    cause: 'a proxy or the upstream sending malformed responses',
    check: 'a raw response of the upstream for the failing route (`curl -v`)',
  },
} as const satisfies Record<UpstreamFailureReason, Entry>

/** The synthetic sign-in probe's own failure reasons (alerts/runbook.md, AuthGatewayProbeFailing), besides the closed reasons the gateway answered. */
export const probeFailureGuide = {
  timeout: {
    meaning: 'the probe got no answer in time',
    cause: 'the gateway or the load balancer in front of it hangs; on a call step, the upstream timing out (504)',
    check: 'the gateway\'s latency and event-loop lag, then the load balancer\'s health checks',
  },
  connect_error: {
    meaning: 'the probe could not connect to `PROBE_URL`',
    cause: 'the load balancer or every replica down; `PROBE_URL` wrong',
    check: 'the load balancer in front of the gateway and `PROBE_URL`',
  },
  jwks_verify_failed: {
    meaning: 'the JWT from `/api/auth/token` does not verify against the public JWKS URL with the configured issuer and audience',
    cause: 'the published JWKS, issuer or audience differ from what the gateway signs with',
    check: '`GET /api/auth/jwks` through the load balancer against the token\'s `kid`, `iss` and `aud`',
  },
  unexpected_answer: {
    meaning: 'a probe step got a status or body it does not expect, without a reason of the gateway',
    cause: 'something other than the gateway answers at `PROBE_URL` (a load balancer error page, another service); `PROBE_PATH` not answering 2xx to a signed-in user',
    check: 'the probe\'s access lines (`probe: true`) for the failing step, and `curl -i` of `PROBE_URL` through the load balancer',
  },
  not_revoked: {
    meaning: 'after sign-out, `/api/auth/get-session` still finds a session for the old cookie',
    cause: 'sign-out did not delete the session row: a failed write, or reads served by a database replica lagging behind the primary',
    check: 'the sign-out\'s access line (`probe: true`) and whether the database accepts writes',
  },
} as const satisfies Record<string, ReasonGuide>

export type GuideKind = 'unauthorized' | 'unavailable' | 'upstream_failure' | 'oauth'

export type GuideEntry = {
  kind: GuideKind
  reason: string
  /** Set when the text differs by mechanism. */
  mechanism?: typeof Mechanism.session | typeof Mechanism.jwt
  guide: ReasonGuide
}

const tables: Array<[GuideKind, Record<string, Entry>]> = [
  ['unauthorized', unauthorizedGuide],
  ['unavailable', unavailableGuide],
  ['upstream_failure', upstreamFailureGuide],
  ['oauth', oauthGuide],
]

const isByMechanism = (e: Entry): e is ByMechanism => 'session' in e && 'jwt' in e

/** Every entry, a per-mechanism reason once per mechanism, in table order. */
export function guideEntries(kind?: GuideKind): GuideEntry[] {
  const out: GuideEntry[] = []
  for (const [k, table] of tables) {
    if (kind !== undefined && k !== kind) continue
    for (const [reason, entry] of Object.entries(table)) {
      if (isByMechanism(entry)) {
        out.push({ kind: k, reason, mechanism: Mechanism.session, guide: entry.session })
        out.push({ kind: k, reason, mechanism: Mechanism.jwt, guide: entry.jwt })
      } else {
        out.push({ kind: k, reason, guide: entry })
      }
    }
  }
  return out
}

/** The guide of `reason` of `kind`, for `mechanism` where the text differs by mechanism. */
export function guideFor(kind: GuideKind, reason: string, mechanism?: string): ReasonGuide | undefined {
  const entries = guideEntries(kind).filter((e) => e.reason === reason)
  return (entries.find((e) => e.mechanism === mechanism) ?? entries.find((e) => e.mechanism === undefined))?.guide
}

/** The reason values each guide table must cover: the closed sets of src/reasons.ts. */
export const guidedReasons: Record<GuideKind, readonly string[]> = {
  unauthorized: valuesOf(UnauthorizedReason),
  unavailable: valuesOf(UnavailableReason),
  upstream_failure: valuesOf(UpstreamFailureReason),
  oauth: valuesOf(OAuthCallbackReason).filter((r) => r !== OAuthCallbackReason.none),
}
