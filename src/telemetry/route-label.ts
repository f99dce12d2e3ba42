// The bounded `route` label of the request histogram and the access line:
// route templates, never raw URLs.
import { AUTH_OTHER_ROUTE, authRouteLabel } from '../auth/routes.ts'
import { OTHER_ROUTE } from './metrics.ts'

const KNOWN_ROUTES = new Set(['/healthz', '/readyz', '/api/*'])

/** The label for a request Fastify matched to `template` (undefined: no route matched). */
export function routeLabel(template: string | undefined, url: string): string {
  if (template === undefined) return OTHER_ROUTE
  if (template === '/api/auth/*') return authRouteLabel(url)
  if (KNOWN_ROUTES.has(template) || template.startsWith('/app') || template === '/') return template
  return template.length <= 64 ? template : AUTH_OTHER_ROUTE
}
