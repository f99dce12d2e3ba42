// REDIS_URL and the shared-state settings (docs/replicas.md): validated with
// the rest of the config, never echoed, and naming the coherence mode.
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config/load.ts'
import { coherenceModeOf } from '../../src/shared-state/coherence.ts'
import { describeRedis } from '../../src/shared-state/redis.ts'

const base = { DATABASE_URL: 'postgres://x@127.0.0.1/y', UPSTREAM_URL: 'http://127.0.0.1:2' }

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig({ ...base, ...env })
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

t.test('redis:// and rediss:// are accepted; REDIS_URL alone selects the redis mode and its rate-limit storage', async (t) => {
  for (const url of ['redis://127.0.0.1:6379', 'rediss://:s3cret@cache.example.com:6380/2', 'redis://user:pw@redis']) {
    const c = loadConfig({ ...base, REDIS_URL: url })
    t.equal(c.redisUrl, url)
    t.equal(coherenceModeOf(c), 'redis')
    t.equal(c.rateLimitStorage, 'redis')
  }
  const none = loadConfig(base)
  t.equal(coherenceModeOf(none), 'postgres', 'without Redis: LISTEN/NOTIFY')
  t.equal(none.rateLimitStorage, 'memory', 'memory outside production')
  t.equal(coherenceModeOf(loadConfig({ ...base, DATABASE_LISTEN: 'off' })), 'none')
})

t.test('bad values are refused together, without echoing a password', async (t) => {
  const p = problems({ REDIS_URL: 'http://:hunter2-redis@cache:6379', RATE_LIMIT_STORAGE: 'carrier-pigeon', REDIS_KEY_PREFIX: 'has spaces' })
  t.ok(p.some((m) => m.startsWith('REDIS_URL must be a redis:// or rediss:// URL')), 'scheme')
  t.ok(p.some((m) => m.startsWith('RATE_LIMIT_STORAGE must be one of')), 'storage')
  t.ok(p.some((m) => m.startsWith('REDIS_KEY_PREFIX must be')), 'prefix')
  t.notMatch(p.join('\n'), /hunter2/, 'the password never appears')
  t.ok(problems({ REDIS_URL: 'redis://:hunter2@' }).some((m) => /REDIS_URL (must name a host|is not a valid URL)/.test(m)), 'a URL without a host')
  t.same(problems({ RATE_LIMIT_STORAGE: 'redis' }), ['RATE_LIMIT_STORAGE=redis requires REDIS_URL'])
})

t.test('the startup line describes Redis without credentials', async (t) => {
  t.equal(describeRedis('rediss://admin:hunter2@cache.example.com:6380/2'), 'rediss://cache.example.com:6380/2')
  t.equal(describeRedis('redis://:hunter2@127.0.0.1'), 'redis://127.0.0.1:6379/0')
})
