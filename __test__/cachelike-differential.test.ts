// Differential: seeded random CacheLike calls, good and bad arguments alike
// (helpers/cachelike-ops.ts), made on the embedded Cache and on a Client over ferrocached
// and over memcached 1.6.18, in meta, text and binary: every call must come to the same
// result, or reject with the same error class, code and message. CACHELIKE_SEEDS=n runs
// more seeds.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client } from '../src'
import { drawCalls, outcome } from './helpers/cachelike-ops'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

let ferrocached: Running
let memcached: Running

setUp(test, async () => {
  ;[ferrocached, memcached] = await startAll([() => startFerrocached(), () => startMemcached()])
})

tearDown(test, async () => {
  await Promise.all([ferrocached?.stop(), memcached?.stop()])
})

const SEEDS = Number(process.env.CACHELIKE_SEEDS ?? 1)
const CALLS = 300

for (const protocol of ['meta', 'text', 'binary'] as const) {
  test(`${SEEDS} x ${CALLS} random calls: the same results and errors embedded, over ferrocached and over memcached (${protocol})`, async () => {
    const clients = [ferrocached, memcached].map((s) => new Client({ servers: [`127.0.0.1:${s.port}`], protocol }))
    try {
      for (let seed = 1; seed <= SEEDS; seed++) {
        const cache = new Cache()
        await Promise.all(clients.map((c) => c.flush()))
        const subjects = [cache, ...clients]
        const tokens = subjects.map(() => new Map<string, bigint>())
        for (const [i, call] of drawCalls(seed * 7919 + protocol.length, CALLS).entries()) {
          // each subject's calls stay in order; the three go at once
          const [embedded, ferro, mc] = await Promise.all(subjects.map((s, j) => outcome(() => call.run(s, tokens[j]!))))
          if (ferro !== embedded || mc !== embedded) {
            assert.unreachable(`seed ${seed}, call ${i}: ${call.what}\n  embedded:   ${embedded}\n  ferrocached: ${ferro}\n  memcached:  ${mc}`)
          }
          // memcached's ms drops the old value of any store too large, its binary protocol a
          // set's and a cas's (a set with a CAS), its text protocol and the embedded Cache
          // only a set's (docs/client.md): align the key before going on
          const drops = protocol === 'meta' || (protocol === 'binary' && call.what.startsWith('cas('))
          if (drops && call.storeKey !== undefined && embedded!.includes('FERROCACHE_TOO_LARGE')) {
            await Promise.all(subjects.map((s) => s.delete(call.storeKey!)))
          }
        }
        cache.close()
      }
    } finally {
      await Promise.all(clients.map((c) => c.close()))
    }
  })
}

test.run()
