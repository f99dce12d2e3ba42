// The SSO routes inside the /api/auth/* mount: a sign-in start counts a
// redirect to the provider; a provider callback runs under the observer's
// trace and ends in decision.ts's oauthCallback. Everything else passes by.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { oauthCallback } from '../auth/decision.ts'
import { parseCookieHeader } from '../auth/session.ts'
import { OAuthCallbackReason } from '../reasons.ts'
import type { Metrics } from '../telemetry/metrics.ts'
import { classifyCallback } from './classify.ts'
import type { Classified } from './classify.ts'
import type { OAuthObserver } from './observer.ts'

const SIGN_IN_SOCIAL = '/sign-in/social'
const CALLBACK = /^\/callback\/([^/?]+)$/

export type SsoCall = {
  run<T>(forward: () => Promise<T>): Promise<T>
  /** After better-auth answered: count and log; a reply when the answer was replaced (503). */
  finish(reply: FastifyReply, status: number, body: Buffer): FastifyReply | undefined
}

export class SsoRoutes {
  readonly #observer: OAuthObserver
  readonly #metrics: Metrics
  readonly #basePath: string

  constructor(opts: { observer: OAuthObserver; metrics: Metrics; basePath: string }) {
    this.#observer = opts.observer
    this.#metrics = opts.metrics
    this.#basePath = opts.basePath
  }

  /** The SSO step of this request (`path`: the canonical path better-auth acts on), or undefined. */
  begin(request: FastifyRequest, path: string): SsoCall | undefined {
    const endpoint = path.slice(this.#basePath.length)
    if (endpoint === SIGN_IN_SOCIAL && request.method === 'POST') return this.#start(request)
    const id = CALLBACK.exec(endpoint)?.[1]
    // A form_post callback (POST) is answered by better-auth with a redirect to the GET form: counted there.
    if (id !== undefined && this.#observer.providerIds.has(id) && request.method === 'GET') return this.#callback(request, id)
    return undefined
  }

  #start(request: FastifyRequest): SsoCall {
    return {
      run: (forward) => forward(),
      finish: (_reply, status) => {
        const provider = providerOf(request.body)
        if (status === 200 && provider !== undefined && this.#observer.providerIds.has(provider)) this.#metrics.oauthRedirect(provider)
        return undefined
      },
    }
  }

  #callback(request: FastifyRequest, provider: string): SsoCall {
    let trace: Awaited<ReturnType<OAuthObserver['traceCallback']>>['trace'] = { provider }
    return {
      run: async (forward) => {
        const traced = await this.#observer.traceCallback(provider, forward)
        trace = traced.trace
        return traced.result
      },
      finish: (reply, status) => {
        const query = request.query as { error?: unknown; error_description?: unknown }
        const q = {
          error: typeof query.error === 'string' ? query.error : undefined,
          error_description: typeof query.error_description === 'string' ? query.error_description : undefined,
        }
        let result: Classified
        let code: string | undefined
        if (status >= 500) {
          // A store outage keeps its own 503 (mount.ts); a provider that stopped answering is this one's.
          if (trace.unavailable === undefined) return undefined
          result = { reason: OAuthCallbackReason.provider_unavailable }
        } else if (status >= 300 && status < 400) {
          const location = String(reply.getHeader('location') ?? '')
          code = errorOf(location)
          result = classifyCallback(code, q, trace)
        } else {
          code = `status_${status}`
          result = classifyCallback(code, q, trace)
        }
        return oauthCallback(this.#metrics, request, reply, provider, result, {
          code,
          unavailableEndpoint: trace.unavailable,
          cookieNames: [...parseCookieHeader(request.headers.cookie).keys()].slice(0, 20),
          secFetchSite: request.headers['sec-fetch-site'],
          host: request.headers.host,
        })
      },
    }
  }
}

function errorOf(location: string): string | undefined {
  try {
    return new URL(location, 'http://x').searchParams.get('error') ?? undefined
  } catch {
    return 'invalid_redirect'
  }
}

function providerOf(body: unknown): string | undefined {
  if (!Buffer.isBuffer(body) || body.length === 0) return undefined
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { provider?: unknown }
    return typeof parsed.provider === 'string' ? parsed.provider : undefined
  } catch {
    return undefined
  }
}
