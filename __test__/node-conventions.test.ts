// What a Node user expects of the classes beyond the cache API: `using` / `await using`
// close a Cache, a Client and a server when the block ends (Symbol.dispose and
// Symbol.asyncDispose), createServer serves a Cache wrapped in a Proxy (a Vue `reactive`,
// an instrumenting wrapper) or says why it cannot, and argument errors carry a `code`.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, createServer } from '../src'
import { rejectsLike, throwsLike } from './cache-assert'

test('using closes a Cache when its block ends, await using too (it falls back to Symbol.dispose)', async () => {
  let kept: Cache
  {
    using cache = new Cache()
    cache.setSync('k', 'v')
    kept = cache
  }
  assert.is(kept.closed, true)
  {
    await using cache = new Cache()
    kept = cache
  }
  assert.is(kept.closed, true)
  // a block left by a throw closes it as well
  try {
    using cache = new Cache()
    kept = cache
    throw new Error('boom')
  } catch {
    // expected
  }
  assert.is(kept.closed, true)
})

test('await using closes a Client and a server, waiting for their close()', async () => {
  const cache = new Cache()
  let client: Client
  let closed = false
  {
    await using server = createServer({ cache, port: 0 })
    server.once('close', () => (closed = true))
    const { port } = await server.listen()
    {
      await using c = new Client({ servers: [`127.0.0.1:${port}`] })
      client = c
      assert.is(await c.set('k', 'v'), true)
    }
    assert.is(client.closed, true)
    const err = await rejectsLike(() => client.get('k'), Error, /closed/)
    assert.is((err as Error & { code?: string }).code, 'FERROCACHE_CLOSED')
    assert.is(closed, false)
  }
  assert.is(closed, true, 'the server closed (and emitted close) before the block was left')
  assert.is(cache.closed, false, 'the server does not close a cache it was given')
  assert.is(cache.getSync('k', { encoding: 'utf8' }), 'v')
  cache.close()
})

test('createServer serves the Cache behind a Proxy (it threw "Cannot read private member #native")', async () => {
  const cache = new Cache()
  const calls: string[] = []
  const logged = new Proxy(cache, {
    get(target, key, receiver) {
      if (typeof key === 'string') calls.push(key)
      return Reflect.get(target, key, receiver)
    },
  })
  const server = createServer({ cache: logged, port: 0 })
  const { port } = await server.listen()
  const client = new Client({ servers: [`127.0.0.1:${port}`] })
  try {
    assert.is(await client.set('k', 'over the network'), true)
    assert.is(cache.getSync('k', { encoding: 'utf8' }), 'over the network', 'the Cache behind the Proxy is served')
  } finally {
    await client.close()
    await server.close()
  }
  assert.is(cache.closed, false)
  cache.close()
})

test('the methods and getters of a Cache work through a Proxy of it (they threw "Cannot read private member #id")', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  const calls: string[] = []
  // a default-forwarding get, as valtio, MobX and Vue's reactive: the method's `this` is the Proxy
  const watched = new Proxy(cache, {
    get(target, key, receiver) {
      if (typeof key === 'string') calls.push(key)
      return Reflect.get(target, key, receiver)
    },
  })
  assert.is(watched.setSync('k', 'v'), true)
  assert.is(watched.getSync('k'), 'v')
  assert.is(await watched.set('n', '1', { ttl: 60_000 }), true)
  assert.is(await watched.incr('n', 2), 3n)
  assert.equal([...(await watched.getMany(['k', 'n'])).entries()], [['k', 'v'], ['n', '3']])
  assert.is((await watched.gets('k'))?.value, 'v')
  assert.is(await watched.touch('k', 60_000), true)
  assert.is(await watched.fetch('f', () => 'loaded'), 'loaded')
  assert.is(watched.encoding, 'utf8')
  assert.is(watched.persistence, undefined)
  assert.is(watched.statsSync().curr_items, 3)
  assert.is(watched.deleteManySync(['k', 'n']), 2)
  assert.ok(calls.includes('getSync') && calls.includes('incr'), 'the calls went through the Proxy')
  assert.is(watched.closed, false)
  watched.close()
  assert.is(cache.closed, true)
  // a receiver that is neither a Cache nor a Proxy of one is refused by name
  const inner = new Cache()
  try {
    const hiding = new Proxy(inner, { get: (target, key) => (typeof key === 'string' ? Reflect.get(target, key) : undefined) })
    throwsLike(() => hiding.getSync('k'), TypeError, /^this is not a Cache, nor a Proxy that passes on the Cache behind it: call the method on the Cache$/)
    throwsLike(() => Cache.prototype.getSync.call({} as Cache, 'k'), TypeError, /^this is not a Cache/)
  } finally {
    inner.close()
  }
})

test('a Proxy that hides the Cache behind it is refused by name', () => {
  const cache = new Cache()
  try {
    // a handler that answers only the names it knows (no symbols pass through it)
    const hiding = new Proxy(cache, {
      get: (target, key) => (typeof key === 'string' ? Reflect.get(target, key, target) : undefined),
    })
    throwsLike(() => createServer({ cache: hiding }), TypeError, /^cache is a Proxy whose handler does not pass on the Cache behind it: give createServer the Cache itself$/)
  } finally {
    cache.close()
  }
})

test.run()
