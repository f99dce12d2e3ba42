// BETTER_AUTH_SECRET strength: whole families of guessable secrets are
// refused (not only the examples from the issue), machine-made ones pass.
import { randomBytes, randomInt } from 'node:crypto'
import t from 'tap'
import { BETTER_AUTH_DEFAULT_SECRET, secretWeakness } from '../../src/config/secret-strength.ts'

const pick = <T>(xs: readonly T[]): T => xs[randomInt(xs.length)] as T
const pad = (s: string, n = 40): string => (s.length >= n ? s : pad(s + s, n)).slice(0, Math.max(n, s.length))
const b64 = (s: string) => Buffer.from(s).toString('base64')
const hex = (s: string) => Buffer.from(s).toString('hex')

const WORDS = ['password', 'secret', 'dragon', 'monkey', 'sunshine', 'welcome', 'football', 'letmein', 'master', 'shadow', 'princess', 'computer', 'summer', 'winter', 'freedom', 'banana']
const title = (w: string) => w.charAt(0).toUpperCase() + w.slice(1)
const leet = (s: string) => s.replace(/a/g, '@').replace(/e/g, '3').replace(/o/g, '0').replace(/s/g, '$').replace(/i/g, '1')

const families: Record<string, string[]> = {
  'from the issue': [
    '0123456789012345678901234567890123456789',
    'abcdefghijklmnopqrstuvwxyz012345',
    'my-super-secret-key-that-is-at-least-32-characters-long',
    BETTER_AUTH_DEFAULT_SECRET,
  ],
  'keyboard walks': [
    'qwertyuiopasdfghjklzxcvbnm1234567890',
    '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.',
    'asdfghjkl;asdfghjkl;asdfghjkl;asdf',
    'zxcvbnm,./zxcvbnm,./zxcvbnm,./zxcv',
    'qazwsxedcrfvtgbyhnujmikolpQAZWSXEDC',
    '!QAZ@WSX#EDC$RFV%TGB^YHN&UJM*IK<(OL>',
    '789456123/*-789456123/*-789456123/*-',
    'azertyuiopqsdfghjklmwxcvbnazertyuiop',
  ],
  repeats: [
    'a'.repeat(40),
    'ab'.repeat(20),
    'abc123'.repeat(7),
    pad(randomBytes(4).toString('hex')),
    pad(randomBytes(6).toString('base64url')),
    'Passw0rd!'.repeat(5),
    '-_-_'.repeat(10),
  ],
  sequences: [
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJ',
    'zyxwvutsrqponmlkjihgfedcba9876543210',
    '01234567890123456789abcdefabcdef0123',
    '13579135791357913579135791357913579',
    'acegikmoqsuwyacegikmoqsuwyacegikmoqs',
    '1234567890-1234567890-1234567890-12',
  ],
  'dictionary phrases padded to length': [
    'correcthorsebatterystaplecorrecthorse',
    'thisismysecretkeyforproductionuse',
    `${pick(WORDS)}${pick(WORDS)}${pick(WORDS)}1234567890123`,
    `${pick(WORDS)}!!!!!!!!!!!!!!!!!!!!!!!!!!!!!`,
    `${pick(WORDS)}-${pick(WORDS)}-${pick(WORDS)}-${pick(WORDS)}-2024`,
    `${title(pick(WORDS))}${title(pick(WORDS))}${title(pick(WORDS))}${title(pick(WORDS))}123!`,
    'MySuperSecretKeyThatIsAtLeast32CharactersLong',
    'super_secret_jwt_signing_key_for_dev_only_please_change',
    'ThisIsAVeryLongAndSecurePassphraseForMyApp2024!',
    'the quick brown fox jumps over the lazy dog',
    'change-me-to-a-long-random-string-in-production',
    'compose-only-secret-change-me-0123456789abcdef',
    'authgw-production-signing-secret-key-2026',
    'replace_this_with_your_own_secret_value_please',
  ],
  leetspeak: [
    leet('mysupersecretpasswordforproduction'),
    leet('password-password-password-password'),
    'P@ssw0rdP@ssw0rdP@ssw0rdP@ssw0rd',
    'S3cr3tK3yTh4tIsL0ngEn0ughF0rPr0d!',
    'p4ssw0rd-s3cr3t-k3y-f0r-pr0duct10n',
  ],
  'base64 of words': [
    b64('my secret key for the auth gateway'),
    b64('password1234567890123456'),
    b64('correct horse battery staple!!'),
    Buffer.from('this is the production secret').toString('base64url'),
    b64(b64('supersecretpassword')),
  ],
  'hex of a date or words': [
    hex('2024-01-01T00:00:00Z'),
    hex(new Date().toISOString()),
    hex('Sun Dec 06 2026 04:31:48'),
    hex('20240101123000'),
    hex('secretpassword1234'),
  ],
}

for (const [family, secrets] of Object.entries(families)) {
  t.test(`refused: ${family}`, async (t) => {
    for (const secret of secrets) {
      const why = secretWeakness(secret)
      t.ok(why, `refused: ${JSON.stringify(secret)}`)
      t.match(why ?? '', /openssl rand -base64 32/, 'says how to make a good one')
      t.notOk((why ?? '').includes(secret), 'never echoes the secret')
    }
  })
}

t.test('short secrets are refused whatever they are made of', async (t) => {
  t.match(secretWeakness(randomBytes(23).toString('base64url').slice(0, 31)), /shorter than 32/)
  t.match(secretWeakness('short'), /shorter than 32/)
})

// `openssl rand -base64 32` and friends, as Node makes the same bytes.
const generators: Record<string, () => string> = {
  'openssl rand -base64 32': () => randomBytes(32).toString('base64'),
  'openssl rand -base64 24 (32 characters)': () => randomBytes(24).toString('base64'),
  'openssl rand -hex 16 (32 characters)': () => randomBytes(16).toString('hex'),
  'openssl rand -hex 32': () => randomBytes(32).toString('hex'),
  'base64url of 32 random bytes (the development default)': () => randomBytes(32).toString('base64url'),
  'random bytes behind a readable label': () => `authgw-prod-${randomBytes(32).toString('base64url')}`,
}

for (const [name, generate] of Object.entries(generators)) {
  t.test(`accepted: ${name}, 100 draws`, async (t) => {
    const refused: string[] = []
    for (let i = 0; i < 100; i++) {
      const secret = generate()
      if (secretWeakness(secret) !== undefined) refused.push(secret)
    }
    t.same(refused, [], 'every random secret passes')
  })
}
