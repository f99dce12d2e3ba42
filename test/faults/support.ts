// Shared by test/faults and test/hostile: a real upstream that records what
// it received, raw-socket requests, and bounded polling.
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { Teardown } from '../helpers/private-postgres.ts'

export type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer }

export type RecordingUpstream = {
  url: string
  port: number
  received: Received[]
  /** Every socket the gateway opened to it, so a test can cut them. */
  sockets: Set<Socket>
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void

/**
 * A node:http upstream that records each request (after reading its body)
 * and answers with `handler`, by default 200 `{"ok":true}`.
 */
export async function recordingUpstream(t: Teardown, handler?: Handler): Promise<RecordingUpstream> {
  const received: Received[] = []
  const sockets = new Set<Socket>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      if (handler) handler(req, res, body)
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
  })
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const port = await listenForTest(t, server, sockets)
  return { url: `http://127.0.0.1:${port}`, port, received, sockets }
}

/** Listen on a loopback port; on teardown destroy open sockets and close. Returns the port. */
export async function listenForTest(t: Teardown, server: Server, sockets: Set<Socket>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  )
  return (server.address() as AddressInfo).port
}

export type RawResult = {
  /** Everything the server sent, as latin1 text. */
  text: string
  status: number | undefined
  headers: Record<string, string>
  body: string
  /** The server closed (or reset) the connection. */
  closed: boolean
  error?: string
}

/**
 * Send `chunks` over a fresh TCP connection, `gapMs` apart, and collect the
 * answer until the server closes or `waitMs` after the last chunk.
 */
export function rawRequest(port: number, chunks: Array<string | Buffer>, opts: { gapMs?: number; waitMs?: number } = {}): Promise<RawResult> {
  const gapMs = opts.gapMs ?? 0
  const waitMs = opts.waitMs ?? 2000
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const received: Buffer[] = []
    let error: string | undefined
    let timer: NodeJS.Timeout | undefined
    let closedByServer = false
    const finish = () => {
      clearTimeout(timer)
      const text = Buffer.concat(received).toString('latin1')
      resolve({ ...parseRawResponse(text), text, closed: closedByServer, error })
    }
    socket.on('data', (d: Buffer) => received.push(d))
    socket.on('error', (e) => {
      error = (e as Error & { code?: string }).code ?? e.message
    })
    socket.on('end', () => {
      closedByServer = true
    })
    socket.on('close', finish)
    let i = 0
    const next = () => {
      if (socket.destroyed) return
      if (i < chunks.length) {
        socket.write(chunks[i++] as string | Buffer)
        timer = setTimeout(next, i < chunks.length ? gapMs : waitMs)
      } else {
        socket.destroy()
      }
    }
    socket.once('connect', next)
  })
}

export function parseRawResponse(text: string): { status: number | undefined; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n')
  const head = end === -1 ? text : text.slice(0, end)
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head)
  const headers: Record<string, string> = {}
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: m ? Number(m[1]) : undefined, headers, body: end === -1 ? '' : text.slice(end + 4) }
}

/**
 * Poll `probe` until it returns a value other than undefined. `limitMs` only
 * bounds a test that would otherwise hang; it asserts nothing about speed.
 */
export async function eventually<T>(probe: () => Promise<T | undefined>, opts: { limitMs: number; everyMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + opts.limitMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    await sleep(opts.everyMs ?? 50)
  }
  throw new Error(`${opts.what}: not reached within ${opts.limitMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
