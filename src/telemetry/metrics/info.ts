// Info gauges (always 1): this instance's auth configuration and build, so
// replicas that disagree show as config drift.
import { Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { MetricName } from '../metric-names.ts'

export type ConfigInfoLabels = {
  issuer: string
  audience: string
  jwks_url: string
  cookie_prefix: string
  secret_fingerprint: string
}

export function infoMetrics(registry: Registry, info: { config: ConfigInfoLabels; version: string }): void {
  const configInfo = new Gauge({
    name: MetricName.configInfo,
    help: 'Auth configuration of this instance (1); replicas that disagree point at config drift.',
    labelNames: ['issuer', 'audience', 'jwks_url', 'cookie_prefix', 'secret_fingerprint'] as const,
    registers: [registry],
  })
  const buildInfo = new Gauge({
    name: MetricName.buildInfo,
    help: 'Build of this instance (1).',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  })
  configInfo.set(info.config, 1)
  buildInfo.set({ version: info.version, node_version: process.version }, 1)
}
