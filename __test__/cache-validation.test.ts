// Argument checking: TypeError / RangeError with messages that name the bad argument,
// thrown by the Sync methods and turned into rejections by the Promise ones.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, readFileSync } from 'node:fs'
import { Cache, parseSize } from '../src'
import { nativeCacheOf } from '../src/cache'
import { ops } from '../src/native-ops'
import { rejectsLike, throwsLike } from './cache-assert'

test('bad keys: empty, too long, whitespace or control characters, not a string', async () => {
  const cache = new Cache()
  const err = throwsLike(() => cache.getSync(''), TypeError, /^key must not be empty$/)
  assert.is((err as Error & { code?: string }).code, 'FERROCACHE_BAD_KEY')
  throwsLike(() => cache.setSync('x'.repeat(251), 'v'), TypeError, /key is 251 bytes long; memcached keys are at most 250 bytes/)
  throwsLike(() => cache.setSync('é'.repeat(126), 'v'), TypeError, /key is 252 bytes long/)
  throwsLike(() => cache.getSync('x'.repeat(10_000)), TypeError, /key is 10000 bytes long/)
  throwsLike(() => cache.setSync('a b', 'v'), TypeError, /key must not contain spaces or control characters \(byte 0x20 at offset 1\)/)
  throwsLike(() => cache.hasSync('a\nb'), TypeError, /byte 0x0a/)
  throwsLike(() => cache.deleteSync('tab\t'), TypeError, /byte 0x09/)
  throwsLike(() => cache.getSync('del\x7f'), TypeError, /byte 0x7f/)
  throwsLike(() => cache.getSync('nul\0'), TypeError, /byte 0x00/)
  throwsLike(() => cache.getSync(42 as unknown as string), TypeError, /key must be a string, got number/)
  throwsLike(() => cache.getSync(undefined as unknown as string), TypeError, /key must be a string, got undefined/)
  await rejectsLike(() => cache.get(''), TypeError, /key must not be empty/)
  await rejectsLike(() => cache.set('a b', 'v'), TypeError, /key/)
  await rejectsLike(() => cache.incr(' '), TypeError, /key/)
  await rejectsLike(() => cache.touch('', 1), TypeError, /key/)
  await rejectsLike(() => cache.cas('', 'v', 1n), TypeError, /key/)
  cache.close()
})

test('batch calls name the bad key by index and store nothing', async () => {
  const cache = new Cache()
  throwsLike(() => cache.getManySync(['ok', 'bad key']), TypeError, /^keys\[1\] must not contain spaces/)
  await rejectsLike(
    () =>
      cache.setMany([
        ['a', '1'],
        ['', '2'],
      ]),
    TypeError,
    /^entries\[1\] key must not be empty$/,
  )
  assert.is(cache.hasSync('a'), false, 'no entry of a rejected batch is stored')
  cache.setSync('x', '1')
  await rejectsLike(() => cache.deleteMany(['x', 'y z']), TypeError, /keys\[1\]/)
  assert.is(cache.hasSync('x'), true, 'no key of a rejected batch is deleted')
  await rejectsLike(() => cache.getMany(5 as unknown as string[]), TypeError, /keys must be an iterable/)
  await rejectsLike(() => cache.setMany([['k', 5 as unknown as string]]), TypeError, /value of 'k' must be a string, Buffer or Uint8Array, got number/)
  await rejectsLike(() => cache.setMany(['k' as unknown as [string, string]]), TypeError, /\[key, value\] pairs/)
  cache.close()
})

test('bad values: wrong type, too large for the item size limit', async () => {
  const cache = new Cache()
  throwsLike(() => cache.setSync('k', 5 as unknown as string), TypeError, /value must be a string, Buffer or Uint8Array, got number/)
  throwsLike(() => cache.setSync('k', null as unknown as string), TypeError, /got null/)
  throwsLike(() => cache.setSync('k', {} as unknown as string), TypeError, /got Object/)
  throwsLike(() => cache.appendSync('k', [1, 2] as unknown as string), TypeError, /got Array/)
  const err = await rejectsLike(
    () => cache.set('k', Buffer.alloc(1024 * 1024)),
    RangeError,
    /value is too large: 1048576 bytes .* item size limit of 1048576 bytes/,
  )
  assert.is((err as Error & { code?: string }).code, 'FERROCACHE_TOO_LARGE')
  const small = new Cache({ maxItemSize: '2kb' })
  throwsLike(() => small.setSync('k', 'x'.repeat(3000)), RangeError, /too large/)
  small.setSync('k', 'x'.repeat(1500))
  assert.is(small.getSync('k')?.length, 1500)
  assert.is(cache.hasSync('k'), false)
  small.close()
  cache.close()
})

test('constructor options: unknown names, wrong types, out of range', () => {
  throwsLike(() => new Cache({ memoryLimt: '1mb' } as never), TypeError, /unknown option 'memoryLimt'/)
  throwsLike(() => new Cache('64mb' as never), TypeError, /options must be an object, got string/)
  throwsLike(() => new Cache({ memoryLimit: '64 parsecs' }), RangeError, /memoryLimit must be a number of bytes or a size/)
  throwsLike(() => new Cache({ memoryLimit: -5 }), RangeError, /memoryLimit must be a positive whole number/)
  throwsLike(() => new Cache({ memoryLimit: true as never }), TypeError, /memoryLimit/)
  throwsLike(() => new Cache({ memoryLimit: 1000 }), RangeError, /memoryLimit must hold at least one slab page/)
  throwsLike(() => new Cache({ maxItemSize: '100' }), RangeError, /maxItemSize must be from 1024 bytes/)
  throwsLike(() => new Cache({ maxItemSize: '32mb', memoryLimit: '64mb' }), RangeError, /16 MiB/)
  throwsLike(() => new Cache({ growthFactor: 1 }), RangeError, /growthFactor must be greater than 1/)
  throwsLike(() => new Cache({ growthFactor: '2' as never }), TypeError, /growthFactor must be a number/)
  throwsLike(() => new Cache({ shards: 3 }), RangeError, /shards must be a power of two/)
  throwsLike(() => new Cache({ slabMinSize: 0 }), RangeError, /slabMinSize/)
  throwsLike(() => new Cache({ evict: 'no' as never }), TypeError, /evict must be a boolean/)
  throwsLike(() => new Cache({ encoding: 'latin1' as never }), TypeError, /encoding must be 'buffer', 'utf8' or 'json', got "latin1"/)
  const ok = new Cache({
    memoryLimit: '8mb',
    maxItemSize: 2048,
    growthFactor: 1.5,
    slabMinSize: 64,
    evict: true,
    shards: 4,
    slabAutomove: false,
    encoding: 'utf8',
  })
  assert.is(ok.statsSync().limit_maxbytes, 8 * 1024 * 1024)
  ok.close()
})

/** Bytes of this process's mappings advised for transparent huge pages (`hg` in smaps). */
function advisedBytes(): number {
  let total = 0
  for (const vma of readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    if (/^VmFlags:.* hg\b/m.test(vma)) total += Number(/^Size:\s+(\d+) kB/m.exec(vma)?.[1] ?? 0) * 1024
  }
  return total
}

test('largePages: a boolean, off by default (memcached -L); on, slab pages past the first two are advised for huge pages', () => {
  const err = throwsLike(() => new Cache({ largePages: 'yes' as never }), TypeError, /largePages must be a boolean, got string/)
  assert.is((err as Error & { code?: string }).code, 'FERROCACHE_BAD_ARGUMENT')
  // Linux with THP: MADV_HUGEPAGE marks the mapping 'hg' whatever the THP mode
  if (!existsSync('/proc/self/smaps') || !existsSync('/sys/kernel/mm/transparent_hugepage')) return
  const value = Buffer.alloc(600 << 10, 1) // a whole 1 MiB page each
  const grown = (options: { largePages?: boolean }): number => {
    const before = advisedBytes()
    const cache = new Cache({ memoryLimit: '16mb', ...options })
    for (let i = 0; i < 6; i++) cache.setSync(`k${i}`, value)
    const after = advisedBytes()
    cache.close()
    return after - before
  }
  assert.is(grown({}), 0, 'default: no page advised')
  assert.is(grown({ largePages: false }), 0, 'largePages: false')
  assert.ok(grown({ largePages: true }) >= 4 << 20, 'largePages: true: pages 3-6 in two advised 2 MiB pairs')
})

test('per-call options: unknown names and bad values', async () => {
  const cache = new Cache()
  await rejectsLike(() => cache.set('k', 'v', { tll: 5 } as never), TypeError, /unknown option 'tll' in options/)
  await rejectsLike(() => cache.get('k', { encodng: 'utf8' } as never), TypeError, /unknown option 'encodng'/)
  await rejectsLike(() => cache.get('k', { ttl: 5 } as never), TypeError, /unknown option 'ttl'/)
  await rejectsLike(() => cache.set('k', 'v', { flags: -1 }), RangeError, /flags must be an integer from 0 to 4294967295/)
  await rejectsLike(() => cache.set('k', 'v', { flags: 2 ** 32 }), RangeError, /flags/)
  await rejectsLike(() => cache.set('k', 'v', { flags: 1.5 }), RangeError, /flags/)
  await rejectsLike(() => cache.set('k', 'v', null as never), TypeError, /options must be an object, got null/)
  await rejectsLike(() => cache.get('k', { encoding: 'hex' as never }), TypeError, /options\.encoding must be/)
  assert.is(cache.hasSync('k'), false)
  cache.close()
})

test('the exported native binding survives misuse: unknown ids, wrong argument types', () => {
  const loose = ops as unknown as Record<string, (...args: unknown[]) => unknown>
  throwsLike(() => ops.cacheGet(123456, 'k', false), Error, /the cache is closed/)
  throwsLike(() => loose.cacheGet('1', 'k', false), TypeError, /id must be a number, got string/)
  throwsLike(() => loose.cacheGet(), TypeError, /id must be a number, got undefined/)
  const cache = new Cache()
  const id = nativeCacheOf(cache).id
  throwsLike(() => loose.cacheGet(id, 'k', 'yes'), TypeError, /asString must be a boolean/)
  throwsLike(() => loose.cacheSet(id, 'k', 'v', 'x', 0), TypeError, /flags must be a number/)
  throwsLike(() => loose.cacheSet(id, 'k', 42, 0, 0), TypeError, /value must be a string, Buffer or Uint8Array, got number/)
  throwsLike(() => loose.cacheGetMany(id, 'k', false), TypeError, /keys must be an array, got string/)
  throwsLike(() => loose.cacheSetMany(id, ['a', 'b'], ['1'], 0, 0), TypeError, /same length/)
  throwsLike(() => loose.cacheArith(id, 'k', true, 1), TypeError, /delta must be a bigint, got number/)
  assert.is(ops.cacheSet(id, 'k', 'v', 0, 0), true)
  assert.is(cache.getSync('k')?.toString(), 'v')
  cache.close()
})

test('size strings', () => {
  assert.is(parseSize('m', 1024), 1024)
  assert.is(parseSize('m', '64mb'), 64 * 1024 * 1024)
  assert.is(parseSize('m', '64MB'), 64 * 1024 * 1024)
  assert.is(parseSize('m', '1m'), 1024 * 1024)
  assert.is(parseSize('m', '512k'), 512 * 1024)
  assert.is(parseSize('m', '512 KiB'), 512 * 1024)
  assert.is(parseSize('m', '1.5gb'), 1.5 * 1024 ** 3)
  assert.is(parseSize('m', '100'), 100)
  assert.is(parseSize('m', '100b'), 100)
  throwsLike(() => parseSize('memoryLimit', '1tb'), RangeError, /memoryLimit must be a number of bytes or a size such as '64mb', got '1tb'/)
  throwsLike(() => parseSize('m', ''), RangeError, /m must be/)
  throwsLike(() => parseSize('m', '0'), RangeError, /positive/)
  throwsLike(() => parseSize('m', 1.5), RangeError, /whole number/)
  throwsLike(() => parseSize('m', NaN), RangeError, /m must be a positive/)
  throwsLike(() => parseSize('m', {}), TypeError, /m must be a number of bytes or a size string, got object/)
})

test.run()
