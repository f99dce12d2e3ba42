// The sign-in probe's page end to end (issue 15): one real gateway with no
// user traffic at all runs the synthetic sign-in probe every 5 s through its
// public URL. A real Prometheus (Debian's) loads the shipped rules, their
// `for:` durations untouched, and sends to a real Alertmanager (Debian's)
// running the shipped routing, whose receivers point at a webhook in this
// process. First the upstream answers the probe; then it answers 401 to
// everything (a broken upstream key configuration, say). The page
// AuthGatewayProbeFailing must reach the `pager` receiver within 3 minutes of
// that onset, naming the failing step and reason.
//
// Prometheus scrapes and evaluates every 2 s here (15 s in production): the
// rules' own windows and `for:` are what the minutes are spent on.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.ts'
import { scrape, seriesKey, sumOf } from '../helpers/metrics.ts'
import { ALERTMANAGER_MISSING, findAlertmanager } from './live/alertmanager.ts'
import type { Notification } from './live/alertmanager.ts'
import { firingPage, JOB, notificationsSummary, otherPagesBefore, startPagingStack } from './live/paging.ts'
import { eventually, findPrometheus, PROMETHEUS_MISSING } from './live/prometheus.ts'

const PAGE = 'AuthGatewayProbeFailing'
const PAGE_WITHIN_MS = 3 * 60_000

t.setTimeout(480_000)

const prometheusBin = findPrometheus()
const alertmanagerBin = findAlertmanager()
const skip = !prometheusBin ? PROMETHEUS_MISSING : !alertmanagerBin ? ALERTMANAGER_MISSING : false

t.test('a broken probe at zero user traffic pages through the shipped Alertmanager routing within 3 minutes', { skip }, async (t) => {
  if (!prometheusBin || !alertmanagerBin) return

  // The upstream: answers every call until `broken`, then 401 to everything.
  let broken = false
  const upstream = createServer((_req, res) => {
    if (broken) res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}')
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
  })
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => upstream.close(() => r())))
  t.teardown(() => upstream.closeAllConnections())
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`

  const gw = await startTestGateway(t, { upstreamUrl, env: { PROBE_INTERVAL_SECONDS: '5' } })
  t.ok(gw.prober, 'PROBE_INTERVAL_SECONDS=5 starts the probe')

  const { webhook, prom } = await startPagingStack(t, { prometheusBin, alertmanagerBin, targets: [new URL(gw.metricsUrl).host] })

  // ---- healthy: the probe passes, Prometheus sees it -----------------------
  await eventually(
    'a successful probe run scraped by Prometheus',
    async () => {
      const up = await prom.query(`max(authgw_probe_up{job="${JOB}"})`)
      return Number(up[0]?.value[1]) === 1 ? true : undefined
    },
    60_000,
    500,
  )
  const healthy = await scrape(gw)
  t.ok((healthy.get(seriesKey('authgw_probe_runs_total', { outcome: 'success' })) ?? 0) >= 1, 'the probe passed before the onset')
  t.equal(sumOf(healthy, 'authgw_http_request_duration_seconds_count'), 0, 'no user request at all (the probe\'s are not counted as any)')

  // ---- onset: the upstream refuses everything -------------------------------
  broken = true
  const onset = Date.now()
  const page = await eventually(
    `a ${PAGE} notification at the pager`,
    async () => firingPage(webhook, PAGE),
    PAGE_WITHIN_MS + 60_000,
    500,
  ).catch((err: Error) => err)

  const after = await scrape(gw)
  t.ok((after.get(seriesKey('authgw_probe_failures_total', { step: 'cookie_call', reason: 'upstream_rejected' })) ?? 0) >= 1, 'the probe failed at cookie_call with upstream_rejected')
  t.equal(after.get(seriesKey('authgw_unauthorized_total', { source: 'upstream', mechanism: 'session', reason: 'upstream_rejected' })), 0, 'no user-facing 401 counted')
  if (page instanceof Error) {
    t.fail(`no page: ${page.message}; notifications: ${notificationsSummary(webhook)}`)
    return
  }
  const elapsed = page.receivedAt - onset
  t.ok(elapsed <= PAGE_WITHIN_MS, `paged ${(elapsed / 1000).toFixed(1)} s after the onset (limit ${PAGE_WITHIN_MS / 1000} s)`)
  const alert = page.alerts.find((al) => al.labels.alertname === PAGE) as Notification['alerts'][number]
  t.match(alert.labels, { alertname: PAGE, job: JOB, severity: 'critical' })
  t.match(alert.annotations.summary, /step cookie_call fails with upstream_rejected/, `summary names step and reason: ${alert.annotations.summary}`)
  t.ok(alert.annotations.description?.includes('#alert-name-authgatewayprobefailing'), 'description links the runbook')
  t.same(otherPagesBefore(webhook, page, PAGE), [], 'nothing else paged: probe failures move no user-facing series')
  t.comment(`paged after ${(elapsed / 1000).toFixed(1)} s: ${alert.annotations.summary}`)

  t.same(
    prom.log.filter((l) => /level=(warn|error)/.test(l)),
    [],
    'Prometheus logged no warning or error (rule evaluation, annotation templates, notifications)',
  )
})
