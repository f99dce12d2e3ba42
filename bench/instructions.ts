// Instructions per request under callgrind: a figure that does not move with
// whatever else the machine runs, for optimisation decisions on a shared box
// (wall-clock ratios there are noise). `npm run bench:instructions`.
//
// Each target runs under `valgrind --tool=callgrind` (collection off at
// start); after a warm-up (JIT, pools, caches) the counters are zeroed,
// BENCH_IR_REQUESTS requests are sent (8 at a time), and the window is
// dumped: instructions (Ir) of that window ÷ requests. Targets: the lean hop
// (reference), the JWT path and the warm session path of the real gateway.
// BENCH_IR_TARGETS=lean,jwt,session chooses; BENCH_IR_ENV='K=V,K=V' adds
// gateway settings (e.g. tracing) for an A/B; BENCH_IR_KEEP=1 keeps the dump
// files (callgrind_annotate them for the per-function split).
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { createBenchDatabase } from './database.ts'
import { freePort } from './processes.ts'

const root = join(import.meta.dirname, '..')
const REQUESTS = Number(process.env.BENCH_IR_REQUESTS ?? 2000)
const WARMUP = Number(process.env.BENCH_IR_WARMUP ?? 3000)
const TARGETS = (process.env.BENCH_IR_TARGETS ?? 'lean,jwt,session').split(',').map((s) => s.trim())
const EXTRA_ENV = Object.fromEntries(
  (process.env.BENCH_IR_ENV ?? '')
    .split(',')
    .filter((kv) => kv.includes('='))
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
)
const KEEP = process.env.BENCH_IR_KEEP === '1'
const PATH = '/api/items/42'
const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`)

const procs: ChildProcess[] = []
const dir = mkdtempSync(join(tmpdir(), 'authgw-ir-'))

function start(name: string, args: string[], env: Record<string, string>, underValgrind: boolean): ChildProcess {
  const command = underValgrind ? 'valgrind' : process.execPath
  const full = underValgrind
    ? ['--tool=callgrind', '--instr-atstart=no', `--vgdb-prefix=${join(dir, 'vgdb')}`, '--smc-check=all-non-file', `--callgrind-out-file=${join(dir, `${name}.%p.out`)}`, process.execPath, ...args]
    : args
  const p = spawn(command, full, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  p.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString()).slice(-4000)
  })
  p.once('exit', (code) => {
    if (code !== 0 && code !== null && !stopping) process.stderr.write(`${name} exited ${code}: ${err}\n`)
  })
  procs.push(p)
  return p
}
let stopping = false

async function ready(url: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url)
      await r.text()
      if (r.status === 200) return
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`${url} not ready`)
}

async function send(origin: string, headers: Record<string, string>, n: number): Promise<number> {
  const pool = new Pool(origin, { connections: 8 })
  let next = 0
  let ok = 0
  const worker = async () => {
    while (next++ < n) {
      const res = await pool.request({ method: 'GET', path: PATH, headers })
      await res.body.dump()
      if (res.statusCode === 200) ok++
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  await pool.close()
  return ok
}

/** Ir of the last dump of this pid. */
function lastDumpIr(pid: number): number {
  const files = readdirSync(dir).filter((f) => f.includes(`.${pid}.out.`) && /\.\d+$/.test(f))
  // callgrind_control --dump writes <file>.N; the highest N is the newest.
  const newest = files.sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop()
  if (!newest) throw new Error(`no callgrind dump for ${pid}`)
  const text = readFileSync(join(dir, newest), 'utf8')
  const m = /^(?:summary|totals): (\d+)/m.exec(text)
  if (!m) throw new Error(`no totals in ${newest}`)
  return Number(m[1])
}

async function measure(name: string, proc: ChildProcess, origin: string, headers: Record<string, string>) {
  const pid = proc.pid as number
  await send(origin, headers, WARMUP)
  const control = (what: string) => execFileSync('callgrind_control', [`--vgdb-prefix=${join(dir, 'vgdb')}`, what, String(pid)], { stdio: ['ignore', 'ignore', 'inherit'] })
  control('--instr=on')
  control('--zero')
  const ok = await send(origin, headers, REQUESTS)
  control('--dump')
  control('--instr=off')
  const ir = lastDumpIr(pid)
  out({ target: name, requests: REQUESTS, ok, instructions: ir, instructionsPerRequest: Math.round(ir / REQUESTS), env: EXTRA_ENV })
  if (ok !== REQUESTS) throw new Error(`${name}: ${REQUESTS - ok} requests were not 200`)
}

const db = await createBenchDatabase()
try {
  const upstreamProc = spawn(process.execPath, [join(import.meta.dirname, 'upstream.ts')], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  procs.push(upstreamProc)
  const upstreamPort = await new Promise<string>((resolve) => upstreamProc.stdout?.once('data', (c: Buffer) => resolve(c.toString().trim().split('\n')[0] as string)))
  const upstreamUrl = `http://127.0.0.1:${upstreamPort}`

  if (TARGETS.includes('lean')) {
    const port = await freePort()
    const lean = start('lean', [join(import.meta.dirname, 'lean-hop.ts')], { UPSTREAM_URL: upstreamUrl, PORT: String(port) }, true)
    await ready(`http://127.0.0.1:${port}/readyz`)
    await measure('lean', lean, `http://127.0.0.1:${port}`, {})
  }

  if (TARGETS.includes('jwt') || TARGETS.includes('session')) {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      BETTER_AUTH_SECRET: randomBytes(32).toString('base64url'),
      BETTER_AUTH_URL: origin,
      UPSTREAM_URL: upstreamUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      METRICS_PORT: String(await freePort()),
      METRICS_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      AUTH_RATE_LIMIT: 'off',
      DEMO_APP: 'off',
      JWT_EXPIRATION_SECONDS: '3600',
      ...EXTRA_ENV,
    }
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_') && !(k in EXTRA_ENV)) env[k] = ''
    const gw = start('gateway', ['--import', './src/telemetry/otel-bootstrap.ts', 'src/main.ts'], env, true)
    await ready(`${origin}/readyz`)
    const res = await fetch(`${origin}/api/auth/sign-up/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body: JSON.stringify({ email: 'ir-user@example.test', password: 'instruction counting password 1', name: 'IR User' }),
    })
    if (res.status !== 200) throw new Error(`sign-up: ${res.status} ${await res.text()}`)
    const cookie = res.headers
      .getSetCookie()
      .map((c) => c.split(';')[0] as string)
      .find((c) => c.includes('.session_token=')) as string
    const tok = (await (await fetch(`${origin}/api/auth/token`, { headers: { cookie } })).json()) as { token: string }
    if (TARGETS.includes('jwt')) await measure('jwt', gw, origin, { authorization: `Bearer ${tok.token}` })
    if (TARGETS.includes('session')) await measure('session', gw, origin, { cookie })
  }
} finally {
  stopping = true
  for (const p of procs.reverse()) p.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 3000))
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  await db.drop().catch(() => undefined)
  if (KEEP) out({ dumps: dir })
  else rmSync(dir, { recursive: true, force: true })
}
