// The demo front end: better-auth's browser client for sign-up, sign-in and
// sign-out, plain fetch with credentials for the protected API. Every result
// lands in the panel (status, the 401 reason, the JWT claims) so a person — or
// a browser test — can see what the gateway decided.
import { createAuthClient } from 'better-auth/client'

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id))
const gateway = document.querySelector('meta[name="authgw-gateway"]')?.getAttribute('content') || location.origin
const auth = createAuthClient({ baseURL: gateway })

$('gateway').textContent = gateway
$('page-origin').textContent = location.origin

const calls = { count: 0, ok: 0 }

/** The reason guide (meaning, cause, first check), served from src/reason-guide.ts. */
const guide = await fetch('/app/reasons.json')
  .then((r) => (r.ok ? r.json() : undefined))
  .catch(() => undefined)

function explainReason(reason) {
  const entries = (guide?.reasons ?? []).filter((e) => e.reason === reason)
  // The page calls with its cookie: the session text where a reason has one per mechanism.
  const entry = entries.find((e) => e.mechanism === 'session') ?? entries.find((e) => e.mechanism === undefined)
  $('reason-meaning').textContent = entry ? `${entry.meaning}.` : ''
  $('reason-fix').textContent = entry ? `Likely cause: ${entry.cause}. Check: ${entry.check}.` : ''
  const link = /** @type {HTMLAnchorElement} */ ($('reason-docs'))
  if (entry && guide?.docs) {
    link.href = `${guide.docs}#${entry.reason === 'store_unavailable' || entry.reason === 'jwks_unavailable' ? 'reasons' : 'debugging-401-after-sign-in'}`
    link.textContent = `${entry.reason} in the docs`
    link.hidden = false
  } else {
    link.removeAttribute('href')
    link.hidden = true
  }
}

/** Everything the last API call showed: gone after sign-out, so stale results never mislead. */
function clearResults() {
  const status = $('status')
  status.dataset.status = ''
  status.textContent = ''
  for (const id of ['reason', 'request-id', 'body', 'error', 'claims-times']) $(id).textContent = ''
  explainReason(undefined)
}

/** "09:12:03 (in 15 min)" for a JWT time claim. */
function humanTime(seconds) {
  if (typeof seconds !== 'number') return 'unknown'
  const at = new Date(seconds * 1000)
  const delta = Math.round((at.getTime() - Date.now()) / 60_000)
  const rel = delta === 0 ? 'now' : delta > 0 ? `in ${delta} min` : `${-delta} min ago`
  return `${at.toLocaleString()} (${rel})`
}

function fields() {
  return {
    email: /** @type {HTMLInputElement} */ ($('email')).value.trim(),
    password: /** @type {HTMLInputElement} */ ($('password')).value,
    name: /** @type {HTMLInputElement} */ ($('name')).value.trim() || 'Demo User',
  }
}

/** better-fetch resolves HTTP errors as `{ error }`; a CORS or network failure rejects. */
async function settle(promise) {
  try {
    return await promise
  } catch (err) {
    return { data: null, error: { status: 0, code: 'NETWORK_ERROR', message: networkHint(err) } }
  }
}

function networkHint(err) {
  return `${err instanceof Error ? err.message : String(err)}: response not readable (is ${location.origin} in TRUSTED_ORIGINS?) or the gateway is unreachable`
}

function describeError(error) {
  return [error.status || 'network error', error.code, error.message].filter(Boolean).join(' ')
}

function showAuthResult(action, result) {
  const el = $('auth-result')
  el.dataset.action = action
  el.dataset.outcome = result.error ? 'error' : 'ok'
  el.dataset.status = String(result.error ? result.error.status : 200)
  el.textContent = `${action}: ${result.error ? describeError(result.error) : 'ok'}`
  el.dataset.seq = String(Number(el.dataset.seq ?? 0) + 1)
}

async function refreshSession() {
  const el = $('session')
  const { data, error } = await settle(auth.getSession())
  if (error) {
    el.dataset.state = 'error'
    el.textContent = describeError(error)
  } else if (data?.user) {
    el.dataset.state = 'signed-in'
    el.dataset.email = data.user.email
    el.textContent = `signed in as ${data.user.email}`
  } else {
    el.dataset.state = 'signed-out'
    delete el.dataset.email
    el.textContent = 'signed out (no session)'
  }
  el.dataset.seq = String(Number(el.dataset.seq ?? 0) + 1)
  return data?.user
}

async function runAuth(action, call) {
  const result = await settle(call())
  const user = await refreshSession()
  if (user) await loadClaims()
  else clearClaims()
  // Last: its sequence number tells scripts (and the tests) the page has settled.
  showAuthResult(action, result)
}

async function callApi() {
  const status = $('status')
  let res
  try {
    res = await fetch(`${gateway}/api/me`, { credentials: 'include' })
  } catch (err) {
    status.dataset.status = 'network-error'
    status.textContent = 'network error'
    $('reason').textContent = ''
    $('request-id').textContent = ''
    $('body').textContent = ''
    $('error').textContent = networkHint(err)
    return record(false)
  }
  const text = await res.text()
  let body
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  status.dataset.status = String(res.status)
  status.textContent = `${res.status} ${res.statusText}`
  $('reason').textContent = res.status === 401 || res.status === 503 ? (body?.reason ?? '(no reason in body)') : ''
  explainReason(res.status === 401 || res.status === 503 ? body?.reason : undefined)
  // Readable cross-origin only when the gateway exposes it.
  $('request-id').textContent = res.headers.get('x-request-id') ?? '(header not exposed)'
  $('body').textContent = body === undefined ? text : JSON.stringify(body, null, 2)
  $('error').textContent = ''
  return record(res.ok)
}

function record(ok) {
  calls.count++
  if (ok) calls.ok++
  const el = $('calls')
  el.dataset.count = String(calls.count)
  el.dataset.ok = String(calls.ok)
  el.textContent = `${calls.count} (${calls.ok} ok)`
}

function decodeJwtPayload(token) {
  const part = token.split('.')[1] ?? ''
  const bin = atob(part.replaceAll('-', '+').replaceAll('_', '/').padEnd(Math.ceil(part.length / 4) * 4, '='))
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))))
}

async function loadClaims() {
  const el = $('claims')
  const { data, error } = await settle(auth.$fetch('/token'))
  if (error || typeof data?.token !== 'string') {
    el.dataset.status = String(error ? error.status : 'no-token')
    el.textContent = error ? describeError(error) : 'no token in the response'
  } else {
    const claims = decodeJwtPayload(data.token)
    el.dataset.status = '200'
    el.dataset.claims = JSON.stringify(claims)
    el.textContent = JSON.stringify(claims, null, 2)
    $('claims-times').textContent = `Issued ${humanTime(claims.iat)}, expires ${humanTime(claims.exp)}.`
  }
  el.dataset.seq = String(Number(el.dataset.seq ?? 0) + 1)
}

function clearClaims() {
  $('claims-times').textContent = ''
  const el = $('claims')
  el.dataset.status = ''
  delete el.dataset.claims
  el.textContent = ''
}

$('sign-up').addEventListener('click', () => void runAuth('sign-up', () => auth.signUp.email(fields())))
function signIn() {
  const { email, password } = fields()
  void runAuth('sign-in', () => auth.signIn.email({ email, password }))
}
$('sign-in').addEventListener('click', signIn)
// Enter in any field signs in (the form has no submit button, so no implicit submission).
$('account').addEventListener('keydown', (e) => {
  if (e.key !== 'Enter') return
  e.preventDefault()
  signIn()
})
$('sign-out').addEventListener('click', () => {
  clearResults()
  void runAuth('sign-out', () => auth.signOut())
})
$('call-api').addEventListener('click', () => void callApi())
$('load-claims').addEventListener('click', () => void loadClaims())

const user = await refreshSession()
if (user) await loadClaims()
document.body.dataset.ready = 'true'
