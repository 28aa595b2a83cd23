// `signal` in the options of every call (CallOptions, the last argument of each), on the Client
// against ferrocached and memcached 1.6.18 in each dialect, and on the embedded Cache: an
// aborted signal rejects before anything is sent, an abort while the reply is awaited
// rejects at once while the reply is still read (later calls get their own replies), and
// one long-lived signal holds no listener once its calls settled.
import { getEventListeners } from 'node:events'
import { readFileSync } from 'node:fs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, type ClientOptions } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { sleep, startAll, startFerrocached, startMemcached, waitFor, within, type Running } from './helpers/servers'

type Protocol = NonNullable<ClientOptions['protocol']>
const PROTOCOLS: Protocol[] = ['meta', 'text', 'binary']

let ferrocached: Running
let memcached: Running

setUp(test, async () => {
  ;[ferrocached, memcached] = await startAll([() => startFerrocached(), () => startMemcached()])
})

tearDown(test, async () => {
  await Promise.all([ferrocached.stop(), memcached.stop()])
})

/** Each server in each dialect, a fresh client for `body`. */
async function eachClient(body: (c: Client<'utf8'>, name: string, server: Running) => Promise<void>): Promise<void> {
  for (const server of [ferrocached, memcached]) {
    for (const protocol of PROTOCOLS) {
      const name = `${server === memcached ? 'memcached' : 'ferrocached'} ${protocol}`
      const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, encoding: 'utf8', timeout: 5_000 })
      try {
        await body(c, name, server)
      } finally {
        await c.close()
      }
    }
  }
}

/** The process is stopped (SIGSTOP delivered: state `T` in /proc). */
function isStopped(pid: number | undefined): boolean {
  try {
    return / T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ''))
  } catch {
    return false
  }
}

/** Resolves with what `p` rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error(`${what}: resolved, expected a rejection`)
}

function assertAbortError(err: unknown, reason: unknown, what: string): void {
  assert.instance(err, DOMException, what)
  assert.is((err as DOMException).name, 'AbortError', what)
  assert.is((err as Error).cause, reason, `${what}: cause`)
}

/** Every call of the shared interface (fetch aside: its signal rejects with the reason),
 * with `signal`. */
function callsWith(c: Client<'utf8'> | Cache<'utf8'>, signal: AbortSignal): Array<[string, () => Promise<unknown>]> {
  return [
    ...laterCalls(c, signal),
    ['get', () => c.get('sig:k', { signal })],
    ['gets', () => c.gets('sig:k', { signal })],
    ['getMany', () => c.getMany(['sig:k', 'sig:j'], { signal })],
    ['gat', () => c.gat('sig:k', 60_000, { signal })],
    ['set', () => c.set('sig:new', 'x', { signal })],
    ['setMany', () => c.setMany([['sig:new', 'x']], { signal })],
    ['add', () => c.add('sig:new', 'x', { signal })],
    ['replace', () => c.replace('sig:k', 'x', { signal })],
    ['cas', () => c.cas('sig:k', 'x', 1n, { signal })],
    ['flush', () => c.flush(undefined, { signal })],
  ]
}

/** The calls that took no options before `signal` came to all (flush aside: it empties the
 * cache), each on a key of its own (sig:n holds a number). */
function laterCalls(c: Client<'utf8'> | Cache<'utf8'>, signal: AbortSignal): Array<[string, () => Promise<unknown>]> {
  return [
    ['incr', () => c.incr('sig:n', 2, { signal })],
    ['decr', () => c.decr('sig:n', undefined, { signal })],
    ['touch', () => c.touch('sig:t', 60_000, { signal })],
    ['append', () => c.append('sig:a', '+', { signal })],
    ['prepend', () => c.prepend('sig:a', '-', { signal })],
    ['delete', () => c.delete('sig:d', { signal })],
    ['deleteMany', () => c.deleteMany(['sig:m', 'sig:m2'], { signal })],
    ['has', () => c.has('sig:t', { signal })],
    ['stats', () => c.stats({ signal })],
  ]
}

const COUNTERS = [
  'cmd_get', 'cmd_set', 'cmd_touch', 'cmd_flush', 'curr_items', 'delete_hits', 'delete_misses', 'incr_hits',
  'incr_misses', 'decr_hits', 'decr_misses', 'touch_hits', 'touch_misses',
] as const

/** The keys laterCalls works on. */
async function seed(c: Client<'utf8'> | Cache<'utf8'>): Promise<void> {
  for (const k of ['sig:k', 'sig:t', 'sig:a', 'sig:d', 'sig:m']) await c.set(k, 'v')
  await c.set('sig:n', '5')
}

test('an aborted signal rejects with an AbortError and sends nothing', async () => {
  const reason = new Error('given up')
  await eachClient(async (c, name) => {
    await seed(c)
    const before = await c.stats()
    for (const [method, call] of callsWith(c, AbortSignal.abort(reason))) {
      assertAbortError(await rejection(call(), `${name} ${method}`), reason, `${name} ${method}`)
    }
    const after = await c.stats()
    for (const counter of COUNTERS) assert.is(after[counter], before[counter], `${name}: ${counter}`)
    assert.is(await c.get('sig:k'), 'v', name)
    assert.equal([...(await c.getMany(['sig:n', 'sig:a', 'sig:d', 'sig:m'])).values()], ['5', 'v', 'v', 'v'], name)
  })
})

// The request stays in the connection's reply order: its reply is read and dropped, so the
// delete and the get behind it get their own (a get's VALUE taken for the delete's reply
// would fail it as out of step, or resolve the get with the value).
test('an abort before the reply rejects at once; later calls on the key get their own replies', async () => {
  await eachClient(async (c, name) => {
    await seed(c)
    const reason = new Error('same tick')
    const ac = new AbortController()
    const read = c.get('sig:k', { signal: ac.signal })
    const write = c.set('sig:k', 'w', { signal: ac.signal })
    const batch = c.getMany(['sig:k', 'sig:other'], { signal: ac.signal })
    const later = laterCalls(c, ac.signal).map(([what, call]) => [what, call()] as const)
    ac.abort(reason)
    const del = c.delete('sig:k')
    const after = c.get('sig:k')
    // each key's next call, behind the aborted ones: the writes were sent, not taken back
    const own = [c.get('sig:n'), c.get('sig:a'), c.has('sig:d'), c.has('sig:m'), c.incr('sig:n', 10)]
    for (const [what, p] of [['get', read], ['set', write], ['getMany', batch], ...later] as const) {
      assertAbortError(await rejection(p, `${name} ${what}`), reason, `${name} ${what}`)
    }
    assert.is(await del, true, `${name}: the delete's own reply`)
    assert.is(await after, undefined, `${name}: the get's own reply`)
    assert.equal(await Promise.all(own), ['6', '-v+', false, false, 16n], `${name}: the calls behind the aborted ones`)
    // flush: rejects at once, the flush itself still happens
    await c.set('sig:k', 'v')
    const flushAc = new AbortController()
    const flush = c.flush(undefined, { signal: flushAc.signal })
    flushAc.abort(reason)
    const gone = c.get('sig:k')
    assertAbortError(await rejection(flush, `${name} flush`), reason, `${name} flush`)
    assert.is(await gone, undefined, `${name}: the get after the aborted flush`)
  })
})

test('an abort while the server does not answer (SIGSTOP) rejects at once; the reply is dropped when it comes', async () => {
  for (const server of [ferrocached, memcached]) {
    const name = server === memcached ? 'memcached' : 'ferrocached'
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], encoding: 'utf8', timeout: 5_000 })
    let stopped = false
    try {
      await seed(c)
      server.child.kill('SIGSTOP')
      stopped = true
      assert.ok(await waitFor(() => isStopped(server.child.pid), 2_000), `${name}: not stopped`)
      const ac = new AbortController()
      const read = c.get('sig:k', { signal: ac.signal })
      const later = laterCalls(c, ac.signal).map(([what, call]) => [what, call()] as const)
      await sleep(30)
      ac.abort()
      // the server is stopped: rejecting at all is not waiting for the reply
      for (const [what, p] of [['get', read], ...later] as const) {
        const err = await within(rejection(p, `${name} ${what}`), 1_000, `${name}: the aborted ${what}`)
        assert.is((err as DOMException).name, 'AbortError', `${name} ${what}`)
        assert.instance((err as Error).cause, DOMException, `${name} ${what}: the default reason`)
      }
      const del = c.delete('sig:k')
      const after = c.get('sig:k')
      server.child.kill('SIGCONT')
      stopped = false
      assert.is(await within(del, 3_000, `${name}: delete`), true, name)
      assert.is(await within(after, 3_000, `${name}: get`), undefined, name)
    } finally {
      if (stopped) server.child.kill('SIGCONT')
      await c.close()
    }
  }
})

test('one long-lived signal: one listener while calls wait, none once they settled', async () => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => void warnings.push(w.name)
  process.on('warning', onWarning)
  try {
    await eachClient(async (c, name) => {
      const ac = new AbortController()
      const { signal } = ac
      for (let round = 0; round < 5; round++) {
        const calls = Array.from({ length: 100 }, (_, i) =>
          i % 3 === 0 ? c.set(`sig:${i}`, 'v', { signal }) : i % 3 === 1 ? c.get(`sig:${i}`, { signal }) : c.getMany([`sig:${i}`, 'sig:k'], { signal }),
        )
        assert.ok(getEventListeners(signal, 'abort').length <= 1, `${name}: listeners while ${calls.length} calls wait`)
        await Promise.all(calls)
        assert.is(getEventListeners(signal, 'abort').length, 0, `${name}: listeners after round ${round}`)
      }
    })
    await sleep(0)
    assert.equal(warnings, [])
  } finally {
    process.off('warning', onWarning)
  }
})

test('the embedded Cache takes the same option: an aborted signal rejects (…Sync: throws) before the call runs', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  try {
    cache.setSync('sig:k', 'v')
    const reason = new Error('given up')
    await seed(cache)
    const before = cache.statsSync()
    for (const [method, call] of callsWith(cache, AbortSignal.abort(reason))) {
      assertAbortError(await rejection(call(), method), reason, method)
    }
    const aborted = AbortSignal.abort(reason)
    const syncCalls: Array<[string, () => unknown]> = [
      ['getSync', () => cache.getSync('sig:k', { signal: aborted })],
      ['incrSync', () => cache.incrSync('sig:n', 1, { signal: aborted })],
      ['decrSync', () => cache.decrSync('sig:n', 1, { signal: aborted })],
      ['touchSync', () => cache.touchSync('sig:t', 1000, { signal: aborted })],
      ['appendSync', () => cache.appendSync('sig:a', '+', { signal: aborted })],
      ['prependSync', () => cache.prependSync('sig:a', '-', { signal: aborted })],
      ['deleteSync', () => cache.deleteSync('sig:d', { signal: aborted })],
      ['deleteManySync', () => cache.deleteManySync(['sig:m'], { signal: aborted })],
      ['hasSync', () => cache.hasSync('sig:t', { signal: aborted })],
      ['flushSync', () => cache.flushSync(undefined, { signal: aborted })],
      ['statsSync', () => cache.statsSync({ signal: aborted })],
    ]
    for (const [method, call] of syncCalls) {
      assert.throws(call, (e: unknown) => e instanceof DOMException && e.name === 'AbortError', method)
    }
    const after = cache.statsSync()
    for (const counter of COUNTERS) assert.is(after[counter], before[counter], counter)
    assert.is(cache.getSync('sig:new'), undefined)
    assert.is(cache.getSync('sig:k'), 'v')
    assert.equal([...cache.getManySync(['sig:n', 'sig:a', 'sig:d', 'sig:m']).values()], ['5', 'v', 'v', 'v'])
    const live = new AbortController().signal
    assert.is(await cache.set('sig:k', 'w', { signal: live, ttl: 60_000 }), true)
    assert.is(await cache.get('sig:k', { signal: live }), 'w')
    assert.is(await cache.incr('sig:n', 2, { signal: live }), 7n)
    assert.is(await cache.touch('sig:t', 60_000, { signal: live }), true)
    assert.is(await cache.delete('sig:d', { signal: live }), true)
    assert.is((await cache.stats({ signal: live })).delete_hits, before.delete_hits + 1)
  } finally {
    cache.close()
  }
})

test('a signal that is not an AbortSignal is a TypeError naming it, on both', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  const client = new Client({ servers: [`127.0.0.1:${ferrocached.port}`], encoding: 'utf8' })
  const live = new AbortController().signal
  try {
    for (const c of [cache, client]) {
      for (const [method, call] of callsWith(c, 'soon' as unknown as AbortSignal)) {
        const err = await rejection(call(), method)
        assert.instance(err, TypeError, method)
        assert.is((err as Error).message, 'options.signal must be an AbortSignal, got string', method)
        assert.is((err as { code?: string }).code, 'FERROCACHE_BAD_ARGUMENT', method)
      }
      // the options are checked first, as a write's are: before the delta and the key
      const err = await rejection(c.incr('', -1, { signal: 1 as unknown as AbortSignal }), 'incr')
      assert.is((err as Error).message, 'options.signal must be an AbortSignal, got number')
      // options in the optional positional's place: said so
      const delta = await rejection(c.incr('k', { signal: live } as never), 'incr')
      assert.match((delta as Error).message, /^delta must be a bigint or a number, got object \(options go third: incr\(key, undefined, options\)\)$/)
      const delay = await rejection(c.flush({ signal: live } as never), 'flush')
      assert.match((delay as Error).message, /^delay must be a number of milliseconds, got object \(options go second: flush\(undefined, options\)\)$/)
      const unknown = await rejection(c.delete('k', { ttl: 1 } as never), 'delete')
      assert.is((unknown as Error).message, "unknown option 'ttl' in options (known: signal)")
    }
  } finally {
    cache.close()
    await client.close()
  }
})

test.run()
