// One run of the synthetic sign-in probe: what a user and an external API do,
// through PROBE_URL (the public address), step by step. The first failed step
// ends the run and names the reason: the closed reason the gateway answered
// (the `x-authgw-reason` header of a marked request, else the body's), or the
// probe's own (timeout, connect_error, jwks_verify_failed, unexpected_answer,
// not_revoked).
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import { ProbeFailureReason, ProbeOwnReason, ProbeStep, UpstreamRejectReason } from '../reasons.ts'
import type { ProbeFailureReason as FailureReason } from '../reasons.ts'
import { PROBE_HEADER, PROBE_REASON_HEADER } from './mark.ts'
import type { ProbeMark } from './mark.ts'
import type { ProbeCredentials } from './account.ts'

export type ProbeTarget = {
  /** PROBE_URL (no trailing slash). */
  url: string
  /** PROBE_PATH. */
  path: string
  /** Origin of BETTER_AUTH_URL: what a browser on the app sends as Origin. */
  origin: string
  jwksUrl: string
  issuer: string
  audience: string
  /** Name of the session-token cookie (the "old cookie" of the revoked step). */
  sessionCookie: string
  stepTimeoutMs: number
}

export type StepResult = { step: ProbeStep; seconds: number }
export type RunResult =
  | { ok: true; steps: StepResult[] }
  | { ok: false; steps: StepResult[]; step: ProbeStep; reason: FailureReason; status?: number }

const CLOSED_REASONS = new Set<string>(Object.values(ProbeFailureReason))
const PROXIED_STEPS = new Set<ProbeStep>([ProbeStep.cookie_call, ProbeStep.bearer_call])
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE'])

/** A step that did not get what it expects. */
class StepFailure extends Error {
  readonly reason: FailureReason
  readonly status: number | undefined
  constructor(reason: FailureReason, status?: number, cause?: unknown) {
    super(`probe step failed: ${reason}`, { cause })
    this.reason = reason
    this.status = status
  }
}

type Answer = { status: number; headers: Headers; body: unknown }

export class ProbeRun {
  readonly #target: ProbeTarget
  readonly #mark: ProbeMark
  readonly #jwks: JWTVerifyGetKey

  constructor(target: ProbeTarget, mark: ProbeMark) {
    this.#target = target
    this.#mark = mark
    const jwksUrl = new URL(target.jwksUrl)
    // Only the gateway's own origins may see a mark.
    const marked = jwksUrl.origin === new URL(target.url).origin || jwksUrl.origin === target.origin
    this.#jwks = createRemoteJWKSet(jwksUrl, {
      timeoutDuration: target.stepTimeoutMs,
      [customFetch]: (url, options) => {
        if (marked) options.headers.set(PROBE_HEADER, mark.sign('GET', new URL(url).pathname))
        return fetch(url, options)
      },
    })
  }

  /** Sign in, use the session as a cookie and as a JWT, sign out, check revocation. `signal` aborts the run (shutdown). */
  async run(credentials: () => Promise<ProbeCredentials>, signal: AbortSignal): Promise<RunResult> {
    const steps: StepResult[] = []
    let cookies = ''
    let sessionCookie = ''
    const step = async <T>(name: ProbeStep, fn: () => Promise<T>): Promise<T> => {
      const started = performance.now()
      try {
        return await fn()
      } finally {
        steps.push({ step: name, seconds: (performance.now() - started) / 1000 })
      }
    }
    let current: ProbeStep = ProbeStep.sign_in
    try {
      current = ProbeStep.sign_in
      const creds = await credentials().catch((err: unknown) => {
        throw new StepFailure(ProbeFailureReason.store_unavailable, undefined, err)
      })
      await step(ProbeStep.sign_in, async () => {
        const res = await this.#call('POST', '/api/auth/sign-in/email', { signal, body: { email: creds.email, password: creds.password } })
        this.#expect(res, ProbeStep.sign_in, res.status === 200)
        const set = res.headers.getSetCookie().map((c) => c.split(';')[0] as string)
        sessionCookie = set.find((c) => c.startsWith(`${this.#target.sessionCookie}=`)) ?? ''
        if (sessionCookie === '') throw new StepFailure(ProbeOwnReason.unexpected_answer, res.status)
        cookies = set.join('; ')
      })

      current = ProbeStep.get_session
      await step(ProbeStep.get_session, async () => {
        const res = await this.#call('GET', '/api/auth/get-session', { signal, cookie: cookies })
        this.#expect(res, ProbeStep.get_session, res.status === 200 && hasSession(res.body))
      })

      current = ProbeStep.cookie_call
      await step(ProbeStep.cookie_call, async () => {
        const res = await this.#call('GET', this.#target.path, { signal, cookie: cookies })
        this.#expect(res, ProbeStep.cookie_call, res.status >= 200 && res.status < 300)
      })

      current = ProbeStep.token
      const token = await step(ProbeStep.token, async () => {
        const res = await this.#call('GET', '/api/auth/token', { signal, cookie: cookies })
        const t = (res.body as { token?: unknown } | undefined)?.token
        this.#expect(res, ProbeStep.token, res.status === 200 && typeof t === 'string')
        return t as string
      })

      current = ProbeStep.jwks_verify
      await step(ProbeStep.jwks_verify, async () => {
        try {
          await jwtVerify(token, this.#jwks, { issuer: this.#target.issuer, audience: this.#target.audience })
        } catch (err) {
          throw new StepFailure(jwksFailureReason(err), undefined, err)
        }
      })

      current = ProbeStep.bearer_call
      await step(ProbeStep.bearer_call, async () => {
        const res = await this.#call('GET', this.#target.path, { signal, authorization: `Bearer ${token}` })
        this.#expect(res, ProbeStep.bearer_call, res.status >= 200 && res.status < 300)
      })

      current = ProbeStep.sign_out
      await step(ProbeStep.sign_out, async () => {
        const res = await this.#call('POST', '/api/auth/sign-out', { signal, cookie: cookies, body: {} })
        this.#expect(res, ProbeStep.sign_out, res.status === 200)
      })
      cookies = ''

      current = ProbeStep.revoked
      await step(ProbeStep.revoked, async () => {
        // The old session cookie alone, asked of better-auth, which reads the
        // store: a proxied call could still be answered from another
        // replica's session cache for SESSION_CACHE_TTL_SECONDS.
        const res = await this.#call('GET', '/api/auth/get-session', { signal, cookie: sessionCookie })
        if (res.status === 200 && hasSession(res.body)) throw new StepFailure(ProbeOwnReason.not_revoked, res.status)
        this.#expect(res, ProbeStep.revoked, res.status === 200 && res.body === null)
      })
      return { ok: true, steps }
    } catch (err) {
      const failure = err instanceof StepFailure ? err : new StepFailure(transportFailureReason(err), undefined, err)
      if (cookies !== '') {
        // Do not leave the failed run's session behind (unmeasured, best effort).
        await this.#call('POST', '/api/auth/sign-out', { signal, cookie: cookies, body: {} }).catch(() => undefined)
      }
      return { ok: false, steps, step: current, reason: failure.reason, status: failure.status }
    }
  }

  async #call(method: 'GET' | 'POST', path: string, opts: { signal: AbortSignal; cookie?: string; authorization?: string; body?: unknown }): Promise<Answer> {
    const headers: Record<string, string> = { [PROBE_HEADER]: this.#mark.sign(method, path), accept: 'application/json' }
    if (opts.cookie) headers.cookie = opts.cookie
    if (opts.authorization) headers.authorization = opts.authorization
    if (method === 'POST') {
      headers.origin = this.#target.origin
      headers['content-type'] = 'application/json'
    }
    const res = await fetch(this.#target.url + path, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      redirect: 'manual',
      signal: AbortSignal.any([opts.signal, AbortSignal.timeout(this.#target.stepTimeoutMs)]),
    })
    const text = await res.text()
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: res.status, headers: res.headers, body }
  }

  /** Fail the step unless `ok`, with the reason the answer names. */
  #expect(res: Answer, step: ProbeStep, ok: boolean): void {
    if (ok) return
    throw new StepFailure(answerReason(res, step), res.status)
  }
}

/**
 * The reason an unexpected answer names: the gateway's header on a marked
 * request; else its body's reason (a replica that could not verify the mark,
 * e.g. one with another secret, still answers its closed reason there); else,
 * on a proxied call, a 401 is the upstream's own.
 */
export function answerReason(res: Answer, step: ProbeStep): FailureReason {
  const header = res.headers.get(PROBE_REASON_HEADER)
  if (header !== null && CLOSED_REASONS.has(header)) return header as FailureReason
  const body = (res.body ?? undefined) as { reason?: unknown } | undefined
  if (typeof body?.reason === 'string' && CLOSED_REASONS.has(body.reason)) return body.reason as FailureReason
  if (PROXIED_STEPS.has(step) && res.status === 401) return UpstreamRejectReason.upstream_rejected
  return ProbeOwnReason.unexpected_answer
}

function hasSession(body: unknown): boolean {
  const b = body as { session?: { id?: unknown } } | null | undefined
  return typeof b?.session?.id === 'string'
}

function transportFailureReason(err: unknown): FailureReason {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return ProbeOwnReason.timeout
    const code = (e as Error & { code?: string }).code
    if (code !== undefined && CONNECT_CODES.has(code)) return ProbeOwnReason.connect_error
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return ProbeOwnReason.timeout
  }
  return ProbeOwnReason.connect_error
}

function jwksFailureReason(err: unknown): FailureReason {
  const code = (err as { code?: string }).code
  if (code === 'ERR_JWKS_TIMEOUT') return ProbeOwnReason.timeout
  // fetch itself failed (no JOSE code): the JWKS URL is unreachable.
  if (code === undefined || !code.startsWith('ERR_')) return transportFailureReason(err)
  return ProbeOwnReason.jwks_verify_failed
}
