// Writes the classic Grafana JSON of every dashboard to dashboards/*.json.
// Run: `npx node dashboards/src/build.ts`. test/sre/generated.test.ts fails
// when the committed JSON differs from what this produces.
import { writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { authDebugDashboard } from './auth-debug.ts'
import { overviewDashboard } from './overview.ts'
import type { BuiltDashboard } from './grafana.ts'

export const DASHBOARDS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')

export type DashboardFile = BuiltDashboard & { file: string }

export function buildDashboards(): DashboardFile[] {
  return [
    { file: 'authgw-overview.json', ...overviewDashboard() },
    { file: 'authgw-auth-debug.json', ...authDebugDashboard() },
  ]
}

export function renderDashboard(d: BuiltDashboard): string {
  return `${JSON.stringify(d.dashboard, null, 2)}\n`
}

if (import.meta.main) {
  for (const d of buildDashboards()) writeFileSync(join(DASHBOARDS_DIR, d.file), renderDashboard(d))
  console.log(`wrote ${buildDashboards().map((d) => d.file).join(', ')}`)
}
