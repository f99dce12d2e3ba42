// The paging stack the live SRE tests share: a webhook receiver in the test
// process, a real Alertmanager running the shipped routing with every receiver
// pointed at that webhook, and a real Prometheus loading the shipped rules,
// scraping the given targets every 2 s and sending to that Alertmanager. It is
// returned once every target is up and Prometheus has discovered Alertmanager.
import { join } from 'node:path'
import type { Teardown } from '../../helpers/private-postgres.ts'
import { freePort } from '../../helpers/gateway.ts'
import { ALERTS_DIR, REPO_ROOT, ruleFiles } from '../assets.ts'
import { startAlertmanager, startWebhook } from './alertmanager.ts'
import type { Alertmanager, Notification, Webhook } from './alertmanager.ts'
import { eventually, startPrometheus } from './prometheus.ts'
import type { Prometheus } from './prometheus.ts'

export const JOB = 'authgw'

export type PagingStack = { webhook: Webhook; alertmanager: Alertmanager; prom: Prometheus }

export async function startPagingStack(
  t: Teardown,
  opts: { prometheusBin: string; alertmanagerBin: string; targets: string[] },
): Promise<PagingStack> {
  const webhook = await startWebhook(t)
  const alertmanager = await startAlertmanager(t, {
    bin: opts.alertmanagerBin,
    configFile: join(REPO_ROOT, 'deploy', 'alertmanager', 'alertmanager.yml'),
    webhookUrl: webhook.url,
    port: await freePort(),
  })
  const prom = await startPrometheus(t, {
    bin: opts.prometheusBin,
    job: JOB,
    targets: opts.targets,
    ruleFiles: ruleFiles().map((f) => join(ALERTS_DIR, f)),
    port: await freePort(),
    interval: '2s',
    alertmanagers: [alertmanager.address],
  })
  await eventually(
    `${opts.targets.length} target(s) up and Alertmanager discovered`,
    async () => {
      const active = await prom.targets()
      const ams = await prom.api<{ activeAlertmanagers: unknown[] }>('/api/v1/alertmanagers')
      return active.length === opts.targets.length && active.every((x) => x.health === 'up') && ams.activeAlertmanagers.length === 1 ? true : undefined
    },
    30_000,
  )
  return { webhook, alertmanager, prom }
}

/** The first firing notification of `alertname` that reached the `pager` receiver. */
export const firingPage = (webhook: Webhook, alertname: string): Notification | undefined =>
  webhook.notifications.find((x) => x.receiver === 'pager' && x.status === 'firing' && x.alerts.some((al) => al.labels.alertname === alertname))

/** Pages for other alerts that reached the pager no later than `page`. */
export const otherPagesBefore = (webhook: Webhook, page: Notification, alertname: string): Notification[] =>
  webhook.notifications.filter((n) => n.receiver === 'pager' && n.receivedAt <= page.receivedAt && n.alerts.some((al) => al.labels.alertname !== alertname))

/** Every notification received, in one line, for a failure message. */
export const notificationsSummary = (webhook: Webhook): string =>
  JSON.stringify(webhook.notifications.map((n) => [n.receiver, n.status, n.alerts.map((al) => al.labels.alertname)]))
