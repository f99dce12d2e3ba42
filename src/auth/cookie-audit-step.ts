// The /api/auth/* step that audits every Set-Cookie better-auth sent against
// the request as the browser sees it: one counter increment and one
// `set_cookie_problem` line per cookie and problem (the name, never the
// value), and the problems on the request's own access line.
import type { FastifyRequest } from 'fastify'
import type { Metrics } from '../telemetry/metrics.ts'
import type { AuthResponseStep } from './exchange.ts'
import { auditSetCookies } from './set-cookie-audit.ts'
import type { CookieAudience } from './set-cookie-audit.ts'

export type AudienceOf = (request: FastifyRequest) => CookieAudience

/** Scheme (under TRUST_PROXY) and host of the request, with the session settings. */
export function requestAudience(sessionTokenName: string, sessionExpiresInSeconds: number): AudienceOf {
  return (request) => ({ scheme: request.protocol, host: request.hostname, sessionTokenName, sessionExpiresInSeconds })
}

/** Audit Set-Cookie values about to be sent on this request's reply: counter, one line each, the access line. */
export function auditReplyCookies(request: FastifyRequest, headers: readonly string[], audienceOf: AudienceOf, metrics: Pick<Metrics, 'setCookieProblem'>): void {
  if (headers.length === 0) return
  const audience = audienceOf(request)
  const findings = auditSetCookies(headers, audience)
  if (findings.length === 0) return
  for (const f of findings) {
    metrics.setCookieProblem(f.problem)
    request.log.warn({ event: 'set_cookie_problem', cookie: f.cookie, problem: f.problem, host: audience.host, scheme: audience.scheme }, 'the browser will drop this cookie')
  }
  request.authgw.detail = { ...request.authgw.detail, setCookieProblems: [...new Set(findings.map((f) => f.problem))] }
}

export function auditAuthCookies(audienceOf: AudienceOf): AuthResponseStep {
  return (x, metrics) => {
    const raw = x.reply.getHeader('set-cookie')
    if (raw === undefined) return
    auditReplyCookies(x.request, Array.isArray(raw) ? raw : [String(raw)], audienceOf, metrics)
  }
}
