// stats() with memcached's names, the memory limit and eviction, and close().
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { rejectsLike, throwsLike } from './cache-assert'

const GENERAL = [
  'time', 'curr_items', 'total_items', 'bytes', 'limit_maxbytes', 'total_malloced', 'hash_bytes',
  'hash_power_level', 'cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'get_hits', 'get_misses',
  'get_expired', 'get_flushed', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses',
  'decr_hits', 'decr_misses', 'cas_hits', 'cas_misses', 'cas_badval', 'touch_hits', 'touch_misses',
  'evictions', 'reclaimed', 'expired_unfetched', 'evicted_unfetched', 'crawler_reclaimed',
  'crawler_items_checked', 'lru_crawler_starts', 'slab_reassign_count', 'slab_reassign_rescues',
  'slab_reassign_evictions_nomem', 'slabs_moved', 'slab_global_page_pool', 'lru_maintainer_juggles',
]
const PER_CLASS = [
  'id', 'chunk_size', 'chunks_per_page', 'total_pages', 'total_chunks', 'used_chunks', 'free_chunks',
  'mem_requested', 'get_hits', 'cmd_set', 'number', 'number_hot', 'number_warm', 'number_cold', 'age',
  'evicted', 'evicted_unfetched', 'outofmemory', 'reclaimed', 'crawler_items_checked', 'moves_to_cold',
  'moves_to_warm',
]

test('stats carry memcached names and count what happened', async () => {
  const cache = new Cache({ memoryLimit: '32mb' })
  for (let i = 0; i < 10; i++) cache.setSync(`k${i}`, 'x'.repeat(100))
  cache.getSync('k1')
  cache.getSync('k2')
  cache.getSync('nope')
  cache.getManySync(['k3', 'nope2'])
  cache.deleteSync('k9')
  cache.deleteSync('nope')
  cache.hasSync('k1') // a peek: not a get
  const s = await cache.stats()
  for (const name of GENERAL) assert.ok(name in s, `stats has ${name}`)
  for (const [name, v] of Object.entries(s)) {
    if (name === 'slabs') continue
    assert.ok(typeof v === 'number' || typeof v === 'boolean', `${name} is a number`)
  }
  assert.is(s.limit_maxbytes, 32 * 1024 * 1024)
  assert.is(s.curr_items, 9)
  assert.is(s.total_items, 10)
  assert.is(s.cmd_set, 10)
  assert.is(s.cmd_get, 5)
  assert.is(s.get_hits, 3)
  assert.is(s.get_misses, 2)
  assert.is(s.delete_hits, 1)
  assert.is(s.delete_misses, 1)
  assert.ok(s.bytes >= 9 * 100 && s.bytes <= s.limit_maxbytes)
  assert.ok(Math.abs(s.time - Date.now() / 1000) < 5)
  assert.ok(s.slabs.length >= 1)
  const cls = s.slabs.find((c) => c.used_chunks > 0)!
  for (const name of PER_CLASS) assert.ok(name in cls, `slab class has ${name}`)
  assert.ok(cls.chunk_size >= 100 + 2, 'the chunk holds a 100-byte value and its key')
  assert.is(s.slabs.reduce((n, c) => n + c.used_chunks, 0), 9)
  cache.close()
})

test('memory stays under the limit: the LRU evicts', () => {
  const cache = new Cache({ memoryLimit: '4mb' })
  const value = Buffer.alloc(1000, 1)
  for (let i = 0; i < 20_000; i++) cache.setSync(`item:${i}`, value)
  const s = cache.statsSync()
  assert.ok(s.evictions > 0, 'items were evicted')
  assert.ok(s.total_malloced <= s.limit_maxbytes, `${s.total_malloced} <= ${s.limit_maxbytes}`)
  assert.ok(s.curr_items < 20_000 && s.curr_items > 1000, String(s.curr_items))
  assert.is(s.total_items, 20_000)
  // The newest items are the ones kept.
  assert.ok(cache.hasSync('item:19999'))
  assert.not.ok(cache.hasSync('item:0'))
  cache.close()
})

test('evict: false fails writes with an out-of-memory error instead', async () => {
  const cache = new Cache({ memoryLimit: '2mb', evict: false })
  const value = Buffer.alloc(1000, 1)
  let stored = 0
  let error: (Error & { code?: string }) | undefined
  for (let i = 0; i < 10_000 && !error; i++) {
    try {
      cache.setSync(`item:${i}`, value)
      stored++
    } catch (err) {
      error = err as Error
    }
  }
  assert.ok(error, 'a write failed once memory was full')
  assert.is(error!.code, 'FERROCACHE_OUT_OF_MEMORY')
  assert.match(error!.message, /out of memory/)
  assert.ok(stored > 100, String(stored))
  assert.is(cache.statsSync().evictions, 0)
  assert.ok(cache.hasSync('item:0'), 'nothing was evicted')
  await rejectsLike(() => cache.set('more', value), Error, /out of memory/)
  cache.close()
})

test('close frees the cache; every later call throws or rejects', async () => {
  const cache = new Cache()
  cache.setSync('k', 'v')
  assert.is(cache.closed, false)
  cache.close()
  assert.is(cache.closed, true)
  cache.close() // twice is fine
  const err = throwsLike(() => cache.getSync('k'), Error, /the cache is closed/)
  assert.is((err as Error & { code?: string }).code, 'FERROCACHE_CLOSED')
  throwsLike(() => cache.setSync('k', 'v'), Error, /closed/)
  throwsLike(() => cache.statsSync(), Error, /closed/)
  throwsLike(() => cache.getManySync(['k']), Error, /closed/)
  await rejectsLike(() => cache.get('k'), Error, /the cache is closed/)
  await rejectsLike(() => cache.incr('k'), Error, /closed/)
  await rejectsLike(() => cache.flush(), Error, /closed/)
  await rejectsLike(() => cache.stats(), Error, /closed/)
})

test('close releases the memory of a full cache (many caches in a row stay bounded)', () => {
  // 20 caches of 64 MB each filled to the top would need 1.3 GB if close() leaked.
  const before = process.memoryUsage().rss
  const value = Buffer.alloc(4000, 2)
  for (let round = 0; round < 20; round++) {
    const cache = new Cache({ memoryLimit: '64mb' })
    for (let i = 0; i < 17_000; i++) cache.setSync(`k${i}`, value)
    cache.close()
  }
  const grown = process.memoryUsage().rss - before
  assert.ok(grown < 400 * 1024 * 1024, `rss grew ${Math.round(grown / 1048576)} MB`)
})

test('a cache dropped without close() is freed when collected', async () => {
  // Expose gc() inside the test process (uvu runs without --expose-gc).
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const before = process.memoryUsage().rss
  const value = Buffer.alloc(4000, 3)
  for (let round = 0; round < 15; round++) {
    let cache: Cache | undefined = new Cache({ memoryLimit: '64mb' })
    for (let i = 0; i < 15_000; i++) cache.setSync(`k${i}`, value)
    cache = undefined
    gc()
    await new Promise((r) => setImmediate(r)) // napi finalizers run after the GC
  }
  const grown = process.memoryUsage().rss - before
  assert.ok(grown < 400 * 1024 * 1024, `rss grew ${Math.round(grown / 1048576)} MB over 15 x 60 MB caches`)
})

test.run()
