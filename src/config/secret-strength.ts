// Is BETTER_AUTH_SECRET something an attacker could guess? A character
// frequency count cannot see sequences, repeats, keyboard walks or phrases, so
// the estimate comes from zxcvbn (dictionaries, l33t, keyboard graphs, dates,
// sequences, repeats), applied three ways and the lowest estimate kept:
//   - the whole string;
//   - word by word (split at punctuation and camelCase), summed: zxcvbn scores
//     a run of short words between separators as brute force, so
//     "my-super-secret-key-…" looks strong whole and weak word by word;
//   - the text inside, when the string is hex or base64 of printable text
//     (base64 of a phrase looks random to any estimator).
// A machine-made secret (`openssl rand -base64 32`) scores close to one
// decimal digit per character; anything a person made up scores far less.
import { createRequire } from 'node:module'
import type { ZxcvbnFactory } from '@zxcvbn-ts/core'

export const MIN_SECRET_LENGTH = 32

/** How to make a good one; every refusal says it. */
export const SECRET_ADVICE = 'generate one with `openssl rand -base64 32`'

/**
 * log10 of the guesses required, per character, capped: a secret passes when
 * zxcvbn's lowest estimate reaches min(REQUIRED_PER_CHAR × length, REQUIRED_CAP).
 * Measured (test/config/secret-strength.test.ts): random hex/base64 secrets of
 * 32+ characters score ≥ 0.8 per character; phrases, sequences and walks ≤ 0.6.
 * The cap (10^30 ≈ 100 bits as zxcvbn counts) lets a long secret carry a
 * readable label next to its random part.
 */
const REQUIRED_PER_CHAR = 0.7
const REQUIRED_CAP = 30

/** better-auth's built-in fallback (better-auth/dist/utils/constants.mjs); public, so never a secret. */
export const BETTER_AUTH_DEFAULT_SECRET = 'better-auth-secret-12345678901234567890'

// Words that people put into made-up secrets for this kind of service.
const CONTEXT_WORDS = [
  'better', 'auth', 'betterauth', 'authgw', 'gateway', 'secret', 'secrets', 'key', 'keys', 'jwt', 'jwks', 'token',
  'session', 'cookie', 'signing', 'sign', 'password', 'passphrase', 'change', 'changeme', 'replace', 'production',
  'prod', 'staging', 'stage', 'dev', 'development', 'test', 'testing', 'local', 'localhost', 'example', 'compose',
  'docker', 'default', 'super', 'secure', 'random', 'characters', 'long', 'least', 'minimum', 'app', 'api',
]

let factory: ZxcvbnFactory | undefined
function zxcvbn(): ZxcvbnFactory {
  // Loaded and built on first use (the dictionaries are megabytes of source,
  // then maps), so a process whose secret is never checked (development,
  // tests) never pays for them. The packages are CommonJS: require is
  // synchronous, as loadConfig is.
  if (factory !== undefined) return factory
  const require = createRequire(import.meta.url)
  const { ZxcvbnFactory: Factory } = require('@zxcvbn-ts/core') as typeof import('@zxcvbn-ts/core')
  const common = require('@zxcvbn-ts/language-common') as typeof import('@zxcvbn-ts/language-common')
  const english = require('@zxcvbn-ts/language-en') as typeof import('@zxcvbn-ts/language-en')
  // Without English Wikipedia's 30k titles: they doubled the build and each
  // check (measured 365 → 141 ms and 61 → 32 ms CPU) and refused nothing the
  // common-words, names and password lists miss (test/config/secret-strength.test.ts).
  const { 'wikipedia-en': _wikipedia, ...englishWords } = english.dictionary
  factory = new Factory({
    dictionary: { ...common.dictionary, ...englishWords, context: CONTEXT_WORDS },
    graphs: common.adjacencyGraphs,
    // Each extra substitution multiplies the l33t matcher's work (the default
    // 100 measured ~0.5 s per check); three still see "p@ssw0rd" and "l0ng",
    // and the read-as-letters pass above catches the heavier l33t.
    l33tMaxSubstitutions: 3,
  })
  return factory
}

/**
 * Whether zxcvbn's lowest estimate of `text` reaches `needed` (log10
 * guesses). Three estimates: the whole string, its words summed, and its words
 * summed once l33t digits are read as letters ("S3cr3tK3y" split at digits is
 * a dozen one-letter words; read as "SecretKey" it is two). A sum stops as
 * soon as it reaches `needed`: every word adds a non-negative amount.
 */
function reaches(text: string, needed: number): boolean {
  const z = zxcvbn()
  const sumReaches = (words: string[]) => {
    let sum = 0
    for (const w of words) {
      sum += z.check(w).guessesLog10
      if (sum >= needed) return true
    }
    return false
  }
  if (z.check(text).guessesLog10 < needed) return false
  const words = splitWords(text, true)
  if (words.length > 1 && !sumReaches(words)) return false
  const unleet = text.replace(/[013457@$!]/g, (c) => L33T[c] ?? c)
  return unleet === text || sumReaches(splitWords(unleet, false))
}

const L33T: Record<string, string> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', $: 's', '!': 'i' }

function splitWords(text: string, atDigits: boolean): string[] {
  const boundaries = atDigits
    ? /[^\p{L}\p{N}]+|(?<=\p{Ll})(?=\p{Lu})|(?<=\p{L})(?=\p{N})|(?<=\p{N})(?=\p{L})/u
    : /[^\p{L}\p{N}]+|(?<=\p{Ll})(?=\p{Lu})/u
  return text.split(boundaries).filter((w) => w.length > 0)
}

const required = (length: number) => Math.min(REQUIRED_PER_CHAR * length, REQUIRED_CAP)

/** Text hidden in a hex or base64 secret (a phrase, a date), or undefined for random bytes. */
function decodeOnce(secret: string): string | undefined {
  let bytes: Buffer | undefined
  if (/^(?:[0-9a-f]{2})+$/i.test(secret)) bytes = Buffer.from(secret, 'hex')
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(secret) || /^[A-Za-z0-9_-]+$/.test(secret)) {
    bytes = Buffer.from(secret, secret.includes('-') || secret.includes('_') ? 'base64url' : 'base64')
  }
  if (bytes === undefined || bytes.length === 0) return undefined
  const text = bytes.toString('utf8')
  // Random bytes are almost never all printable (each byte is with p ≈ 0.37).
  return /^[\p{L}\p{N}\p{P}\p{S}\p{Zs}]+$/u.test(text) && !text.includes('\uFFFD') ? text : undefined
}

/**
 * Why `secret` is too weak to sign sessions and encrypt keys, or undefined
 * when it is acceptable. The reason never contains the secret.
 */
export function secretWeakness(secret: string): string | undefined {
  if (secret === BETTER_AUTH_DEFAULT_SECRET) return `it is better-auth's published default secret; ${SECRET_ADVICE}`
  if (secret.length < MIN_SECRET_LENGTH) return `shorter than ${MIN_SECRET_LENGTH} characters; ${SECRET_ADVICE}`
  // Layers of encoding (base64 of base64 of a word) are peeled one by one.
  for (let inner = decodeOnce(secret), depth = 0; inner !== undefined && depth < 4; inner = decodeOnce(inner), depth++) {
    if (!reaches(inner, required(inner.length))) {
      return `it is an encoding of guessable text (hex or base64 of words, a date, a sequence); ${SECRET_ADVICE}`
    }
  }
  if (!reaches(secret, required(secret.length))) {
    return `it is guessable (words, a phrase, a sequence, a repeat or a keyboard pattern); ${SECRET_ADVICE}`
  }
  return undefined
}
