// A disposable PostgreSQL cluster per call, for tests that stop and restart the
// database under a running app. Clusters start from a template initialised once
// per machine (and PostgreSQL version) in the temp dir, so a call costs a copy
// and a start rather than an initdb.
import { cp, mkdtemp, rename, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { locatePostgres, startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/db/embedded.ts'

export type PrivatePostgres = {
  /** Stays valid across stop() and start(): same port, same password. */
  url: string
  port: number
  stop(): Promise<void>
  start(): Promise<void>
}
export type Teardown = { teardown(fn: () => unknown): void }

export async function startPrivatePostgres(t: Teardown): Promise<PrivatePostgres> {
  const dataDir = await mkdtemp(join(tmpdir(), 'authgw-pg-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  await cp(await template(), dataDir, { recursive: true })
  let db: EmbeddedPostgres | undefined = await startEmbeddedPostgres({ dataDir })
  // Teardowns run last-in first-out: the cluster stops before its folder goes.
  t.teardown(() => db?.stop())
  const { url, port } = db
  return {
    url,
    port,
    async stop() {
      await db?.stop()
      db = undefined
    },
    async start() {
      db ??= await startEmbeddedPostgres({ dataDir, port })
    },
  }
}

let cached: Promise<string> | undefined
function template(): Promise<string> {
  cached ??= (async () => {
    const { version } = await locatePostgres()
    const dir = join(tmpdir(), `authgw-pg-template-${version}-${process.getuid?.() ?? 0}`)
    if (await isCluster(dir)) return dir
    const staging = await mkdtemp(join(tmpdir(), 'authgw-pg-template-'))
    const db = await startEmbeddedPostgres({ dataDir: staging })
    await db.stop()
    // Test processes run in parallel: the first rename wins, the others discard theirs.
    await rename(staging, dir).catch(() => rm(staging, { recursive: true, force: true }))
    return dir
  })()
  return cached
}

async function isCluster(dir: string): Promise<boolean> {
  return stat(join(dir, 'PG_VERSION')).then(
    () => true,
    () => false,
  )
}
