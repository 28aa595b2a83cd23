// Expiry: ttl in milliseconds, memcached's whole seconds underneath. Waits are real but
// short and bounded; items are expected gone within ttl + 1 s (the clock's granularity).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { MAX_RELATIVE_EXPTIME, delayToSeconds, ttlToExptime } from '../src/ttl'
import { eventually, rejectsLike, sleep, throwsLike } from './cache-assert'

test('ttl to exptime: seconds rounded up, 0 never, > 30 days absolute', () => {
  assert.is(ttlToExptime(undefined), 0)
  assert.is(ttlToExptime(0), 0)
  assert.is(ttlToExptime(Infinity), 0)
  assert.is(ttlToExptime(1), 1)
  assert.is(ttlToExptime(1000), 1)
  assert.is(ttlToExptime(1001), 2)
  assert.is(ttlToExptime(60_000), 60)
  const thirtyDays = MAX_RELATIVE_EXPTIME * 1000
  assert.is(ttlToExptime(thirtyDays), MAX_RELATIVE_EXPTIME)
  const before = Math.floor(Date.now() / 1000)
  const abs = ttlToExptime(thirtyDays + 1000)
  assert.ok(abs >= before + MAX_RELATIVE_EXPTIME + 1 && abs <= before + MAX_RELATIVE_EXPTIME + 3, String(abs))
  assert.is(ttlToExptime(1e15), 0x7fffffff) // memcached's latest exptime (signed 32 bits)
  throwsLike(() => ttlToExptime(-1), RangeError, /ttl must be 0 or more milliseconds/)
  throwsLike(() => ttlToExptime(NaN), RangeError, /ttl/)
  throwsLike(() => ttlToExptime('5'), TypeError, /ttl must be a number/)
  assert.is(delayToSeconds(undefined), 0)
  assert.is(delayToSeconds(1500), 2)
  throwsLike(() => delayToSeconds(thirtyDays + 1000), RangeError, /delay must be at most 30 days/)
})

test('an item with a ttl expires; one without stays', async () => {
  const cache = new Cache()
  await cache.set('short', 'x', { ttl: 1000 })
  await cache.set('long', 'x', { ttl: 3000 })
  await cache.set('forever', 'x')
  // ttl 3 s: at least 2 s left whatever the sub-second phase of the clock.
  assert.is(cache.hasSync('long'), true)
  assert.ok(await eventually(() => !cache.hasSync('short'), 2500), 'short-lived item expired within 2.5 s')
  assert.is(cache.getSync('short'), undefined)
  assert.is(cache.hasSync('forever'), true)
  assert.is(cache.hasSync('long'), true)
  // Gone for good: found expired by a read, or reclaimed first by the background crawler.
  const s = cache.statsSync()
  assert.is(s.curr_items, 2)
  assert.is(s.get_expired + s.crawler_reclaimed, 1)
  cache.close()
})

test('touch and gat move the expiry; touch of a miss is false', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  await cache.set('touched', 'a', { ttl: 2000 })
  await cache.set('gat', 'b', { ttl: 2000 })
  await cache.set('control', 'c', { ttl: 2000 })
  assert.is(await cache.touch('touched', 0), true)
  assert.is(await cache.gat('gat', 60_000), 'b')
  assert.is(await cache.touch('missing', 1000), false)
  assert.is(cache.gatSync('missing', 1000), undefined)
  assert.ok(await eventually(() => !cache.hasSync('control'), 3000), 'control item expired')
  assert.is(cache.getSync('touched'), 'a')
  assert.is(cache.getSync('gat'), 'b')
  const s = cache.statsSync()
  assert.ok(s.cmd_touch >= 4 && s.touch_hits >= 2 && s.touch_misses >= 2, JSON.stringify(s))
  cache.close()
})

test('touch can shorten a ttl', async () => {
  const cache = new Cache()
  cache.setSync('k', 'v')
  assert.is(cache.touchSync('k', 1000), true)
  assert.ok(await eventually(() => !cache.hasSync('k'), 2500), 'expired after touch to 1 s')
  cache.close()
})

test('flush with a delay invalidates later, and items stored after it survive', async () => {
  const cache = new Cache()
  cache.setSync('old', 'v')
  // the delay ends at a whole second: 1 s can end milliseconds later, 2 s leaves at least 1 s
  await cache.flush(2000)
  assert.is(cache.hasSync('old'), true)
  assert.ok(await eventually(() => !cache.hasSync('old'), 3500), 'flushed within the delay + 1 s')
  await sleep(1100)
  cache.setSync('new', 'v')
  assert.is(cache.hasSync('new'), true)
  cache.close()
})

test('bad ttls are argument errors', async () => {
  const cache = new Cache()
  await rejectsLike(() => cache.set('k', 'v', { ttl: -1 }), RangeError, /options\.ttl must be 0 or more/)
  await rejectsLike(() => cache.set('k', 'v', { ttl: '60' as unknown as number }), TypeError, /options\.ttl must be a number/)
  await rejectsLike(() => cache.touch('k', NaN), RangeError, /ttl/)
  throwsLike(() => cache.gatSync('k', -5), RangeError, /ttl/)
  await rejectsLike(() => cache.flush(-1), RangeError, /delay/)
  assert.is(cache.hasSync('k'), false)
  cache.close()
})

test.run()
