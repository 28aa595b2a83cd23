// More real clients against ferrocached, each run compared with the same run against
// memcached 1.6.18 (two of each, started once for the file): libmemcached-tools beyond
// memccapable/memccp/memccat/memcslap, python3-pylibmc (text and binary, behaviors),
// pymemcache's HashClient with its serde and python3-memcache's gets/cas over two servers,
// and the less common calls of memjs and memcached (npm).
import { join } from 'node:path'
import Memcached from 'memcached'
import memjs from 'memjs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { askOnce, RawConn } from './helpers/raw'
import { freePort, run, sleep, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const PYTHON = '/usr/bin/python3'
const FIXTURES = join(__dirname, 'fixtures', 'clients')

/** [memcached, memcached, ferrocached, ferrocached]. */
let servers: Running[] = []
const pairs = (): [number, number][] => [
  [servers[0]!.port, servers[1]!.port],
  [servers[2]!.port, servers[3]!.port],
]

setUp(test, async () => {
  servers = await startAll([() => startMemcached(), () => startMemcached(), () => startFerrocached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

/** The same scenario on memcached's pair, then on ferrocached's: [expected, actual]. */
async function onBoth<T>(scenario: (port: number, other: number) => Promise<T>): Promise<[T, T]> {
  const [[m1, m2], [f1, f2]] = pairs()
  return [await scenario(m1, m2), await scenario(f1, f2)]
}

/** A run's output with its server's own address in it made alike. */
function normal(text: string, port: number): string {
  return text.replaceAll(String(port), 'PORT').replace(/\(0x[0-9a-f]+\)/g, '(0xADDR)')
}

async function python(script: string, ...args: string[]): Promise<Record<string, unknown>> {
  const r = await run(PYTHON, [join(FIXTURES, script), ...args], { ms: 30_000 })
  assert.is(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Record<string, unknown>
}

test('python3-pylibmc: text and binary, with cas/tcp_nodelay/ketama/no_block/verify_keys, as against memcached', async () => {
  const [expected, actual] = await onBoth((port) => python('pylibmc_client.py', String(port)))
  const text = actual.text as Record<string, unknown>
  assert.is(text.get, "b'hello'")
  assert.equal(text.big, [true, true])
  assert.equal((actual.binary_cas as Record<string, unknown>).cas, [true, false, 'error: NotFound', "b'new'", [null, null]])
  // incr of 2^64-1 by 2 wraps to 1. memcached 1.6.18 may answer it non-numeric instead: its
  // safe_strtoull reads past a value of 2^63 or more into stale slab memory for a '-' (a
  // known difference, docs/protocol.md; a full run met it in binary_nb). There ferrocached
  // must still wrap, and memcached's answer must be the one it gives the non-numeric 'txt'
  for (const [mode, got] of Object.entries(actual)) {
    const incr = (got as { incr?: unknown[] } | null)?.incr
    if (incr === undefined) continue
    assert.is(incr[5], 1, `${mode}: incr of 2^64-1 by 2`)
    const theirs = (expected[mode] as { incr?: unknown[] } | undefined)?.incr
    if (theirs !== undefined && theirs[5] !== 1 && theirs[5] === theirs[7]) theirs[5] = 1
  }
  assert.equal(actual, expected)
})

test('pymemcache HashClient with pickle serde, python3-memcache gets/cas, over two servers', async () => {
  const [expected, actual] = await onBoth((port, other) => python('pymemcache_hash.py', String(port), String(other)))
  assert.equal(actual.cas, ["'str'", true, false, 'x'])
  assert.equal(actual.pm_set, [true, 'one', true, false, 'two'])
  assert.equal(actual, expected)
})

function call<T>(fn: (cb: (err: unknown, value: T) => void) => void): Promise<T | string> {
  return new Promise((resolve) => fn((err, value) => resolve(err ? `error: ${String((err as Error).message ?? err)}` : value)))
}

function outcome<T>(p: Promise<T>): Promise<T | string> {
  return p.then(
    (v) => v,
    (e: Error) => `error: ${e.message}`,
  )
}

type Stats = Record<string, string> | null
function memjsStats(client: memjs.Client, key?: string): Promise<Stats | string> {
  return new Promise((resolve) => {
    const done = (err: Error | null, _server: string | null, s: Stats): void => resolve(err ? `error: ${err.message}` : s)
    if (key === undefined) client.stats(done)
    else client.statsWithKey(key, done)
  })
}

async function memjsMore(port: number): Promise<Record<string, unknown>> {
  const client = memjs.Client.create(`127.0.0.1:${port}`, { retries: 0, timeout: 5, conntimeout: 5, logger: { log: () => {} } })
  const r: Record<string, unknown> = {}
  const value = async (k: string): Promise<string | undefined> => (await client.get(k)).value?.toString()
  try {
    r.flush = Object.values(await client.flush())
    // counters from here on (the servers are shared by the file's tests); curr_items and
    // the items/slabs figures follow each engine's reaping of flushed items: not compared
    await new Promise((resolve) => client.resetStats(resolve))
    r.incrInitial = [
      await outcome(client.increment('c', 1, { initial: 7, expires: 100 })),
      await outcome(client.increment('c', 2, { initial: 7, expires: 100 })),
      await outcome(client.decrement('d', 3, { initial: 2, expires: 100 })),
      await outcome(client.decrement('d', 3, { initial: 2 })),
      await outcome(client.increment('e', 1, { initial: 0 })),
      await outcome(client.increment('e', 1, {})),
    ]
    r.values = [await value('c'), await value('d'), await value('e')]
    // binary increment past 2^64-1 wraps and pads the value in place
    r.incrMax = [await client.set('m', '18446744073709551615'), await outcome(client.increment('m', 2, {})), await value('m')]
    r.touch = [await client.set('t', 'v', { expires: 100 }), await outcome(client.touch('t', 1000)), await outcome(client.touch('zz', 1000))]
    const pick = (s: Stats | string, keys: string[]): unknown => (typeof s === 'string' || s === null ? s : keys.map((k) => s[k]))
    r.stats = pick(await memjsStats(client), ['cmd_get', 'get_hits', 'cmd_touch', 'incr_misses', 'incr_hits', 'decr_misses', 'decr_hits', 'touch_hits', 'touch_misses'])
    r.settings = pick(await memjsStats(client, 'settings'), ['item_size_max', 'cas_enabled', 'evictions'])
    const has = (s: Stats | string, key: string): unknown => (typeof s === 'string' || s === null ? s : key in s)
    r.items = has(await memjsStats(client, 'items'), 'items:1:number')
    r.slabs = has(await memjsStats(client, 'slabs'), 'active_slabs')
    r.statsUnknown = await memjsStats(client, 'nonsense')
    await new Promise((resolve) => client.resetStats(resolve))
    r.afterReset = pick(await memjsStats(client), ['cmd_get', 'cmd_touch'])
    r.flushAgain = [Object.values(await client.flush()), await value('c')]
  } finally {
    client.close()
  }
  return r
}

test('memjs: flush, stats (settings/items/slabs/unknown), reset, increment with initial and expires, touch', async () => {
  const [expected, actual] = await onBoth(memjsMore)
  assert.equal(actual.values, ['9', '0', '1'])
  assert.equal(actual, expected)
})

/** Waits (at most 15 s) until the server on `port` has reaped every flushed item. */
async function reapedAll(port: number): Promise<void> {
  const conn = await RawConn.open(port)
  try {
    const end = Date.now() + 15_000
    let items = (await conn.stats()).get('curr_items')
    while (items !== '0' && Date.now() < end) {
      await sleep(50)
      items = (await conn.stats()).get('curr_items')
    }
    assert.is(items, '0', 'curr_items after the flush, once reaped')
  } finally {
    conn.close()
  }
}

async function memcachedMore(port: number): Promise<Record<string, unknown>> {
  const mc = new Memcached(`127.0.0.1:${port}`, { retries: 0, timeout: 5000, idle: 1000 })
  const r: Record<string, unknown> = {}
  try {
    r.flush = await call((cb) => mc.flush(cb))
    // stats items lists the earlier tests' flushed items until they are reaped (memcached's
    // LRU maintainer, ferrocached's background pass: on a loaded machine ferrocached once
    // still listed classes 15 and 21 where memcached listed none)
    await reapedAll(port)
    await askOnce(port, Buffer.from('stats reset\r\n')) // counters of this scenario only
    r.incrMissing = [await call((cb) => mc.incr('none', 1, cb)), await call((cb) => mc.decr('none', 1, cb))]
    r.appendMissing = [await call((cb) => mc.append('none', 'x', cb)), await call((cb) => mc.prepend('none', 'x', cb))]
    r.append = [await call((cb) => mc.set('a', 'b', 0, cb)), await call((cb) => mc.append('a', 'c', cb)), await call((cb) => mc.prepend('a', 'z', cb)), await call((cb) => mc.get('a', cb))]
    const g = (await call<Record<string, string>>((cb) => mc.gets('a', cb))) as Record<string, string>
    r.gets = g.a
    r.cas = [await call((cb) => mc.cas('zz', 'x', g.cas!, 0, cb)), await call((cb) => mc.cas('a', 'n', g.cas!, 0, cb)), await call((cb) => mc.cas('a', 'm', g.cas!, 0, cb))]
    r.version = ((await call((cb) => mc.version(cb))) as { version: string }[]).map((v) => v.version)
    const items = (await call((cb) => mc.items(cb))) as unknown as Record<string, { number?: number } | undefined>[]
    r.items = items.map((i) => [Object.keys(i).sort(), typeof i['1']?.number])
    // which classes hold the items follows each engine's item header size
    r.slabs = ((await call((cb) => mc.slabs(cb))) as Record<string, unknown>[]).map((s) => Object.keys(s).filter((k) => !/^\d+$/.test(k)).sort())
    r.settings = ((await call((cb) => mc.settings(cb))) as Record<string, unknown>[]).map((s) => [s.item_size_max, s.cas_enabled, s.evictions])
    r.stats = ((await call((cb) => mc.stats(cb))) as Record<string, unknown>[]).map((s) => [s.cmd_get, s.get_hits, s.incr_misses, s.cas_hits, s.cas_badval, s.cas_misses])
  } finally {
    mc.end()
  }
  return r
}

test('memcached (npm): incr/append of a missing key, gets/cas, version, items, slabs, settings, stats', async () => {
  const [expected, actual] = await onBoth(memcachedMore)
  assert.equal(actual.cas, [false, true, false])
  assert.equal(actual, expected)
})

test('memcached (npm): cachedump, and failing over from a dead server to a live one', async () => {
  const dead = await freePort() // nothing listens there
  const scenario = async (port: number): Promise<unknown[]> => {
    const mc = new Memcached([`127.0.0.1:${port}`, `127.0.0.1:${dead}`], { retries: 0, timeout: 1000, failures: 0, retry: 60_000, remove: true, idle: 1000 })
    const keys = ['x1', 'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8']
    try {
      const sets = await Promise.all(keys.map((k) => call((cb) => mc.set(k, 'v', 0, cb))))
      const gets: unknown[] = []
      for (const k of keys) gets.push(await call((cb) => mc.get(k, cb)))
      // the hash ring follows the addresses, so only what happened can be compared: the
      // keys that met the dead server failed once, the rest are on the live one, and
      // after the failure every key goes to the live one
      const failed = sets.flatMap((s, i) => (s === true ? [] : [keys[i]!]))
      const after = await Promise.all(keys.map((k) => call((cb) => mc.set(k, 'w', 0, cb))))
      // memcached's lists flushed items not reaped yet (docs/protocol.md): not compared
      const dump = await call((cb) => mc.cachedump(`127.0.0.1:${port}`, 1, 0, cb))
      return [
        failed.length > 0,
        failed.every((k) => gets[keys.indexOf(k)] === undefined),
        gets.every((g, i) => failed.includes(keys[i]!) || g === 'v'),
        after,
        typeof dump !== 'string',
      ]
    } finally {
      mc.end()
    }
  }
  const [expected, actual] = await onBoth(scenario)
  assert.equal(actual, [true, true, true, keys8(true), true])
  assert.equal(actual, expected)
})

const keys8 = (v: boolean): boolean[] => Array.from({ length: 8 }, () => v)

/** Runs a libmemcached tool; its output (stdout then stderr) with addresses made alike. */
async function tool(port: number, name: string, args: string[]): Promise<string> {
  const r = await run(`/usr/bin/${name}`, args.map((a) => a.replace('SERVERS', `--servers=127.0.0.1:${port}`)), { ms: 20_000 })
  return `$ ${name} ${args.join(' ')}\n${normal(r.stdout + r.stderr, port)}exit ${r.code}\n`
}

async function preload(port: number): Promise<void> {
  const data = 'flush_all\r\nset a 0 0 1\r\n1\r\nset b 5 0 3\r\nbbb\r\nset n 0 0 2\r\n10\r\nset t 0 100 1\r\nt\r\nmn\r\n'
  const { reply } = await askOnce(port, Buffer.from(data))
  assert.ok(reply.endsWith('MN\r\n'), reply)
}

/**
 * memcstat's report with ferrocache's own engine figures (docs/protocol.md) made alike:
 * the numbers per class and the classes used (its item header is smaller than memcached's,
 * so a value can fall in another class), the average item size, the latency.
 */
function engineFigures(text: string): string {
  const lines = text
    .replace(/^\titems:\d+:(\w+): \d+$/gm, '\titems:C:$1: N')
    .replace(/^\t\d+:(\w+): \d+$/gm, '\tC:$1: N')
    .replace(/^(\t(?:active_slabs|total_malloced)): \d+$/gm, '$1: N')
    .replace(/(Average Item Size \(incl\/overhead\)\s+:) \d+/, '$1 N')
    .replace(/(=>) [\d.]+ seconds \([\d.]+ms\)/, '$1 T')
    .split('\n')
  return [...new Set(lines)].join('\n')
}

test('libmemcached-tools: memcexist, memctouch, memcrm, memcflush, memcping, memcerror, memcdump, memcstat, memcaslap', async () => {
  const scenario = async (port: number): Promise<string> => {
    let out = ''
    for (const binary of [[], ['--binary']]) {
      await preload(port)
      for (const args of [
        ['a'],
        ['-v', 'a', 'zz', 'b'],
      ]) out += await tool(port, 'memcexist', [...binary, 'SERVERS', ...args])
      out += await tool(port, 'memctouch', [...binary, 'SERVERS', '--expire=50', 'a'])
      out += await tool(port, 'memctouch', [...binary, '-v', 'SERVERS', '--expire=50', 'a', 'zz'])
      out += await tool(port, 'memcrm', [...binary, '-v', 'SERVERS', 'zz', 'a'])
      out += await tool(port, 'memcrm', [...binary, 'SERVERS', 'a'])
      out += await tool(port, 'memcrm', [...binary, 'SERVERS', '--expire=5', 'b'])
      out += await tool(port, 'memcexist', [...binary, 'SERVERS', 'b'])
      out += await tool(port, 'memcflush', [...binary, 'SERVERS'])
      out += await tool(port, 'memcexist', [...binary, 'SERVERS', 'n'])
      out += await tool(port, 'memcstat', [...binary, 'SERVERS', '-S'])
    }
    await preload(port)
    out += await tool(port, 'memcping', ['SERVERS'])
    out += await tool(port, 'memcerror', ['0', '5', '16', '21', '999'])
    out += engineFigures(await tool(port, 'memcstat', ['SERVERS', 'items', 'slabs']))
    out += engineFigures(await tool(port, 'memcstat', ['SERVERS', '-a']))
    out += engineFigures(await tool(port, 'memcstat', ['--binary', 'SERVERS', '-a', 'latency', '--iterations=20']))
    out += await tool(port, 'memcstat', ['--binary', 'SERVERS', 'sizes', 'conns', 'nonsense'])
    const slap = await tool(port, 'memcaslap', ['SERVERS', '-x', '300', '-c', '2', '-T', '1'])
    out += slap.split('\n').filter((l) => /^(cmd_get|cmd_set|get_misses|exit)/.test(l)).join('\n')
    // which keys memcached's `stats cachedump` lists follows its LRU maintainer's timing
    // (docs/protocol.md): only that every line is a key and the exit status are compared
    const dump = await run('/usr/bin/memcdump', [`--servers=127.0.0.1:${port}`])
    out += `\nmemcdump ${dump.code} ${dump.stdout.split('\n').filter((l) => l !== '').every((k) => ['a', 'b', 'n', 't'].includes(k))}\n`
    // a delayed flush leaves the items until its deadline
    out += await tool(port, 'memcflush', ['SERVERS', '--expire=100'])
    out += await tool(port, 'memcexist', ['SERVERS', 'a', 'n'])
    return out
  }
  const [expected, actual] = await onBoth(scenario)
  assert.match(actual, /\$ memcexist SERVERS -v a zz b\nFound key 'a'.\nCould not find key 'zz': NOT FOUND\nFound key 'b'.\nexit 1\n/)
  assert.match(actual, /cmd_get: 270\ncmd_set: 30\nget_misses: 0\nexit 0/)
  assert.fixture(actual, expected)
})

test("memcstat settings: memcached's lines, with oldest as memcached's flush mark", async () => {
  const settings = async (port: number): Promise<Map<string, string>> => {
    await askOnce(port, Buffer.from('flush_all\r\n'))
    const r = await run('/usr/bin/memcstat', ['--binary', `--servers=127.0.0.1:${port}`, 'settings'])
    assert.is(r.code, 0, r.stderr)
    return new Map([...r.stdout.matchAll(/^\t(\w+): (.*)$/gm)].map((m) => [m[1]!, m[2]!]))
  }
  const [expected, actual] = await onBoth(settings)
  // `oldest`: the flush's second on memcached's clock (62 s before its start); the two
  // servers started and flushed within a second or two of each other
  const [e, a] = [Number(expected.get('oldest')), Number(actual.get('oldest'))]
  assert.ok(e >= 61 && Math.abs(a - e) <= 2, `oldest: memcached ${e}, ferrocached ${a}`)
  // ferrocached's own: its port, its hash, no per-worker log or TLS write buffers
  // (src/server/settings.ts)
  for (const own of ['oldest', 'tcpport', 'hash_algorithm', 'worker_logbuf_size', 'ssl_wbuf_size']) {
    expected.delete(own)
    actual.delete(own)
  }
  assert.equal([...actual], [...expected])
})

test.run()
