// memcached's UDP protocol (-U): the same datagrams go to Debian's memcached 1.6.18 and to
// ferrocached, and the reply datagrams are compared byte for byte, headers and split
// points included: each response object its own message, as memcached frames them
// (docs/protocol.md "UDP"). Then libmemcached's UDP clients, the command line and the API.
// Every wait is bounded; servers are stopped by their PIDs.
import dgram from 'node:dgram'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseCommandLine, type CliSettings } from '../src/cli/options'
import { createServer } from '../src/server'
import { binaryPacket, normalise } from './helpers/corpus'
import { generate } from './helpers/diffgen'
import { memcachedReadPastValue, writesOf } from './helpers/diffrun'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { BIN, freePort, MEMCACHED, run, runCli, spawnOwned, startAll, startFerrocached, startMemcached, stopChild, waitForPort, type Running } from './helpers/servers'
import { binaryRequest as packet } from './helpers/binary'

const HEADER = 8
const MAX_DATAGRAM = 1400

/** UDP ports this file handed out (never twice). */
const udpPorts = new Set<number>()

/** A UDP port nothing is bound to on 127.0.0.1 right now (the kernel picks it). */
async function freeUdpPort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = dgram.createSocket('udp4')
      s.once('error', reject)
      s.bind(0, '127.0.0.1', () => {
        const { port } = s.address()
        s.close(() => resolve(port))
      })
    })
    if (!udpPorts.has(port)) {
      udpPorts.add(port)
      return port
    }
  }
  throw new Error('no new UDP port in 100 tries')
}

/** A request datagram: the 8-byte frame header, then `payload`. */
function frame(requestId: number, payload: Buffer | string, seq = 0, total = 1, reserved = 0): Buffer {
  const header = Buffer.alloc(HEADER)
  header.writeUInt16BE(requestId, 0)
  header.writeUInt16BE(seq, 2)
  header.writeUInt16BE(total, 4)
  header.writeUInt16BE(reserved, 6)
  return Buffer.concat([header, Buffer.from(payload as string, 'latin1')])
}

/** A UDP client socket on 127.0.0.1 that keeps what arrives. */
class UdpClient {
  private received: Buffer[] = []
  private lastAt = 0
  private constructor(private readonly socket: dgram.Socket, private readonly port: number) {
    socket.on('message', (msg) => {
      this.received.push(msg)
      this.lastAt = Date.now()
    })
    socket.on('error', () => {})
  }

  static open(port: number): Promise<UdpClient> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket('udp4')
      s.once('error', reject)
      s.bind(0, '127.0.0.1', () => resolve(new UdpClient(s, port)))
    })
  }

  /**
   * Sends `datagram` and returns the datagrams that came back: waits up to `firstMs` for
   * the first, then until none arrived for `quietMs` (at most 5 s in all).
   */
  async exchange(datagram: Buffer, firstMs = 1_500, quietMs = 120): Promise<Buffer[]> {
    this.received = []
    const start = Date.now()
    this.socket.send(datagram, this.port, '127.0.0.1')
    for (;;) {
      await new Promise((r) => setTimeout(r, 10))
      const now = Date.now()
      if (now - start > 5_000) break
      if (this.received.length === 0 ? now - start > firstMs : now - this.lastAt > quietMs) break
    }
    return this.received
  }

  /**
   * Sends `datagram` and returns the datagrams that came back once the joined payload
   * satisfies `done`, or after 1.5 s (a `quit` skips the end mark).
   */
  async until(datagram: Buffer, done: (payload: Buffer) => boolean): Promise<Buffer[]> {
    this.received = []
    const start = Date.now()
    this.socket.send(datagram, this.port, '127.0.0.1')
    while (Date.now() - start < 1_500) {
      await new Promise((r) => setTimeout(r, 2))
      if (done(Buffer.concat(this.received.map((d) => d.subarray(HEADER))))) break
    }
    return this.received
  }

  /** For requests that get no reply: a shorter wait. */
  silent(datagram: Buffer): Promise<Buffer[]> {
    return this.exchange(datagram, 300)
  }

  close(): void {
    this.socket.close()
  }
}

/** Datagrams as comparable text: the header in hex, then the payload. */
function show(datagrams: Buffer[]): string[] {
  return datagrams.map((d) => `${d.subarray(0, HEADER).toString('hex')} ${d.length} ${JSON.stringify(d.subarray(HEADER).toString('latin1'))}`)
}

/** The replies' payloads, headers dropped and joined. */
function payload(datagrams: Buffer[]): string {
  return Buffer.concat(datagrams.map((d) => d.subarray(HEADER))).toString('latin1')
}

interface Pair {
  memcached: Running & { udp: number }
  ferrocached: Running & { udp: number }
}
let pair: Pair | undefined
const started: Running[] = []

setUp(test, async () => {
  const [mu, fu] = [await freeUdpPort(), await freeUdpPort()]
  // memcached with one worker thread: one UDP connection, as ferrocached's one session
  const [m, f] = await startAll([() => startMemcached(['-U', String(mu)]), () => startFerrocached(['-U', String(fu)])])
  started.push(m!, f!)
  pair = { memcached: { ...m!, udp: mu }, ferrocached: { ...f!, udp: fu } }
  // the same items in both, over TCP
  const big = 'x'.repeat(5000)
  for (const s of [m!, f!]) {
    const c = await RawConn.open(s.port)
    c.send(`set k1 1 0 3\r\nabc\r\nset k2 2 0 4\r\ndefg\r\nset big 0 0 5000\r\n${big}\r\nset n 0 0 2\r\n10\r\n`)
    assert.is(await c.until('STORED\r\n'.repeat(4)), 'STORED\r\n'.repeat(4))
    c.close()
  }
})

tearDown(test, async () => {
  await Promise.all(started.map((s) => stopChild(s.child)))
})

/** Sends each datagram in order from one client per server; returns both servers' replies. */
async function both(datagrams: Buffer[], silent = false): Promise<{ memcached: Buffer[][]; ferrocached: Buffer[][] }> {
  const p = pair!
  const runOn = async (port: number): Promise<Buffer[][]> => {
    const c = await UdpClient.open(port)
    try {
      const out: Buffer[][] = []
      for (const d of datagrams) out.push(silent ? await c.silent(d) : await c.exchange(d))
      return out
    } finally {
      c.close()
    }
  }
  const [memcached, ferrocached] = await Promise.all([runOn(p.memcached.udp), runOn(p.ferrocached.udp)])
  return { memcached, ferrocached }
}

/** A `stats` line over TCP. */
async function statOf(port: number, name: string, family = ''): Promise<string> {
  const c = await RawConn.open(port)
  c.send(`stats${family === '' ? '' : ` ${family}`}\r\n`)
  const text = await c.until('END\r\n')
  c.close()
  const value = new RegExp(`STAT ${name} (\\S+)\r\n`).exec(text)?.[1]
  assert.ok(value !== undefined, `${name} in ${text}`)
  return value!
}

// first: binary datagrams open a second session in ferrocached (docs/protocol.md "UDP")
test('the UDP connection counts in curr_connections as memcached\'s (-t 1: one)', async () => {
  const p = pair!
  for (const name of ['curr_connections']) {
    assert.is(await statOf(p.ferrocached.port, name), await statOf(p.memcached.port, name), name)
  }
  assert.is(await statOf(p.ferrocached.port, 'num_threads_per_udp', 'settings'), await statOf(p.memcached.port, 'num_threads_per_udp', 'settings'))
})

/** Ends every datagram of the randomized runs: its reply says the datagram is answered. */
const TEXT_MARK = Buffer.from('mn\r\n')
const BINARY_MARK = binaryPacket('noop opaque=3735928559')

/** Whether the joined payload of a datagram's replies holds its end mark's reply (after `mn`s of its own). */
function marked(reply: Buffer, binary: boolean, ownMn: number): boolean {
  if (!binary) return reply.toString('latin1').split('MN\r\n').length - 1 > ownMn
  for (let at = 0; at + 24 <= reply.length; at += 24 + reply.readUInt32BE(at + 8)) {
    if (reply[at] === 0x81 && reply[at + 1] === 0x0a && reply.readUInt32BE(at + 12) === 0xdeadbeef) return true
  }
  return false
}

/**
 * The randomized differential test's text request streams (helpers/diffgen.ts), each write
 * one datagram with an end mark: the replies' payloads, normalised, per datagram. Left out:
 * requests that may cut a value off (`risky`: a wrong length; they differ by design, see
 * below), CAS-quoting ones (they need each server's CAS values), `quit` and binary
 * requests: after a `quit` or a binary protocol error memcached 1.6.18 runs every later
 * datagram only up to its first write-out (docs/protocol.md "UDP"); binary datagrams are
 * compared one by one above.
 */
async function randomRun(port: number, seed: number, now: number): Promise<string[]> {
  const c = await UdpClient.open(port)
  const out: string[] = []
  try {
    const writes = writesOf(generate(seed, 40).filter((r) => r.conn !== 3 && !r.risky && !r.usesCas && !/^quit\b/.test(r.show)))
    for (const [i, write] of writes.entries()) {
      const binary = write[0]!.conn === 3
      const render = { prefix: `u${seed}-`, cas: '0', now }
      const body = Buffer.concat([...write.map((r) => r.build(render)), binary ? BINARY_MARK : TEXT_MARK])
      const ownMn = write.filter((r) => /^mn\b/.test(r.show)).length
      const replies = await c.until(frame(i, body.toString('latin1')), (got) => marked(got, binary, ownMn))
      out.push(`${write.map((r) => r.show).join(' ')} => ${ticked(normalise(Buffer.from(payload(replies), 'latin1')))}`)
    }
  } finally {
    c.close()
  }
  return out
}

/**
 * TTLs in meta replies (`t`, `me`'s `exp`) tick apart between two servers whose clocks
 * turn at different moments: small ones kept, others by sign and size only (TTLs are
 * compared over TCP by differential-random.test.ts).
 */
function ticked(text: string): string {
  return text
    .replace(/( exp=| t)(-?\d+)(?= |\r|$)/g, (_, flag: string, n: string) => {
      const v = Number(n)
      const shown = v >= 2 ** 31 ? '<past>' : Math.abs(v) > 2_592_000 ? '<far>' : Math.abs(v) < 10 ? n : v < 0 ? '-<n>' : '<n>'
      return `${flag}${shown}`
    })
    // seconds since the last access (`mg … l`, `me`'s `la=`) tick too: `l0` against `l1`
    // in 2 of 3018 streams of a long run (as TCP's runner, not compared)
    .replace(/^(?:VA|HD|EN|NF|NS|EX|ME) .*$/gm, (line) => line.replace(/ (la=|l)\d+(?= |\r|$)/g, ' $1<s>'))
}

/**
 * Whether the first differing write is one where memcached answered an increment as
 * non-numeric by reading past a value of 2^63 or more into its slab memory, which depends
 * on what that memory held (diffrun.ts, memcachedReadPastValue; seed 33 met it once in CI).
 */
function readPastValue(expected: string[], actual: string[]): boolean {
  const at = expected.findIndex((e, i) => e !== actual[i])
  if (at < 0) return false
  const replies = (write: string | undefined) => (write ?? '').slice((write ?? '').indexOf(' => ') + ' => '.length)
  return memcachedReadPastValue(replies(expected[at]), replies(actual[at]))
}

test('readPastValue excuses only memcached answering an increment non-numeric', () => {
  // seed 33's first differing write in a CI run (2026-11-27), its value 18446744073709551615
  const same = 'mn => MN\r\n'
  const show = 'ma $B64(d) b\r\n gats +1000 $KEY(d)\r\n => '
  const memcached = [same, `${show}CLIENT_ERROR cannot increment or decrement non-numeric value\r\nEND\r\nMN\r\n`]
  const ferrocached = [same, `${show}HD\r\nEND\r\nMN\r\n`]
  assert.ok(readPastValue(memcached, ferrocached))
  assert.not.ok(readPastValue(ferrocached, memcached))
  assert.not.ok(readPastValue([same, `${show}HD\r\nEND\r\n`], ferrocached))
  assert.not.ok(readPastValue(memcached, memcached))
})

// before the tests below: some leave memcached's UDP connection in states that change
// how it answers later datagrams (a cut-off value, `watch`)
test('randomized request streams, one datagram per write: the same replies as memcached', async () => {
  const p = pair!
  for (let seed = 1; seed <= 40; seed++) {
    // one clock reading for both: absolute exptimes are the same bytes to each server
    const now = Math.floor(Date.now() / 1000)
    const [expected, actual] = await Promise.all([randomRun(p.memcached.udp, seed, now), randomRun(p.ferrocached.udp, seed, now)])
    if (readPastValue(expected, actual)) {
      console.log(`\nseed ${seed}: memcached read past a value of 2^63 or more (docs/protocol.md)`)
      continue
    }
    assert.equal(actual, expected, `seed ${seed}`)
  }
})

/** `show`, with the CAS of each binary response packet zeroed (the servers' CAS values differ). */
function showMasked(datagrams: Buffer[]): string[] {
  return show(
    datagrams.map((d) => {
      const copy = Buffer.from(d)
      for (let at = HEADER; at + 24 <= copy.length && copy[at] === 0x81; at += 24 + copy.readUInt32BE(at + 8)) copy.fill(0, at + 16, at + 24)
      return copy
    }),
  )
}

// before the `quit` tests (see randomRun)
test('binary requests in one datagram: a message per response, bare headers where memcached sends them', async () => {
  const noop = packet(0x0a, '', undefined, '', { opaque: 9 })
  const flags = Buffer.alloc(8)
  const cases: Buffer[] = [
    Buffer.concat([packet(0x0d, 'nope'), packet(0x0d, 'k1'), noop]),
    Buffer.concat([packet(0x09, 'nope'), packet(0x09, 'nope2'), noop]),
    Buffer.concat([noop, packet(0x09, 'nope'), noop]),
    Buffer.concat([...Array(25).fill(packet(0x0d, 'nope')), noop]),
    Buffer.concat([packet(0x12, 'k1', flags, 'z'), packet(0x0d, 'nope'), noop]),
    Buffer.concat([packet(0x14, 'nope'), packet(0x0d, 'nope'), noop]),
    Buffer.concat([packet(0x11, 'bq', flags, 'v'), packet(0x0c, 'bq')]),
    Buffer.concat([packet(0x0b), packet(0x0b), noop]),
  ]
  const r = await both(cases.map((c, i) => frame(70 + i, c.toString('latin1'))))
  for (let i = 0; i < cases.length; i++) {
    assert.equal(showMasked(r.ferrocached[i]!), showMasked(r.memcached[i]!), `case ${i}`)
    assert.ok(r.memcached[i]!.length > 1, `case ${i}: memcached sent several messages`)
  }
})

/**
 * Datagrams mixing kinds of request: a message per response object, as memcached (before
 * the `quit` cases below: once its UDP connection was closed, memcached runs a datagram
 * only up to its first write-out).
 */
const MIXED: string[] = [
  'set a 1 0 1\r\nx\r\nget a\r\n',
  'get a\r\nset a 1 0 1\r\nx\r\n',
  'version\r\nget k1 k2\r\n',
  'version\r\nget nope k1\r\n',
  'incr n 1\r\ndelete nope\r\n',
  'delete nope\r\nget nope k1\r\n',
  'get k1\r\nget nope k2\r\n',
  'mn\r\nmn\r\nget nope\r\nmn\r\n',
  'mg k1 v\r\nmg nope v\r\nmn\r\n',
  // quiet meta and noreply: skipped, no bare header even first; an empty get key after them is one
  'mg nope v q\r\nmg k1 v q\r\nmn\r\n',
  'mg nope v q\r\nget nope k1\r\n',
  'ms q1 1 q\r\nX\r\nmg q1 v\r\n',
  'md nope q\r\nmg k1 v\r\n',
  'set nr 0 0 1 noreply\r\ny\r\nget nope k1\r\n',
  'delete nope noreply\r\nversion\r\n',
  'get k1\r\nset nr 0 0 1 noreply\r\ny\r\nget k2\r\n',
  // errors mid-datagram are no write-out: a miss after them is absorbed
  'bogus\r\nget nope k1\r\n',
  'get k1\r\nbogus\r\nversion\r\n',
  `get ${'k'.repeat(251)}\r\nget nope k1\r\n`,
  'incr k1 1\r\nversion\r\n',
  'touch k1 0\r\nget k1 k2 nope\r\n',
  // -R 20: a write-out after the 21st request, the next miss first in its batch
  `${'set nr 0 0 1 noreply\r\ny\r\n'.repeat(19)}get nope k1\r\n`,
  `version\r\n${'set nr 0 0 1 noreply\r\ny\r\n'.repeat(19)}get nope k1\r\n`,
  `version\r\n${'set nr 0 0 1 noreply\r\ny\r\n'.repeat(20)}get nope k1\r\n`,
  `${'version\r\n'.repeat(24)}get nope k1\r\n`,
]

test('datagrams mixing kinds of request: a message per response, bare headers where memcached sends them', async () => {
  const requests = MIXED.map((m, i) => frame(80 + i, m))
  const r = await both(requests)
  for (let i = 0; i < requests.length; i++) assert.equal(show(r.ferrocached[i]!), show(r.memcached[i]!), JSON.stringify(MIXED[i]))
  assert.ok(r.memcached.filter((d) => d.length > 1).length >= 20, 'memcached sent several messages for most')
})

test('binary: a quiet request alone gets a bare header, as from memcached', async () => {
  const flags = Buffer.alloc(8)
  const cases = [packet(0x0d, 'nope'), packet(0x11, 'bq2', flags, 'v'), Buffer.concat([packet(0x0d, 'nope'), packet(0x09, 'nope')])]
  const r = await both(cases.map((c, i) => frame(120 + i, c.toString('latin1'))))
  for (let i = 0; i < cases.length; i++) assert.equal(showMasked(r.ferrocached[i]!), showMasked(r.memcached[i]!), `case ${i}`)
  assert.equal(r.memcached.map((d) => d.length), [1, 1, 1])
})

/** The datagram sequences memcached answers with exactly one response object each. */
const SAME_BYTES: Array<[string, Buffer[]]> = [
  ['version', [frame(0x1234, 'version\r\n')]],
  ['get, hit', [frame(7, 'get k1\r\n')]],
  ['get, miss', [frame(8, 'get nope\r\n')]],
  // multi-key reads: a message per key's response object, a bare header first when the
  // first key misses, END on the last key's
  ['get, hit miss hit', [frame(41, 'get k1 nope k2\r\n')]],
  ['get, miss hit', [frame(42, 'get nope k1\r\n')]],
  ['get, hit miss', [frame(44, 'get k1 nope\r\n')]],
  ['get, miss miss', [frame(45, 'get nope nope\r\n')]],
  ['get, miss miss hit miss, spaces doubled', [frame(46, 'get  nope nope  k1 nope\n')]],
  ['gat, miss hit', [frame(47, 'gat 0 nope k2\r\n')]],
  ['two gets in one datagram', [frame(48, 'get nope k1\r\nget k2 nope\r\n')]],
  ['a 20-key get of 5000-byte items', [frame(43, `get ${'big '.repeat(20)}\r\n`)]],
  ['a reply of 4 datagrams (1392 payload bytes each but the last)', [frame(0xfffe, 'get big\r\n')]],
  ['meta get of the large item', [frame(9, 'mg big v f\r\n')]],
  ['a 60000-byte set in one datagram, then its 44-datagram reply', [frame(10, `set s60 0 0 60000\r\n${'y'.repeat(60000)}\r\n`), frame(11, 'mg s60 v\r\n')]],
  ['incr', [frame(12, 'incr n 5\r\n')]],
  ['mn, unknown command, shutdown when not enabled', [frame(13, 'mn\r\n'), frame(14, 'foo\r\n'), frame(15, 'shutdown\r\n')]],
  ['the sequence number and reserved field are ignored', [frame(16, 'version\r\n', 1), frame(17, 'version\r\n', 0, 1, 9)]],
  ['quit alone: a bare header, 0 datagrams', [frame(18, 'quit\r\n'), frame(19, 'version\r\n')]],
  ['quit skips the rest of the datagram', [frame(20, 'version\r\nquit\r\nversion\r\n'), frame(34, 'quit\r\nversion\r\n'), frame(35, 'quit\n')]],
  ['QUIT is no command', [frame(36, 'QUIT\r\n')]],
  ['noreply, then a get, in one datagram (one response)', [frame(21, 'set nr 0 0 1 noreply\r\ny\r\nget nr\r\n')]],
  ['a line cut off at the end of the datagram is dropped', [frame(25, 'get k1'), frame(26, '\r\n')]],
  ['binary version, then text on the same socket', [
    frame(27, Buffer.from('800b0000000000000000000000000001', 'hex').subarray(0, 16).toString('latin1') + '\0'.repeat(8)),
    frame(28, 'version\r\n'),
  ]],
  ['binary noop', [frame(29, Buffer.from('800a0000000000000000000000000006', 'hex').toString('latin1') + '\0'.repeat(8))]],
]

for (const [name, datagrams] of SAME_BYTES) {
  test(`same datagrams as memcached: ${name}`, async () => {
    const r = await both(datagrams)
    for (let i = 0; i < datagrams.length; i++) assert.equal(show(r.ferrocached[i]!), show(r.memcached[i]!), `reply to datagram ${i}`)
    assert.ok(r.memcached.some((d) => d.length > 0), 'memcached answered')
  })
}

test('no reply, as memcached: short, header-only and multi-datagram requests, noreply', async () => {
  const requests = [
    Buffer.from('abc'),
    frame(30, ''),
    frame(31, 'version\r\n', 0, 2),
    frame(32, 'version\r\n', 0, 0),
    frame(33, 'set q 0 0 1 noreply\r\nz\r\n'),
    // a line too long: the session ends, without a bare header (only `quit` gets one)
    frame(37, 'a'.repeat(3000)),
  ]
  const r = await both(requests, true)
  assert.equal(r.memcached.map((d) => d.length), [0, 0, 0, 0, 0, 0])
  assert.equal(r.ferrocached.map((d) => d.length), [0, 0, 0, 0, 0, 0])
})

test('lru_crawler metadump over UDP sends nothing, as memcached (no key list to a spoofable source); its errors are sent', async () => {
  const r = await both([frame(38, 'lru_crawler metadump all\r\n'), frame(39, 'lru_crawler metadump hash\r\n'), frame(40, 'lru_crawler metadump 99\r\n'), frame(49, 'version\r\n')], true)
  const answers = 'BADCLASS invalid class id\r\nVERSION 1.6.18\r\n'
  // memcached may send a bare header (count 0) for the dump once its crawler lets go
  assert.is(payload(r.memcached.flat()), answers)
  assert.equal(r.ferrocached.map(show), [[], [], ['0028000000010000 35 "BADCLASS invalid class id\\r\\n"'], ['0031000000010000 24 "VERSION 1.6.18\\r\\n"']])
})

test('a value cut off at the end of a datagram: dropped here, memcached eats the next datagram with it', async () => {
  const r = await both([frame(22, 'set cut 0 0 10\r\nabc'), frame(23, 'defghij\r\n'), frame(24, 'get cut\r\n')])
  // memcached reads the next datagram's first bytes, header included, as the rest of the
  // value: that datagram is lost, answered under the earlier request id
  assert.equal(show(r.memcached.flat()), ['0016000000010000 37 "CLIENT_ERROR bad data chunk\\r\\n"', '0018000000010000 13 "END\\r\\n"'])
  // ferrocached: each datagram stands alone
  assert.equal(show(r.ferrocached.flat()), ['0017000000010000 15 "ERROR\\r\\n"', '0018000000010000 13 "END\\r\\n"'])
})

test('stats settings over UDP: udpport and tcpport, the reply split at 1400 bytes', async () => {
  const { memcached, ferrocached } = await both([frame(50, 'stats settings\r\n')])
  for (const [server, replies] of [[pair!.memcached, memcached[0]!], [pair!.ferrocached, ferrocached[0]!]] as const) {
    const text = payload(replies)
    assert.match(text, `STAT tcpport ${server.port}\r\nSTAT udpport ${server.udp}\r\n`)
    assert.ok(text.endsWith('END\r\n'))
    const n = replies.length
    replies.forEach((d, seq) => {
      assert.is(d.readUInt16BE(0), 50)
      assert.is(d.readUInt16BE(2), seq)
      assert.is(d.readUInt16BE(4), n)
      assert.is(d.readUInt16BE(6), 0)
      if (seq < n - 1) assert.is(d.length, MAX_DATAGRAM)
    })
  }
})

test('libmemcached over UDP: memccp stores a file, memcslap sets keys', async () => {
  const f = pair!.ferrocached
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-udp-'))
  const file = join(dir, 'udp-file.txt')
  writeFileSync(file, 'sent over udp\n')
  const cp = await run('/usr/bin/memccp', [`--servers=127.0.0.1:${f.udp}`, '--udp', file])
  assert.is(cp.code, 0, cp.stderr)
  const c = await RawConn.open(f.port)
  c.send('get udp-file.txt\r\n')
  assert.match(await c.until('END\r\n'), /^VALUE udp-file\.txt \d+ 14\r\nsent over udp\n\r\nEND\r\n$/)
  // memcslap's UDP sets are sent without waiting (noreply): some may be dropped when the
  // socket buffer fills, so the count is at most what it sent, and each arrived whole
  c.send('stats\r\n')
  const before = Number(/STAT cmd_set (\d+)/.exec(await c.until('END\r\n'))?.[1])
  const slap = await run('/usr/bin/memcslap', [`--servers=127.0.0.1:${f.udp}`, '--udp', '--execute-number=20', '--concurrency=1'], { ms: 20_000 })
  assert.is(slap.code, 0, slap.stderr)
  c.send('stats\r\n')
  const stats = await c.until('END\r\n')
  const sets = Number(/STAT cmd_set (\d+)/.exec(stats)?.[1]) - before
  assert.ok(sets > 0 && sets <= 20, `memcslap's sets arrived: ${sets}`)
  c.close()
})

// last on these servers: their UDP sessions skip the next megabyte of datagrams
test('a value over the item size limit is skipped across the following datagrams, as memcached', async () => {
  const r = await both([frame(60, `set huge 0 0 1048577\r\n${'h'.repeat(100)}`), frame(61, 'version\r\n')], true)
  assert.equal(r.memcached.map((d) => d.length), [0, 0])
  assert.equal(r.ferrocached.map((d) => d.length), [0, 0])
})

test('command line: -U without -p puts TCP on the same port, as memcached', async () => {
  const [mp, fp] = [await freePort(), await freePort()]
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const m = spawnOwned(MEMCACHED, ['-U', String(mp), '-l', '127.0.0.1', '-t', '1', ...root], { stdio: 'ignore' })
  const f = spawnOwned(process.execPath, [BIN, '-U', String(fp)], { stdio: 'ignore' })
  try {
    await Promise.all([waitForPort(mp, 10_000, m), waitForPort(fp, 15_000, f)])
    for (const port of [mp, fp]) {
      const c = await UdpClient.open(port)
      assert.equal(show(await c.exchange(frame(1, 'version\r\n'))), [`0001000000010000 24 "VERSION 1.6.18\\r\\n"`])
      c.close()
    }
  } finally {
    await Promise.all([stopChild(m), stopChild(f)])
  }
})

test('command line: -U with logins is refused as memcached refuses it (exit 64)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-udp-'))
  const users = join(dir, 'users')
  writeFileSync(users, 'user:pass\n', { mode: 0o644 })
  const port = String(await freeUdpPort())
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const m = await run(MEMCACHED, ['-U', port, '-p', '0', '-Y', users, ...root], { ms: 10_000 })
  const f = await runCli(['-U', port, '-Y', users])
  assert.is(m.code, 64)
  assert.is(f.code, 64)
  assert.ok(f.stderr.includes(m.stderr.trim()), `${f.stderr} / ${m.stderr}`)
})

test('command line: a UDP port in use stops the start (exit 71, "cannot listen")', async () => {
  const taken = dgram.createSocket('udp4')
  taken.on('error', () => {})
  await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', () => resolve()))
  try {
    const r = await runCli(['-U', String(taken.address().port), '-p', String(await freePort())])
    assert.is(r.code, 71)
    assert.match(r.stderr, /"err":"bind EADDRINUSE[^"]*","host":"127\.0\.0\.1","port":\d+,"msg":"cannot listen"/)
  } finally {
    taken.close()
  }
})

test('command line: -U 0 is off, -U N sets the UDP port (and TCP without -p), -s turns it off', () => {
  const settings = (argv: string[], env: NodeJS.ProcessEnv = {}): CliSettings => {
    const c = parseCommandLine(argv, env)
    if (c.kind !== 'run') throw new Error(`${argv.join(' ')}: ${c.kind}`)
    return c.settings
  }
  assert.is(settings(['-U', '0']).udpPort, undefined)
  assert.is(settings(['-U', '0']).port, 11211)
  assert.equal([settings(['-U', '5000']).udpPort, settings(['-U', '5000']).port], [5000, 5000])
  assert.equal([settings(['-U', '5000', '-p', '6000']).udpPort, settings(['-U', '5000', '-p', '6000']).port], [5000, 6000])
  assert.is(settings([], { FERROCACHE_UDP_PORT: '7000', FERROCACHE_PORT: '7001' }).udpPort, 7000)
  const unix = settings(['-s', '/tmp/x.sock', '-U', '5000'])
  assert.is(unix.udpPort, undefined)
  assert.match(String(unix.notes), /-U 5000: ignored/)
})

test('API: udpPort 0 picks a port; replication commands refused; shutdown works; close frees the port', async () => {
  const server = createServer({ port: 0, udpPort: 0, enableShutdown: true })
  await server.listen()
  const udp = server.udpAddress()
  assert.ok(udp !== null && udp.port > 0)
  const c = await UdpClient.open(udp!.port)
  try {
    assert.equal(show(await c.exchange(frame(3, 'replicaof no one\r\n'))), [
      `0003000000010000 65 "SERVER_ERROR replication commands need a TCP connection\\r\\n"`,
    ])
    // a `watch` needs a connection: nothing comes back, and the next datagram is served
    assert.equal(await c.silent(frame(4, 'watch\r\n')), [])
    assert.equal(payload(await c.exchange(frame(5, 'version\r\n'))), 'VERSION 1.6.18\r\n')
    const closed = new Promise<void>((resolve) => server.once('close', resolve))
    assert.equal(payload(await c.silent(frame(6, 'shutdown\r\n'))), '')
    await closed
    assert.equal(await c.silent(frame(7, 'version\r\n')), [])
  } finally {
    c.close()
    await server.close()
  }
  // the port is free again
  const again = createServer({ port: 0, udpPort: udp!.port })
  await again.listen()
  assert.is(again.udpAddress()?.port, udp!.port)
  await again.close()
  assert.throws(() => createServer({ udpPort: 0, authFile: '/x' }), /UDP has no logins/)
})

test('API: an address with its own port serves UDP there (memcached\'s -l host:port); watchers see UDP requests', async () => {
  const server = createServer({ port: 0, listen: [{ host: '127.0.0.1', port: await freePort() }], udpPort: await freeUdpPort() })
  await server.listen()
  const other = createServer({ port: 0, listen: [{ host: '127.0.0.1', port: 0 }], udpPort: 0 })
  await other.listen()
  try {
    // without a port of its own the address takes udpPort; with one, UDP goes there
    assert.is(server.udpAddress()?.port, server.address()?.port)
    assert.is.not(other.udpAddress()?.port, other.address()?.port)
    const watcher = await RawConn.open(server.address()!.port)
    watcher.send('watch fetchers\r\n')
    assert.is(await watcher.until('OK\r\n'), 'OK\r\n')
    const c = await UdpClient.open(server.udpAddress()!.port)
    assert.equal(payload(await c.exchange(frame(1, 'get seen\r\n'))), 'END\r\n')
    assert.match(await watcher.until(/\n$/), /item_get key=seen status=not_found/)
    c.close()
    watcher.close()
  } finally {
    await Promise.all([server.close(), other.close()])
  }
})

test.run()
