// Hostile and broken clients against a ferrocached process: the server answers with
// errors or closes that one connection, keeps serving everyone else, and its memory
// (RSS from /proc) stays bounded. Every loop is bounded in count and time.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { binaryPacket } from './helpers/corpus'
import { RawConn } from './helpers/raw'
import { setUp, tearDown } from './helpers/guard'
import { rssKiB, sleep, startFerrocached, within, type Running } from './helpers/servers'

let server: Running

setUp(test, async () => {
  server = await startFerrocached(['-c', '1024'])
})

tearDown(test, async () => {
  await server?.stop()
})

/** A small seeded PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const ALIVE = 'STORED\r\nVALUE alive 0 2\r\nok\r\nEND\r\n'

async function alive(): Promise<string> {
  const c = await RawConn.open(server.port)
  c.send('set alive 0 0 2\r\nok\r\nget alive\r\n')
  const reply = await c.until('END\r\n', 10_000)
  c.close()
  return reply
}

async function stillServes(): Promise<void> {
  assert.is(await alive(), ALIVE)
  assert.is(server.child.exitCode, null, 'server still running')
}

/** `stillServes` once the server has seen connections just closed (a new one can be refused meanwhile). */
async function servesAgain(): Promise<void> {
  const deadline = Date.now() + 15_000
  let reply = ''
  while ((reply = await alive()) !== ALIVE && Date.now() < deadline) await sleep(100)
  assert.is(reply, ALIVE)
  assert.is(server.child.exitCode, null, 'server still running')
}

test('random garbage: errors or a closed connection, never a crash', async () => {
  const rand = prng(42)
  for (let round = 0; round < 60; round++) {
    const c = await RawConn.open(server.port)
    const len = 1 + Math.floor(rand() * 8192)
    const bytes = Buffer.alloc(len)
    // Half the rounds are printable (text-like), half raw binary, some start with 0x80.
    for (let i = 0; i < len; i++) bytes[i] = round % 2 ? Math.floor(rand() * 256) : 32 + Math.floor(rand() * 95)
    if (round % 5 === 0) bytes[0] = 0x80
    if (round % 3 === 0) for (let i = 0; i < len; i += 1 + Math.floor(rand() * 40)) bytes[i] = 10
    c.send(bytes)
    const reply = (await c.settle(30, 1_000)).toString('latin1')
    // Whatever came back is protocol-shaped: error lines or binary error packets.
    if (reply.length > 0 && !reply.startsWith('\x81')) {
      assert.match(reply, /^(ERROR|CLIENT_ERROR|SERVER_ERROR|VALUE|END|STORED|NOT_|EXISTS|DELETED|TOUCHED|OK|RESET|VERSION|STAT|MN|EN|HD|NF|NS|EX|VA|\d)/)
    }
    c.close()
  }
  await stillServes()
})

test('truncated commands and abandoned connections leave the server healthy', async () => {
  const partials = ['set k 0 0 10\r\nabc', 'get', 'get k', 'set k 0 0', 'mg k v', '\x80\x00\x00', binaryPacket('set key=k value=abcdef extras=0000000000000000').subarray(0, 30)]
  for (const p of partials) {
    const c = await RawConn.open(server.port)
    c.send(p)
    await sleep(10)
    c.close()
  }
  await stillServes()
})

test('huge declared lengths: refused, the data swallowed, memory flat', async () => {
  const before = rssKiB(server.child.pid!)
  const c = await RawConn.open(server.port)
  try {
    c.send('set huge 0 0 4294967295\r\n')
    assert.is(await c.until('\r\n'), 'CLIENT_ERROR bad command line format\r\n')
    // 2 GB declared: memcached refuses it and discards what follows (its SERVER_ERROR comes
    // once the 2 GB are through, so nothing yet). Stream 256 MiB: were it buffered, RSS would
    // grow by that much; garbage read buffers waiting for the GC account for a few tens of
    // MiB at most.
    c.send('set huge 0 0 2000000000\r\n')
    assert.is((await c.settle(50, 500)).length, 0)
    const chunk = Buffer.alloc(1 << 20, 0x61)
    let peak = before
    for (let i = 0; i < 256; i++) {
      if (!c.socket.write(chunk)) await within(new Promise((r) => c.socket.once('drain', r)), 30_000, 'the server swallowing on')
      if (i % 32 === 0) peak = Math.max(peak, rssKiB(server.child.pid!))
    }
    await sleep(200)
    peak = Math.max(peak, rssKiB(server.child.pid!))
    assert.ok(peak - before < 96 * 1024, `RSS grew by ${(peak - before) >> 10} MiB while swallowing 256 MiB`)
    // Still swallowing: the connection answers nothing until the 2 GB are through.
    c.send('version\r\n')
    assert.is((await c.settle(50, 500)).length, 0)
  } finally {
    c.close() // the next tests share this server
  }
  // Binary: a body length of ~4 GB.
  const b = await RawConn.open(server.port)
  try {
    b.send(binaryPacket('set key=h extras=0000000000000000 bodylen=4000000000'))
    const reply = await b.atLeast(24)
    assert.ok(reply.length >= 24 && reply[0] === 0x81, `binary error reply, got ${reply.length} bytes (${reply.subarray(0, 40).toString('hex')}), connection ${b.closed ? 'closed' : 'open'}`)
    assert.is(reply.readUInt16BE(6), 3, 'status E2BIG')
  } finally {
    b.close() // the next tests share this server
  }
  await stillServes()
})

test('a line that never ends is cut off, not buffered forever', async () => {
  const before = rssKiB(server.child.pid!)
  const c = await RawConn.open(server.port)
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  for (let i = 0; i < 256 && !c.closed; i++) {
    c.socket.write(chunk)
    if (i % 16 === 0) await sleep(1)
  }
  assert.ok(await c.waitClosed(10_000), 'connection closed')
  assert.ok(rssKiB(server.child.pid!) - before < 32 * 1024, 'memory bounded')
  await stillServes()
})

test('a client that never reads: its reads stop, memory stays bounded, others are served', async () => {
  const setup = await RawConn.open(server.port)
  const value = 'x'.repeat(1000 * 1000)
  setup.send(`set big 0 0 ${value.length}\r\n${value}\r\n`)
  assert.is(await setup.until('\r\n'), 'STORED\r\n')
  setup.close()

  const before = rssKiB(server.child.pid!)
  const hog = await RawConn.open(server.port)
  try {
    hog.socket.pause() // never read
    // 20 000 pipelined gets of a 1 MB item = 20 GB of replies if the server buffered them.
    const request = Buffer.from('get big\r\n'.repeat(1000))
    for (let i = 0; i < 20; i++) hog.socket.write(request)
    await sleep(1_500)
    const during = rssKiB(server.child.pid!)
    assert.ok(during - before < 64 * 1024, `RSS grew by ${(during - before) >> 10} MiB for a client that does not read`)

    // Everyone else is still served (within stillServes' bound).
    await stillServes()
  } finally {
    hog.close() // the next tests share this server
  }
  await sleep(200)
  assert.ok(rssKiB(server.child.pid!) - before < 64 * 1024)
})

test('1500 connections against -c 1024: the extra ones are refused, the rest work', async () => {
  const conns: RawConn[] = []
  try {
    for (let i = 0; i < 1500; i += 100) {
      conns.push(...(await Promise.all(Array.from({ length: 100 }, () => RawConn.open(server.port)))))
    }
    // The refused ones are closed by the server; on a busy machine that takes a moment.
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && conns.filter((c) => !c.closed).length > 1024; ) await sleep(50)
    const open = conns.filter((c) => !c.closed)
    assert.ok(open.length <= 1024 && open.length >= 1000, `${open.length} open`)
    const sample = open.filter((_, i) => i % 50 === 0)
    const replies = await Promise.all(sample.map((c) => (c.send('mn\r\n'), c.until('MN\r\n', 3_000))))
    for (const r of replies) assert.is(r, 'MN\r\n')
  } finally {
    for (const c of conns) c.close()
  }
  await servesAgain()
})

test.run()
