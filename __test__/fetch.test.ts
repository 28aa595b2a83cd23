// fetch(key, loader, options): read-through with one loader call per missing key, on the
// embedded Cache and on Client (over an in-process ferrocached on a free port).
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, createServer, type CacheLike, type Encoding } from '../src'

interface Subject<E extends Encoding> {
  cache: CacheLike<E>
  close(): Promise<void>
}

type Factory = <E extends Encoding = 'buffer'>(encoding?: E) => Promise<Subject<E>>

const embedded: Factory = async <E extends Encoding = 'buffer'>(encoding?: E) => {
  const cache = new Cache<E>(encoding === undefined ? {} : { encoding })
  return { cache, close: async () => cache.close() }
}

const remote: Factory = async <E extends Encoding = 'buffer'>(encoding?: E) => {
  const server = createServer({ port: 0, host: '127.0.0.1' })
  const { port } = await server.listen()
  const cache = new Client<E>({ servers: [`127.0.0.1:${port}`], ...(encoding === undefined ? {} : { encoding }) })
  return {
    cache,
    close: async () => {
      await cache.close()
      await server.close()
    },
  }
}

/** A promise with its resolve/reject, to hold a loader open while callers pile up. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void
  let reject!: (e: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Waits (at most 2 s) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met within 2 s')
    await new Promise((r) => setTimeout(r, 2))
  }
}

for (const [name, make] of [['Cache', embedded], ['Client', remote]] as const) {
  const t = suite(`fetch on ${name}`)

  t('a hit returns the stored value without calling the loader', async () => {
    const s = await make('utf8')
    try {
      await s.cache.set('k', 'stored')
      let calls = 0
      const v = await s.cache.fetch('k', () => {
        calls++
        return 'loaded'
      })
      assert.is(v, 'stored')
      assert.is(calls, 0)
    } finally {
      await s.close()
    }
  })

  t('bad write options are refused before the loader runs (no wasted load)', async () => {
    const s = await make('utf8')
    try {
      let calls = 0
      const loader = (): string => {
        calls++
        return 'loaded'
      }
      await s.cache.fetch('k', loader, { ttl: -1 }).then(
        () => assert.unreachable('a negative ttl was taken'),
        (e: Error) => assert.instance(e, RangeError),
      )
      await s.cache.fetch('k', loader, { flags: 2 ** 32 } as never).then(
        () => assert.unreachable('flags over 32 bits were taken'),
        (e: Error) => assert.instance(e, RangeError),
      )
      await s.cache.fetch('k', loader, { ttl: 1000, bogus: true } as never).then(
        () => assert.unreachable('an unknown option was taken'),
        (e: Error) => assert.instance(e, TypeError),
      )
      // the known options named include fetch's own (a misspelt timeout was told 'known:
      // ttl, flags, encoding, signal', as if fetch had no timeout)
      await s.cache.fetch('k', loader, { timout: 50 } as never).then(
        () => assert.unreachable('an unknown option was taken'),
        (e: Error) => assert.match(e.message, /^unknown option 'timout' in options \(known: ttl, flags, encoding, signal, timeout\)$/),
      )
      assert.is(calls, 0)
      assert.is(await s.cache.fetch('k', loader, { ttl: 60_000 }), 'loaded')
      assert.is(calls, 1)
    } finally {
      await s.close()
    }
  })

  t('concurrent misses of one key call the loader once and all get its value', async () => {
    const s = await make('utf8')
    try {
      const gate = deferred<string>()
      const calls: string[] = []
      const loader = (key: string): Promise<string> => {
        calls.push(key)
        return gate.promise
      }
      const early = Array.from({ length: 50 }, () => s.cache.fetch('user:1', loader, { ttl: 60_000 }))
      // Callers that arrive once the loader is running join it too.
      await until(() => calls.length > 0)
      const late = Array.from({ length: 10 }, () => s.cache.fetch('user:1', loader))
      gate.resolve('alice')
      const values = await Promise.all([...early, ...late])
      assert.is(calls.length, 1)
      assert.equal(calls, ['user:1'])
      assert.ok(values.every((v) => v === 'alice'))
      assert.is(await s.cache.get('user:1'), 'alice')
      // Once stored, the next fetch is a plain hit.
      assert.is(await s.cache.fetch('user:1', () => 'other'), 'alice')
      assert.is(calls.length, 1)
    } finally {
      await s.close()
    }
  })

  t('different keys load independently, each once', async () => {
    const s = await make('json')
    try {
      const counts = new Map<string, number>()
      const loader = async (key: string) => {
        counts.set(key, (counts.get(key) ?? 0) + 1)
        await tick()
        return { key }
      }
      const keys = ['a', 'b', 'c', 'a', 'b', 'c', 'a']
      const values = await Promise.all(keys.map((k) => s.cache.fetch(k, loader)))
      assert.equal(values, keys.map((key) => ({ key })))
      assert.equal([...counts.entries()].sort(), [['a', 1], ['b', 1], ['c', 1]])
      assert.equal(await s.cache.get('b'), { key: 'b' })
    } finally {
      await s.close()
    }
  })

  t('a loader error rejects every waiter and stores nothing; the next fetch retries', async () => {
    const s = await make('utf8')
    try {
      const gate = deferred<string>()
      let calls = 0
      const failing = () => {
        calls++
        return gate.promise
      }
      const waiters = Array.from({ length: 20 }, () => s.cache.fetch('k', failing).then(() => 'resolved', (e: Error) => e.message))
      await until(() => calls > 0)
      gate.reject(new Error('backend down'))
      const outcomes = await Promise.all(waiters)
      assert.is(calls, 1)
      assert.ok(outcomes.every((o) => o === 'backend down'), outcomes.join(','))
      assert.is(await s.cache.has('k'), false)
      // A synchronous throw is a rejection too.
      await s.cache.fetch('k', () => {
        throw new RangeError('sync')
      }).then(
        () => assert.unreachable('should reject'),
        (e: Error) => assert.instance(e, RangeError),
      )
      // Errors are not cached: the next fetch calls the loader again.
      assert.is(await s.cache.fetch('k', () => 'ok'), 'ok')
      assert.is(await s.cache.get('k'), 'ok')
    } finally {
      await s.close()
    }
  })

  t('a loader resolving undefined is an error and stores nothing', async () => {
    const s = await make()
    try {
      await s.cache.fetch('k', async () => undefined as unknown as string).then(
        () => assert.unreachable('should reject'),
        (e: Error) => {
          assert.instance(e, TypeError)
          assert.match(e.message, 'undefined')
        },
      )
      assert.is(await s.cache.has('k'), false)
    } finally {
      await s.close()
    }
  })

  t('the result comes back as get would return it (encoding per cache or per call)', async () => {
    const s = await make()
    try {
      const b = await s.cache.fetch('k1', () => 'text')
      assert.ok(Buffer.isBuffer(b))
      assert.is(b.toString(), 'text')
      const u = await s.cache.fetch('k2', () => Buffer.from('bytes'), { encoding: 'utf8' })
      assert.is(u, 'bytes')
      assert.is(await s.cache.get('k2', { encoding: 'utf8' }), 'bytes')
      await s.cache.fetch('bad key', () => 'x').then(
        () => assert.unreachable('a key with a space must be refused'),
        (e: Error) => assert.instance(e, Error),
      )
    } finally {
      await s.close()
    }
  })

  t('the ttl applies to the stored value', async () => {
    const s = await make('utf8')
    try {
      // memcached's clock counts whole seconds: a 2 s ttl lives between 1 and 2 s (a 1 s
      // ttl set just before a tick could end before the next line reads it)
      assert.is(await s.cache.fetch('short', () => 'v', { ttl: 2000 }), 'v')
      const storedAt = Date.now()
      assert.is(await s.cache.fetch('long', () => 'v'), 'v')
      assert.is(await s.cache.get('short'), 'v')
      await new Promise((r) => setTimeout(r, 2_100 - (Date.now() - storedAt)))
      assert.is(await s.cache.get('short'), undefined)
      assert.is(await s.cache.get('long'), 'v')
      let calls = 0
      assert.is(
        await s.cache.fetch('short', () => {
          calls++
          return 'reloaded'
        }),
        'reloaded',
      )
      assert.is(calls, 1)
    } finally {
      await s.close()
    }
  })

  t.run()
}
