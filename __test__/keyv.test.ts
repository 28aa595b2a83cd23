// ferrocache/keyv: the Keyv 5 storage adapter over the embedded Cache and over Client (an
// in-process ferrocached on a free port), driven through keyv and cache-manager from npm.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import Keyv from 'keyv'
import { createCache } from 'cache-manager'
import { Cache, Client, createServer, type CacheLike, type Encoding } from '../src'
import { KeyvFerrocache } from '../src/adapters/keyv'

interface Subject {
  cache: CacheLike<Encoding>
  close(): Promise<void>
}

async function embedded(): Promise<Subject> {
  const cache = new Cache()
  return { cache, close: async () => cache.close() }
}

async function remote(): Promise<Subject> {
  const server = createServer({ port: 0, host: '127.0.0.1' })
  const { port } = await server.listen()
  const cache = new Client({ servers: [`127.0.0.1:${port}`] })
  return {
    cache,
    close: async () => {
      await cache.close()
      await server.close()
    },
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

for (const [name, make] of [['Cache', embedded], ['Client', remote]] as const) {
  const t = suite(`keyv adapter on ${name}`)

  t('Keyv get/set/delete/has/getMany/setMany/deleteMany round-trip values', async () => {
    const s = await make()
    try {
      const keyv = new Keyv({ store: new KeyvFerrocache(s.cache) })
      const errors: unknown[] = []
      keyv.on('error', (e: unknown) => errors.push(e))
      assert.is(await keyv.set('user', { name: 'ada', tags: ['x'], n: 1 }), true)
      assert.equal(await keyv.get('user'), { name: 'ada', tags: ['x'], n: 1 })
      assert.is(await keyv.has('user'), true)
      assert.is(await keyv.get('missing'), undefined)
      assert.is(await keyv.has('missing'), false)
      await keyv.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: 'two' },
      ])
      assert.equal(await keyv.get(['a', 'missing', 'b']), [1, undefined, 'two'])
      assert.is(await keyv.delete('user'), true)
      assert.is(await keyv.delete('user'), false)
      assert.is(await keyv.get('user'), undefined)
      assert.is(await keyv.delete(['a', 'b']), true)
      assert.equal(await keyv.get(['a', 'b']), [undefined, undefined])
      assert.equal(errors, [])
    } finally {
      await s.close()
    }
  })

  t('keys memcached would refuse (spaces, unicode, 300 characters) are stored apart', async () => {
    const s = await make()
    try {
      const keyv = new Keyv({ store: new KeyvFerrocache(s.cache) })
      const keys = ['with space', 'naïve ☃', 'x'.repeat(300), 'x'.repeat(299), 'line\nbreak', 'plain']
      for (const [i, k] of keys.entries()) await keyv.set(k, i)
      assert.equal(await keyv.get(keys), [0, 1, 2, 3, 4, 5])
    } finally {
      await s.close()
    }
  })

  t('clear() removes only its own namespace, as seen by other adapters too', async () => {
    const s = await make()
    try {
      const a = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'a' })
      const b = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'b' })
      const a2 = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'a' })
      // Without Keyv's key prefix the namespaces share key names: only the adapter keeps them apart.
      const rawA = new KeyvFerrocache({ cache: s.cache, namespace: 'a' })
      const rawB = new KeyvFerrocache({ cache: s.cache, namespace: 'b' })
      await s.cache.set('outsider', 'kept')
      await a.set('k', 'from a')
      await b.set('k', 'from b')
      await rawA.set('same', 'A')
      await rawB.set('same', 'B')
      assert.is(await a2.get('k'), 'from a')
      await a.clear()
      assert.is(await a.get('k'), undefined)
      assert.is(await a2.get('k'), undefined)
      assert.is(await rawA.get('same'), undefined)
      assert.is(await b.get('k'), 'from b')
      assert.is(await rawB.get('same'), 'B')
      assert.is(String(await s.cache.get('outsider')), 'kept')
      // The namespace keeps working after a clear.
      await a.set('k', 'again')
      assert.is(await a2.get('k'), 'again')
      await rawB.clear()
      assert.is(await rawB.get('same'), undefined)
      assert.is(await a.get('k'), 'again')
    } finally {
      await s.close()
    }
  })

  t('clear() works when the generation counter is gone (evicted or flushed)', async () => {
    const s = await make()
    try {
      const keyv = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'n' })
      await keyv.set('k', 1)
      await s.cache.flush()
      await keyv.clear()
      assert.is(await keyv.get('k'), undefined)
      await keyv.set('k', 2)
      assert.is(await keyv.get('k'), 2)
    } finally {
      await s.close()
    }
  })

  t('ttl in milliseconds: Keyv hides expired values, the cache drops them itself', async () => {
    const s = await make()
    try {
      const adapter = new KeyvFerrocache(s.cache)
      const keyv = new Keyv({ store: adapter })
      await keyv.set('short', 'v', 50)
      await keyv.set('long', 'v')
      // set just before a tick of the one-second clock: the item must outlive that tick.
      // That is checked only within the ttl of the set: a busy machine that got to the
      // check 1000 ms or more after it (the sleep overran) tries again, a few times
      let checked = false
      for (let attempt = 0; attempt < 3 && !checked; attempt++) {
        await sleep(1_000 - (Date.now() % 1_000) + 850)
        const setAt = Date.now()
        await adapter.set('raw', '"v"', 1000)
        await sleep(250)
        const has = await adapter.has('raw')
        if (Date.now() - setAt >= 1_000) continue
        assert.is(has, true, 'the item lives at least its ttl')
        checked = true
      }
      assert.ok(checked, 'no check came within 1000 ms of its set')
      assert.is(await keyv.get('short'), undefined)
      assert.is(await keyv.get('long'), 'v')
      // the item itself (ttl rounded up to whole seconds, plus one) is gone within 3 s of
      // the set (polled: it usually goes after 1.15 s)
      const deadline = Date.now() + 2_800
      while ((await adapter.has('raw')) && Date.now() < deadline) await sleep(50)
      assert.is(await adapter.has('raw'), false)
      assert.is(await keyv.get('long'), 'v')
    } finally {
      await s.close()
    }
  })

  t('cache-manager 7 over Keyv over ferrocache: set/get/mget/del/wrap/clear', async () => {
    const s = await make()
    try {
      const store = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'cm' })
      const other = new Keyv({ store: new KeyvFerrocache(s.cache), namespace: 'other' })
      await other.set('k', 'stays')
      const cm = createCache({ stores: [store] })
      await cm.set('k', { v: 1 }, 60_000)
      assert.equal(await cm.get('k'), { v: 1 })
      await cm.mset([
        { key: 'm1', value: 'one' },
        { key: 'm2', value: 'two', ttl: 60_000 },
      ])
      assert.equal(await cm.mget(['m1', 'nope', 'm2']), ['one', undefined, 'two'])
      let calls = 0
      const load = async () => {
        calls++
        return 'loaded'
      }
      assert.is(await cm.wrap('w', load, 60_000), 'loaded')
      assert.is(await cm.wrap('w', load, 60_000), 'loaded')
      assert.is(calls, 1)
      assert.is(await cm.del('k'), true)
      assert.is(await cm.get('k'), undefined)
      await cm.clear()
      assert.is(await cm.get('m1'), undefined)
      assert.is(await cm.get('w'), undefined)
      assert.is(await other.get('k'), 'stays')
    } finally {
      await s.close()
    }
  })

  t.run()
}

const u = suite('keyv adapter options')

u('an adapter without a cache owns a new embedded Cache and closes it on disconnect', async () => {
  const adapter = new KeyvFerrocache()
  assert.instance(adapter.cache, Cache)
  const keyv = new Keyv({ store: adapter })
  await keyv.set('k', 'v')
  assert.is(await keyv.get('k'), 'v')
  await keyv.disconnect()
  await adapter.get('k').then(
    () => assert.unreachable('a closed cache must refuse'),
    (e: Error) => assert.instance(e, Error),
  )
})

u('a cache passed in stays open after disconnect; servers makes a Client', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  try {
    const adapter = new KeyvFerrocache({ cache, prefix: 'app1:' })
    await adapter.set('k', 'v')
    await adapter.disconnect()
    assert.is(await adapter.get('k'), 'v')
    const viaServers = new KeyvFerrocache({ servers: ['127.0.0.1:1'] })
    assert.instance(viaServers.cache, Client)
    await viaServers.disconnect()
  } finally {
    cache.close()
  }
})

u('bad options are refused', () => {
  assert.throws(() => new KeyvFerrocache({ prefix: 'has space' }), /prefix/)
  assert.throws(() => new KeyvFerrocache({ prefix: 'p'.repeat(33) }), /prefix/)
  const cache = new Cache()
  try {
    assert.throws(() => new KeyvFerrocache({ cache, servers: ['127.0.0.1:1'] }), /either/)
  } finally {
    cache.close()
  }
})

u.run()
