// The in-memory JWKS's unknown-kid path inside the refresh cooldown: a kid the
// key store holds is fetched at once; a junk kid is one store look-up, then
// remembered; look-ups are bounded per second; a store that cannot answer is
// JwksUnavailableError (a 503), never "unknown".
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { JwksStore, JwksUnavailableError, KID_LOOKUPS_PER_SECOND } from '../../src/auth/jwks.ts'
import type { Jwk } from '../../src/auth/jwks.ts'

const jwk = (kid: string): Jwk => ({ ...generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }), kid, alg: 'EdDSA' })

function storeOver(keys: Jwk[], opts: { failLookups?: boolean } = {}) {
  let now = 1_000_000
  const lookups: string[] = []
  let fetches = 0
  const store = new JwksStore({
    fetchKeys: async () => {
      fetches++
      return [...keys]
    },
    kidExists: async (kid) => {
      lookups.push(kid)
      if (opts.failLookups === true) throw new Error('connect ECONNREFUSED')
      return keys.some((k) => k.kid === kid)
    },
    refreshIntervalSeconds: 300,
    cooldownSeconds: 30,
    now: () => now,
  })
  return { store, lookups, fetches: () => fetches, advance: (ms: number) => (now += ms) }
}

t.test('a kid created after the last refresh is fetched inside the cooldown', async (t) => {
  const keys = [jwk('a')]
  const s = storeOver(keys)
  await s.store.refresh()
  t.equal(await s.store.getKey('junk-1'), undefined, 'a junk kid outside the cooldown: one refresh, unknown')
  t.equal(s.fetches(), 2)
  keys.push(jwk('b'))
  s.advance(1000)
  t.equal((await s.store.getKey('b'))?.kid, 'b', 'the new kid is found through the store, cooldown or not')
  t.same(s.lookups, ['b'])
  t.equal(s.fetches(), 3, 'one refresh to import it')
})

t.test('junk kids inside the cooldown: one look-up each, remembered, bounded per second', async (t) => {
  const s = storeOver([jwk('a')])
  await s.store.refresh()
  await s.store.getKey('start-the-cooldown')
  const fetchesBefore = s.fetches()
  t.equal(await s.store.getKey('junk-2'), undefined)
  t.equal(await s.store.getKey('junk-2'), undefined)
  t.same(s.lookups, ['junk-2'], 'the miss is remembered: the second sight costs no look-up')
  for (let i = 0; i < KID_LOOKUPS_PER_SECOND * 2; i++) t.equal(await s.store.getKey(`flood-${i}`), undefined)
  t.equal(s.lookups.length, KID_LOOKUPS_PER_SECOND, `at most ${KID_LOOKUPS_PER_SECOND} look-ups in one second`)
  s.advance(1000)
  await s.store.getKey('next-second')
  t.equal(s.lookups.at(-1), 'next-second', 'the budget is per second')
  t.equal(s.fetches(), fetchesBefore, 'no refresh for any junk kid')
})

t.test('a key store that cannot answer the look-up: unavailable, not unknown', async (t) => {
  const s = storeOver([jwk('a')], { failLookups: true })
  await s.store.refresh()
  await s.store.getKey('start-the-cooldown')
  const err = await s.store.getKey('c').then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof JwksUnavailableError, `JwksUnavailableError: ${String(err)}`)
  t.equal((err as { status?: number } | undefined)?.status, 503)
})
