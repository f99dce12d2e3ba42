// A real Alertmanager (Debian's `prometheus-alertmanager`, 0.25) for the live
// SRE tests, with the shipped routing (deploy/alertmanager/alertmanager.yml)
// and every receiver pointed at a webhook receiver in the test process. It
// runs on loopback with its own data directory and clustering off, and is
// stopped by pid in teardown; the Debian package's own service is never used.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse, stringify } from 'yaml'
import type { Teardown } from '../../helpers/private-postgres.ts'
import { eventually } from './prometheus.ts'

export const ALERTMANAGER_MISSING =
  'prometheus-alertmanager not found: install it with `apt-get install -y prometheus-alertmanager` (Debian) or set ALERTMANAGER=/path/to/alertmanager'

/** The alertmanager binary (ALERTMANAGER or /usr/bin/prometheus-alertmanager), or undefined. */
export function findAlertmanager(): string | undefined {
  const bin = process.env.ALERTMANAGER ?? '/usr/bin/prometheus-alertmanager'
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? bin : undefined
}

/** One alert of a webhook notification (Alertmanager's webhook payload, version 4). */
export type WebhookAlert = {
  status: 'firing' | 'resolved'
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
}
export type Notification = {
  /** The receiver named in the shipped configuration that delivered it. */
  receiver: string
  status: 'firing' | 'resolved'
  alerts: WebhookAlert[]
  /** When the webhook received it (ms). */
  receivedAt: number
}

export type Webhook = { url: string; notifications: Notification[] }

/** An HTTP receiver that records every notification posted to /<receiver>. */
export async function startWebhook(t: Teardown): Promise<Webhook> {
  const notifications: Notification[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Omit<Notification, 'receivedAt'>
      notifications.push({ ...body, receiver: decodeURIComponent((req.url ?? '/').slice(1)), receivedAt: Date.now() })
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, notifications }
}

type AlertmanagerConfig = { receivers: Array<{ name: string; [k: string]: unknown }>; [k: string]: unknown }

/** The shipped configuration, every receiver sending to `${webhookUrl}/<receiver name>`. Routing untouched. */
export function withWebhookReceivers(configText: string, webhookUrl: string): string {
  const config = parse(configText) as AlertmanagerConfig
  config.receivers = config.receivers.map((r) => ({
    name: r.name,
    webhook_configs: [{ url: `${webhookUrl}/${encodeURIComponent(r.name)}`, send_resolved: true }],
  }))
  return stringify(config)
}

export type Alertmanager = { url: string; address: string; log: string[] }

export async function startAlertmanager(t: Teardown, opts: { bin: string; configFile: string; webhookUrl: string; port: number }): Promise<Alertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'authgw-alertmanager-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const configFile = join(dir, 'alertmanager.yml')
  writeFileSync(configFile, withWebhookReceivers(readFileSync(opts.configFile, 'utf8'), opts.webhookUrl))
  const address = `127.0.0.1:${opts.port}`
  const child = spawn(
    opts.bin,
    [
      `--config.file=${configFile}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=${address}`,
      // No gossip: a lone instance, nothing listening on 9094.
      '--cluster.listen-address=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  if (child.pid === undefined) throw new Error(`could not start ${opts.bin}`)
  const pid = child.pid
  const log: string[] = []
  child.stderr.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') log.push(l)
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    const killer = setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000)
    await exited
    clearTimeout(killer)
  })
  const url = `http://${address}`
  await eventually(
    'Alertmanager answers /-/ready',
    async () => {
      if (child.exitCode !== null) throw new Error(`alertmanager exited with ${child.exitCode}:\n${log.slice(-20).join('\n')}`)
      const res = await fetch(`${url}/-/ready`).catch(() => undefined)
      return res?.status === 200 ? true : undefined
    },
    20_000,
  )
  return { url, address, log }
}
