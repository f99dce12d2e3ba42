// Loaded into the scaling run's gateway (`--expose-gc --import ./bench/heap-probe.ts`),
// never shipped: on SIGUSR2 it collects garbage twice and writes
// process.memoryUsage() to BENCH_HEAP_FILE, so the benchmark can read the heap
// that live cache entries hold (bytes per entry = heap delta ÷ entries added).
import { writeFileSync } from 'node:fs'

const file = process.env.BENCH_HEAP_FILE
const gc = (globalThis as { gc?: () => void }).gc
if (file && gc) {
  let seq = 0
  process.on('SIGUSR2', () => {
    gc()
    gc()
    writeFileSync(file, JSON.stringify({ seq: ++seq, ...process.memoryUsage() }))
  })
}
