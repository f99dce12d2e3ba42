// The part of autocannon's API the benchmark uses (the package ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'
  type Request = { method?: 'GET' | 'POST' | 'PUT' | 'DELETE'; path?: string; headers?: Record<string, string>; body?: string }
  type Options = { url: string; connections?: number; pipelining?: number; duration?: number; requests?: Request[] }
  type Result = { requests: { total: number }; errors: number; timeouts: number; non2xx: number }
  type Instance = EventEmitter & PromiseLike<Result> & { stop(): void }
  function autocannon(opts: Options): Instance
  export default autocannon
}
