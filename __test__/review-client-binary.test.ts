// Adversarial review of Client `protocol: 'binary'`: scripted servers answering chosen
// packets (a body too short for its extras and key, a quiet reply answered twice or after
// the noop, a stats answer of thousands of packets sent a byte at a time), and the same
// edge cases (incr past 2^63, flags 2^32-1, ttl over 30 days, CAS past 2^53 and 0, values
// at the item size limit, quiet batches with an error) through meta, text and binary
// against memcached 1.6.18 and ferrocached: every dialect must give the same results; a
// server that answers in text (memcached -Y) fails at once with its line.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Client, type ClientOptions } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, startMemcached, within, type Running } from './helpers/servers'
import { intRng as rng } from './helpers/prng'
import { failure } from './helpers/settled'

type Err = Error & { code: string }

interface Packet {
  extras?: Buffer
  key?: string
  value?: string
  status?: number
}

/** A response packet; `body` overrides the body length written in the header. */
function response(opcode: number, opaque: number, p: Packet = {}, body?: number): Buffer {
  const extras = p.extras ?? Buffer.alloc(0)
  const key = Buffer.from(p.key ?? '')
  const value = Buffer.from(p.value ?? '')
  const head = Buffer.alloc(24)
  head[0] = 0x81
  head[1] = opcode
  head.writeUInt16BE(key.length, 2)
  head[4] = extras.length
  head.writeUInt16BE(p.status ?? 0, 6)
  head.writeUInt32BE(body ?? extras.length + key.length + value.length, 8)
  head.writeUInt32BE(opaque, 12)
  return Buffer.concat([head, extras, key, value])
}

/** The bytes to answer a request packet with, nothing, or 'hang up' to close the connection. */
type Answer = (opcode: number, opaque: number) => Buffer | undefined | 'hang up'

/** A server answering each request packet with `answer`'s bytes, written `chop` bytes at
 * a time when given; `connections` counts the connections it accepted. */
async function fakeServer(answer: Answer, chop?: number): Promise<{ port: number; readonly connections: number; close(): Promise<void> }> {
  let connections = 0
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    connections++
    sockets.add(sock)
    sock.on('error', () => {})
    sock.on('close', () => sockets.delete(sock))
    let pending = Buffer.alloc(0)
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32BE(8)) {
        const out = answer(pending[1]!, pending.readUInt32BE(12))
        pending = pending.subarray(24 + pending.readUInt32BE(8))
        if (out === undefined) continue
        if (out === 'hang up') return void sock.destroy()
        if (chop === undefined) sock.write(out)
        else for (let i = 0; i < out.length; i += chop) sock.write(out.subarray(i, i + chop))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy()
        server.close(() => resolve())
      }),
  }
}

async function withFake(answer: Answer, run: (c: Client<'utf8'>) => Promise<void>, chop?: number, timeout = 5000): Promise<void> {
  const fake = await fakeServer(answer, chop)
  const c = new Client({ servers: [`127.0.0.1:${fake.port}`], protocol: 'binary', encoding: 'utf8', timeout, poolSize: 1, retry: 0 })
  try {
    await run(c)
  } finally {
    await c.close()
    await fake.close()
  }
}

const OP_GET = 0x00
const OP_NOOP = 0x0a
const OP_GETKQ = 0x0d
const OP_STAT = 0x10
const OP_DELETEQ = 0x14

interface Ctx {
  memcached?: Running
  ferrocached?: Running
  /** memcached -Y: text logins, no binary protocol. */
  textLogins?: Running
  dir?: string
}

const s = suite<Ctx>('Client binary review', {})

setUp(s, async (ctx) => {
  const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-review-client-binary-'))
  ctx.dir = dir
  chmodSync(dir, 0o711) // memcached -u nobody reads the user file
  const users = join(dir, 'users')
  writeFileSync(users, 'app:pw\n')
  chmodSync(users, 0o644) // not writeFileSync's mode, which the umask cuts (027: nobody reads nothing)
  ;[ctx.memcached, ctx.ferrocached, ctx.textLogins] = await startAll([
    () => startMemcached(['-I', '1m', ...asNobody]),
    () => startFerrocached(['-I', '1m']),
    () => startMemcached(['-Y', users, ...asNobody]),
  ])
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.memcached?.stop(), ctx.ferrocached?.stop(), ctx.textLogins?.stop()])
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true })
})

s('a body too short for its extras and key is not a packet: the connection drops, no value or flags read past it', async () => {
  // a GET answer whose header claims 4 bytes of extras (the flags) in a body of 0 bytes;
  // the flags were read from the next packet's header and the value came back empty
  const flags = Buffer.from([0, 0, 0, 9])
  await withFake(
    (opcode, opaque) => Buffer.concat([response(opcode, opaque, { extras: flags }, 0), response(OP_GET, opaque + 1, { extras: flags, value: 'x' })]),
    async (c) => {
      const err = await failure(c.gets('a'))
      assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
      assert.match(err.message, /malformed packet header \(magic 0x81, body 0 bytes, extras and key 4\)/)
    },
  )
  // a stat packet whose key runs past its body
  await withFake(
    (opcode, opaque) => response(opcode, opaque, { key: 'curr_items', value: '5' }, 3),
    async (c) => {
      const err = await failure(c.stats())
      assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
      assert.match(err.message, /body 3 bytes, extras and key 10/)
    },
  )
})

s('a quiet reply answered twice is out of step: deleteMany does not count a miss twice', async () => {
  // two "not found" for each deleteq: the count came out as -3
  await withFake(
    (opcode, opaque) => {
      if (opcode === OP_NOOP) return response(opcode, opaque)
      const miss = response(opcode, opaque, { status: 0x01, value: 'Not found' })
      return opcode === OP_DELETEQ ? Buffer.concat([miss, miss]) : miss
    },
    async (c) => {
      const err = await failure(c.deleteMany(['a', 'b', 'c']))
      assert.is(err.code, 'FERROCACHE_SERVER_ERROR', err.message)
      assert.match(err.message, /unexpected reply/)
      // the connection was dropped: a new one answers the next request
      assert.is(await c.delete('a'), false)
    },
  )
  // getkq hits answered twice: same
  await withFake(
    (opcode, opaque) => {
      if (opcode === OP_NOOP) return response(opcode, opaque)
      const hit = response(opcode, opaque, { extras: Buffer.alloc(4), key: 'k', value: 'v' })
      return opcode === OP_GETKQ ? Buffer.concat([hit, hit]) : response(opcode, opaque, { status: 0x01 })
    },
    async (c) => {
      const err = await failure(c.getMany(['a', 'b']))
      assert.match(err.message, /unexpected reply/)
    },
  )
})

s('a quiet reply after the noop is taken for no request: the next request fails, never gets its value', async () => {
  let held: Buffer | undefined
  await withFake(
    (opcode, opaque) => {
      if (opcode === OP_GETKQ) {
        held = response(opcode, opaque, { extras: Buffer.alloc(4), key: 'k', value: 'late' })
        return undefined
      }
      if (opcode === OP_NOOP) {
        const late = held!
        held = undefined
        return Buffer.concat([response(opcode, opaque), late])
      }
      return response(opcode, opaque, { status: 0x01 })
    },
    async (c) => {
      const [many, one] = await Promise.allSettled([c.getMany(['a']), c.get('b')])
      assert.is(many.status, 'fulfilled')
      assert.is(many.status === 'fulfilled' && many.value.size, 0)
      assert.is(one.status, 'rejected', 'the late hit must not answer get(b)')
    },
  )
})

s('a late quiet reply before a stats answer is out of step, not a statistic', async () => {
  let held: Buffer | undefined
  await withFake(
    (opcode, opaque) => {
      if (opcode === OP_GETKQ) {
        held = response(opcode, opaque, { extras: Buffer.alloc(4), key: 'curr_items', value: '999' })
        return undefined
      }
      if (opcode === OP_NOOP) return response(opcode, opaque)
      if (opcode !== OP_STAT) return response(opcode, opaque, { status: 0x81 })
      const late = held ?? Buffer.alloc(0)
      held = undefined
      return Buffer.concat([late, response(opcode, opaque, { key: 'curr_items', value: '1' }), response(opcode, opaque)])
    },
    async (c) => {
      const [many, stats] = await Promise.allSettled([c.getMany(['a']), c.stats()])
      assert.is(many.status, 'fulfilled')
      // the late getkq hit (key curr_items, value 999) was read as a statistic
      assert.is(stats.status, 'rejected', stats.status === 'fulfilled' ? `curr_items ${stats.value.curr_items}` : '')
      assert.match(String(stats.status === 'rejected' && (stats.reason as Error).message), /unexpected reply.*opcode 0xd/)
    },
  )
})

s('a server answering in text: FERROCACHE_CONNECTION naming the line, at once (not a timeout waiting for 24 bytes)', async (ctx) => {
  const server = net.createServer((sock) => {
    sock.on('error', () => {})
    sock.on('data', () => sock.write('ERROR\r\n'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  const c = new Client({ servers: [`127.0.0.1:${port}`], protocol: 'binary', timeout: 3000 })
  try {
    const err = await failure(c.get('k'))
    assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
    assert.match(err.message, /answered in text, not the binary protocol: ERROR$/)
  } finally {
    await c.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  // memcached -Y (text logins) takes no binary request: it answers CLIENT_ERROR
  const mc = new Client({ servers: [`127.0.0.1:${ctx.textLogins!.port}`], protocol: 'binary', username: 'app', password: 'pw' })
  try {
    const err = await failure(mc.set('k', 'v'))
    assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
    assert.match(err.message, /answered in text, not the binary protocol: CLIENT_ERROR unauthenticated/)
  } finally {
    await mc.close()
  }
})

const OP_SASL_LIST = 0x20
const OP_SASL_AUTH = 0x21

/** A SASL server offering PLAIN that answers the auth with `auth` (or closes: undefined)
 * and every other request with "not found"; counts connections and logins. */
async function saslServer(auth: number | undefined): Promise<{ port: number; connections: number; logins: number; close(): Promise<void> }> {
  let logins = 0
  const fake = await fakeServer((opcode, opaque) => {
    if (opcode === OP_SASL_LIST) return response(opcode, opaque, { value: 'PLAIN' })
    if (opcode === OP_SASL_AUTH && auth === undefined) return 'hang up'
    if (opcode === OP_SASL_AUTH) {
      if (auth === 0) logins++
      return response(opcode, opaque, { status: auth, value: auth === 0 ? 'Authenticated' : 'Auth failure.' })
    }
    if (opcode === 0x01) return 'hang up' // a set: the server goes away
    return response(opcode, opaque, { status: 0x01, value: 'Not found' })
  })
  return {
    port: fake.port,
    get connections() {
      return fake.connections
    },
    get logins() {
      return logins
    },
    close: () => fake.close(),
  }
}

s('SASL against scripted servers: closed during the auth, logged in again after a close, no reconnect loop on a refusal', async () => {
  const login = { protocol: 'binary', username: 'app', password: 'pw', timeout: 3000 } as const
  // PLAIN offered, the connection closed at the auth: the request fails, and counts
  const closing = await saslServer(undefined)
  const a = new Client({ servers: [`127.0.0.1:${closing.port}`], ...login })
  try {
    assert.is((await failure(a.get('k'))).code, 'FERROCACHE_CONNECTION')
    assert.is((await failure(a.get('k'))).code, 'FERROCACHE_SERVER_FAILING')
  } finally {
    await a.close()
    await closing.close()
  }
  // logged in, then the server closes the connection: the next one logs in again
  const ok = await saslServer(0)
  const b = new Client({ servers: [`127.0.0.1:${ok.port}`], ...login, poolSize: 1, retry: 0 })
  try {
    assert.is(await b.get('k'), undefined)
    assert.is((await failure(b.set('k', 'v'))).code, 'FERROCACHE_CONNECTION')
    assert.is(await b.get('k'), undefined)
    assert.is(ok.logins, 2)
  } finally {
    await b.close()
    await ok.close()
  }
  // a refused login with requests every few ms for a second: connections at most one per
  // `retry` window (then, dead, one probe per `reconnect`), not one per request
  const refusing = await saslServer(0x20)
  const c = new Client({ servers: [`127.0.0.1:${refusing.port}`], ...login, retry: 100, reconnect: 200 })
  let requests = 0
  try {
    const until = Date.now() + 1000
    while (Date.now() < until && requests < 1000) {
      requests++
      await c.get('k').catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    assert.ok(refusing.connections >= 1 && refusing.connections <= 12, `${refusing.connections} connections for ${requests} requests`)
    assert.ok(requests > 20, `${requests} requests`)
  } finally {
    await c.close()
    await refusing.close()
  }
})

s('a SASL login, gets, quiet batches and a store, every reply a byte at a time: CAS past 2^53 and flags 2^32-2 intact', async () => {
  const flags = Buffer.from([0xff, 0xff, 0xff, 0xfe])
  const fake = await fakeServer((opcode, opaque) => {
    if (opcode === OP_SASL_LIST) return response(opcode, opaque, { value: 'SCRAM-SHA-1 PLAIN' })
    if (opcode === OP_SASL_AUTH) return response(opcode, opaque, { value: 'Authenticated' })
    if (opcode === OP_GETKQ) return response(opcode, opaque, { extras: flags, key: 'k', value: 'hit' })
    if (opcode !== OP_GET) return response(opcode, opaque)
    const hit = response(opcode, opaque, { extras: flags, value: 'value' })
    hit.writeBigUInt64BE(2n ** 60n + 3n, 16)
    return hit
  }, 1)
  const c = new Client({ servers: [`127.0.0.1:${fake.port}`], protocol: 'binary', encoding: 'utf8', username: 'app', password: 'pw', timeout: 10_000 })
  try {
    const [entry, many, stored, deleted] = await within(Promise.all([c.gets('a'), c.getMany(['x', 'y', 'x']), c.set('s', 'v'), c.deleteMany(['d', 'e'])]), 20_000, 'the replies')
    assert.equal(entry, { value: 'value', cas: 2n ** 60n + 3n, flags: 0xffff_fffe })
    assert.equal([...many], [['x', 'hit'], ['y', 'hit']])
    assert.is(stored, true)
    assert.is(deleted, 2)
  } finally {
    await c.close()
    await fake.close()
  }
})

s('a server closing mid-batch: the batch fails, nothing is sent twice (no write applied twice)', async () => {
  const opaques: number[] = []
  let packets = 0
  const server = net.createServer((sock) => {
    sock.on('error', () => {})
    let pending = Buffer.alloc(0)
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32BE(8)) {
        const opcode = pending[1]!
        const opaque = pending.readUInt32BE(12)
        opaques.push(opaque)
        pending = pending.subarray(24 + pending.readUInt32BE(8))
        // the 50th packet of the first connection: gone without a word
        if (++packets === 50) return void sock.destroy()
        if (packets > 50 && opcode !== 0x11) sock.write(response(opcode, opaque))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const c = new Client({ servers: [`127.0.0.1:${(server.address() as net.AddressInfo).port}`], protocol: 'binary', retry: 0, poolSize: 1 })
  try {
    const err = await failure(c.setMany(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'] as const)))
    assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
    assert.is(await c.set('after', 'v'), true)
    assert.is(new Set(opaques).size, opaques.length, 'a packet was sent twice')
    assert.ok(opaques.length >= 51 && opaques.length <= 102, `${opaques.length} packets`)
  } finally {
    await c.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
})

s('stats: 3000 stat packets a byte at a time, every one read', async () => {
  const COUNT = 3000
  await withFake(
    (opcode, opaque) => {
      if (opcode !== OP_STAT) return response(opcode, opaque, { status: 0x81 })
      const parts: Buffer[] = []
      for (let i = 0; i < COUNT; i++) parts.push(response(opcode, opaque, { key: `stat_${i}`, value: String(i) }))
      parts.push(response(opcode, opaque, { key: 'curr_items', value: '42' }), response(opcode, opaque))
      return Buffer.concat(parts)
    },
    async (c) => {
      const stats = await within(c.stats(), 20_000, 'stats')
      assert.is(stats.curr_items, 42)
    },
    1,
    // ~100,000 one-byte writes in this process, then as many reads: 2.7-4.4 s at load 10,
    // and once past the default 5 s in a full run. The test's own 20 s bound decides.
    30_000,
  )
})

type Step = (c: Client<'utf8'>) => Promise<unknown>

const EDGES: Array<[string, Step]> = [
  ['flush', (c) => c.flush()],
  ['set n', (c) => c.set('n', '18446744073709551610')],
  ['incr past 2^64', (c) => c.incr('n', 2n ** 63n + 5n)],
  ['incr', (c) => c.incr('n', 10n)],
  ['decr by 2^64-1', (c) => c.decr('n', 2n ** 64n - 1n)],
  ['incr missing', (c) => c.incr('missing')],
  ['set flags 2^32-1, ttl 31 days', (c) => c.set('f', 'x', { flags: 0xffffffff, ttl: 31 * 86_400_000 })],
  ['gets f', (c) => c.gets('f').then((e) => e && [e.value, e.flags, typeof e.cas])],
  ['set at the limit', (c) => c.set('k'.repeat(200), 'x'.repeat(1048317))],
  ['set a byte over', (c) => c.set('k'.repeat(200), 'x'.repeat(1048318))],
  ['setMany with one too large', (c) => c.setMany([['q1', 'a'], ['q2', 'x'.repeat(1048576 + 1)], ['q3', 'c']])],
  ['getMany after it', (c) => c.getMany(['q1', 'q2', 'q3']).then((m) => [...m.keys()])],
  ['cas 2^60', (c) => c.cas('f', 'y', 2n ** 60n)],
  ['cas 0', (c) => c.cas('f', 'y', 0)],
  ['cas missing', (c) => c.cas('nokey', 'y', 5)],
  ['append missing', (c) => c.append('nokey', Buffer.from('a'))],
  ['prepend', (c) => c.prepend('f', Buffer.from('a'))],
  ['get f', (c) => c.get('f')],
  ['incr non-numeric', (c) => c.set('nn', 'abc').then(() => c.incr('nn'))],
  ['incr " 12"', (c) => c.set('sp', ' 12').then(() => c.incr('sp'))],
  ['incr "-1"', (c) => c.set('neg', '-1').then(() => c.incr('neg'))],
  ['incr "007"', (c) => c.set('lead', '007').then(() => c.incr('lead'))],
  ['empty value', (c) => c.set('e', '').then(() => c.get('e'))],
  ['incr empty', (c) => c.incr('e')],
  ['touch 31 days', (c) => c.touch('f', 31 * 86_400_000)],
  ['gat', (c) => c.gat('f', 1000)],
  ['has', (c) => c.has('f')],
  ['deleteMany a key twice', (c) => c.deleteMany(['f', 'f', 'zz'])],
  ['key with a space', (c) => c.set('k w', 'x')],
  ['key with a newline', (c) => c.get('k\nw')],
  ['key of 251 bytes', (c) => c.delete('k'.repeat(251))],
  ['incr a value of 2^64', (c) => c.set('big', '18446744073709551616').then(() => c.incr('big'))],
  ['incr a 20-digit value', (c) => c.set('big', '18446744073709551615').then(() => c.incr('big'))],
  // a delay of 30 days (the largest): nothing goes now, and the next run's flush replaces it
  ['flush in 30 days', (c) => c.flush(30 * 86_400_000)],
  ['get after it', (c) => c.get('big')],
]

async function outcomes(port: number, protocol: ClientOptions['protocol']): Promise<string[]> {
  const c = new Client({ servers: [`127.0.0.1:${port}`], protocol, encoding: 'utf8' })
  const out: string[] = []
  try {
    for (const [name, step] of EDGES) {
      const result = await step(c).then(
        (v) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)),
        (e: Err) => `${e.name} ${e.code}`,
      )
      out.push(`${name}: ${result}`)
    }
  } finally {
    await c.close()
  }
  return out
}

s('edge cases give the same results in meta, text and binary, on memcached 1.6.18 and ferrocached', async (ctx) => {
  const expected = await outcomes(ctx.memcached!.port, 'meta')
  // the expectation itself is checked where it is plain
  assert.ok(expected.includes('incr past 2^64: "9223372036854775807n"'), expected.join('\n'))
  assert.ok(expected.includes('set a byte over: RangeError FERROCACHE_TOO_LARGE'), expected.join('\n'))
  assert.ok(expected.includes('key with a space: TypeError FERROCACHE_BAD_KEY'), expected.join('\n'))
  // memcached rewrites a shorter incr result in place, padded with spaces, in every dialect
  assert.ok(expected.includes(`get after it: "0${' '.repeat(19)}"`), expected.join('\n'))
  for (const [name, server] of [['memcached', ctx.memcached!], ['ferrocached', ctx.ferrocached!]] as const) {
    for (const protocol of ['meta', 'text', 'binary'] as const) {
      assert.equal(await outcomes(server.port, protocol), expected, `${name} ${protocol}`)
    }
  }
})

/** 1500 random operations on keys under `prefix` (each dialect its own keys on one
 * server), results written out without the prefix; CAS tokens are used, not compared. */
async function randomRun(c: Client<'utf8'>, prefix: string): Promise<string[]> {
  const r = rng(20261126)
  const cas = new Map<string, bigint>()
  const out: string[] = []
  const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? 'undefined'
  for (let i = 0; i < 1500; i++) {
    const k = `${prefix}${r(30)}`
    const v = r(3) === 0 ? String(r(1000)) : 'v'.repeat(r(2000))
    const keys = Array.from({ length: 1 + r(6) }, () => `${prefix}${r(30)}`)
    const flags = r(4) === 0 ? 0xffff_ffff - r(3) : r(2)
    const d = r(4) === 0 ? 2n ** 64n - 1n - BigInt(r(3)) : BigInt(r(100))
    const steps: Array<() => Promise<unknown>> = [
      () => c.get(k),
      async () => {
        const e = await c.gets(k)
        if (e) cas.set(k, e.cas)
        return e && [e.value, e.flags]
      },
      async () => [...(await c.getMany(keys)).values()],
      () => c.set(k, v, { flags }),
      () => c.setMany(keys.map((x) => [x, v] as const)),
      () => c.add(k, v, { flags }),
      () => c.replace(k, v),
      () => c.append(k, Buffer.from(String(r(10)))),
      () => c.prepend(k, Buffer.from(String(r(10)))),
      () => c.cas(k, v, cas.get(k) ?? 1n),
      () => c.incr(k, d),
      () => c.decr(k, d),
      () => c.touch(k, 60_000),
      () => c.gat(k, 31 * 86_400_000),
      () => c.delete(k),
      () => c.deleteMany(keys),
      () => c.has(k),
    ]
    const pick = r(steps.length)
    out.push(`${i} ${pick}: ${await steps[pick]!().then(show, (e: Err) => `${e.name} ${e.code}`)}`)
  }
  return out
}

s('1500 random operations: binary gives what meta gives, on memcached 1.6.18 and ferrocached', async (ctx) => {
  for (const [name, server] of [['memcached', ctx.memcached!], ['ferrocached', ctx.ferrocached!]] as const) {
    const results: string[][] = []
    for (const protocol of ['meta', 'binary'] as const) {
      const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, encoding: 'utf8' })
      try {
        results.push(await randomRun(c, `${protocol}:`))
      } finally {
        await c.close()
      }
    }
    const [meta, binary] = results as [string[], string[]]
    const i = meta.findIndex((line, j) => line !== binary[j])
    assert.is(i, -1, `${name}: op ${meta[i]} (meta) vs ${binary[i]} (binary)`)
    // the plan did something: hits, misses and errors all occur
    assert.ok(meta.some((l) => l.endsWith('FERROCACHE_NON_NUMERIC')) && meta.some((l) => l.endsWith('true')) && meta.some((l) => l.endsWith('false')))
  }
})

s.run()
