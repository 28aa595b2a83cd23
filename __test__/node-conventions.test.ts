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

/** Bad values for any argument position: wrong types, out-of-range numbers, bad keys,
 * bad options and batches. */
const BAD: readonly unknown[] = [
  undefined, null, 1, -1, 1.5, Number.NaN, Infinity, 2n ** 64n, -1n, '', 'x'.repeat(300), 'a b', 'a\n', {}, [],
  Symbol('s'), () => 1, true, Buffer.alloc(0), new Uint8Array(2), { ttl: -1 }, { ttl: 'x' }, { encoding: 'nope' },
  { flags: -1 }, { flags: 2 ** 32 }, { ttl: 1e20 }, { timeout: -1 }, { signal: 1 }, [['k']], [['k', {}]], [1],
  new Map([['k', 1]]), 'k'.repeat(251), Promise.resolve('k'),
]

/** Each method with good arguments; each position in turn gets every BAD value. */
const CALLS: Readonly<Record<string, readonly unknown[]>> = {
  get: ['k', undefined], gets: ['k', undefined], getMany: [['k'], undefined], set: ['k', 'v', undefined],
  setMany: [[['k', 'v']], undefined], add: ['k', 'v', undefined], replace: ['k', 'v', undefined],
  append: ['k', 'v', undefined], prepend: ['k', 'v', undefined], cas: ['k', 'v', 1n, undefined],
  incr: ['k', 1n, undefined], decr: ['k', 1n, undefined], touch: ['k', 1000, undefined], gat: ['k', 1000, undefined],
  delete: ['k', undefined], deleteMany: [['k'], undefined], has: ['k', undefined], flush: [undefined, undefined],
  stats: [undefined], fetch: ['k', () => 'v', undefined],
}

/** Every error a bad argument raises, as `method[position] <- value: class code message`,
 * for the ones without a FERROCACHE_ code (a decoding error of the stored value aside). */
async function uncoded(cache: Record<string, (...args: unknown[]) => unknown>): Promise<string[]> {
  const out = new Set<string>()
  for (const [method, good] of Object.entries(CALLS)) {
    for (let i = 0; i < good.length; i++) {
      for (const bad of BAD) {
        const args = [...good]
        args[i] = bad
        let err: unknown
        try {
          await cache[method]!(...args)
        } catch (e) {
          err = e
        }
        if (err === undefined || err instanceof SyntaxError) continue
        const code = (err as { code?: unknown }).code
        if (typeof code === 'string' && code.startsWith('FERROCACHE_')) continue
        out.add(`${method}[${i}] <- ${typeof bad === 'symbol' ? 'Symbol' : String(bad).slice(0, 20)}: ${(err as Error).name} ${String(code)} ${(err as Error).message}`)
      }
    }
  }
  return [...out]
}

test('every error of a bad argument has a FERROCACHE_ code, each method and position (Cache, Client in each protocol)', async () => {
  const cache = new Cache()
  const server = createServer({ cache, port: 0 })
  const { port } = await server.listen()
  try {
    assert.equal(await uncoded(cache as unknown as Record<string, (...args: unknown[]) => unknown>), [], 'Cache')
    for (const protocol of ['meta', 'text', 'binary'] as const) {
      const client = new Client({ servers: [`127.0.0.1:${port}`], protocol })
      try {
        assert.equal(await uncoded(client as unknown as Record<string, (...args: unknown[]) => unknown>), [], `Client (${protocol})`)
      } finally {
        await client.close()
      }
    }
  } finally {
    await server.close()
    cache.close()
  }
})

test.run()
