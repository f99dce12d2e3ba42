// The catastrophic 401 page end to end (issue 15): two real gateways on one
// database serve signed-in users round-robin; a deploy restarts one of them
// with another BETTER_AUTH_SECRET. A real Prometheus (Debian's 2.42) loads the
// shipped rules, their `for:` durations untouched, and sends to a real
// Alertmanager (Debian's 0.25) running the shipped routing, whose receivers
// point at a webhook in this process. The page must reach the `pager`
// receiver within 3 minutes of the deploy, naming bad_signature.
//
// Prometheus scrapes and evaluates every 2 s here (15 s in production): the
// rules' own windows and `for:` are what the 3 minutes are spent on. A minute
// of normal traffic comes first, so that at onset the rules' 1-minute window
// holds nothing but normal traffic, as it would in production.
import t from 'tap'
import { guideFor } from '../../src/reason-guide.ts'
import { Client } from '../helpers/client.ts'
import type { Res } from '../helpers/client.ts'
import { freshDatabaseUrl } from '../helpers/database.ts'
import { freePort, startTestGateway } from '../helpers/gateway.ts'
import type { TestGateway } from '../helpers/gateway.ts'
import { ALERTMANAGER_MISSING, findAlertmanager } from './live/alertmanager.ts'
import type { Notification } from './live/alertmanager.ts'
import { firingPage, JOB, notificationsSummary, otherPagesBefore, startPagingStack } from './live/paging.ts'
import { eventually, findPrometheus, PROMETHEUS_MISSING, settle } from './live/prometheus.ts'
import { newTally, signUpUsers, stream } from './live/scenario.ts'
import type { Kind, Stream, User } from './live/scenario.ts'

const PAGE = 'AuthGatewayUnauthorizedOutage'
const PAGE_WITHIN_MS = 3 * 60_000
const OTHER_SECRET = 'another-secret-Qm7Zp2Lx9Vc4Nb8Kd1Rf6Tg3Hj0Ws5Ye-authgw'
/** Signed-in users' cookie calls, both replicas together. */
const PER_SECOND = 20
/** Normal traffic before the deploy: the rules' 1m window, and a few scrapes more. */
const NORMAL_MS = 65_000

// The shipped `for:` durations are waited out: allow the file ten minutes (it takes about four).
t.setTimeout(600_000)

const prometheusBin = findPrometheus()
const alertmanagerBin = findAlertmanager()
const skip = !prometheusBin ? PROMETHEUS_MISSING : !alertmanagerBin ? ALERTMANAGER_MISSING : false

/** A signed-in user's call with their cookie: 200, or 401 bad_signature where the secret differs. */
function cookieCalls(users: User[], statuses: Map<string, number>): Kind[] {
  let u = 0
  return [
    {
      name: 'cookie GET /api/me',
      send: async (base) => {
        const user = users[u++ % users.length] as User
        const res = await new Client(base).get('/api/me', { headers: { cookie: user.cookie }, cookies: false })
        const key = res.status === 401 ? `401 ${String(res.body?.reason)}` : String(res.status)
        statuses.set(key, (statuses.get(key) ?? 0) + 1)
        return res
      },
      check: (res: Res) =>
        res.status === 200 || (res.status === 401 && res.body?.reason === 'bad_signature') ? true : `status ${res.status}: ${res.text.slice(0, 200)}`,
    },
  ]
}

t.test('a secret-mismatch deploy pages through the shipped Alertmanager routing within 3 minutes', { skip }, async (t) => {
  if (!prometheusBin || !alertmanagerBin) return

  // Two replicas behind one public URL, same database and secret; b on fixed ports so its redeploy keeps its scrape target.
  const databaseUrl = await freshDatabaseUrl(t)
  const a = await startTestGateway(t, { databaseUrl })
  const bPort = await freePort()
  const bMetricsPort = await freePort()
  const bEnv = { BETTER_AUTH_URL: a.config.baseUrl, METRICS_PORT: String(bMetricsPort) }
  const b = await startTestGateway(t, { databaseUrl, port: bPort, env: bEnv })
  const users = await signUpUsers(a.url, 6)

  const targets = [a, b].map((g) => new URL(g.metricsUrl).host)
  const { webhook, alertmanager, prom } = await startPagingStack(t, { prometheusBin, alertmanagerBin, targets })

  // ---- normal traffic ----------------------------------------------------
  const streams: Stream[] = []
  t.teardown(() => Promise.all(streams.map((s) => s.stop())))
  const bases = [a.url, b.url]
  const normalStatuses = new Map<string, number>()
  const normal = newTally()
  streams.push(stream(bases, cookieCalls(users, normalStatuses), PER_SECOND, [normal]))
  await new Promise((r) => setTimeout(r, NORMAL_MS))
  for (const s of streams.splice(0)) await s.stop()
  const beforeAt = await settle(prom, Date.now(), 30_000)

  await t.test('before the deploy: users are served on both replicas, nothing pages', async (t) => {
    t.same(normal.problems, [], 'every call answered 200')
    t.ok((normalStatuses.get('200') ?? 0) > PER_SECOND * 30, `${normalStatuses.get('200')} calls answered 200`)
    const share = await prom.query(`job:authgw_unauthorized_credentialed_per_decisions:ratio_rate1m{job="${JOB}"}`, beforeAt)
    t.equal(Number(share[0]?.value[1]), 0, 'no request with credentials refused')
    t.same(webhook.notifications.filter((n) => n.receiver === 'pager'), [], 'the pager got nothing')
  })

  // ---- the deploy: b comes back with another secret -----------------------
  await b.close()
  const bNew: TestGateway = await startTestGateway(t, { databaseUrl, port: bPort, env: { ...bEnv, BETTER_AUTH_SECRET: OTHER_SECRET } })
  t.equal(new URL(bNew.metricsUrl).host, targets[1], 'the redeployed replica is the same scrape target')
  const onset = Date.now()
  const statuses = new Map<string, number>()
  const mismatch = newTally()
  streams.push(stream([a.url, bNew.url], cookieCalls(users, statuses), PER_SECOND, [mismatch]))

  const page = await eventually(
    `a ${PAGE} notification at the pager`,
    async () => firingPage(webhook, PAGE),
    PAGE_WITHIN_MS + 90_000,
    500,
  ).catch((err: Error) => err)
  for (const s of streams.splice(0)) await s.stop()

  await t.test('the page reaches the pager receiver within 3 minutes of the deploy, naming bad_signature', async (t) => {
    t.same(mismatch.problems, [], 'every call answered 200 (replica a) or 401 bad_signature (the redeployed replica b)')
    t.ok((statuses.get('401 bad_signature') ?? 0) > 0 && (statuses.get('200') ?? 0) > 0, `answers after the deploy: ${JSON.stringify(Object.fromEntries(statuses))}`)
    if (page instanceof Error) {
      t.fail(`no page: ${page.message}; notifications: ${notificationsSummary(webhook)}`)
      return
    }
    const elapsed = page.receivedAt - onset
    t.ok(elapsed <= PAGE_WITHIN_MS, `paged ${(elapsed / 1000).toFixed(1)} s after the deploy (limit ${PAGE_WITHIN_MS / 1000} s)`)
    const alert = page.alerts.find((al) => al.labels.alertname === PAGE) as Notification['alerts'][number]
    t.match(alert.labels, { alertname: PAGE, job: JOB, severity: 'critical' })
    t.match(alert.annotations.summary, /top reason bad_signature \(session\)/, `summary: ${alert.annotations.summary}`)
    const guide = guideFor('unauthorized', 'bad_signature', 'session')
    t.ok(guide && alert.annotations.description?.includes(`Likely cause: ${guide.cause}.`), `description gives the cause: ${alert.annotations.description}`)
    t.ok(alert.annotations.description?.includes('#alert-name-authgatewayunauthorizedoutage'), 'description links the runbook')
    // Nothing else paged in the meantime: config drift (5m) and the warnings (5m, 8m) come later.
    t.same(otherPagesBefore(webhook, page, PAGE), [], 'the outage is the first page')
    t.comment(`paged after ${(elapsed / 1000).toFixed(1)} s: ${alert.annotations.summary}`)
  })

  t.same(
    alertmanager.log.filter((l) => /level=(warn|error)/.test(l) && !/cluster/i.test(l)),
    [],
    'Alertmanager logged no warning or error (its webhook deliveries succeeded)',
  )
  t.same(
    prom.log.filter((l) => /level=(warn|error)/.test(l)),
    [],
    'Prometheus logged no warning or error (rule evaluation, annotation templates, notifications)',
  )
})
