// Review of the meta and binary protocols against memcached 1.6.18: each case is sent in
// one write on a fresh connection to both servers and the reply bytes and whether the
// server hung up are compared. The first cases failed before their fixes: memcached reads
// TCP 16 KiB at a time, so a value or skipped body running past its read, or a request
// line reaching past it, is a write-out point a later hang-up or overlong `get` key
// cannot take back; a binary store whose body length is negative as an int does not
// write its error out; binary `stat extstore` is unknown. The rest guard meta and
// binary corners the review found matching (docs/protocol.md).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { binaryRequest } from './helpers/binary'
import { setUp, tearDown } from './helpers/guard'
import { askOnce as ask, type Answer } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

let memcached: Running
let ferrocached: Running

setUp(test, async () => {
  ;[memcached, ferrocached] = await startAll([() => startMemcached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all([memcached?.stop(), ferrocached?.stop()])
})

/** Asserts both servers answer `request` alike; returns memcached's answer. */
async function same(request: Buffer): Promise<Answer> {
  const want = await ask(memcached.port, request)
  const got = await ask(ferrocached.port, request)
  assert.equal(got, want)
  return want
}

const text = (s: string): Buffer => Buffer.from(s, 'latin1')
const KEY_251 = 'k'.repeat(251)
const BAD_MAGIC = Buffer.alloc(24)
const setBin = (key: string, value: string): Buffer => binaryRequest(0x01, key, Buffer.alloc(8), value)

test('a text value past memcached 16 KiB read is written out before a later overlong get key', async () => {
  const request = (n: number): Buffer =>
    text(`set a 0 0 1\r\nx\r\nset b 0 0 ${n}\r\n${'y'.repeat(n)}\r\nset c 0 0 1\r\nz\r\nget ${KEY_251}\r\n`)
  const past = await same(request(17_000))
  assert.is(past.reply, 'STORED\r\nSTORED\r\nCLIENT_ERROR bad command line format\r\n')
  const inside = await same(request(15_000))
  assert.is(inside.reply, 'CLIENT_ERROR bad command line format\r\n')
})

test('a meta line reaching past the read, and a too-large value skipped past it, are write-out points', async () => {
  const line = await same(text(`set a 0 0 1\r\nx\r\nms b 16300\r\n${'y'.repeat(16_300)}\r\nms c 1\r\nz\r\nget ${KEY_251}\r\n`))
  assert.is(line.reply, 'STORED\r\nHD\r\nHD\r\nCLIENT_ERROR bad command line format\r\n')
  const n = 1_048_576 + 30_000
  const skipped = await same(text(`set a 0 0 1\r\nx\r\nset b 0 0 ${n}\r\n${'y'.repeat(n)}\r\nset c 0 0 1\r\nz\r\nget ${KEY_251}\r\n`))
  assert.ok(skipped.reply.includes('SERVER_ERROR object too large for cache\r\n'))
})

test('a line with no newline in over 2048 bytes of the read closes, unless a get', async () => {
  const cut = (line: string): Buffer => text(`set a 0 0 13960\r\n${'y'.repeat(13_960)}\r\n${line}${'a'.repeat(3000)} \r\n`)
  const meta = await same(cut('mg a O'))
  assert.equal(meta, { reply: '', closed: true })
  const get = await same(cut('get a '))
  assert.equal(get, { reply: 'STORED\r\nCLIENT_ERROR bad command line format\r\n', closed: false })
})

test('binary bodies past the read are written out before a bad magic byte', async () => {
  const set = await same(Buffer.concat([setBin('a', 'v'), setBin('b', 'y'.repeat(30_000)), setBin('c', 'v'), BAD_MAGIC]))
  assert.is(set.reply.length, 48, 'two replies kept')
  assert.ok(set.closed)
  const unknown = await same(
    Buffer.concat([setBin('a', 'v'), binaryRequest(0x50, '', Buffer.alloc(0), 'y'.repeat(30_000)), setBin('c', 'v'), BAD_MAGIC]),
  )
  assert.ok(unknown.reply.endsWith('Unknown command'))
})

test('binary: a store with a body length negative as an int does not write out; stat extstore is Not found', async () => {
  const negative = setBin('a', '')
  negative.writeUInt32BE(0x8000_0009, 8)
  assert.equal(await same(Buffer.concat([negative, BAD_MAGIC])), { reply: '', closed: true })
  const alone = await same(negative)
  assert.ok(alone.reply.endsWith('Too large.'))
  const extstore = await same(Buffer.concat([binaryRequest(0x10, 'extstore'), binaryRequest(0x0a)]))
  assert.ok(extstore.reply.includes('Not found'))
})

const b64 = (s: string): string => Buffer.from(s, 'latin1').toString('base64')

test('meta corners found matching: base64 keys, modes, flags, arithmetic, stale items', async () => {
  const cases = [
    `ms ${b64('a b')} 1 b\r\nx\r\nmg ${b64('a b')} b v k\r\nmg YQ b v\r\nmg !!!! b v\r\nmg ${b64('x'.repeat(251))} b v\r\n`,
    'set a 0 0 1\r\nx\r\nms a 1 MS\r\ny\r\nms a 1 Ms\r\ny\r\nms a 1 MSS\r\ny\r\nms a 1 M\r\ny\r\nmg a v\r\n',
    'ms a 1 I\r\ny\r\nms a 1 I C1\r\nz\r\nmg a v c\r\nmg a v c\r\nmd a I T30\r\nmg a v c t\r\n',
    'set n 0 0 20\r\n18446744073709551615\r\nma n v\r\nma n D18446744073709551616\r\nma n N0 J18446744073709551615 v\r\nma x q N0 J5\r\nmn\r\n',
    `mg a ${Array.from({ length: 25 }, (_, i) => `O${i}`).join(' ')}\r\nmg a O${'x'.repeat(32)}\r\nmg a q O${'x'.repeat(40)}\r\nmn\r\n`,
    'set a 0 0 1\r\nx\r\n' + 'mg a q v\r\nmg b q v\r\n'.repeat(15) + 'mn\r\n',
  ]
  for (const request of cases) await same(text(request))
})

test('binary corners found matching: quiet misses, CAS mismatches, bad lengths', async () => {
  const incr = (delta: number, initial: number, exp: number): Buffer => {
    const b = Buffer.alloc(20)
    b.writeBigUInt64BE(BigInt(delta), 0)
    b.writeBigUInt64BE(BigInt(initial), 8)
    b.writeUInt32BE(exp, 16)
    return b
  }
  const noop = binaryRequest(0x0a)
  const cases = [
    [setBin('a', 'v'), binaryRequest(0x11, 'a', Buffer.alloc(8), '2', { cas: 999n }), binaryRequest(0x14, 'a', undefined, '', { cas: 999n }), noop],
    [binaryRequest(0x15, 'n', incr(1, 0, 0xffff_ffff)), binaryRequest(0x16, 'n', incr(1, 9, 0)), binaryRequest(0x00, 'n'), noop],
    [setBin('a', 'abc'), binaryRequest(0x05, 'a', incr(1, 0, 0)), binaryRequest(0x15, 'a', incr(1, 0, 0)), noop],
    [binaryRequest(0x01, 'k'.repeat(251), Buffer.alloc(8), 'v'), noop],
    [binaryRequest(0x1e, 'zz', Buffer.alloc(4)), binaryRequest(0x24, 'zz', Buffer.alloc(4)), binaryRequest(0x19, 'zz', undefined, 'x'), noop],
  ]
  for (const packets of cases) await same(Buffer.concat(packets))
})

test.run()
