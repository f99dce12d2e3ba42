// The multi-replica suite (suite.ts) with REDIS_URL, on a private redis-server
// the suite stops and starts (never the machine's).
import t from 'tap'
import { startPrivateRedis } from '../helpers/redis.ts'
import { replicaSuite } from './suite.ts'

// Three processes, 70 sign-ups and a rolling restart on a shared 2-core machine: about 4 minutes.
t.setTimeout(900_000)

t.test('three replicas behind HAProxy, with Redis', async (t) => replicaSuite(t, 'redis', await startPrivateRedis(t)))
