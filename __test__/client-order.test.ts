// The Client answers requests on the same key in the order they were made, also when they
// are not awaited, as the embedded Cache does: a `get` made right after a `set` of its key
// sees it, incrs come back in sequence, a batch made after a write of some of its keys sees
// it, and a flush() applies after the requests made before it and before those made after.
// A key with a request in flight stays on that request's connection of the pool, so this
// holds with a pool of four, in meta, text and binary, against ferrocached (also over TLS)
// and memcached 1.6.18 with four worker threads (where connections run in parallel).
// Also: many keys still spread over the whole pool, one key opens one connection, and the
// order holds again after the server was restarted under the requests.
import net from 'node:net'
import v8 from 'node:v8'
import vm from 'node:vm'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client, type ClientOptions } from '../src'
import { makeCertificates, type TestCertificates } from './helpers/certs'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, startMemcached, waitFor, within, type Running } from './helpers/servers'

type Protocol = NonNullable<ClientOptions['protocol']>
const PROTOCOLS: Protocol[] = ['meta', 'text', 'binary']

interface Target {
  name: string
  port: number
  tls?: ClientOptions['tls']
}

let certs: TestCertificates
let servers: Running[] = []
let targets: Target[] = []

setUp(test, async () => {
  certs = makeCertificates()
  servers = await startAll([
    () => startFerrocached(),
    () => startMemcached(['-t', '4']),
    () => startFerrocached(['--tls-cert', certs.path('server.pem'), '--tls-key', certs.path('server.key')]),
  ])
  const [ferro, memcached, ferroTls] = servers as [Running, Running, Running]
  targets = [
    { name: 'ferrocached', port: ferro.port },
    { name: 'memcached -t 4', port: memcached.port },
    { name: 'ferrocached TLS', port: ferroTls.port, tls: { ca: certs.read('ca.pem') } },
  ]
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
  certs?.remove()
})

/** Runs `body` with a utf8 Client of pool size 4 on each server, in each dialect. */
async function everywhere(body: (c: Client<'utf8'>, what: string) => Promise<void>, options: Partial<ClientOptions<'utf8'>> = {}): Promise<void> {
  for (const target of targets) {
    for (const protocol of PROTOCOLS) {
      const c = new Client({ servers: [`127.0.0.1:${target.port}`], encoding: 'utf8', poolSize: 4, protocol, tls: target.tls ?? false, timeout: 5_000, ...options })
      try {
        await within(body(c, `${target.name} ${protocol}`), 20_000, `${target.name} ${protocol}`)
      } finally {
        await c.close()
      }
    }
  }
}

/** Short text for a value in a message. */
const brief = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 24) : String(v))

/** Asserts `got` is `wanted` item by item, naming how many differ and the first. */
function same(got: readonly unknown[], wanted: readonly unknown[], what: string): void {
  assert.is(got.length, wanted.length, `${what}: count`)
  const differ = got.map((v, i) => (v === wanted[i] ? -1 : i)).filter((i) => i >= 0)
  const first = differ[0]
  assert.is(differ.length, 0, first === undefined ? what : `${what}: ${differ.length} of ${got.length} differ, first #${first}: got ${brief(got[first])}, wanted ${brief(wanted[first])}`)
}

/** Asserts a getMany result holds exactly `wanted`, in `keys`' terms. */
function sameMap(got: Map<string, string>, wanted: Map<string, string>, keys: readonly string[], what: string): void {
  same(keys.map((k) => got.get(k)), keys.map((k) => wanted.get(k)), what)
}

/** A value of 10 to ~6000 bytes naming its key and round: big ones take longer to arrive, so
 * a get on another connection would overtake them. */
function valueOf(key: string, round: number): string {
  const size = (key.length * 131 + round * 977) % 6000
  return `${key}@${round}:${'v'.repeat(size)}`
}

test('2000 unawaited set/get pairs on 500 keys: every get sees the set made just before it', async () => {
  await everywhere(async (c, what) => {
    const keys = Array.from({ length: 500 }, (_, i) => `ryw:${i}`)
    const gets: Array<Promise<string | undefined>> = []
    const wanted: string[] = []
    const sets: Array<Promise<boolean>> = []
    for (let round = 0; round < 4; round++) {
      for (const key of keys) {
        const value = valueOf(key, round)
        sets.push(c.set(key, value))
        gets.push(c.get(key))
        wanted.push(value)
      }
    }
    assert.ok((await Promise.all(sets)).every((ok) => ok), `${what}: every set stored`)
    same(await Promise.all(gets), wanted, `${what}: gets after their set`)
  })
})

test('8000 keys over ticks, past the size where answered keys are swept: each get still sees its set', async () => {
  await everywhere(async (c, what) => {
    const gets: Array<Promise<string | undefined>> = []
    const wanted: string[] = []
    const sets: Array<Promise<boolean>> = []
    // 16 ticks of 1000 pairs: while later ticks' requests are made, earlier ones are
    // answered, so the client's record of keys in flight is swept with both kinds in it
    for (let tick = 0; tick < 16; tick++) {
      for (let i = 0; i < 1000; i++) {
        const key = `sweep:${(tick * 1000 + i * 7) % 8000}`
        const value = valueOf(key, tick)
        sets.push(c.set(key, value.slice(0, 200)))
        gets.push(c.get(key))
        wanted.push(value.slice(0, 200))
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.ok((await Promise.all(sets)).every((ok) => ok), `${what}: every set stored`)
    same(await Promise.all(gets), wanted, `${what}: gets after their set`)
  })
})

test('2000 unawaited incrs and decrs of three counters come back in sequence', async () => {
  await everywhere(async (c, what) => {
    const counters = ['seq:a', 'seq:b', 'seq:c']
    await Promise.all(counters.map((k) => c.set(k, '1000000')))
    const results: Array<Promise<bigint | undefined>> = []
    const wanted: bigint[] = []
    const at = new Map(counters.map((k) => [k, 1_000_000n]))
    for (let i = 0; i < 2000; i++) {
      const key = counters[i % 3]!
      const up = i % 7 !== 3
      const delta = BigInt(1 + (i % 5))
      results.push(up ? c.incr(key, delta) : c.decr(key, delta))
      const next = at.get(key)! + (up ? delta : -delta)
      at.set(key, next)
      wanted.push(next)
    }
    same(await Promise.all(results), wanted, `${what}: incr/decr results`)
  })
})

test('batches mixing keys see the writes made before them, single or batched', async () => {
  await everywhere(async (c, what) => {
    for (let round = 0; round < 5; round++) {
      const keys = Array.from({ length: 120 }, (_, i) => `mix:${i}`)
      const entries = keys.map((k): [string, string] => [k, valueOf(k, round)])
      // setMany, then single gets and a getMany of every key
      const stored = c.setMany(entries)
      const singles = keys.map((k) => c.get(k))
      const many = c.getMany(keys)
      // single sets of every third key, then a getMany of all
      const changed = keys.filter((_, i) => i % 3 === 0)
      const sets = changed.map((k) => c.set(k, `changed ${round}`))
      const afterSets = c.getMany(keys)
      // deleteMany of every other key, then a getMany and single gets
      const gone = keys.filter((_, i) => i % 2 === 1)
      const deleted = c.deleteMany(gone)
      const afterDelete = c.getMany(keys)
      const hasAfter = keys.map((k) => c.has(k))
      await stored
      await Promise.all(sets)
      assert.is(await deleted, gone.length, `${what}: every deleted key was there`)
      same(await Promise.all(singles), entries.map(([, v]) => v), `${what}: gets after setMany`)
      sameMap(await many, new Map(entries), keys, `${what}: getMany after setMany`)
      const wantAfterSets = new Map(entries.map(([k, v], i) => [k, i % 3 === 0 ? `changed ${round}` : v]))
      sameMap(await afterSets, wantAfterSets, keys, `${what}: getMany after sets`)
      const wantAfterDelete = new Map([...wantAfterSets].filter((_, i) => i % 2 === 0))
      sameMap(await afterDelete, wantAfterDelete, keys, `${what}: getMany after deleteMany`)
      same(await Promise.all(hasAfter), keys.map((_, i) => i % 2 === 0), `${what}: has after deleteMany`)
    }
  })
})

test('flush() applies after the requests made before it and before those made after it', async () => {
  await everywhere(async (c, what) => {
    for (let round = 0; round < 20; round++) {
      const before = Array.from({ length: 50 }, (_, i) => `fl:before:${i}`)
      const after = Array.from({ length: 50 }, (_, i) => `fl:after:${i}`)
      const setsBefore = before.map((k) => c.set(k, valueOf(k, round)))
      const flushed = c.flush()
      const readsAfterFlush = c.getMany(before)
      const singleAfterFlush = c.get(before[round]!)
      const setsAfter = after.map((k) => c.set(k, valueOf(k, round)))
      const readsAfter = after.map((k) => c.get(k))
      await Promise.all([...setsBefore, flushed, ...setsAfter])
      same([...(await readsAfterFlush).keys()], [], `${what} round ${round}: sets made before the flush are gone`)
      assert.is(await singleAfterFlush, undefined, `${what} round ${round}: get after the flush`)
      same(await Promise.all(readsAfter), after.map((k) => valueOf(k, round)), `${what} round ${round}: sets made after the flush stay`)
    }
  })
})

test('close() right behind a flush: the requests waiting for the flush are still sent and answered', async () => {
  const servers2 = targets.slice(0, 2).map((t) => `127.0.0.1:${t.port}`)
  for (const protocol of PROTOCOLS) {
    const c = new Client({ servers: servers2, encoding: 'utf8', poolSize: 4, protocol })
    const keys = Array.from({ length: 100 }, (_, i) => `cl:${i}`)
    const before = keys.map((k) => c.set(k, 'before'))
    const flushed = c.flush()
    const after = keys.slice(0, 50).map((k) => c.set(k, 'after'))
    const closed = c.close()
    const late = c.get('cl:0').then(
      () => 'resolved',
      (e: Error & { code: string }) => e.code,
    )
    await within(Promise.all([...before, flushed, ...after, closed]), 10_000, `${protocol}: requests before close()`)
    assert.is(await late, 'FERROCACHE_CLOSED', `${protocol}: a request after close()`)
    const check = new Client({ servers: servers2, encoding: 'utf8' })
    try {
      const found = await check.getMany(keys)
      same(keys.map((k) => found.get(k)), keys.map((_, i) => (i < 50 ? 'after' : undefined)), `${protocol}: what the two servers hold`)
    } finally {
      await check.close()
    }
  }
})

/** A TCP relay to `port` that counts the connections made through it. */
async function countingRelay(port: number): Promise<{ port: number; accepted(): number; close(): Promise<void> }> {
  let accepted = 0
  const sockets = new Set<net.Socket>()
  const relay = net.createServer((down) => {
    accepted++
    const up = net.connect(port, '127.0.0.1')
    for (const s of [up, down]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => (up.destroy(), down.destroy(), sockets.delete(s)))
    }
    down.pipe(up).pipe(down)
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  return {
    port: (relay.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((r) => relay.close(r))
    },
  }
}

test('one key opens one connection; many keys spread over the whole pool', async () => {
  const relay = await countingRelay(servers[0]!.port)
  try {
    for (const protocol of PROTOCOLS) {
      const c = new Client({ servers: [`127.0.0.1:${relay.port}`], encoding: 'utf8', poolSize: 4, protocol })
      const start = relay.accepted()
      try {
        await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? c.set('one', `${i}`) : c.get('one'))))
        assert.is(relay.accepted() - start, 1, `${protocol}: a single key's requests on one connection`)
        await Promise.all(Array.from({ length: 300 }, (_, i) => c.set(`many:${i}`, `${i}`)))
        assert.ok(await waitFor(() => relay.accepted() - start === 4, 2_000), `${protocol}: ${relay.accepted() - start} connections for 300 keys, wanted the pool's 4`)
        const stats = await c.stats()
        assert.ok(stats.curr_items >= 301, `${protocol}: the writes arrived`)
        assert.is(relay.accepted() - start, 4, `${protocol}: stats went on a pooled connection`)
      } finally {
        await c.close()
      }
    }
  } finally {
    await relay.close()
  }
})

test('after a restart under pipelined requests, the order holds again', async () => {
  const ferro = servers[0]!
  const port = ferro.port
  const c = new Client({ servers: [`127.0.0.1:${port}`], encoding: 'utf8', poolSize: 4, retry: 0, removeAfter: 1000, timeout: 5_000 })
  try {
    const inFlight = Array.from({ length: 400 }, (_, i) => c.set(`rs:${i % 40}`, valueOf(`rs:${i}`, 0)).catch((e: Error & { code: string }) => e.code))
    await ferro.stop()
    const outcomes = await within(Promise.all(inFlight), 10_000, 'requests to the stopped server')
    assert.ok(outcomes.every((o) => o === true || o === 'FERROCACHE_CONNECTION' || o === 'FERROCACHE_SERVER_FAILING'), `outcomes: ${[...new Set(outcomes)].join(', ')}`)
    servers[0] = await startFerrocached([], {}, port)
    const sets: Array<Promise<boolean>> = []
    const gets: Array<Promise<string | undefined>> = []
    const wanted: string[] = []
    for (let i = 0; i < 1000; i++) {
      const key = `rs:${i % 40}`
      wanted.push(valueOf(key, i))
      sets.push(c.set(key, wanted[i]!))
      gets.push(c.get(key))
    }
    await within(Promise.all(sets), 10_000, 'the sets after the restart')
    same(await Promise.all(gets), wanted, 'gets after the restart')
  } finally {
    await c.close()
  }
})

/** A server that hangs up on every connection as soon as a request arrives. */
async function hangingUp(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((s) => {
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
    s.on('data', () => s.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

/** What a request came to: 'ok', or its error's code. */
const outcome = (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'ok',
    (e: Error & { code: string }) => e.code,
  )

test('flushes in a row to a server that hangs up: every request fails, none twice, and close() returns', async () => {
  // The second flush, held behind the first, fails at once when the first does (the server
  // is failing): it lifted its own fence from inside the loop sending the held requests,
  // which started over, re-sent the first ones, and the flush again, until the stack overflowed.
  const fake = await hangingUp()
  try {
    for (const protocol of PROTOCOLS) {
      for (const removeAfter of [1, 100]) {
        const c = new Client({ servers: [`127.0.0.1:${fake.port}`], encoding: 'utf8', poolSize: 2, protocol, removeAfter, timeout: 2_000 })
        try {
          const made = [c.set('x', '1'), c.flush(), c.get('x'), c.flush(), c.getMany(['x', 'y']), c.flush(), c.get('y')]
          const codes = await within(Promise.all(made.map(outcome)), 5_000, `${protocol} removeAfter ${removeAfter}`)
          assert.ok(codes.every((o) => o.startsWith('FERROCACHE_')), `${protocol} removeAfter ${removeAfter}: ${codes.join(', ')}`)
        } finally {
          await within(c.close(), 5_000, 'close()')
        }
      }
    }
  } finally {
    await fake.close()
  }
})

test("a connection that takes a failed one's place in the pool does not hold the keys that failed with it", async () => {
  // The first connection is cut as its requests arrive; the others relay to ferrocached and
  // count the gets (`mg `) they carry.
  const gets: number[] = []
  const sockets = new Set<net.Socket>()
  const relay = net.createServer((down) => {
    const at = gets.push(0) - 1
    sockets.add(down)
    down.on('error', () => {})
    if (at === 0) return void down.once('data', () => down.destroy())
    const up = net.connect(servers[0]!.port, '127.0.0.1')
    sockets.add(up)
    up.on('error', () => {})
    down.on('data', (b: Buffer) => {
      gets[at]! += b.toString('latin1').split('mg ').length - 1
      up.write(b)
    })
    up.pipe(down)
    for (const s of [up, down]) s.on('close', () => (up.destroy(), down.destroy()))
  })
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve))
  const c = new Client({ servers: [`127.0.0.1:${(relay.address() as net.AddressInfo).port}`], encoding: 'utf8', poolSize: 2, retry: 0, removeAfter: 1000 })
  try {
    const keys = Array.from({ length: 1000 }, (_, i) => `slot:${i}`)
    const outcomes = await within(Promise.all(keys.map((k) => outcome(c.set(k, 'v')))), 10_000, 'sets')
    const failed = keys.filter((_, i) => outcomes[i] !== 'ok')
    assert.ok(failed.length >= 100 && gets.length === 2, `${failed.length} sets failed with the first connection, ${gets.length} connections`)
    await c.get('warm')
    await Promise.all([c.get('warm:1'), c.get('warm:2')])
    assert.is(gets.length, 3, 'a new connection took the failed one\'s place')
    const before = [...gets]
    await within(Promise.all(failed.map((k) => c.get(k))), 10_000, 'gets')
    const spread = gets.map((n, i) => n - before[i]!)
    assert.ok(spread[1]! >= failed.length / 5 && spread[2]! >= failed.length / 5, `gets of the failed keys per connection: ${spread.join(', ')} (the least busy takes each)`)
  } finally {
    await c.close()
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => relay.close(resolve))
  }
})

test('after a burst of 100000 keys is answered, the record of keys in flight lets them go', async () => {
  // It was swept only once it had grown to twice what the last sweep kept: with fewer keys
  // in use after the burst, never, holding ~30 MB of these keys for good.
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const c = new Client({ servers: [`127.0.0.1:${servers[0]!.port}`], encoding: 'utf8', poolSize: 2, timeout: 10_000, connectTimeout: 10_000 })
  try {
    // no request before the burst: its first request arms the connection's request timer,
    // which held on to it (and its batch) once answered. The 10 s timeout keeps a slow
    // burst on a busy machine from timing out, and the timer from firing within the test;
    // the 10 s connect timeout too: the burst's requests are made in one synchronous run
    // after the connect begins, and beside other work its 1 s default ran out first
    // ('connecting to … timed out after 1000 ms', seen once)
    gc()
    const base = process.memoryUsage().heapUsed
    await within(c.setMany(Array.from({ length: 100_000 }, (_, i) => [`burst:${i}:${'k'.repeat(200)}`, 'v'] as const)), 15_000, 'setMany')
    for (let round = 0; round < 10; round++) await Promise.all(Array.from({ length: 500 }, (_, i) => c.get(`burst:hot:${i}`)))
    // a few turns of the loop first: the last replies' buffers go with their callbacks,
    // which a busy machine runs later (30 MB still held at once, none 100 ms on)
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20))
    gc()
    const retained = (process.memoryUsage().heapUsed - base) / 1e6
    assert.ok(retained < 10, `${retained.toFixed(1)} MB still held after the burst (its keys take ~25 MB)`)
  } finally {
    await c.close()
  }
})

test.run()
