// The `encoding` option: Buffer by default, strings for utf8, JSON values for json, set at
// construction and overridable per call.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { rejectsLike } from './cache-assert'

test('utf8 cache returns strings from every read', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  assert.is(cache.encoding, 'utf8')
  await cache.set('k', 'héllo')
  await cache.set('b', Buffer.from('from bytes'))
  const v: string | undefined = await cache.get('k')
  assert.is(v, 'héllo')
  assert.is(cache.getSync('b'), 'from bytes')
  assert.is((await cache.gets('k'))?.value, 'héllo')
  assert.is(await cache.gat('k', 0), 'héllo')
  assert.equal([...(await cache.getMany(['k', 'b']))], [
    ['k', 'héllo'],
    ['b', 'from bytes'],
  ])
  // Per call, the Buffer is still available.
  assert.ok(Buffer.isBuffer(await cache.get('k', { encoding: 'buffer' })))
  cache.close()
})

test('json cache stores any JSON value and parses it back', async () => {
  const cache = new Cache({ encoding: 'json' })
  const user = { id: 1, name: 'Ada', tags: ['x', 'y'], nested: { ok: true }, none: null }
  await cache.set('user', user)
  await cache.set('string', 'just text')
  await cache.set('number', 42)
  await cache.setMany([
    ['a', [1, 2, 3]],
    ['b', false],
  ])
  assert.equal(await cache.get('user'), user)
  assert.is(await cache.get('string'), 'just text')
  assert.is(cache.getSync('number'), 42)
  assert.equal(cache.getManySync(['a', 'b']), new Map<string, unknown>([
    ['a', [1, 2, 3]],
    ['b', false],
  ]))
  // Stored as JSON text: visible as such through the utf8 encoding.
  assert.is(cache.getSync('user', { encoding: 'utf8' }), JSON.stringify(user))
  assert.is(cache.getSync('string', { encoding: 'utf8' }), '"just text"')
  await rejectsLike(() => cache.set('u', undefined), TypeError, /value cannot be encoded as JSON/)
  await rejectsLike(() => cache.set('f', () => 1), TypeError, /cannot be encoded as JSON \(function\)/)
  cache.close()
})

test('per-call encodings on a buffer cache, for writes and reads', async () => {
  const cache = new Cache()
  await cache.set('j', { a: 1 }, { encoding: 'json' })
  assert.equal(await cache.get('j', { encoding: 'json' }), { a: 1 })
  assert.is(cache.getSync('j')?.toString(), '{"a":1}')
  const e = cache.getsSync('j', { encoding: 'json' })
  assert.equal(e?.value, { a: 1 })
  await cache.set('bad', 'not json')
  await rejectsLike(() => cache.get('bad', { encoding: 'json' }), SyntaxError, /JSON/)
  // add/replace/cas encode like set.
  assert.is(await cache.add('j2', [1], { encoding: 'json' }), true)
  assert.is(await cache.replace('j2', [2], { encoding: 'json' }), true)
  const tok = cache.getsSync('j2')!.cas
  assert.is(await cache.cas('j2', [3], tok, { encoding: 'json' }), true)
  assert.equal(cache.getSync('j2', { encoding: 'json' }), [3])
  // append/prepend never JSON-encode: raw bytes only.
  cache.setSync('list', '[1')
  cache.appendSync('list', ',2]')
  assert.equal(cache.getSync('list', { encoding: 'json' }), [1, 2])
  cache.close()
})

test.run()
