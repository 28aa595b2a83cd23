// Randomized differential runs through real client libraries: seeded sequences of calls
// (helpers/clientgen.ts) go through python3-pymemcache, python3-memcache, python3-pylibmc
// (text and binary), memjs (binary), memcached (npm, text), pymemcache behind nutcracker and
// libmemcached-tools, each call on memcached 1.6.18 and then on ferrocached, and every
// call's result (value, or exception class and message) must be the same. A difference
// prints the client, the seed and the calls up to it.
// CLIENT_SEEDS=N (seeds per client), CLIENT_FIRST=N (the first seed), CLIENT_OPS=N (calls per
// sequence), CLIENT_ONLY=a,b (clients by name) run a wider campaign; FERROCACHED_BIN runs
// another build's bin/ferrocached.js (a copy, while this tree is rebuilt).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CLIENTS } from './helpers/clientrun'
import { setUp, tearDown } from './helpers/guard'
import { BIN, spawnOwned, startAll, startMemcached, startOwned, type Running } from './helpers/servers'

const SEEDS = Number(process.env.CLIENT_SEEDS ?? 0)
const FIRST = Number(process.env.CLIENT_FIRST ?? 1)
const ONLY = process.env.CLIENT_ONLY

/** [memcached, ferrocached], started once for the file. */
let servers: Running[] = []

setUp(test, async () => {
  // room for every value near the limit in its own class at once
  const bin = process.env.FERROCACHED_BIN ?? BIN
  const ferrocached = (): Promise<Running> =>
    startOwned(undefined, 15_000, (port) => spawnOwned(process.execPath, [bin, '-p', String(port), '-m', '256'], { stdio: ['ignore', 'ignore', 'pipe'] }))
  servers = await startAll([() => startMemcached(['-m', '256']), ferrocached])
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

for (const client of CLIENTS) {
  if (ONLY !== undefined && !ONLY.split(',').includes(client.name)) continue
  test(`${client.name}: random call sequences, same results as memcached`, async () => {
    const seeds = Array.from({ length: SEEDS || client.seeds }, (_, i) => FIRST + i)
    const ops = Number(process.env.CLIENT_OPS ?? client.ops)
    const [m, f] = servers as [Running, Running]
    const failures = await client.run(seeds, ops, m.port, f.port)
    if (failures.length > 0) process.stderr.write(`\n${failures.join('\n\n')}\n`)
    assert.is(failures.length, 0, `${failures.length} of ${seeds.length} sequences differ (printed above)`)
  })
}

test.run()
