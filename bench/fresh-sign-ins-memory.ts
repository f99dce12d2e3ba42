// Memory of the pseudonymous client map (src/auth/fresh-sign-ins.ts): heap
// bytes per entry at the default bound, measured after a forced GC.
// Run: npx node --expose-gc bench/fresh-sign-ins-memory.ts
import { FRESH_SIGN_IN_MAX_ENTRIES, FreshSignIns } from '../src/auth/fresh-sign-ins.ts'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')
const heap = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const n = FRESH_SIGN_IN_MAX_ENTRIES
const base = heap()
const fresh = new FreshSignIns({ windowSeconds: 300, maxEntries: n })
// Twice the bound: the map must stay at the bound.
for (let i = 0; i < 2 * n; i++) {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`
  fresh.signedIn(fresh.clientKey(ip, `Mozilla/5.0 client ${i}`), `token-${i}-${'x'.repeat(24)}`)
}
const used = heap() - base
const { clients, tokens } = fresh.size
process.stdout.write(
  `${JSON.stringify({ entriesPerMap: { clients, tokens }, bound: n, heapBytes: used, bytesPerEntry: Math.round(used / (clients + tokens)), totalMiB: +(used / 1048576).toFixed(1) })}\n`,
)
