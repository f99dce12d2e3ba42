// Summarise a V8 .cpuprofile (from BENCH_CPU_PROF=1): self time by function
// and by package, and the inclusive time of the frames whose name or URL
// matches the given patterns.
//   node bench/profile-summary.ts [--after=<s>] [--until=<s>] [--timeline] [--per-request=<µs>] <file.cpuprofile> [pattern ...]
// --after/--until keep samples in that window (seconds from the profile's
// start; --timeline prints busy samples per second to find one measurement's
// window); --per-request scales
// the shares to µs per request given the measured gateway CPU per request.
import { readFileSync } from 'node:fs'

type Frame = { functionName: string; url: string; lineNumber: number }
type Node = { id: number; callFrame: Frame; children?: number[]; hitCount?: number }
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const args = process.argv.slice(2)
const option = (name: string) => {
  const a = args.find((x) => x.startsWith(`--${name}=`))
  return a === undefined ? undefined : Number(a.slice(name.length + 3))
}
const afterUs = (option('after') ?? 0) * 1e6
const untilUs = (option('until') ?? Infinity) * 1e6
const perRequest = option('per-request')
const [file, ...patterns] = args.filter((a) => !a.startsWith('--'))
process.stdout.on('error', () => process.exit(0))
if (!file) {
  process.stderr.write('usage: node bench/profile-summary.ts <file.cpuprofile> [pattern ...]\n')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

// Every sample weighs the same (the median interval). Weighting by the time to the next
// sample would charge the frame a descheduled thread stopped in (often a syscall) with all
// the time other processes held the core, which distorts profiles on a shared machine.
const deltas = [...profile.timeDeltas].sort((a, b) => a - b)
const interval = deltas[Math.floor(deltas.length / 2)] ?? 1000
const selfUs = new Map<number, number>()
let at = 0
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i] ?? 0
  if (at < afterUs || at > untilUs) continue
  const id = profile.samples[i] as number
  selfUs.set(id, (selfUs.get(id) ?? 0) + interval)
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
if (args.includes('--timeline')) {
  const idleIds = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id))
  const perSecond: number[] = []
  let t = 0
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    const sec = Math.floor(t / 1e6)
    perSecond[sec] = (perSecond[sec] ?? 0) + (idleIds.has(profile.samples[i] as number) ? 0 : 1)
  }
  process.stdout.write(`busy samples per second: ${perSecond.map((n, s) => `${s}:${n ?? 0}`).join(' ')}\n`)
}
const where = (f: Frame) => {
  const url = f.url.replace(/^file:\/\//, '')
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (m) return m[1] as string
  if (url.includes('/src/')) return `src/${url.split('/src/')[1]}`
  if (url.startsWith('node:')) return url
  return url === '' ? '(native/vm)' : url
}
const label = (f: Frame) => `${f.functionName || '(anonymous)'} ${where(f)}:${f.lineNumber + 1}`
const busy = [...selfUs.entries()].filter(([id]) => !['(idle)', '(program)', '(garbage collector)'].includes(byId.get(id)?.callFrame.functionName ?? ''))
const busyTotal = busy.reduce((n, [, us]) => n + us, 0)
const pct = (us: number) =>
  `${((100 * us) / busyTotal).toFixed(1).padStart(5)} %` + (perRequest ? ` ${((perRequest * us) / busyTotal).toFixed(1).padStart(6)} µs/req` : '')

const special = ['(idle)', '(program)', '(garbage collector)'].map((name) => {
  const us = [...selfUs.entries()].filter(([id]) => byId.get(id)?.callFrame.functionName === name).reduce((n, [, x]) => n + x, 0)
  return `${name} ${((100 * us) / total).toFixed(1)} %`
})
process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled; ${special.join(', ')} of all samples; percentages below are of busy samples (${(busyTotal / 1e6).toFixed(1)} s)\n\n`)

const bySelf = new Map<string, number>()
const byPackage = new Map<string, number>()
for (const [id, us] of busy) {
  const f = (byId.get(id) as Node).callFrame
  bySelf.set(label(f), (bySelf.get(label(f)) ?? 0) + us)
  byPackage.set(where(f), (byPackage.get(where(f)) ?? 0) + us)
}
const top = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)
process.stdout.write('self time by package / file:\n')
for (const [k, us] of top(byPackage, 25)) process.stdout.write(`  ${pct(us)}  ${k}\n`)
process.stdout.write('\nself time by function:\n')
for (const [k, us] of top(bySelf, 40)) process.stdout.write(`  ${pct(us)}  ${k}\n`)

if (patterns.length > 0) {
  process.stdout.write('\ninclusive time (a sample counts once per pattern):\n')
  for (const p of patterns) {
    const re = new RegExp(p)
    let us = 0
    for (const [id, t] of busy) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = (byId.get(cur) as Node).callFrame
        if (re.test(label(f))) {
          us += t
          break
        }
      }
    }
    process.stdout.write(`  ${pct(us)}  ${p}\n`)
  }
}
