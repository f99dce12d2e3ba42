// The demo sign-in page (DEMO_APP): static files plus better-auth's own
// browser client, served unbundled through an import map. Only the ES modules
// reachable from `better-auth/client` are served from node_modules.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { guideEntries } from '../reason-guide.ts'
import { collectBrowserModules } from './browser-modules.ts'

export type DemoAppOptions = {
  /**
   * Origin of the gateway the page talks to; empty (the default) means the
   * page's own origin. Set when the page is served from another origin.
   */
  gatewayUrl?: string
}

export const DEMO_APP_PREFIX = '/app'
/** Where the page links a reason to: the reasons and "Debugging 401 after sign-in" tables. */
export const REASONS_DOCS_URL = 'https://github.com/authgw/authgw/blob/main/docs/reasons.md'
const MODULES_PREFIX = `${DEMO_APP_PREFIX}/modules`
const PUBLIC_DIR = join(import.meta.dirname, 'public')
const PROJECT_ROOT = join(import.meta.dirname, '..', '..')

const ASSETS: Record<string, { file: string; type: string }> = {
  'main.js': { file: 'main.js', type: 'text/javascript; charset=utf-8' },
  'style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
}

async function demoAppPlugin(app: FastifyInstance, opts: DemoAppOptions) {
  const gatewayUrl = opts.gatewayUrl ? new URL(opts.gatewayUrl).origin : ''
  const modules = collectBrowserModules(['better-auth/client'], PROJECT_ROOT, MODULES_PREFIX)
  const assets = new Map(Object.entries(ASSETS).map(([name, a]) => [name, { body: readFileSync(join(PUBLIC_DIR, a.file)), type: a.type }]))

  // JSON inside <script>: no "</script>" can end it early.
  const importMap = JSON.stringify(modules.importMap).replaceAll('<', '\\u003c')
  const page = readFileSync(join(PUBLIC_DIR, 'index.html'), 'utf8')
    .replace('{{IMPORT_MAP}}', importMap)
    .replace('{{GATEWAY_URL}}', escapeAttribute(gatewayUrl))
  const importMapHash = createHash('sha256').update(importMap).digest('base64')
  const csp = [
    "default-src 'none'",
    `script-src 'self' 'sha256-${importMapHash}'`,
    "style-src 'self'",
    `connect-src 'self'${gatewayUrl ? ` ${gatewayUrl}` : ''}`,
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')

  app.get('/', async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', csp)
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(page),
  )

  // The page explains each reason from the same table as docs/reasons.md and the alerts.
  const guide = JSON.stringify({
    docs: REASONS_DOCS_URL,
    reasons: [...guideEntries('unauthorized'), ...guideEntries('unavailable')].map((e) => ({ reason: e.reason, mechanism: e.mechanism, ...e.guide })),
  })
  app.get(`${DEMO_APP_PREFIX}/reasons.json`, async (_request, reply) =>
    reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-cache').send(guide),
  )

  app.get(`${DEMO_APP_PREFIX}/:asset`, async (request, reply) => {
    const asset = assets.get((request.params as { asset: string }).asset)
    if (asset === undefined) return reply.callNotFound()
    return reply.header('content-type', asset.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(asset.body)
  })

  app.get(`${MODULES_PREFIX}/*`, async (request, reply) => {
    const body = modules.files.get(`${MODULES_PREFIX}/${(request.params as { '*': string })['*']}`)
    if (body === undefined) return reply.callNotFound()
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(body)
  })
}

function escapeAttribute(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('"', '&quot;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')
}

export const demoApp = fp(demoAppPlugin, { name: 'authgw-demo-app', fastify: '5.x' })
