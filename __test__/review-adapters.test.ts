// Adversarial review of the embedded-API conveniences as a Node developer uses them: the
// Keyv adapter (ferrocache/keyv) through keyv from npm, fetch, and ttls on the shared
// Cache/Client interface. Each test here failed before its fix.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import Keyv from 'keyv'
import { Cache, Client } from '../src'
import { KeyvFerrocache } from '../src/adapters/keyv'
import { setUp, tearDown } from './helpers/guard'
import { freePort, sleep, startFerrocached, within, type Running } from './helpers/servers'

const YEAR = 365 * 24 * 3600 * 1000

// ---- against ferrocached (bin/, needs `npm run build`) ----

const remote = suite<{ server?: Running; client?: Client<'utf8'> }>('Client and Keyv over ferrocached')

setUp(remote, async (ctx) => {
  ctx.server = await startFerrocached()
  ctx.client = new Client({ servers: [`127.0.0.1:${ctx.server.port}`], encoding: 'utf8' })
})

tearDown(remote, async (ctx) => {
  await ctx.client?.close()
  await ctx.server?.stop()
})

remote('a ttl ending after 2038 keeps the item (it was stored already expired)', async ({ client }) => {
  // memcached and ferrocached read an exptime past 2^31 - 1 as expired at once; the Client
  // sent up to 2^32 - 1, so set answered true and the item was gone.
  const c = client as Client<'utf8'>
  for (const ttl of [20 * YEAR, 1e15, Number.MAX_SAFE_INTEGER]) {
    assert.is(await c.set('far', 'v', { ttl }), true)
    assert.is(await c.get('far'), 'v', `set with ttl ${ttl}`)
    assert.is(await c.touch('far', ttl), true)
    assert.is(await c.get('far'), 'v', `touch with ttl ${ttl}`)
  }
  const keyv = new Keyv({ store: new KeyvFerrocache(c), namespace: 'far' })
  assert.is(await keyv.set('k', { n: 1 }, 50 * YEAR), true)
  assert.equal(await keyv.get('k'), { n: 1 })
})

remote('Keyv over Client: has() is false once Keyv considers the value expired', async ({ client }) => {
  const keyv = new Keyv({ store: new KeyvFerrocache(client as Client<'utf8'>), namespace: 'h' })
  await keyv.set('short', 'v', 50)
  await keyv.set('long', 'v')
  await sleep(120)
  assert.is(await keyv.has('short'), false)
  assert.equal(await keyv.has(['short', 'long', 'missing']), [false, true, false])
})

remote("a Uint8Array of another realm (jest's vm context) is a value on the Client too", async ({ client }) => {
  const c = client as Client<'utf8'>
  const foreign = runInNewContext('new Uint8Array([104, 105])') as Uint8Array
  assert.is(await c.set('realm', foreign), true)
  assert.is(await c.append('realm', foreign), true)
  assert.is(await c.get('realm'), 'hihi')
})

remote.run()

// ---- values ----

const values = suite('Cache values')

values("a Uint8Array of another realm (jest's vm context) is bytes, not a TypeError", async () => {
  // `instanceof Uint8Array` is false for a typed array made in another vm context, as in
  // jest's test environment: set refused it with 'must be a ... Uint8Array, got Uint8Array'.
  const cache = new Cache({ encoding: 'utf8' })
  try {
    const foreign = runInNewContext('new Uint8Array([104, 105])') as Uint8Array
    assert.not.ok(foreign instanceof Uint8Array)
    assert.is(cache.setSync('k', foreign), true)
    assert.is(cache.appendSync('k', foreign), true)
    cache.setManySync([['m', foreign]])
    assert.is(await cache.fetch('f', () => foreign, { encoding: 'buffer' }).then((b) => b.toString()), 'hi')
    assert.equal([cache.getSync('k'), cache.getSync('m'), cache.getSync('f')], ['hihi', 'hi', 'hi'])
  } finally {
    cache.close()
  }
})

values.run()

// ---- the Keyv adapter ----

const kv = suite('Keyv adapter')

kv('has()/hasMany() follow the expiry Keyv recorded, as with a Map store', async () => {
  // The item lives up to two seconds past Keyv's expiry (memcached's whole-second clock
  // plus one second), and Keyv returns a store's has() as it is: has() said true while
  // get() said undefined.
  const cache = new Cache()
  try {
    for (const store of [new KeyvFerrocache(cache), new Map()]) {
      const keyv = new Keyv({ store })
      await keyv.set('short', 'v', 40)
      await keyv.set('long', { a: 'expires' }, 60_000)
      await keyv.set('forever', 'x')
      await sleep(100)
      const name = store instanceof Map ? 'Map' : 'ferrocache'
      assert.is(await keyv.has('short'), false, name)
      assert.equal(await keyv.has(['short', 'long', 'forever', 'missing']), [false, true, true, false], name)
      // Keyv without a serializer hands the adapter its record object itself
      const plain = new Keyv({ store: new KeyvFerrocache({ cache, namespace: 'plain' }), serialize: undefined, deserialize: undefined })
      await plain.set('short', 'v', 40)
      await sleep(60)
      assert.is(await plain.has('short'), false, `${name}: no serializer`)
      await keyv.clear()
    }
  } finally {
    cache.close()
  }
})

kv('a NaN ttl stores the value (Keyv records no expiry), a negative one lets the item go', async () => {
  // NaN failed the set with a RangeError (Keyv: set() false and an 'error'); a Map store
  // keeps the value, Keyv never finding NaN past. A negative ttl stored the item forever.
  const cache = new Cache()
  try {
    const adapter = new KeyvFerrocache(cache)
    const keyv = new Keyv({ store: adapter })
    const errors: unknown[] = []
    keyv.on('error', (e: unknown) => errors.push(e))
    assert.is(await keyv.set('nan', 'v', Number.NaN), true)
    assert.is(await keyv.get('nan'), 'v')
    assert.is(await adapter.set('past', '"v"', -5), true)
    assert.equal(errors, [])
    const deadline = Date.now() + 2_500 // ttl rounds to one second; the clock ticks within one more
    while ((await adapter.has('past')) && Date.now() < deadline) await sleep(50)
    assert.is(await adapter.has('past'), false, 'the item with a past ttl is gone within 2.5 s')
  } finally {
    cache.close()
  }
})

kv('a Keyv value that fits maxItemSize is stored (its text was JSON-escaped again)', async () => {
  // Keyv serializes to text; the adapter stored that as JSON, escaping each quote and
  // backslash again: a 0.9 MB quote-heavy value became 1.5 MB and failed the 1 MB limit.
  const cache = new Cache()
  try {
    const keyv = new Keyv({ store: new KeyvFerrocache(cache) })
    const errors: unknown[] = []
    keyv.on('error', (e: unknown) => errors.push(e))
    const html = '<a href="x">'.repeat(70_000) // 840 KB, 940 KB once Keyv escaped its quotes
    assert.is(await keyv.set('page', html), true)
    assert.is(await keyv.get('page'), html)
    assert.equal(errors, [])
    // values the adapter stored as JSON before still read back ('keyv' in base64url: a2V5dg)
    const gen = await cache.get('keyv~|na2V5dg.gen', { encoding: 'utf8' })
    assert.type(gen, 'string')
    const record = JSON.stringify({ value: 'old', expires: null })
    await cache.set(`keyv~|na2V5dg.${gen}.kkeyv:legacy`, JSON.stringify(record))
    assert.is(await keyv.get('legacy'), 'old')
    // and strings that start like the new format's mark or are empty round-trip
    const raw = new KeyvFerrocache(cache)
    for (const v of ['', '~', '~~x', '"q"', '{"value":1}']) {
      await raw.set('s', v)
      assert.is(await raw.get('s'), v)
    }
    await raw.set('o', { value: 1, expires: null }) // Keyv without a serializer passes objects
    assert.equal(await raw.get('o'), { value: 1, expires: null })
  } finally {
    cache.close()
  }
})

kv('keys and namespaces with a lone surrogate stay apart, as in a Map store', async () => {
  // They were hashed as UTF-8, which turns a lone surrogate into U+FFFD: 'k\uD800',
  // 'k\uDC00' and 'k\uFFFD' were one item (the core Cache refuses such keys; the adapter
  // promises any key).
  const cache = new Cache()
  try {
    const keyv = new Keyv({ store: new KeyvFerrocache(cache) })
    const keys = ['k\uD800', 'k\uDC00', 'k\uFFFD', 'k\uD83D\uDE00', 'k\uDE00\uD83D']
    for (const [i, k] of keys.entries()) await keyv.set(k, i)
    assert.equal(await keyv.get(keys), [0, 1, 2, 3, 4])
    const spaces = ['\uD800', '\uFFFD'].map((namespace) => new Keyv({ store: new KeyvFerrocache(cache), namespace, useKeyPrefix: false }))
    await spaces[0].set('k', 'lone')
    await spaces[1].set('k', 'replacement')
    await spaces[1].clear()
    assert.is(await spaces[0].get('k'), 'lone')
  } finally {
    cache.close()
  }
})

kv('setMany: an entry that fails (too large) is false on its own; the others are stored', async () => {
  // One rejection failed the whole batch: Keyv answered false for every entry although the
  // others were stored (Keyv's own per-entry path, for stores without setMany, says which).
  const cache = new Cache()
  try {
    const keyv = new Keyv({ store: new KeyvFerrocache(cache) })
    const errors: unknown[] = []
    keyv.on('error', (e: unknown) => errors.push(e))
    const results = await keyv.setMany([
      { key: 'a', value: 1 },
      { key: 'huge', value: 'x'.repeat(2 * 1024 * 1024) },
      { key: 'b', value: 2 },
    ])
    assert.equal(results, [true, false, true])
    assert.equal(await keyv.get(['a', 'huge', 'b']), [1, undefined, 2])
    assert.is(errors.length, 1)
    assert.is((errors[0] as { code?: string }).code, 'FERROCACHE_TOO_LARGE')
  } finally {
    cache.close()
  }
})

kv("a failed get reaches Keyv's 'error' listeners (Keyv 5 drops it silently otherwise)", async () => {
  // Nothing listens on the port: every request fails. Keyv emits 'error' for a failed set,
  // delete or clear, but turns a failed get into undefined with no event at all.
  const client = new Client({ servers: [`127.0.0.1:${await freePort()}`], timeout: 500, connectTimeout: 500 })
  try {
    const keyv = new Keyv({ store: new KeyvFerrocache(client) })
    const errors: unknown[] = []
    keyv.on('error', (e: unknown) => errors.push(e))
    assert.is(await within(keyv.get('k'), 3_000, 'a get on a dead server'), undefined)
    assert.is(errors.length, 1)
    assert.instance(errors[0], Error)
    assert.is(await within(keyv.set('k', 1), 3_000, 'a set on a dead server'), false)
    assert.is(errors.length, 2, 'a failed set is reported once (by Keyv)')
  } finally {
    await client.close()
  }
})

kv.run()

// ---- fetch ----

const f = suite('fetch')

f('a loader fetching its own key at once is refused instead of waiting for itself (which also hung every later fetch of the key)', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  try {
    const self = within(cache.fetch('a', () => cache.fetch('a', () => 'inner')), 2_000, 'a re-entrant fetch')
    await self.then(
      () => assert.unreachable('a fetch waiting for itself resolved'),
      (e: Error) => assert.match(e.message, /called fetch for "a"/),
    )
    // an async loader's first step runs at once too (after an await it is not covered)
    const asyncSelf = within(cache.fetch('b', async (k) => cache.fetch(k, () => 'inner')), 2_000, 'an async re-entrant fetch')
    await asyncSelf.then(
      () => assert.unreachable('an async fetch waiting for itself resolved'),
      (e: Error) => assert.match(e.message, /called fetch for "b"/),
    )
    // the keys are free again, and nesting other keys (or another cache's) still works
    assert.is(await within(cache.fetch('a', () => 'loaded'), 2_000, 'a later fetch'), 'loaded')
    const other = new Cache({ encoding: 'utf8' })
    try {
      const v = await within(
        cache.fetch('p', async () => `${await cache.fetch('q', () => 'q')}+${await other.fetch('p', () => 'other p')}`),
        2_000,
        'nested fetches',
      )
      assert.is(v, 'q+other p')
    } finally {
      other.close()
    }
    // callers that join a load from outside it still share it
    let calls = 0
    const slow = () => new Promise<string>((r) => setTimeout(() => r(String(++calls)), 20))
    assert.equal(await Promise.all([cache.fetch('s', slow), cache.fetch('s', slow)]), ['1', '1'])
  } finally {
    cache.close()
  }
})

f('a loader that leaves a timer behind does not keep its value alive', async () => {
  // What a loader starts (a timer, a pooled socket) keeps the loader's async context; the
  // record of the loads a loader runs inside held their promises, and so their values.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const cache = new Cache({ encoding: 'json' })
  let timer: NodeJS.Timeout | undefined
  try {
    let ref: WeakRef<object> | undefined
    await cache.fetch('v', () => {
      timer = setTimeout(() => undefined, 60_000)
      const value = { text: 'x'.repeat(1000) }
      ref = new WeakRef(value)
      return value
    })
    for (let i = 0; i < 5 && ref?.deref() !== undefined; i++) {
      await new Promise((r) => setImmediate(r))
      gc()
    }
    assert.is(ref?.deref(), undefined)
  } finally {
    clearTimeout(timer)
    cache.close()
  }
})

f("with encoding 'json' a miss returns what a hit returns, not the loader's own object", async () => {
  // The loader's object came back as it was: a Date on the miss, a string on every hit
  // after it; an undefined property there, gone later.
  const cache = new Cache({ encoding: 'json' })
  try {
    const load = () => ({ at: new Date(0), gone: undefined, list: [1, undefined], n: 1 })
    const miss = await cache.fetch('k', load, { ttl: 60_000 })
    const hit = await cache.fetch('k', load)
    assert.equal(miss, { at: '1970-01-01T00:00:00.000Z', list: [1, null], n: 1 })
    assert.equal(miss, hit)
    assert.equal(await cache.get('k'), miss)
    await cache.fetch('b', () => ({ big: 1n })).then(
      () => assert.unreachable('a BigInt was taken'),
      (e: Error) => assert.instance(e, TypeError),
    )
    assert.is(await cache.has('b'), false)
  } finally {
    cache.close()
  }
})

f('a value set while the loader runs is kept, not overwritten by the older load', async () => {
  // fetch stored its load with `set`: a writer that updated the source and set the key
  // during a slow load saw its value replaced by what the loader had read before. lru-cache
  // discards a fetch when the key is set meanwhile.
  const cache = new Cache({ encoding: 'utf8' })
  try {
    let release!: (v: string) => void
    const held = new Promise<string>((r) => (release = r))
    const loading = cache.fetch('user', () => held, { ttl: 60_000 })
    await sleep(10)
    await cache.set('user', 'written meanwhile')
    release('loaded before the write')
    assert.is(await within(loading, 2_000, 'the fetch'), 'loaded before the write')
    assert.is(await cache.get('user'), 'written meanwhile')
    // with nothing written meanwhile the load is stored, ttl included
    assert.is(await cache.fetch('other', () => 'loaded', { ttl: 60_000 }), 'loaded')
    assert.is(await cache.get('other'), 'loaded')
  } finally {
    cache.close()
  }
})

f.run()
