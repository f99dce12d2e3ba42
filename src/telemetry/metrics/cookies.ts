// The cookies better-auth sets, as the browser will judge them: each
// Set-Cookie problem that makes a browser drop the cookie (set-cookie-audit.ts).
import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import { SetCookieProblem, valuesOf } from '../../reasons.ts'
import type { SetCookieProblem as SetCookieProblemT } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'

export function cookieMetrics(registry: Registry) {
  const problems = new Counter({
    name: MetricName.setCookieProblems,
    help: 'Set-Cookie headers better-auth sent that the browser will drop or shorten, by problem (one per cookie and problem).',
    labelNames: ['problem'] as const,
    registers: [registry],
  })
  for (const problem of valuesOf(SetCookieProblem)) problems.inc({ problem }, 0)
  return {
    setCookieProblem(problem: SetCookieProblemT) {
      problems.inc({ problem })
    },
  }
}
