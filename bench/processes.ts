// Child processes of the benchmark: spawned pinned to a core (taskset), with
// a readiness check, an exit watch and an orderly stop.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { cpus } from 'node:os'

export type Pinning = { enabled: boolean; rig: string; gateway: string; why: string }

/** Gateway on CPU 1, load generator and upstream on CPU 0, when the machine has both and taskset works. */
export function choosePinning(): Pinning {
  const n = cpus().length
  const taskset = spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0
  if (!taskset) return { enabled: false, rig: '', gateway: '', why: 'taskset unavailable: processes are not pinned' }
  if (n < 2) return { enabled: false, rig: '', gateway: '', why: `${n} CPU: processes are not pinned` }
  return { enabled: true, rig: '0', gateway: '1', why: `${n} CPUs: gateway on CPU 1, load generator + upstream + sink on CPU 0` }
}

/** Pin this process (the orchestrator) so nothing it starts lands on the gateway's core by default. */
export function pinSelf(pinning: Pinning): void {
  if (pinning.enabled) spawnSync('taskset', ['-p', '-c', pinning.rig, String(process.pid)], { stdio: 'ignore' })
}

export type Child = {
  name: string
  proc: ChildProcess
  pid: number
  /** Rejects when the process exits before stop() was called. */
  exited: Promise<never>
  stderr(): string
  stop(timeoutMs?: number): Promise<void>
}

export type SpawnOptions = {
  name: string
  args: string[]
  cpu?: string
  env?: Record<string, string>
  cwd: string
  /** Where stdout goes: a file path, '/dev/null', or 'pipe'. */
  stdout: string
  ipc?: boolean
  nodeArgs?: string[]
}

export function spawnNode(opts: SpawnOptions): Child {
  const command = opts.cpu ? 'taskset' : process.execPath
  // taskset execs node in place, so the child's pid is node's pid.
  const args = [...(opts.cpu ? ['-c', opts.cpu, process.execPath] : []), ...(opts.nodeArgs ?? []), ...opts.args]
  let outFd: number | undefined
  let stdoutOpt: 'pipe' | number = 'pipe'
  if (opts.stdout !== 'pipe') {
    outFd = openSync(opts.stdout, 'a')
    stdoutOpt = outFd
  }
  const stdio: StdioOptions = opts.ipc ? ['ignore', stdoutOpt, 'pipe', 'ipc'] : ['ignore', stdoutOpt, 'pipe']
  const proc = spawn(command, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio })
  if (outFd !== undefined) closeSync(outFd)
  let err = ''
  proc.stderr?.on('data', (c: Buffer) => {
    err = (err + c.toString('utf8')).slice(-8000)
  })
  let stopping = false
  const exited = new Promise<never>((_, reject) => {
    proc.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`${opts.name} exited unexpectedly (${code ?? signal}): ${err.trim().slice(-2000)}`))
    })
  })
  exited.catch(() => undefined)
  return {
    name: opts.name,
    proc,
    pid: proc.pid as number,
    exited,
    stderr: () => err,
    async stop(timeoutMs = 15_000) {
      stopping = true
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const gone = new Promise<void>((r) => proc.once('exit', () => r()))
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
      await gone
      clearTimeout(timer)
    },
  }
}

/** The first stdout line of a child that prints its port. */
export function firstLine(child: Child): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = ''
    child.proc.stdout?.on('data', (c: Buffer) => {
      buf += c.toString('utf8')
      const nl = buf.indexOf('\n')
      if (nl !== -1) resolve(buf.slice(0, nl).trim())
    })
    child.exited.catch(reject)
  })
}

export async function waitReady(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  while (Date.now() < deadline) {
    const attempt = fetch(url).then(
      async (r) => {
        last = `${r.status} ${(await r.text()).slice(0, 200)}`
        return r.status === 200
      },
      (e: unknown) => {
        last = String(e)
        return false
      },
    )
    if (await Promise.race([attempt, child.exited])) return
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`${child.name} not ready after ${timeoutMs} ms (last: ${last}); stderr: ${child.stderr().trim().slice(-2000)}`)
}

export async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', resolve)
  })
  const { port } = srv.address() as AddressInfo
  await new Promise((r) => srv.close(r))
  return port
}
