// One body of CacheLike behaviours, run against every implementation (the embedded
// `Cache` and the remote `Client`): an app that switches between them sees the same
// results. Each test takes a fresh key prefix so implementations sharing servers do not
// see each other's keys.
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import type { CacheLike } from '../../src'
import { rejectsLike, sleep } from '../cache-assert'
import { setUp, tearDown } from './guard'

export interface Subject {
  cache: CacheLike<'buffer'>
  close(): Promise<void>
}

/** Methods a subject cannot serve (a Client behind twemproxy): each must reject with
 * FERROCACHE_NOT_FORWARDED, and the tests check the rest without them. */
export type NotForwarded = 'gat' | 'flush' | 'stats'

async function rejectsNotForwarded(call: () => Promise<unknown>, method: string): Promise<void> {
  const err = await rejectsLike(call, Error, new RegExp(`^${method}\\(\\) is not available with protocol 'twemproxy'`))
  assert.is((err as Error & { code: string }).code, 'FERROCACHE_NOT_FORWARDED')
}

let n = 0
const fresh = () => `t${process.pid}-${++n}-${Date.now() % 100000}:`

export function cacheLikeSuite(name: string, make: () => Promise<Subject>, notForwarded: readonly NotForwarded[] = []): void {
  const served = (method: NotForwarded) => !notForwarded.includes(method)
  const s = suite<{ subject?: Subject }>(`CacheLike: ${name}`, {})
  setUp(s, async (ctx) => {
    ctx.subject = await make()
  })
  tearDown(s, async (ctx) => {
    await ctx.subject?.close()
  })
  const c = (ctx: { subject?: Subject }) => ctx.subject!.cache

  s('get/set: Buffer by default, utf8 and json per call, copies out, misses undefined', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    const bin = Buffer.from([0, 1, 2, 255, 13, 10, 0])
    assert.is(await cache.set(`${p}s`, 'héllo ✓'), true)
    await cache.set(`${p}b`, bin)
    await cache.set(`${p}e`, '')
    await cache.set(`${p}j`, JSON.stringify({ a: [1, 2] }))
    assert.equal(await cache.get(`${p}s`), Buffer.from('héllo ✓'))
    assert.is(await cache.get(`${p}s`, { encoding: 'utf8' }), 'héllo ✓')
    assert.equal(await cache.get(`${p}b`), bin)
    assert.equal(await cache.get(`${p}e`), Buffer.alloc(0))
    assert.equal(await cache.get(`${p}j`, { encoding: 'json' }), { a: [1, 2] })
    await cache.set(`${p}j2`, { x: 1 }, { encoding: 'json' })
    assert.equal(await cache.get(`${p}j2`, { encoding: 'json' }), { x: 1 })
    assert.is(await cache.get(`${p}missing`), undefined)
    const got = (await cache.get(`${p}b`))!
    got[0] = 99
    assert.is((await cache.get(`${p}b`))![0], 0)
  })

  s('a 300 KB value, long UTF-8 text and a UTF-8 key round-trip', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    const big = Buffer.alloc(300_000)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff
    await cache.set(`${p}big`, big)
    assert.ok((await cache.get(`${p}big`))!.equals(big))
    await cache.set(`${p}ключ`, 'v')
    assert.is(await cache.get(`${p}ключ`, { encoding: 'utf8' }), 'v')
    // Long multi-byte text, alone and in a batch beside bytes: lengths are in bytes.
    const text = 'ключ ✓ 𝄞 '.repeat(5_000)
    await cache.set(`${p}text`, text)
    assert.is(await cache.get(`${p}text`, { encoding: 'utf8' }), text)
    await cache.setMany([[`${p}m1`, text], [`${p}m2`, big], [`${p}m3`, 'é'.repeat(300)]])
    const many = await cache.getMany([`${p}m1`, `${p}m2`, `${p}m3`])
    assert.is(many.get(`${p}m1`)!.toString(), text)
    assert.ok(many.get(`${p}m2`)!.equals(big))
    assert.is(many.get(`${p}m3`)!.toString(), 'é'.repeat(300))
  })

  s('a value over the 1 MB item limit is refused with FERROCACHE_TOO_LARGE; the cache goes on', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    const err = await rejectsLike(() => cache.set(`${p}huge`, Buffer.alloc(2 * 1024 * 1024)), RangeError, /too large/)
    assert.is((err as Error & { code: string }).code, 'FERROCACHE_TOO_LARGE')
    assert.is(await cache.get(`${p}huge`), undefined)
    assert.is(await cache.set(`${p}after`, 'ok'), true)
    assert.is(await cache.get(`${p}after`, { encoding: 'utf8' }), 'ok')
    // memcached's bound: key + value + 59 bytes (63 with flags) within -I 1m (the embedded
    // Cache took 23 bytes more with a 1-byte key, counting its own smaller header)
    const k = `${p}bound`
    const room = 1024 * 1024 - 59 - k.length
    assert.is(await cache.set(k, Buffer.alloc(room)), true)
    await rejectsLike(() => cache.set(k, Buffer.alloc(room + 1)), RangeError, /too large/)
    assert.is(await cache.set(k, Buffer.alloc(room - 4), { flags: 1 }), true)
    await rejectsLike(() => cache.set(k, Buffer.alloc(room - 3), { flags: 1 }), RangeError, /too large/)
    // a batch with one entry too large stores the others, before and after it, then rejects
    // (a Client's batch goes out whole; the embedded one stopped at that entry)
    const batch = [[`${p}m1`, 'one'], [`${p}m2`, Buffer.alloc(room + 10)], [`${p}m3`, 'three']] as const
    await rejectsLike(() => cache.setMany(batch), RangeError, /too large/)
    const got = await cache.getMany([`${p}m1`, `${p}m2`, `${p}m3`], { encoding: 'utf8' })
    assert.equal([...got], [[`${p}m1`, 'one'], [`${p}m3`, 'three']])
  })

  s('arguments are checked in the same order, and batches refused alike', async (ctx) => {
    const cache = c(ctx) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    // the options, then a CAS token, then the value, and the key last (the Client checked
    // the key before the value, and a token before the options)
    await rejectsLike(() => cache.set!('', 42), TypeError, /^value must be a string, Buffer or Uint8Array, got number$/)
    await rejectsLike(() => cache.add!('a b', 42, { bogus: 1 }), TypeError, /^unknown option 'bogus' in options/)
    await rejectsLike(() => cache.cas!('k', 'v', -1, { bogus: 1 }), TypeError, /^unknown option 'bogus' in options/)
    await rejectsLike(() => cache.cas!('', 42, -1), RangeError, /^cas must be a non-negative safe integer/)
    await rejectsLike(() => cache.cas!('', 42, 1n), TypeError, /^value must be a string/)
    // a string is no list of keys (the Client read one key per character), a hole no key
    await rejectsLike(() => cache.getMany!('abc'), TypeError, /^keys must be an iterable of keys, not a string$/)
    await rejectsLike(() => cache.deleteMany!('abc'), TypeError, /^keys must be an iterable of keys, not a string$/)
    await rejectsLike(() => cache.setMany!('ab'), TypeError, /^entries must be an iterable of \[key, value\] pairs, not a string$/)
    await rejectsLike(() => cache.getMany!(Object.assign([], { 1: 'a' })), TypeError, /^keys\[0\] must be a string, got undefined$/)
    await rejectsLike(() => cache.deleteMany!(['a', , 'b']), TypeError, /^keys\[1\] must be a string, got undefined$/)
    // setMany: every value, then every key, named by its entry (the Cache said keys[1])
    await rejectsLike(() => cache.setMany!([['ok', 'v'], ['a b', 'v']]), TypeError, /^entries\[1\] key must not contain spaces/)
    await rejectsLike(() => cache.setMany!([['a b', 'v'], ['ok', 42]]), TypeError, /^value of 'ok' must be a string/)
    // each with a code: a key, a value to store, anything else (only keys had one)
    const codes: Array<[() => Promise<unknown>, string]> = [
      [() => cache.get!(''), 'FERROCACHE_BAD_KEY'],
      [() => cache.set!('k', 42), 'FERROCACHE_BAD_VALUE'],
      [() => cache.set!('k', 1n, { encoding: 'json' }), 'FERROCACHE_BAD_VALUE'],
      [() => cache.append!('k', {}), 'FERROCACHE_BAD_VALUE'],
      [() => cache.set!('k', 'v', { ttl: -1 }), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.set!('k', 'v', { bogus: 1 }), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.get!('k', { encoding: 'hex' }), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.incr!('k', -1), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.touch!('k', Number.NaN), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.getMany!(5), 'FERROCACHE_BAD_ARGUMENT'],
      [() => cache.flush!(-1), 'FERROCACHE_BAD_ARGUMENT'],
      // fetch's in-flight table named the key in a template first: a Symbol threw without a code
      [() => cache.fetch!(Symbol('k') as unknown as string, () => 'v'), 'FERROCACHE_BAD_KEY'],
    ]
    for (const [call, code] of codes) {
      const err = await call().then(() => undefined, (e: unknown) => e as Error & { code?: string })
      assert.is(err?.code, code, `${String(call).slice(6)}: ${err?.message}`)
    }
  })

  s('a view of a detached ArrayBuffer is refused as a bad value, and the next calls still answer', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    // transferred away (to a worker, by structuredClone): the view has no bytes left. The
    // Client threw V8's own TypeError (no code) while writing it, its request already
    // queued: after an append, the next reply went to the wrong call (out of step)
    const detached = () => {
      const ab = new ArrayBuffer(8)
      const view = new Uint8Array(ab, 2, 3)
      structuredClone(ab, { transfer: [ab] })
      return view
    }
    await cache.set(`${p}k`, 'v')
    const calls: Array<[string, () => Promise<unknown>, RegExp]> = [
      ['set', () => cache.set(`${p}k`, detached()), /^value is a view of a detached ArrayBuffer/],
      ['append', () => cache.append(`${p}k`, detached()), /^value is a view of a detached ArrayBuffer/],
      ['prepend', () => cache.prepend(`${p}k`, detached()), /^value is a view of a detached ArrayBuffer/],
      ['cas', () => cache.cas(`${p}k`, detached(), 1n), /^value is a view of a detached ArrayBuffer/],
      ['setMany', () => cache.setMany([[`${p}m`, 'x'], [`${p}k`, detached()]]), /^value of '.*k' is a view of a detached ArrayBuffer/],
    ]
    for (const [what, call, message] of calls) {
      const err = (await rejectsLike(call, TypeError, message)) as Error & { code?: string }
      assert.is(err.code, 'FERROCACHE_BAD_VALUE', what)
      assert.equal(await cache.get(`${p}k`, { encoding: 'utf8' }), 'v', `after ${what}`)
      assert.is(await cache.has(`${p}m`), false, `after ${what}`)
    }
    // an empty view of a live buffer is an empty value, as before
    assert.is(await cache.set(`${p}e`, new Uint8Array(new ArrayBuffer(8), 8, 0)), true)
    assert.equal(await cache.get(`${p}e`), Buffer.alloc(0))
  })

  s('gets and cas: flags kept, stale or missing token refused', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    await cache.set(`${p}k`, 'one', { flags: 0xffffffff })
    const e = (await cache.gets(`${p}k`, { encoding: 'utf8' }))!
    assert.is(e.value, 'one')
    assert.is(e.flags, 0xffffffff)
    assert.is(typeof e.cas, 'bigint')
    assert.is(await cache.cas(`${p}k`, 'two', e.cas, { flags: 5 }), true)
    assert.is(await cache.cas(`${p}k`, 'three', e.cas), false, 'the token changed')
    const e2 = (await cache.gets(`${p}k`))!
    assert.equal(e2.value, Buffer.from('two'))
    assert.is(e2.flags, 5)
    assert.ok(e2.cas !== e.cas)
    assert.is(await cache.cas(`${p}gone`, 'x', e2.cas), false)
    assert.is(await cache.gets(`${p}gone`), undefined)
  })

  s('add, replace, append, prepend', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    assert.is(await cache.add(`${p}a`, 'first'), true)
    assert.is(await cache.add(`${p}a`, 'second'), false)
    assert.is(await cache.replace(`${p}r`, 'x'), false)
    assert.is(await cache.get(`${p}r`), undefined)
    assert.is(await cache.replace(`${p}a`, 'mid'), true)
    assert.is(await cache.append(`${p}a`, Buffer.from('>')), true)
    assert.is(await cache.prepend(`${p}a`, '<'), true)
    assert.is(await cache.get(`${p}a`, { encoding: 'utf8' }), '<mid>')
    assert.is(await cache.append(`${p}none`, 'x'), false)
    assert.is(await cache.prepend(`${p}none`, 'x'), false)
  })

  s('incr/decr: default delta 1, wrap at 2^64, floor at 0, miss, non-numeric', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    await cache.set(`${p}n`, '10')
    assert.is(await cache.incr(`${p}n`), 11n)
    assert.is(await cache.incr(`${p}n`, 5), 16n)
    assert.is(await cache.decr(`${p}n`, 100n), 0n)
    assert.is(await cache.decr(`${p}n`), 0n)
    await cache.set(`${p}max`, '18446744073709551615')
    assert.is(await cache.incr(`${p}max`, 2), 1n)
    assert.is(await cache.incr(`${p}missing`), undefined)
    assert.is(await cache.decr(`${p}missing`), undefined)
    await cache.set(`${p}text`, 'abc')
    const err = await rejectsLike(() => cache.incr(`${p}text`), TypeError, /non-numeric/)
    assert.is((err as Error & { code: string }).code, 'FERROCACHE_NON_NUMERIC')
    await rejectsLike(() => cache.incr(`${p}n`, -1), RangeError, /delta/)
  })

  s('delete, deleteMany, has, getMany, setMany', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    const keys = Array.from({ length: 50 }, (_, i) => `${p}k${i}`)
    await cache.setMany(keys.map((k) => [k, k] as const), { flags: 3 })
    assert.is(await cache.has(keys[7]!), true)
    assert.is(await cache.has(`${p}nope`), false)
    const got = await cache.getMany([...keys, `${p}nope`], { encoding: 'utf8' })
    assert.is(got.size, 50)
    assert.equal([...got.keys()], keys, 'hits in the order asked')
    assert.is(got.get(keys[42]!), keys[42])
    assert.is((await cache.gets(keys[0]!))!.flags, 3)
    assert.is(await cache.delete(keys[0]!), true)
    assert.is(await cache.delete(keys[0]!), false)
    assert.is(await cache.deleteMany([keys[0]!, keys[1]!, keys[2]!, `${p}nope`]), 2)
    assert.is((await cache.getMany(keys)).size, 47)
    assert.is((await cache.getMany([])).size, 0)
  })

  s('ttl: items expire, touch and gat extend, ttl 0 never expires', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    // whole-second clocks: a 1 s ttl can end at the next tick, milliseconds after the set,
    // so the items touched next get 2 s (at least 1 s left); all end by 2 s after the set
    await cache.set(`${p}short`, 'x', { ttl: 1000 })
    await cache.set(`${p}touched`, 'y', { ttl: 2000 })
    await cache.set(`${p}gat`, 'z', { ttl: 2000 })
    await cache.set(`${p}forever`, 'f', { ttl: 0 })
    assert.is(await cache.touch(`${p}touched`, 60_000), true)
    if (served('gat')) {
      assert.is(await cache.gat(`${p}gat`, 60_000, { encoding: 'utf8' }), 'z')
    } else {
      await rejectsNotForwarded(() => cache.gat(`${p}gat`, 60_000), 'gat')
      assert.is(await cache.touch(`${p}gat`, 60_000), true)
    }
    assert.is(await cache.touch(`${p}missing`, 1000), false)
    if (served('gat')) assert.is(await cache.gat(`${p}missing`, 1000), undefined)
    await sleep(2_100)
    assert.is(await cache.get(`${p}short`), undefined)
    assert.is(await cache.get(`${p}touched`, { encoding: 'utf8' }), 'y')
    assert.is(await cache.get(`${p}gat`, { encoding: 'utf8' }), 'z')
    assert.is(await cache.get(`${p}forever`, { encoding: 'utf8' }), 'f')
  })

  s('bad arguments reject with the same classes and messages', async (ctx) => {
    const cache = c(ctx)
    await rejectsLike(() => cache.get(''), TypeError, /^key must not be empty$/)
    await rejectsLike(() => cache.set('x'.repeat(251), 'v'), TypeError, /key is 251 bytes long; memcached keys are at most 250 bytes/)
    await rejectsLike(() => cache.set('é'.repeat(126), 'v'), TypeError, /key is 252 bytes long/)
    await rejectsLike(() => cache.set('a b', 'v'), TypeError, /key must not contain spaces or control characters \(byte 0x20 at offset 1\)/)
    await rejectsLike(() => cache.get('a\r\nflush_all'), TypeError, /byte 0x0d/)
    await rejectsLike(() => cache.get(42 as unknown as string), TypeError, /key must be a string, got number/)
    await rejectsLike(() => cache.getMany(['ok', 'bad key']), TypeError, /^keys\[1\] must not contain spaces/)
    await rejectsLike(() => cache.set('k', 'v', { ttl: -1 }), RangeError, /ttl/)
    await rejectsLike(() => cache.set('k', 'v', { flags: 2 ** 32 }), RangeError, /flags/)
    await rejectsLike(() => cache.set('k', 42 as unknown as string), TypeError, /value must be a string, Buffer or Uint8Array/)
    await rejectsLike(() => cache.get('k', { encoding: 'hex' as 'utf8' }), TypeError, /encoding/)
    await rejectsLike(() => cache.cas('k', 'v', -1), RangeError, /cas/)
    // touch/gat take the ttl as a required argument: leaving it out is not "never expires"
    await cache.set('untouched', 'v', { ttl: 60_000 })
    const noTtl = undefined as unknown as number
    await rejectsLike(() => cache.touch('untouched', noTtl), TypeError, /^ttl must be a number of milliseconds, got undefined \(the ttl goes second, options third: touch\(key, ttl, options\)\)$/)
    await rejectsLike(() => cache.gat('untouched', noTtl), TypeError, /^ttl must be a number of milliseconds, got undefined \(the ttl goes second, options third: gat\(key, ttl, options\)\)$/)
    await rejectsLike(() => cache.touch('untouched', '5' as unknown as number), TypeError, /got string/)
  })

  s('stats count what this test did (memcached names)', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    if (!served('stats')) return rejectsNotForwarded(() => cache.stats(), 'stats')
    const before = await cache.stats()
    for (let i = 0; i < 20; i++) await cache.set(`${p}${i}`, 'v')
    for (let i = 0; i < 30; i++) await cache.get(`${p}${i}`)
    const after = await cache.stats()
    assert.is(after.cmd_set - before.cmd_set, 20)
    assert.is(after.get_hits - before.get_hits, 20)
    assert.is(after.get_misses - before.get_misses, 10)
    assert.ok(after.curr_items >= 20)
    assert.ok(after.slabs.length >= 1 && after.slabs.every((sl) => sl.chunk_size > 0))
    // the crawler and page-mover figures of `stats`, as memcached names them
    for (const f of ['crawler_items_checked', 'lru_crawler_starts', 'slab_reassign_rescues', 'slab_reassign_evictions_nomem'] as const) {
      assert.type(after[f], 'number', f)
    }
    assert.ok(after.slabs.every((sl) => typeof sl.crawler_items_checked === 'number'))
  })

  s('flush invalidates every key', async (ctx) => {
    const cache = c(ctx)
    const p = fresh()
    for (let i = 0; i < 30; i++) await cache.set(`${p}${i}`, 'v')
    if (!served('flush')) {
      await rejectsNotForwarded(() => cache.flush(), 'flush')
      assert.is((await cache.getMany(Array.from({ length: 30 }, (_, i) => `${p}${i}`))).size, 30, 'nothing was flushed')
      return
    }
    await cache.flush()
    assert.is((await cache.getMany(Array.from({ length: 30 }, (_, i) => `${p}${i}`))).size, 0)
  })

  // The last test: it closes the suite's own subject (starting another one cost a second).
  s('after close, calls reject with FERROCACHE_CLOSED', async (ctx) => {
    const own = ctx.subject!
    ctx.subject = undefined
    await own.cache.set('k', 'v')
    await own.close()
    const err = await rejectsLike(() => own.cache.get('k'), Error, /closed/)
    assert.is((err as Error & { code: string }).code, 'FERROCACHE_CLOSED')
    // whatever the key: the Cache's engine refuses every call once closed, and the Client
    // checked the key first (FERROCACHE_BAD_KEY for a bad one, the Cache FERROCACHE_CLOSED)
    const cache = own.cache
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['get', () => cache.get('')],
      ['gets', () => cache.gets('a b')],
      ['getMany', () => cache.getMany(['ok', ''])],
      ['set', () => cache.set('', 'v')],
      ['setMany', () => cache.setMany([['', 'v']])],
      ['add', () => cache.add('', 'v')],
      ['replace', () => cache.replace('', 'v')],
      ['append', () => cache.append('', 'v')],
      ['prepend', () => cache.prepend('', 'v')],
      ['cas', () => cache.cas('', 'v', 1n)],
      ['incr', () => cache.incr('')],
      ['decr', () => cache.decr('')],
      ['touch', () => cache.touch('', 0)],
      ['delete', () => cache.delete('')],
      ['deleteMany', () => cache.deleteMany([''])],
      ['has', () => cache.has('x'.repeat(251))],
    ]
    if (served('gat')) calls.push(['gat', () => cache.gat('', 0)])
    for (const [what, call] of calls) {
      const e = await call().then(() => undefined, (x: unknown) => x as Error & { code?: string })
      assert.is(e?.code, 'FERROCACHE_CLOSED', `${what}: ${e?.message}`)
    }
  })

  s.run()
}
