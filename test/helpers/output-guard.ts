// Loaded into every tap test process (package.json: tap.node-arg --import):
// the code under test may write JSON lines only, the gateway's contract for
// its own output. Anything else written through console.* or to stderr (a
// library printing "ERROR [Better Auth]: …", a Node warning, a stray
// console.log) fails the test file: the lines are listed on stderr and the
// process exits 1, which tap reports as a failed file. A JSON line that
// carries a terminal colour sequence (raw or JSON-escaped, as a coloured
// library message logged through pino would) fails it too: test output and
// logs carry no ANSI noise. TAP itself is written to process.stdout and is
// not inspected.
import { Console } from 'node:console'
import { Writable } from 'node:stream'

const violations: string[] = []
const pending = { console: '', stderr: '' }

function inspect(channel: keyof typeof pending, chunk: unknown): void {
  const text = pending[channel] + (typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'))
  const lines = text.split('\n')
  pending[channel] = lines.pop() ?? ''
  for (const line of lines) check(channel, line)
}

/** A terminal control sequence, raw (ESC) or as JSON writes it (\\u001b / \\x1b). */
export const ANSI = /\u001b\[|\\u001b\[|\\x1b\[/i

function check(channel: string, line: string): void {
  const trimmed = line.trim()
  if (trimmed === '') return
  if (ANSI.test(trimmed)) {
    violations.push(`${channel}: ${trimmed.slice(0, 300)}`)
    return
  }
  try {
    const value: unknown = JSON.parse(trimmed)
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return
  } catch {
    // not JSON
  }
  violations.push(`${channel}: ${trimmed.slice(0, 300)}`)
}

const writeStderr = process.stderr.write.bind(process.stderr) as (chunk: unknown, ...rest: unknown[]) => boolean
const writeStdout = process.stdout.write.bind(process.stdout) as (chunk: unknown, ...rest: unknown[]) => boolean

process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => {
  inspect('stderr', chunk)
  return writeStderr(chunk, ...rest)
}) as typeof process.stderr.write

// console.log and friends write to stdout, which tap owns: they get a console
// of their own whose output is inspected, then passed on.
const passOn = (write: typeof writeStdout) =>
  new Writable({
    write(chunk: Buffer, _encoding, callback) {
      inspect('console', chunk)
      write(chunk)
      callback()
    },
  })
globalThis.console = new Console({ stdout: passOn(writeStdout), stderr: passOn(writeStderr) })

process.on('exit', () => {
  for (const channel of ['console', 'stderr'] as const) if (pending[channel] !== '') check(channel, pending[channel])
  if (violations.length === 0) return
  writeStderr(
    JSON.stringify({ outputGuard: 'non-JSON output from the code under test', lines: violations.slice(0, 20), total: violations.length }) + '\n',
  )
  process.exitCode = 1
})
