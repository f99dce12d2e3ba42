// Every SSO callback reason produced for real: a gateway with four providers,
// each a real oidc-provider process, and callbacks that really go wrong (a
// state cookie dropped, another host, a tampered state, a replayed code, a
// code issued for another redirect URI, an ID token signed with a key the
// JWKS does not publish or minted for another audience or issuer or nonce or
// already expired, PKCE off for a provider that requires it, the provider
// stopped mid-flow, the user declining consent, an unverified email, an
// existing account). Each case moves exactly one series of
// authgw_oauth_callbacks_total and of the oauth sign-in attempts by one.
import t from 'tap'
import type { Test } from 'tap'
import { Client, PASSWORD } from '../helpers/client.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { delta, parseKey, scrape } from '../helpers/metrics.ts'
import { CLIENT_ID, CLIENT_SECRET, ProviderAgent, USERS, startProvider } from '../helpers/oidc.ts'
import type { RunningProvider } from '../helpers/oidc.ts'

type Outcome = 'success' | 'failure' | 'error'

/** Only the SSO counters: the callback series and the oauth sign-in attempts that moved. */
async function measure(gw: TestGateway, run: () => Promise<void>): Promise<Record<string, number>> {
  const before = await scrape(gw)
  await run()
  const after = await scrape(gw)
  const out: Record<string, number> = {}
  for (const [key, v] of delta(before, after)) {
    const { name, labels } = parseKey(key)
    if (name === 'authgw_oauth_callbacks_total') out[`callback ${labels.provider} ${labels.outcome} ${labels.reason}`] = v
    if (name === 'authgw_sign_in_attempts_total' && labels.method === 'oauth') out[`sign_in ${labels.outcome} ${labels.reason}`] = v
  }
  return out
}

const expected = (provider: string, outcome: Outcome, reason: string) => ({
  [`callback ${provider} ${outcome} ${reason}`]: 1,
  [`sign_in ${outcome === 'success' ? 'success' : 'failure'} ${reason}`]: 1,
})

t.test('each callback reason, for real, moves exactly its series by one', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const cb = (id: string) => `${base}/api/auth/callback/${id}`
  // corp accepts its callback with and without a trailing slash (so a code can be issued for the other one).
  const corp = await startProvider(t, [cb('corp'), `${cb('corp')}/`])
  const strict = await startProvider(t, [cb('strict')], { pkceRequired: true })
  const flaky = await startProvider(t, [cb('flaky')])
  const slash = await startProvider(t, [`${cb('slash')}/`])
  const env: Record<string, string> = { OIDC_PROVIDERS: 'corp,strict,flaky,slash', OIDC_STRICT_PKCE: 'off' }
  for (const [id, p] of [['corp', corp], ['strict', strict], ['flaky', flaky], ['slash', slash]] as Array<[string, RunningProvider]>) {
    env[`OIDC_${id.toUpperCase()}_ISSUER`] = p.issuer
    env[`OIDC_${id.toUpperCase()}_CLIENT_ID`] = CLIENT_ID
    env[`OIDC_${id.toUpperCase()}_CLIENT_SECRET`] = CLIENT_SECRET
  }
  const gw = await startTestGateway(t, { port, env })

  /** A browser at the gateway that started a sign-in with `provider` and got the provider's authorization URL. */
  async function begin(provider: string): Promise<{ browser: Client; authorizationUrl: string }> {
    const browser = new Client(gw.url)
    const res = await browser.post('/api/auth/sign-in/social', { provider, callbackURL: `${base}/` }, { headers: { origin: base } })
    if (res.status !== 200) throw new Error(`sign-in/social: ${res.status} ${res.text}`)
    return { browser, authorizationUrl: res.body.url as string }
  }
  const pathOf = (url: string) => new URL(url).pathname + new URL(url).search
  const errorOf = (res: { headers: Headers }) => new URL(res.headers.get('location') ?? '', base).searchParams.get('error')

  async function check(t: Test, provider: string, outcome: Outcome, reason: string, run: () => Promise<void>) {
    const moved = await measure(gw, run)
    t.same(moved, expected(provider, outcome, reason), `${reason}: exactly its series moved by one`)
  }
  const auditOf = (reason: string) => gw.logs.records().filter((r) => r.msg === 'audit' && r.method === 'oauth' && r.reason === reason).at(-1)

  t.test('success (none)', async (t) => {
    await check(t, 'corp', 'success', 'none', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const res = await browser.get(pathOf(await new ProviderAgent().authorize(authorizationUrl, 'alice')))
      t.equal(res.headers.get('location'), `${base}/`)
    })
    t.equal(auditOf('none')?.outcome, 'success', 'sign-in audit line')
  })

  t.test('state_mismatch: the state cookie deleted between redirect and callback', async (t) => {
    await check(t, 'corp', 'failure', 'state_mismatch', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const callback = await new ProviderAgent().authorize(authorizationUrl, 'alice')
      t.ok(browser.jar.delete('better-auth.state'), 'the state cookie was set, and is now gone')
      const res = await browser.get(pathOf(callback), { headers: { 'sec-fetch-site': 'cross-site' } })
      t.equal(res.status, 302)
      t.equal(errorOf(res), 'state_mismatch')
    })
    const line = auditOf('state_mismatch')
    t.same(line?.cookieNames, [], 'the log line lists the cookie names that arrived (none)')
    t.equal(line?.secFetchSite, 'cross-site', 'and Sec-Fetch-Site')
  })

  t.test('state_mismatch: the callback arrives on another host than the sign-in', async (t) => {
    await check(t, 'corp', 'failure', 'state_mismatch', async () => {
      const { authorizationUrl } = await begin('corp')
      const callback = await new ProviderAgent().authorize(authorizationUrl, 'alice')
      // The cookie belongs to 127.0.0.1; a browser sends none to localhost.
      const other = new Client(`http://localhost:${port}`)
      const res = await other.get(pathOf(callback))
      t.equal(res.status, 302)
    })
    t.equal(auditOf('state_mismatch')?.host, `localhost:${port}`, 'the log line names the host the callback reached')
  })

  t.test('state_mismatch: a tampered state', async (t) => {
    await check(t, 'corp', 'failure', 'state_mismatch', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const callback = new URL(await new ProviderAgent().authorize(authorizationUrl, 'alice'))
      callback.searchParams.set('state', `${callback.searchParams.get('state')}x`)
      const res = await browser.get(pathOf(callback.href))
      t.equal(errorOf(res), 'state_mismatch')
      t.ok(auditOf('state_mismatch')?.cookieNames, 'cookie names logged')
      t.ok((auditOf('state_mismatch')?.cookieNames as string[]).includes('better-auth.state'), 'the state cookie did arrive')
    })
  })

  t.test('invalid_grant: a replayed code', async (t) => {
    const first = await begin('corp')
    const callback = new URL(await new ProviderAgent().authorize(first.authorizationUrl, 'alice'))
    t.equal((await first.browser.get(pathOf(callback.href))).headers.get('location'), `${base}/`, 'the first use signs in')
    await check(t, 'corp', 'failure', 'invalid_grant', async () => {
      // A new flow (fresh state and cookie) carrying the code already used.
      const second = await begin('corp')
      const replay = new URL(callback.href)
      replay.searchParams.set('state', new URL(second.authorizationUrl).searchParams.get('state') as string)
      const res = await second.browser.get(pathOf(replay.href))
      t.equal(errorOf(res), 'invalid_code', "better-auth's own code for it")
    })
    t.equal(auditOf('invalid_grant')?.providerError, 'invalid_grant')
  })

  t.test('redirect_uri_mismatch: a code issued for another registered redirect URI (trailing slash)', async (t) => {
    await corp.setMode({ exposeErrorDetail: true })
    t.teardown(() => corp.setMode({}))
    await check(t, 'corp', 'failure', 'redirect_uri_mismatch', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const url = new URL(authorizationUrl)
      url.searchParams.set('redirect_uri', `${cb('corp')}/`)
      const callback = new URL(await new ProviderAgent().authorize(url.href, 'alice'))
      t.equal(callback.pathname, '/api/auth/callback/corp/', 'the provider redirected to the slash variant')
      const res = await browser.get(`/api/auth/callback/corp${callback.search}`)
      t.equal(errorOf(res), 'invalid_code')
    })
    t.match(auditOf('redirect_uri_mismatch')?.providerErrorDescription, /redirect_uri mismatch/)
  })

  t.test('redirect_uri registered wrongly: the provider refuses at its own page; a redirect with no callback', async (t) => {
    const before = await scrape(gw)
    const { authorizationUrl } = await begin('slash')
    const res = await fetch(authorizationUrl, { redirect: 'manual' })
    t.equal(res.status, 400, 'oidc-provider answers the redirect_uri mismatch itself (RFC 6749 §4.1.2.1: it must not redirect)')
    t.match(await res.text(), /redirect_uri/)
    const moved = delta(before, await scrape(gw))
    t.equal(moved.get('authgw_oauth_redirects_total{provider="slash"}'), 1, 'the redirect is counted')
    t.notOk([...moved.keys()].some((k) => k.startsWith('authgw_oauth_callbacks_total')), 'and no callback ever arrives')
  })

  for (const [cause, mode] of [
    ['signature', { signWithUnpublishedKey: true }],
    ['audience', { idTokenClaims: { aud: 'another-client' } }],
    ['issuer', { idTokenClaims: { iss: 'https://impostor.example.test' } }],
    ['nonce', { idTokenClaims: { nonce: 'a-nonce-from-another-flow' } }],
    ['expiry', { idTokenClaims: { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 } }],
  ] as const) {
    t.test(`id_token_invalid (${cause})`, async (t) => {
      await corp.setMode(mode)
      t.teardown(() => corp.setMode({}))
      await check(t, 'corp', 'failure', 'id_token_invalid', async () => {
        const { browser, authorizationUrl } = await begin('corp')
        const res = await browser.get(pathOf(await new ProviderAgent().authorize(authorizationUrl, 'alice')))
        t.equal(errorOf(res), 'unable_to_get_user_info', "better-auth's own code for it")
      })
      t.equal(auditOf('id_token_invalid')?.idTokenCause, cause, `the log line names the sub-cause ${cause}`)
    })
  }

  t.test('pkce_verifier_missing: PKCE off for a provider that requires it', async (t) => {
    await check(t, 'strict', 'failure', 'pkce_verifier_missing', async () => {
      const { browser, authorizationUrl } = await begin('strict')
      t.notOk(new URL(authorizationUrl).searchParams.has('code_challenge'), 'OIDC_STRICT_PKCE=off sends no challenge')
      const callback = await new ProviderAgent().authorize(authorizationUrl, 'alice')
      t.equal(new URL(callback).searchParams.get('error'), 'invalid_request')
      await browser.get(pathOf(callback))
    })
  })

  t.test('provider_unavailable: the provider stopped mid-flow (503, never the user)', async (t) => {
    await check(t, 'flaky', 'error', 'provider_unavailable', async () => {
      const { browser, authorizationUrl } = await begin('flaky')
      const callback = await new ProviderAgent().authorize(authorizationUrl, 'alice')
      await flaky.stop()
      const res = await browser.get(pathOf(callback))
      t.equal(res.status, 503)
      t.equal(res.body.reason, 'provider_unavailable')
      t.notOk(res.headers.get('location'), 'no redirect to an error page blaming the user')
    })
    t.equal(auditOf('provider_unavailable')?.unavailableEndpoint, 'token')
  })

  t.test('access_denied: the user declines consent', async (t) => {
    await check(t, 'corp', 'failure', 'access_denied', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      // A fresh provider session: bob has never consented.
      const callback = await new ProviderAgent().authorize(authorizationUrl, 'bob', 'decline')
      t.equal(new URL(callback).searchParams.get('error'), 'access_denied')
      t.equal(errorOf(await browser.get(pathOf(callback))), 'access_denied')
    })
  })

  t.test('email_not_verified: the provider does not vouch for the email', async (t) => {
    await check(t, 'corp', 'failure', 'email_not_verified', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const res = await browser.get(pathOf(await new ProviderAgent().authorize(authorizationUrl, 'unverified')))
      t.equal(errorOf(res), 'email_not_verified')
      t.notOk(browser.jar.has('better-auth.session_token'), 'no session')
    })
  })

  t.test('account_not_linked: an email account with the same address exists', async (t) => {
    const email = USERS.bob?.email as string
    t.equal((await new Client(gw.url).signUp(email, PASSWORD)).status, 200, 'bob signed up with a password first (unverified email)')
    await check(t, 'corp', 'failure', 'account_not_linked', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const res = await browser.get(pathOf(await new ProviderAgent().authorize(authorizationUrl, 'bob')))
      t.equal(errorOf(res), 'account_not_linked')
    })
  })

  t.test('provider_error: any other error= from the provider, its code in the log', async (t) => {
    await check(t, 'corp', 'failure', 'provider_error', async () => {
      const { browser, authorizationUrl } = await begin('corp')
      const state = new URL(authorizationUrl).searchParams.get('state') as string
      // What a provider sends for a client it does not allow this grant (RFC 6749 §4.1.2.1).
      const res = await browser.get(`/api/auth/callback/corp?error=unauthorized_client&error_description=not+allowed&state=${state}`)
      t.equal(errorOf(res), 'unauthorized_client')
    })
    t.equal(auditOf('provider_error')?.providerError, 'unauthorized_client')
  })

  t.test('redirects counted per provider; provider latency observed per endpoint', async (t) => {
    const s = await scrape(gw)
    t.ok((s.get('authgw_oauth_redirects_total{provider="corp"}') ?? 0) >= 10)
    for (const endpoint of ['discovery', 'token', 'jwks']) {
      t.ok((s.get(`authgw_oauth_provider_request_duration_seconds_count{endpoint="${endpoint}",provider="corp"}`) ?? 0) >= 1, `${endpoint} requests observed`)
    }
  })
})
