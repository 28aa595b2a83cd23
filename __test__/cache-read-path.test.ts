// The single-key read path (crates/ferrocache-node/src/cache.rs `read`): keys cross into the
// engine as their UTF-8 bytes (printable ASCII by a fast copy of its UTF-16 units, anything
// else by napi's UTF-8 conversion, convert.rs); values come back through the read pool, the
// scratch buffer, or (larger than scratch) as a value made natively after the shard lock is
// released (scratch.rs). The item's size in `stats().bytes` (36-byte header + key + value)
// shows the key bytes stored.
import { test } from 'uvu'
import * as assert from 'uvu/assert'

import { Cache } from '../src'

const HEADER = 36

/** Bytes the engine stored for `key` with a one-byte value. */
function storedKeyBytes(key: string): number {
  const cache = new Cache()
  try {
    assert.ok(cache.setSync(key, 'v'))
    return Number(cache.statsSync().bytes) - HEADER - 1
  } finally {
    cache.close()
  }
}

test('a key is stored as its UTF-8 bytes, ASCII or not', () => {
  assert.is(storedKeyBytes('user:1'), 6)
  assert.is(storedKeyBytes('x'.repeat(250)), 250)
  assert.is(storedKeyBytes('é'), 2, 'a Latin-1 character is two UTF-8 bytes')
  assert.is(storedKeyBytes('Ł'), 2, 'U+0141 is not its low byte 0x41')
  assert.is(storedKeyBytes('a€'), 4)
  assert.is(storedKeyBytes('😀'), 4, 'a surrogate pair is one 4-byte character')
  assert.is(storedKeyBytes('\ufffd'), 3, 'U+FFFD itself is a character (a lone surrogate is refused: review-cache.test.ts)')
})

test('printable ASCII is accepted to its edges; DEL, tab and space are not', () => {
  assert.is(storedKeyBytes('!~'), 2, '0x21 and 0x7e are the first and last printable bytes')
  const cache = new Cache()
  assert.throws(() => cache.getSync('a\x7f'), /byte 0x7f at offset 1/)
  assert.throws(() => cache.getSync('\tb'), /byte 0x09 at offset 0/)
  assert.throws(() => cache.setSync('a b', 'v'), /byte 0x20 at offset 1/)
  assert.throws(() => cache.getSync('é\x7f'), /byte 0x7f at offset 2/, 'after a non-ASCII character')
  cache.close()
})

test('keys that differ only outside ASCII stay distinct, on every read path', () => {
  const cache = new Cache()
  const keys = ['A', 'Ł', 'é', '\u00c9', 'e\u0301', 'Ａ'] // 'Ł' is U+0141, 'Ａ' U+FF21
  keys.forEach((k, i) => cache.setSync(k, `v${i}`))
  keys.forEach((k, i) => {
    assert.is(cache.getSync(k, { encoding: 'utf8' }), `v${i}`, k)
    assert.is(cache.getsSync(k, { encoding: 'utf8' })?.value, `v${i}`, k)
    assert.ok(cache.hasSync(k), k)
  })
  const many = cache.getManySync(keys, { encoding: 'utf8' })
  assert.equal([...many.values()], keys.map((_, i) => `v${i}`))
  assert.is(cache.deleteSync('Ł'), true)
  assert.is(cache.getSync('A', { encoding: 'utf8' }), 'v0', 'deleting U+0141 left "A" alone')
  cache.close()
})

test('a value larger than the scratch buffer comes back whole in every encoding', () => {
  const cache = new Cache({ memoryLimit: '16mb' })
  const text = 'x'.repeat(200_000) + 'é'.repeat(50_000) // 300,000 bytes of UTF-8
  cache.setSync('big', text)
  assert.is(cache.getSync('big', { encoding: 'utf8' }), text)
  assert.ok((cache.getSync('big') as Buffer).equals(Buffer.from(text)))
  assert.is(cache.getsSync('big', { encoding: 'utf8' })?.value, text)
  cache.setSync('json', { text }, { encoding: 'json' })
  assert.equal(cache.getSync('json', { encoding: 'json' }), { text })
  assert.is(cache.getSync('next', { encoding: 'utf8' }), undefined)
  cache.setSync('next', 'small')
  assert.is(cache.getSync('next', { encoding: 'utf8' }), 'small', 'the next read still uses scratch')
  cache.close()
})

test('a miss right after a hit, and an empty value, on every single read path', () => {
  // a single read returns nothing and leaves its length (-1 for a miss) in the scratch
  // buffer: a miss must not read the length of the hit before it
  const cache = new Cache()
  cache.setSync('hit', 'value')
  cache.setSync('empty', '')
  const big = 'b'.repeat(300_000) // larger than the scratch buffer: returned as a value
  cache.setSync('big', big)
  for (const encoding of ['buffer', 'utf8'] as const) {
    for (const before of ['hit', 'empty', 'big']) {
      const want = before === 'hit' ? 'value' : before === 'big' ? big : ''
      assert.is(String(cache.getSync(before, { encoding })), want, `${encoding} ${before}`)
      assert.is(cache.getSync('miss', { encoding }), undefined, `get after ${before}`)
      assert.is(String(cache.getsSync(before, { encoding })?.value), want)
      assert.is(cache.getsSync('miss', { encoding }), undefined, `gets after ${before}`)
      assert.is(String(cache.gatSync(before, 60_000, { encoding })), want)
      assert.is(cache.gatSync('miss', 60_000, { encoding }), undefined, `gat after ${before}`)
    }
    assert.is(cache.getSync('empty', { encoding })?.length, 0, 'an empty value is a hit')
    assert.is(cache.getsSync('empty', { encoding })?.value.length, 0)
    assert.is(cache.gatSync('empty', 60_000, { encoding })?.length, 0)
  }
  cache.close()
})

test('a Buffer read is a plain Buffer', () => {
  const cache = new Cache()
  cache.setSync('k', 'hello world')
  const v = cache.getSync('k') as Buffer
  assert.ok(Buffer.isBuffer(v))
  assert.is(Object.getPrototypeOf(v), Buffer.prototype)
  assert.is(v.constructor, Buffer)
  assert.is(Object.getPrototypeOf(v.subarray(0, 5)), Buffer.prototype)
  assert.is(v.subarray(0, 5).toString(), 'hello')
  cache.close()
})

test.run()
