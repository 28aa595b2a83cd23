// The npm clients people use, against ferrocached: memjs (binary protocol) and memcached
// (text protocol). Each scenario runs against memcached 1.6.18 too; results must match.
import Memcached from 'memcached'
import memjs from 'memjs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startFerrocached, startMemcached, type Running } from './helpers/servers'

async function onBoth<T>(scenario: (port: number) => Promise<T>): Promise<[T, T]> {
  const run = async (start: () => Promise<Running>): Promise<T> => {
    const server = await start()
    try {
      return await scenario(server.port)
    } finally {
      await server.stop()
    }
  }
  return [await run(startFerrocached), await run(startMemcached)]
}

/** A promise's value, or its error message: errors are results to compare too. */
function outcome<T>(p: Promise<T>): Promise<T | string> {
  return p.then(
    (v) => v,
    (e: Error) => `error: ${e.message}`,
  )
}

async function memjsScenario(port: number): Promise<Record<string, unknown>> {
  const client = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0, timeout: 5, conntimeout: 5, logger: { log: () => {} } })
  const str = (b: Buffer | null) => (b === null ? null : b.toString())
  const r: Record<string, unknown> = {}
  try {
    r.set = await client.set('k', 'hello', { expires: 100 })
    const got = await client.get('k')
    r.get = [str(got.value), got.flags?.toString('hex')]
    r.miss = str((await client.get('missing')).value)
    r.add = [await outcome(client.add('k', 'x')), await client.add('k2', 'x')]
    r.replace = [await client.replace('k2', 'y'), await outcome(client.replace('none', 'y'))]
    r.append = [await client.append('k2', '>'), await client.prepend('k2', '<'), str((await client.get('k2')).value)]
    r.appendMissing = await outcome(client.append('none', 'z'))
    r.incr = [await client.increment('n', 5, { initial: 10 }), await client.increment('n', 5, {}), await client.decrement('n', 100, {})]
    r.incrNoInitial = await outcome(client.increment('none2', 1, {}))
    await client.set('t', 'text')
    r.incrText = await outcome(client.increment('t', 1, {}))
    r.touch = [await client.touch('k', 10), await outcome(client.touch('none', 10))]
    r.delete = [await client.delete('k'), await outcome(client.delete('k'))]
    const big = Buffer.alloc(900_000, 7)
    r.big = [await client.set('big', big), (await client.get('big')).value?.equals(big)]
    r.tooBig = await outcome(client.set('huge', Buffer.alloc(2_000_000)))
    r.afterError = str((await client.get('k2')).value)
    r.binaryKey = [await client.set('kéy', Buffer.from([0, 1, 2, 255])), (await client.get('kéy')).value?.toString('hex')]
    const stats = await new Promise<Record<string, string> | null>((resolve) =>
      client.stats((err, _server, s) => resolve(err ? null : s)),
    )
    r.stats = ['curr_items', 'get_hits', 'cmd_set', 'version', 'curr_connections'].map((k) => stats !== null && k in stats)
    r.flush = Object.values(await client.flush())
    r.afterFlush = str((await client.get('k2')).value)
  } finally {
    client.close()
  }
  return r
}

test('memjs: every operation it offers, same results as against memcached', async () => {
  const [actual, expected] = await onBoth(memjsScenario)
  assert.is(actual.set, true)
  assert.equal(actual.get, ['hello', '00000000'])
  assert.equal(actual.big, [true, true])
  assert.equal(actual, expected)
})

function call<T>(fn: (cb: (err: unknown, value: T) => void) => void): Promise<T | string> {
  return new Promise((resolve) => fn((err, value) => resolve(err ? `error: ${String((err as Error).message ?? err)}` : value)))
}

async function memcachedScenario(port: number): Promise<Record<string, unknown>> {
  const mc = new Memcached(`127.0.0.1:${port}`, { retries: 0, timeout: 5000, idle: 1000 })
  const r: Record<string, unknown> = {}
  try {
    r.set = await call<boolean>((cb) => mc.set('k', 'hello', 100, cb))
    r.get = await call((cb) => mc.get('k', cb))
    r.miss = await call((cb) => mc.get('missing', cb))
    r.obj = [await call<boolean>((cb) => mc.set('o', { a: [1, 2] }, 0, cb)), await call((cb) => mc.get('o', cb))]
    r.num = [await call<boolean>((cb) => mc.set('n', 5, 0, cb)), await call((cb) => mc.incr('n', 10, cb)), await call((cb) => mc.decr('n', 100, cb)), await call((cb) => mc.incr('none', 1, cb))]
    r.add = [await call((cb) => mc.add('k', 'x', 0, cb)), await call((cb) => mc.add('k2', 'x', 0, cb))]
    r.replace = [await call((cb) => mc.replace('k2', 'y', 0, cb)), await call((cb) => mc.replace('none', 'y', 0, cb))]
    r.append = [await call((cb) => mc.append('k2', '>', cb)), await call((cb) => mc.prepend('k2', '<', cb)), await call((cb) => mc.get('k2', cb))]
    const gets = (await call<{ cas: string; k2: string }>((cb) => mc.gets('k2', cb))) as { cas: string; k2: string }
    r.gets = gets.k2
    r.cas = [await call((cb) => mc.cas('k2', 'new', gets.cas, 0, cb)), await call((cb) => mc.cas('k2', 'newer', gets.cas, 0, cb))]
    r.multi = await call((cb) => mc.getMulti(['k', 'k2', 'none'], cb))
    r.touch = [await call((cb) => mc.touch('k', 10, cb))]
    r.del = [await call((cb) => mc.del('k', cb)), await call((cb) => mc.del('k', cb))]
    r.big = await call((cb) => mc.set('big', 'b'.repeat(800_000), 0, cb))
    r.bigBack = ((await call<string>((cb) => mc.get('big', cb))) as string).length
    const stats = (await call((cb) => mc.stats(cb))) as { curr_items?: unknown }[]
    r.stats = Array.isArray(stats) && stats.length === 1 && 'curr_items' in stats[0]!
    const settings = (await call((cb) => mc.settings(cb))) as Record<string, unknown>[]
    r.settings = Array.isArray(settings) && 'item_size_max' in settings[0]!
    const items = await call((cb) => mc.items(cb))
    r.items = Array.isArray(items)
    r.flush = await call((cb) => mc.flush(cb))
    r.afterFlush = await call((cb) => mc.get('k2', cb))
  } finally {
    mc.end()
  }
  return r
}

test('memcached (npm): every operation, same results as against memcached', async () => {
  const [actual, expected] = await onBoth(memcachedScenario)
  assert.is(actual.set, true)
  assert.is(actual.get, 'hello')
  assert.is(actual.bigBack, 800_000)
  assert.equal(actual, expected)
})

test.run()
