// Storage commands of the embedded Cache, async and sync: get/set/add/replace/append/
// prepend/delete/has and the batch calls.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'

test('set then get returns the bytes as a Buffer', async () => {
  const cache = new Cache()
  assert.is(await cache.set('user:1', 'hello'), true)
  const v = await cache.get('user:1')
  assert.ok(Buffer.isBuffer(v))
  assert.is(v?.toString(), 'hello')
  assert.is(await cache.get('missing'), undefined)
  cache.close()
})

test('values in: string, Buffer, Uint8Array, empty; binary bytes survive', async () => {
  const cache = new Cache()
  const bin = Buffer.from([0, 1, 2, 255, 13, 10, 0])
  cache.setSync('s', 'héllo ✓')
  cache.setSync('b', bin)
  cache.setSync('u', new Uint8Array([7, 8, 9]))
  cache.setSync('e', '')
  cache.setSync('sub', bin.subarray(3, 5)) // a view into a larger buffer
  assert.equal(cache.getSync('s'), Buffer.from('héllo ✓'))
  assert.equal(cache.getSync('b'), bin)
  assert.equal(cache.getSync('u'), Buffer.from([7, 8, 9]))
  assert.equal(cache.getSync('e'), Buffer.alloc(0))
  assert.equal(cache.getSync('sub'), Buffer.from([255, 13]))
  // The returned Buffer is a copy: changing it does not change the cache.
  const got = cache.getSync('b')!
  got[0] = 99
  assert.is(cache.getSync('b')![0], 0)
  cache.close()
})

test('set overwrites; flags are stored and returned by gets', async () => {
  const cache = new Cache()
  await cache.set('k', 'one', { flags: 42 })
  await cache.set('k', 'two', { flags: 0xffffffff })
  const e = await cache.gets('k')
  assert.is(e?.value.toString(), 'two')
  assert.is(e?.flags, 0xffffffff)
  cache.close()
})

test('add stores only missing keys, replace only existing ones', async () => {
  const cache = new Cache()
  assert.is(await cache.add('k', 'a'), true)
  assert.is(await cache.add('k', 'b'), false)
  assert.is(cache.getSync('k')?.toString(), 'a')
  assert.is(await cache.replace('k', 'c'), true)
  assert.is(cache.getSync('k')?.toString(), 'c')
  assert.is(await cache.replace('nope', 'x'), false)
  assert.is(cache.hasSync('nope'), false)
  assert.is(cache.addSync('k2', 'x'), true)
  assert.is(cache.replaceSync('k2', 'y'), true)
  assert.is(cache.getSync('k2')?.toString(), 'y')
  cache.close()
})

test('append and prepend edit existing values and keep flags; miss is false', async () => {
  const cache = new Cache()
  cache.setSync('k', 'mid', { flags: 5 })
  assert.is(await cache.append('k', '-end'), true)
  assert.is(await cache.prepend('k', Buffer.from('start-')), true)
  const e = cache.getsSync('k')
  assert.is(e?.value.toString(), 'start-mid-end')
  assert.is(e?.flags, 5)
  assert.is(await cache.append('missing', 'x'), false)
  assert.is(cache.prependSync('missing', 'x'), false)
  assert.is(cache.hasSync('missing'), false)
  cache.close()
})

test('delete and has', async () => {
  const cache = new Cache()
  cache.setSync('k', 'v')
  assert.is(await cache.has('k'), true)
  assert.is(await cache.delete('k'), true)
  assert.is(await cache.delete('k'), false)
  assert.is(await cache.has('k'), false)
  assert.is(cache.deleteSync('k'), false)
  cache.close()
})

test('getMany returns a Map of the hits only, in key order, from any iterable', async () => {
  const cache = new Cache()
  cache.setSync('a', '1')
  cache.setSync('c', '3')
  const m = await cache.getMany(['a', 'b', 'c'])
  assert.instance(m, Map)
  assert.equal([...m.keys()], ['a', 'c'])
  assert.is(m.get('a')?.toString(), '1')
  assert.is(m.get('b'), undefined)
  const fromSet = cache.getManySync(new Set(['c', 'zzz']), { encoding: 'utf8' })
  assert.equal([...fromSet], [['c', '3']])
  assert.is((await cache.getMany([])).size, 0)
  cache.close()
})

test('setMany stores every entry with the options; deleteMany counts what existed', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  const entries = new Map<string, string>()
  for (let i = 0; i < 1000; i++) entries.set(`key:${i}`, `value ${i}`)
  await cache.setMany(entries, { flags: 3 })
  assert.is(cache.getSync('key:999'), 'value 999')
  assert.is(cache.getsSync('key:0')?.flags, 3)
  cache.setManySync([
    ['x', 'X'],
    ['y', Buffer.from('Y')],
  ])
  assert.equal([...cache.getManySync(['x', 'y'])], [
    ['x', 'X'],
    ['y', 'Y'],
  ])
  assert.is(await cache.deleteMany(['key:1', 'key:2', 'not-there']), 2)
  assert.is(cache.deleteManySync(new Set(['x', 'y'])), 2)
  assert.is(cache.hasSync('key:1'), false)
  assert.is(cache.hasSync('key:3'), true)
  cache.close()
})

test('keys: any UTF-8 up to 250 bytes', async () => {
  const cache = new Cache()
  const k250 = 'k'.repeat(250)
  const unicode = 'ключ:日本:🔑'
  cache.setSync(k250, 'long')
  cache.setSync(unicode, 'uni')
  assert.is(cache.getSync(k250)?.toString(), 'long')
  assert.is(cache.getSync(unicode)?.toString(), 'uni')
  // 83 three-byte characters are 249 bytes: still fine.
  cache.setSync('日'.repeat(83), 'cjk')
  assert.is(cache.getSync('日'.repeat(83))?.toString(), 'cjk')
  cache.close()
})

test('flush removes everything now', async () => {
  const cache = new Cache()
  cache.setManySync([
    ['a', '1'],
    ['b', '2'],
  ])
  await cache.flush()
  assert.is(cache.hasSync('a'), false)
  assert.is(await cache.get('b'), undefined)
  // The cache keeps working after a flush.
  cache.setSync('a', 'again')
  assert.is(cache.getSync('a')?.toString(), 'again')
  cache.flushSync()
  assert.is(cache.hasSync('a'), false)
  cache.close()
})

test('values up to the item size limit round-trip', async () => {
  const cache = new Cache({ memoryLimit: '16mb' })
  const big = Buffer.alloc(900 * 1024, 7)
  cache.setSync('big', big)
  assert.equal(cache.getSync('big'), big)
  const text = 'é'.repeat(200_000) // 400 kB of UTF-8 from a string
  cache.setSync('text', text)
  assert.is(cache.getSync('text', { encoding: 'utf8' }), text)
  cache.close()
})

test('getMany and gets of values larger than the read buffer (native fallback)', () => {
  const cache = new Cache({ memoryLimit: '32mb' })
  // Five 100 kB values: the first two fit the 256 kB read buffer, the rest come back
  // as Buffers made natively; small ones after them must still line up.
  const big = (i: number) => Buffer.alloc(100_000, 65 + i)
  for (let i = 0; i < 5; i++) cache.setSync(`big${i}`, big(i), { flags: i })
  cache.setSync('small', 'tail')
  const keys = ['big0', 'missing', 'big1', 'big2', 'small', 'big3', 'big4']
  const m = cache.getManySync(keys)
  assert.equal([...m.keys()], ['big0', 'big1', 'big2', 'small', 'big3', 'big4'])
  for (let i = 0; i < 5; i++) assert.ok(m.get(`big${i}`)!.equals(big(i)), `big${i} intact`)
  assert.is(m.get('small')?.toString(), 'tail')
  const text = cache.getManySync(keys, { encoding: 'utf8' })
  assert.is(text.get('big4'), 'E'.repeat(100_000))
  assert.is(text.get('small'), 'tail')
  const large = Buffer.alloc(300_000, 7)
  cache.setSync('large', large, { flags: 77 })
  const e = cache.getsSync('large')!
  assert.ok(e.value.equals(large))
  assert.is(e.flags, 77)
  assert.is(typeof e.cas, 'bigint')
  assert.ok(cache.getSync('large')!.equals(large))
  cache.close()
})

test('returned values are independent copies, also when read back to back', () => {
  const cache = new Cache()
  cache.setSync('a', 'first')
  cache.setSync('b', 'second')
  const a = cache.getSync('a')!
  const b = cache.getSync('b')!
  const many = cache.getManySync(['a', 'b'])
  cache.setSync('a', 'changed')
  assert.is(a.toString(), 'first')
  assert.is(b.toString(), 'second')
  assert.is(many.get('a')?.toString(), 'first')
  cache.close()
})

test('a closed cache stays closed when new caches are created', () => {
  const first = new Cache()
  first.setSync('k', 'first')
  first.close()
  const second = new Cache()
  second.setSync('k', 'second')
  assert.throws(() => first.getSync('k'), /closed/)
  assert.is(second.getSync('k')?.toString(), 'second')
  second.close()
})

test.run()
