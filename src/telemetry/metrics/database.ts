// PostgreSQL as the gateway sees it: pool connections (sampled at scrape
// time) and errors by operation.
import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import { DbOperation, valuesOf } from '../../reasons.ts'
import { MetricName } from '../metric-names.ts'

export type PoolStats = { total: number; idle: number; waiting: number }

export function databaseMetrics(registry: Registry, poolStats?: () => PoolStats) {
  const dbPoolConnections = new Gauge({
    name: MetricName.dbPoolConnections,
    help: 'PostgreSQL pool connections, by state.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const stats = poolStats?.()
      if (stats === undefined) return
      this.set({ state: 'total' }, stats.total)
      this.set({ state: 'idle' }, stats.idle)
      this.set({ state: 'waiting' }, stats.waiting)
    },
  })
  const dbErrors = new Counter({
    name: MetricName.dbErrors,
    help: 'Database errors seen by the gateway, by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  })

  for (const state of ['total', 'idle', 'waiting']) dbPoolConnections.set({ state }, 0)
  for (const operation of valuesOf(DbOperation)) dbErrors.inc({ operation }, 0)

  return {
    setPool(total: number, idle: number, waiting: number) {
      dbPoolConnections.set({ state: 'total' }, total)
      dbPoolConnections.set({ state: 'idle' }, idle)
      dbPoolConnections.set({ state: 'waiting' }, waiting)
    },
    dbError(operation: DbOperation) {
      dbErrors.inc({ operation })
    },
  }
}
