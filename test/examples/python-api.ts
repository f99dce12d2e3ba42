// The example Python API (examples/python-api) as a real process for tap
// tests: Debian's /usr/bin/python3 with its python3-* packages, a clean
// environment, stdout kept as parsed JSON lines, stopped with SIGTERM by pid.
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { Teardown } from '../helpers/private-postgres.ts'
import { REPO_ROOT } from '../fixtures/node-process.ts'

/** Debian's interpreter: the packages below belong to it, not to a pyenv python3 first on PATH. */
export const PYTHON = '/usr/bin/python3'
export const API_DIR = join(REPO_ROOT, 'examples', 'python-api')
/** What the service imports (its Dockerfile installs these). */
export const RUNTIME_PACKAGES = ['python3-fastapi', 'python3-uvicorn', 'python3-jwt', 'python3-prometheus-client', 'python3-cryptography']
/** What its pytest suite adds (FastAPI's TestClient needs httpx). */
export const TEST_PACKAGES = ['python3-pytest', 'python3-httpx']
const APT_PACKAGES = [...RUNTIME_PACKAGES, ...TEST_PACKAGES].join(' ')

/** Why the service cannot run here, or undefined when it can. */
export function pythonProblem(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import fastapi, uvicorn, jwt, prometheus_client, cryptography'], { encoding: 'utf8' })
  if (r.error) return `${PYTHON} cannot be run (${r.error.message}); install: apt-get install python3 ${APT_PACKAGES}`
  if (r.status !== 0) return `${PYTHON} lacks the packages (${r.stderr.trim().split('\n').pop()}); install: apt-get install ${APT_PACKAGES}`
  return undefined
}

/** Run Python code in the API's directory and return its stdout. */
export function runPython(code: string): string {
  const r = spawnSync(PYTHON, ['-c', code], { cwd: API_DIR, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } })
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`)
  return r.stdout
}

export type ApiRecord = Record<string, unknown> & { msg?: string; reqId?: string }

export type PythonApi = {
  url: string
  /** Every stdout line parsed; a line that is not JSON throws when read. */
  records(): ApiRecord[]
  stdout: string[]
  stderr: string[]
  /** The request line for a request id, once written. */
  requestLine(reqId: string): Promise<ApiRecord>
  exited: Promise<number | null>
}

/** Start the service on `port` and wait until /healthz answers. */
export async function startPythonApi(t: Teardown, port: number, env: Record<string, string>): Promise<PythonApi> {
  const child = spawn(PYTHON, ['-m', 'upstream_api'], {
    cwd: API_DIR,
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  if (child.pid === undefined) throw new Error(`could not start ${PYTHON}`)
  const pid = child.pid
  const stdout: string[] = []
  const stderr: string[] = []
  const collect = (into: string[]) => {
    let rest = ''
    return (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n')
      rest = lines.pop() ?? ''
      for (const l of lines) if (l.trim() !== '') into.push(l)
    }
  }
  child.stdout.on('data', collect(stdout))
  child.stderr.on('data', collect(stderr))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    process.kill(pid, 'SIGTERM')
    const killer = setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000)
    await exited
    clearTimeout(killer)
  })
  const url = `http://127.0.0.1:${port}`
  const records = () => stdout.map((l) => JSON.parse(l) as ApiRecord)
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the Python API exited (${child.exitCode}): ${[...stdout, ...stderr].join('\n')}`)
    const ok = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    if (Date.now() > deadline) throw new Error(`the Python API did not answer /healthz within 30 s: ${[...stdout, ...stderr].join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return {
    url,
    records,
    stdout,
    stderr,
    exited,
    async requestLine(reqId: string) {
      const deadline = Date.now() + 10_000
      for (;;) {
        const line = records().find((r) => r.msg === 'request' && r.reqId === reqId)
        if (line) return line
        if (Date.now() > deadline) throw new Error(`no request line for ${reqId} in ${stdout.join('\n')}`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    },
  }
}
