// A second look at fixes committed in review rounds (metrics port, replication timeouts,
// adapters): each test here failed before its fix.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import Keyv from 'keyv'
import { Cache } from '../src'
import { KeyvFerrocache } from '../src/adapters/keyv'
import { setUp, tearDown } from './helpers/guard'

const adapters = suite<{ cache?: Cache }>('review follow-up: keyv adapter')

setUp(adapters, (ctx) => {
  ctx.cache = new Cache()
})

tearDown(adapters, (ctx) => {
  ctx.cache?.close()
})

adapters('a string with a lone surrogate reads back as stored (the "~" text format made it U+FFFD)', async ({ cache }) => {
  const store = new KeyvFerrocache(cache as Cache)
  const values = ['a\uD800b', '\uDC00', 'x\uDBFF', 'ok \uD83D\uDE00']
  for (const [i, v] of values.entries()) {
    assert.is(await store.set(`k${i}`, v), true)
    assert.is(await store.get(`k${i}`), v, `get of ${JSON.stringify(v)}`)
  }
  assert.equal(await store.setMany(values.map((value, i) => ({ key: `m${i}`, value }))), [true, true, true, true])
  assert.equal(await store.getMany(values.map((_, i) => `m${i}`)), values)
  assert.equal(await store.hasMany(['k0', 'k1', 'nope']), [true, true, false])
  // through Keyv with a serializer that does not escape (its default JSON one does)
  const keyv = new Keyv<string>({
    store: new KeyvFerrocache(cache as Cache),
    namespace: 'raw',
    serialize: (d) => (d as { value: string }).value,
    deserialize: <Value>(s: string) => ({ value: s as unknown as Value }),
  })
  assert.is(await keyv.set('s', 'half \uD800 pair'), true)
  assert.is(await keyv.get('s'), 'half \uD800 pair')
})

adapters.run()
