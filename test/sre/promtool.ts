// promtool (Debian bookworm's `prometheus` package ships 2.42) from the tests.
import { spawnSync } from 'node:child_process'

export type Run = { code: number; output: string }

/** The promtool binary, or undefined when it is not installed. */
export function findPromtool(): string | undefined {
  const bin = process.env.PROMTOOL ?? 'promtool'
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return r.status === 0 ? bin : undefined
}

export const PROMTOOL_MISSING =
  'promtool not found: install it with `apt-get install -y prometheus` (Debian) or set PROMTOOL=/path/to/promtool'

export function promtool(bin: string, args: string[], cwd?: string): Run {
  const r = spawnSync(bin, args, { encoding: 'utf8', cwd, timeout: 540_000 })
  return { code: r.status ?? -1, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` }
}
