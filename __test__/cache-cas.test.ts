// Compare-and-swap and incr/decr with memcached's semantics.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { rejectsLike, throwsLike } from './cache-assert'

test('gets gives a bigint CAS that changes on every mutation', async () => {
  const cache = new Cache()
  cache.setSync('k', 'v1')
  const a = await cache.gets('k')
  assert.is(typeof a?.cas, 'bigint')
  cache.setSync('k', 'v2')
  const b = cache.getsSync('k')
  assert.ok(a && b && b.cas !== a.cas)
  cache.appendSync('k', '!')
  assert.ok(cache.getsSync('k')!.cas !== b!.cas)
  assert.is(await cache.gets('missing'), undefined)
  cache.close()
})

test('cas stores with the current token, fails on a stale one or a missing key', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  cache.setSync('counter', 'a')
  const first = cache.getsSync('counter')!
  assert.is(await cache.cas('counter', 'b', first.cas, { flags: 9 }), true)
  // The token is spent: the item has a new CAS now.
  assert.is(await cache.cas('counter', 'c', first.cas), false)
  const second = cache.getsSync('counter')!
  assert.equal([second.value, second.flags], ['b', 9])
  assert.is(cache.casSync('counter', 'd', second.cas), true)
  assert.is(cache.getSync('counter'), 'd')
  // A number token works as well as a bigint.
  const third = cache.getsSync('counter')!
  assert.is(cache.casSync('counter', 'e', Number(third.cas)), true)
  // NOT_FOUND: the key is gone.
  cache.deleteSync('counter')
  assert.is(await cache.cas('counter', 'f', third.cas), false)
  assert.is(cache.hasSync('counter'), false)
  const stats = cache.statsSync()
  assert.is(stats.cas_hits, 3)
  assert.is(stats.cas_badval, 1)
  assert.is(stats.cas_misses, 1)
  cache.close()
})

test('an optimistic update loop converges', async () => {
  const cache = new Cache({ encoding: 'json' })
  await cache.set('doc', { n: 0 })
  for (let i = 0; i < 50; i++) {
    for (;;) {
      const e = (await cache.gets<'json'>('doc'))!
      const doc = e.value as { n: number }
      if (await cache.cas('doc', { n: doc.n + 1 }, e.cas)) break
    }
  }
  assert.equal(await cache.get('doc'), { n: 50 })
  cache.close()
})

test('cas token validation', async () => {
  const cache = new Cache()
  cache.setSync('k', 'v')
  throwsLike(() => cache.casSync('k', 'x', -1), RangeError, /cas/)
  throwsLike(() => cache.casSync('k', 'x', 2n ** 64n), RangeError, /cas must be between 0 and 2\^64-1/)
  await rejectsLike(() => cache.cas('k', 'x', '5' as unknown as bigint), TypeError, /cas must be a bigint or a number/)
  cache.close()
})

test('incr and decr return bigints and keep the value decimal', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  cache.setSync('n', '10')
  assert.is(await cache.incr('n'), 11n)
  assert.is(await cache.incr('n', 5), 16n)
  assert.is(await cache.decr('n', 6n), 10n)
  assert.is(cache.decrSync('n'), 9n)
  assert.is(cache.getSync('n'), '9 ') // rewritten in place, padded to its length, as memcached
  assert.is(await cache.incr('missing'), undefined)
  assert.is(cache.decrSync('missing', 3), undefined)
  assert.is(cache.hasSync('missing'), false)
  cache.close()
})

test('incr wraps at 2^64, decr floors at 0', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  cache.setSync('max', '18446744073709551615')
  assert.is(await cache.incr('max', 1), 0n)
  cache.setSync('near', '18446744073709551610')
  assert.is(cache.incrSync('near', 10n), 4n)
  cache.setSync('small', '5')
  assert.is(await cache.decr('small', 10), 0n)
  assert.is(cache.getSync('small'), '0')
  cache.setSync('big', '100')
  assert.is(cache.incrSync('big', 2n ** 64n - 1n), 99n)
  cache.close()
})

test('incr of a non-numeric value rejects; bad deltas are argument errors', async () => {
  const cache = new Cache()
  cache.setSync('text', 'abc')
  const err = await rejectsLike(() => cache.incr('text', 1), Error, /non-numeric/)
  assert.is((err as Error & { code?: string }).code, 'FERROCACHE_NON_NUMERIC')
  throwsLike(() => cache.decrSync('text'), Error, /non-numeric/)
  assert.is(cache.getSync('text')?.toString(), 'abc')
  cache.setSync('n', '1')
  throwsLike(() => cache.incrSync('n', -1), RangeError, /delta must be a non-negative/)
  throwsLike(() => cache.incrSync('n', 1.5), RangeError, /delta/)
  throwsLike(() => cache.incrSync('n', -1n), RangeError, /delta must be between 0 and 2\^64-1/)
  await rejectsLike(() => cache.incr('n', '1' as unknown as number), TypeError, /delta must be a bigint or a number/)
  const stats = cache.statsSync()
  assert.ok(stats.incr_hits >= 0 && stats.incr_misses >= 0)
  cache.close()
})

test('incr/decr hit and miss counters', () => {
  const cache = new Cache()
  cache.setSync('n', '1')
  cache.incrSync('n')
  cache.incrSync('nope')
  cache.decrSync('n')
  cache.decrSync('nope')
  cache.decrSync('nope')
  const s = cache.statsSync()
  assert.equal([s.incr_hits, s.incr_misses, s.decr_hits, s.decr_misses], [1, 1, 1, 2])
  cache.close()
})

test.run()
