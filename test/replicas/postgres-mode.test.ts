// The multi-replica suite (suite.ts) without Redis: coherence over PostgreSQL
// LISTEN/NOTIFY, rate limit in PostgreSQL.
import t from 'tap'
import { replicaSuite } from './suite.ts'

// Three processes, 70 sign-ups and a rolling restart on a shared 2-core machine: about 4 minutes.
t.setTimeout(900_000)

t.test('three replicas behind HAProxy, PostgreSQL only', (t) => replicaSuite(t, 'postgres'))
