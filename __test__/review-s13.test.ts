// Review of session 13's server and command-line work, each case beside memcached 1.6.18:
// `-o` lists that combine `no_modern`/`no_lru_maintainer` with what they turn off.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'
import { ferrocachedVerdict, memcachedVerdict, type Verdict } from './helpers/verdicts'

const running: Running[] = []
tearDown(test, async () => {
  await Promise.all(running.map((r) => r.stop()))
})

const ours = ferrocachedVerdict

/** memcached's verdict, listening on 127.0.0.1 only. */
const theirs = (argv: string[], ms?: number): Promise<Verdict> => memcachedVerdict(['-l', '127.0.0.1', ...argv], ms)

async function settings(port: number, names: readonly string[]): Promise<string[]> {
  const c = await RawConn.open(port)
  try {
    c.send('stats settings\r\n')
    const text = await c.until('END\r\n')
    return names.map((n) => `${n} ${new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(text)?.[1]}`)
  } finally {
    c.close()
  }
}

// memcached's `lru_maintainer` sets lru_segmented again (and starts the maintainer), so it
// undoes what an earlier `no_lru_maintainer` or `no_modern` turned off; ferrocached took it
// for a no-op and stayed flat.
test('-o no_modern,lru_maintainer and no_lru_maintainer,lru_maintainer: segmented LRU, as memcached', async () => {
  const configs = [['-o', 'no_modern,lru_maintainer'], ['-o', 'no_lru_maintainer', '-o', 'lru_maintainer']]
  const servers = await startAll(configs.flatMap((flags) => [() => startMemcached(flags), () => startFerrocached(['-l', '127.0.0.1', '-U', '0', ...flags])]))
  running.push(...servers)
  const names = ['lru_segmented', 'slab_reassign', 'slab_automove', 'lru_crawler', 'temp_lru']
  for (const [i, flags] of configs.entries()) {
    const [m, f] = await Promise.all([settings(servers[2 * i]!.port, names), settings(servers[2 * i + 1]!.port, names)])
    assert.equal(f, m, flags.join(' '))
    assert.ok(m.includes('lru_segmented yes'), m.join(', '))
  }
})

/** Each command line refused (exit code, memcached's message) or started as memcached does. */
async function sameVerdicts(cases: string[][]): Promise<void> {
  const results = await Promise.all(cases.map(async (argv) => ({ argv: argv.join(' '), ours: ours(argv), theirs: await theirs(argv) })))
  for (const r of results) {
    assert.is(r.ours.code, r.theirs.code, `${r.argv}: ${r.ours.message} / memcached: ${r.theirs.message}`)
    if (r.theirs.code !== null) assert.ok(r.ours.message.includes(r.theirs.message.split('\n')[0]!), `${r.argv}: "${r.ours.message}" lacks "${r.theirs.message}"`)
  }
}

// memcached refuses a TEMP LRU without its maintainer thread: "temporary_ttl requires
// lru_maintainer to be enabled", exit 64, whatever the order; ferrocached started.
test('-o temporary_ttl without the LRU maintainer: refused as memcached', async () => {
  await sameVerdicts([
    ['-o', 'no_modern,temporary_ttl=10'],
    ['-o', 'temporary_ttl=10,no_lru_maintainer'],
    ['-o', 'no_lru_maintainer,temporary_ttl=0'],
    ['-o', 'no_lru_maintainer', '-o', 'temporary_ttl=5'],
    ['-o', 'no_modern,lru_maintainer,temporary_ttl=10'],
    ['-o', 'temporary_ttl=5,no_lru_maintainer,lru_maintainer'],
    ['-o', 'temporary_ttl=5'],
  ])
})

// `no_modern` makes memcached's largest chunk a 1 MiB page, as `no_chunked_items` does,
// unless `slab_chunk_max` came before it (a later one overrides either): `-I` below 1 MiB
// is then refused (exit 64), and `stats settings` shows slab_chunk_max 1048576.
test('-o no_modern: the 1 MiB slab_chunk_max of no_chunked_items, refused under -I 1m, as memcached', async () => {
  await sameVerdicts([
    ['-I', '768k', '-o', 'no_modern'],
    ['-I', '512k', '-o', 'slab_chunk_max=262144,no_chunked_items'],
    ['-I', '512k', '-o', 'slab_chunk_max=262144,no_modern'],
    ['-I', '512k', '-o', 'no_modern,slab_chunk_max=262144'],
    ['-I', '512k', '-o', 'no_chunked_items,slab_chunk_max=262144'],
    ['-I', '2m', '-o', 'no_modern'],
    ['-o', 'no_modern,slab_sizes=1048576'],
  ])
  const flags = ['-o', 'no_modern']
  const servers = await startAll([() => startMemcached(flags), () => startFerrocached(['-l', '127.0.0.1', '-U', '0', ...flags])])
  running.push(...servers)
  const [m, f] = await Promise.all(servers.map((s) => settings(s.port, ['slab_chunk_max', 'item_size_max'])))
  assert.equal(f, m)
  assert.equal(m, ['slab_chunk_max 1048576', 'item_size_max 1048576'])
})

test.run()
