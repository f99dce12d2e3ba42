// PUBLIC_PATHS match whole path segments: `/api/public` must not also make
// `/api/public-admin` public. Real gateway, real upstream; what reached the
// upstream without credentials is what the test reads.
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { rawRequest, recordingUpstream } from '../faults/support.ts'

t.test('PUBLIC_PATHS: whole segments only, and no spelling escapes the prefix', async (t) => {
  const upstream = await recordingUpstream(t)
  const gw = await startTestGateway(t, { upstreamUrl: upstream.url, env: { PUBLIC_PATHS: '/api/public,/api/docs/' } })
  const port = Number(new URL(gw.url).port)
  const status = async (path: string) => (await rawRequest(port, [`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`], { waitMs: 30_000 })).status

  const open = ['/api/public', '/api/public/', '/api/public/ping', '/api/public/a/b?x=1', '/api/public?x=1', '/api/docs/', '/api/docs/index.html']
  for (const path of open) t.equal(await status(path), 200, `${path} is public`)

  const closed = [
    '/api/public-admin',
    '/api/public-admin/users',
    '/api/publicx',
    '/api/public.json',
    '/api/public;x/admin',
    '/api/public%2dadmin',
    '/api/docs',
    '/api/docsx/a',
    '/api/public/../admin',
    '/api/public/%2e%2e/admin',
    '/api/public/..%2fadmin',
    '/api/public/..\\admin',
    '/api/public%2f..%2fadmin',
  ]
  const received = upstream.received.length
  for (const path of closed) t.equal(await status(path), 401, `${path} needs credentials`)
  t.equal(upstream.received.length, received, 'none of them reached the upstream')
})
