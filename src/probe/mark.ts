// The probe's requests carry a mark no client can forge: an HMAC over the
// time, method and path, with a key derived from BETTER_AUTH_SECRET, which
// every replica shares. PROBE_URL may cross a load balancer, so whichever
// replica receives a probe request verifies the mark itself. A mark is good
// for MAX_SKEW_SECONDS either side of its time and for one method and path,
// so a captured header cannot hide other requests for long (docs/adr/0050).
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

/** Stripped before the upstream with every other `x-authgw-*` header (src/proxy/headers.ts). */
export const PROBE_HEADER = 'x-authgw-probe'
/** On a probe request's answer: the closed reason the gateway decided, so the probe can label its failure. */
export const PROBE_REASON_HEADER = 'x-authgw-reason'

const VERSION = 'v1'
const MAX_SKEW_SECONDS = 60

export type ProbeMark = {
  /** The header value for a request the probe sends now. */
  sign(method: string, path: string, nowMs?: number): string
  /** Whether a received header value is a valid probe mark for this request. */
  verify(value: string | string[] | undefined, method: string, url: string, nowMs?: number): boolean
}

export function createProbeMark(secret: string): ProbeMark {
  const key = Buffer.from(hkdfSync('sha256', secret, 'authgw', 'authgw probe mark v1', 32))
  const mac = (ts: string, method: string, path: string) =>
    createHmac('sha256', key).update(`${VERSION}\n${ts}\n${method.toUpperCase()}\n${path}`).digest()
  return {
    sign(method, path, nowMs = Date.now()) {
      const ts = String(Math.floor(nowMs / 1000))
      return `${VERSION}.${ts}.${mac(ts, method, path).toString('base64url')}`
    },
    verify(value, method, url, nowMs = Date.now()) {
      if (typeof value !== 'string' || value.length > 128) return false
      const parts = value.split('.')
      if (parts.length !== 3 || parts[0] !== VERSION) return false
      const [, ts, sig] = parts as [string, string, string]
      if (!/^\d{1,12}$/.test(ts)) return false
      if (Math.abs(nowMs / 1000 - Number(ts)) > MAX_SKEW_SECONDS) return false
      const given = Buffer.from(sig, 'base64url')
      const want = mac(ts, method, pathOf(url))
      return given.length === want.length && timingSafeEqual(given, want)
    },
  }
}

function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
