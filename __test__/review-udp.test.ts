// Adversarial review of the UDP listener (src/server/udp.ts): datagrams that ask for far
// more reply than a client will read, sent faster than they can be answered, must not
// grow the server's memory without bound (Node's dgram queues every send in memory);
// replies that come in pieces must all go out, each a whole message. Bounded waits only.
import dgram from 'node:dgram'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type FerrocacheServer } from '../src/server'
import { MAX_SEND_QUEUE_BYTES, type UdpListener } from '../src/server/udp'
import { onlyReads } from '../src/server/udp-reads'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { freePort, run, startMemcached, stopChild } from './helpers/servers'
import { binaryRequest } from './helpers/binary'

const HEADER = 8
const MiB = 1 << 20

let server: FerrocacheServer | undefined

/** The server's first UDP listener (a private field: what the test watches). */
function listenerOf(s: FerrocacheServer): UdpListener {
  return (s as unknown as { udpListeners: UdpListener[] }).udpListeners[0]!
}

/** A request datagram: the 8-byte frame header (count 1), then `payload`. */
function frame(requestId: number, payload: string): Buffer {
  const header = Buffer.alloc(HEADER)
  header.writeUInt16BE(requestId, 0)
  header.writeUInt16BE(1, 4)
  return Buffer.concat([header, Buffer.from(payload, 'latin1')])
}

/** Stores `count` items `k0`… of `size` bytes over TCP. */
async function store(port: number, count: number, size: number): Promise<void> {
  const c = await RawConn.open(port)
  const value = 'v'.repeat(size)
  for (let i = 0; i < count; i++) c.send(`set k${i} 0 0 ${size}\r\n${value}\r\n`)
  assert.is(await c.until('STORED\r\n'.repeat(count)), 'STORED\r\n'.repeat(count))
  c.close()
}

/** Waits (at most `ms`) until `done` holds; false if it never did. */
async function waitFor(done: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (done()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return done()
}

setUp(test, async () => {
  // 8 MiB of replies per datagram at most (the per-connection limit the UDP path uses)
  server = createServer({ port: 0, udpPort: 0, host: '127.0.0.1', maxPendingReplyBytes: 8 * MiB, cacheOptions: { memoryLimit: 256 * MiB } })
  await server.listen()
  await store(server.address()!.port, 16, 512 * 1024)
})

tearDown(test, async () => {
  await server?.close()
})

test('a flood of datagrams asking for huge replies, never read: memory stays bounded', async () => {
  const s = server!
  const listener = listenerOf(s)
  const udp = s.udpAddress()!
  // each datagram: 48 gets of 512 KiB items (24 MiB asked, cut at 8 MiB)
  const keys = Array.from({ length: 48 }, (_, i) => `k${i % 16}`).join(' ')
  const request = frame(1, `get ${keys}\r\n`)
  const client = dgram.createSocket({ type: 'udp4', recvBufferSize: 4096 })
  client.on('error', () => {})
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  const rssBefore = process.memoryUsage().rss
  let rssPeak = rssBefore
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 25)
  try {
    const all = listener.datagrams + 80
    for (let i = 0; i < 80; i++) {
      await new Promise<void>((resolve) => client.send(request, udp.port, '127.0.0.1', () => resolve()))
    }
    // the client goes away without reading: its port answers nothing
    client.close()
    assert.ok(await waitFor(() => listener.datagrams === all && listener.idle, 60_000), `the listener finished (or dropped) the flood: ${listener.datagrams}/${all}`)
  } finally {
    clearInterval(sampler)
  }
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  // before the fix: each datagram ran to its end in one go, every reply piece handed to
  // dgram.send at once and the rest built only to be dropped (measured: RSS +893 MiB)
  assert.ok(listener.peakSendQueueBytes <= MAX_SEND_QUEUE_BYTES + 2 * MiB, `send queue peak ${listener.peakSendQueueBytes}`)
  assert.ok(rssPeak - rssBefore < 300 * MiB, `rss grew ${(rssPeak - rssBefore) / MiB} MiB`)
  assert.ok(listener.drops.cutOff >= 1, `datagrams cut at the reply limit are counted: ${JSON.stringify(listener.drops)} peak ${listener.peakSendQueueBytes}`)
  // the server still answers
  const c = await RawConn.open(s.address()!.port)
  c.send('version\r\n')
  assert.match(await c.until('\r\n'), /^VERSION /)
  c.close()
})

test('a datagram whose replies pass the limit: a write after them still runs; reads only stop there', async () => {
  const s = server!
  const listener = listenerOf(s)
  const client = dgram.createSocket('udp4')
  client.on('error', () => {})
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  const keys = Array.from({ length: 32 }, (_, i) => `k${i % 16}`).join(' ')
  const before = { ...listener.drops }
  const datagrams = listener.datagrams
  try {
    // 16 MiB asked, 8 MiB sent: the set after it must still be stored
    client.send(frame(2, `get ${keys}\r\nset after-big 0 0 2\r\nok\r\n`), s.udpAddress()!.port, '127.0.0.1')
    client.send(frame(3, `get ${keys}\r\nget ${keys}\r\n`), s.udpAddress()!.port, '127.0.0.1')
    assert.ok(await waitFor(() => listener.datagrams === datagrams + 2 && listener.idle, 30_000), 'both datagrams run')
  } finally {
    client.close()
  }
  const c = await RawConn.open(s.address()!.port)
  c.send('get after-big\r\n')
  assert.is(await c.until('END\r\n'), 'VALUE after-big 0 2\r\nok\r\nEND\r\n')
  c.close()
  assert.ok(listener.drops.replyBytes - before.replyBytes >= 7 * MiB, `replies dropped: ${JSON.stringify(listener.drops)}`)
  assert.is(listener.drops.cutOff - before.cutOff, 1, 'the reads-only datagram stopped at the limit')
})

/**
 * Python's socket, with CAP_NET_ADMIN (root, outside a container that drops it) or an
 * rmem_max of 2 MiB or more, can take a large reply without losing datagrams (Node's cannot
 * raise its receive buffer past rmem_max): sends `payload` in one datagram to `port` and
 * prints each reply message: [datagram count, datagrams received, bytes, payload]. Exits
 * 77 when the buffer stays under 4 MiB (as the kernel counts it, twice what is granted):
 * with Linux's default rmem_max (208 KiB) 600 KB of replies lost 11-56% of their datagrams.
 */
const RECEIVER = `
import socket, struct, sys, json
port, payload = int(sys.argv[1]), sys.argv[2].encode('latin1')
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: u.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
except OSError: u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
if u.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < 4 << 20: sys.exit(77)
u.settimeout(3)
u.connect(('127.0.0.1', port))
u.send(struct.pack('>HHHH', 9, 0, 1, 0) + payload)
messages = []
try:
    for _ in range(100000):
        d = u.recv(2000)
        rid, seq, count, _ = struct.unpack('>HHHH', d[:8])
        if seq == 0: messages.append([count, 0, b''])
        m = messages[-1]; m[1] += 1; m[2] += d[8:]
        u.settimeout(0.5)
except socket.timeout: pass
print(json.dumps([[m[0], m[1], len(m[2]), m[2].decode('latin1')] for m in messages]))
`

const SMALL_BUFFER = 'a UDP receive buffer of 2 MiB is not allowed here (no CAP_NET_ADMIN, net.core.rmem_max under 2 MiB; sysctl -w net.core.rmem_max=8388608 allows it)'

/** SMALL_BUFFER (datagrams would be lost for the machine's sake) skips, but not on CI; anything else is thrown. */
function skipSmallBuffer(err: unknown): undefined {
  if (process.env.CI || !(err instanceof Error) || err.message !== SMALL_BUFFER) throw err
  console.warn(`SKIPPED replies in pieces over UDP: ${SMALL_BUFFER}`)
  return undefined
}

/** The reply messages to a datagram of `payload`, each as [count, received, bytes, text]. */
async function messagesOf(port: number, payload: string): Promise<Array<[number, number, number, string]>> {
  const { code, stdout, stderr } = await run('/usr/bin/python3', ['-c', RECEIVER, String(port), payload], { ms: 20_000 })
  if (code === 77) throw new Error(SMALL_BUFFER)
  assert.is(code, 0, stderr)
  return JSON.parse(stdout) as Array<[number, number, number, string]>
}

test('a datagram of reads whose replies come in pieces (over 256 KiB): a message per key, as memcached', async () => {
  const s = server!
  const udp = await freePort()
  const memcached = await startMemcached(['-U', String(udp)])
  try {
    for (const port of [memcached.port, s.address()!.port]) await store(port, 6, 100_000)
    // 600 KB of replies: the session hands them over in pieces
    for (const request of ['get k0 k1 k2 k3 k4 k5\r\n', 'get k0 nope k2\r\nget nope k4 k5 nope\r\ngets k1 k3 k5 k0\r\n']) {
      const both = await (async () => [await messagesOf(udp, request), await messagesOf(s.udpAddress()!.port, request)] as const)().catch(skipSmallBuffer)
      if (both === undefined) return
      const [expected, got] = both
      // before: a message per piece, several keys each (the same bytes); CAS values aside
      const shape = (m: Array<[number, number, number, string]>): Array<[number, number, number, string]> =>
        m.map(([count, received, , text]) => {
          const masked = text.replace(/^(VALUE \S+ \d+ \d+) \d+\r$/gm, '$1 C\r')
          return [count, received, masked.length, masked.slice(0, 24)]
        })
      assert.equal(shape(got), shape(expected), request)
      // (a bare header says 0 datagrams and is one)
      assert.ok(
        got.every(([count, received]) => received === Math.max(count, 1)),
        'every datagram came',
      )
      assert.is(shape(got).length, request.startsWith('get k0 k1') ? 6 : 10)
    }
  } finally {
    await stopChild(memcached.child)
  }
})

test('reads only (their run may stop at the reply limit): get/gets, stats, metadump lines; binary gets, noop, version, stat', () => {
  assert.ok(onlyReads(Buffer.from('get a b\r\ngets c\r\n')))
  assert.ok(onlyReads(Buffer.from('lru_crawler metadump all\r\nstats cachedump 1 0\r\nstats\r\nstats detail dump\nversion\r\nmn\r\n')))
  assert.not.ok(onlyReads(Buffer.from('stats reset\r\n')))
  assert.not.ok(onlyReads(Buffer.from('stats detail on\r\n')))
  assert.not.ok(onlyReads(Buffer.from('lru_crawler metadump all\r\nflush_all\r\n')))
  assert.not.ok(onlyReads(Buffer.from('get a\r\ngat 10 a\r\n')), 'gat touches')
  assert.not.ok(onlyReads(Buffer.from('get a\r\nset b 0 0 1\r\n1\r\n')))
  assert.not.ok(onlyReads(Buffer.from('get a')), 'cut off')
  assert.ok(onlyReads(Buffer.concat([binaryRequest(0x0d, 'k'), binaryRequest(0x0c, 'k'), binaryRequest(0x0a)])))
  assert.not.ok(onlyReads(Buffer.concat([binaryRequest(0x0d, 'k'), binaryRequest(0x14, 'k')])), 'deleteq')
  assert.not.ok(onlyReads(binaryRequest(0x0d, 'k').subarray(0, 20)), 'cut off')
})

test('a binary datagram of getkq past the limit stops there; with a write after them it runs on', async () => {
  const s = server!
  const listener = listenerOf(s)
  const client = dgram.createSocket('udp4')
  client.on('error', () => {})
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  const getkq = (key: string): Buffer => binaryRequest(0x0d, key)
  const gets = Buffer.concat(Array.from({ length: 400 }, (_, i) => getkq(`k${i % 16}`)))
  const before = { ...listener.drops }
  const datagrams = listener.datagrams
  try {
    const header = Buffer.alloc(HEADER)
    header.writeUInt16BE(1, 4)
    client.send(Buffer.concat([header, gets]), s.udpAddress()!.port, '127.0.0.1')
    assert.ok(await waitFor(() => listener.datagrams === datagrams + 1 && listener.idle, 30_000), 'the datagram ran')
  } finally {
    client.close()
  }
  // 200 MiB asked: stopped at the limit, not built and dropped
  assert.is(listener.drops.cutOff - before.cutOff, 1)
  assert.ok(listener.drops.replyBytes - before.replyBytes < 8 * MiB, `dropped ${listener.drops.replyBytes - before.replyBytes}`)
})

test('a datagram from source port 0 (spoofed) runs, is not answered, and does not end the process', async () => {
  const s = server!
  // what the kernel hands over for a raw packet with UDP source port 0 (sending one needs
  // a raw socket, root); dgram.send threw ERR_SOCKET_BAD_PORT for the reply, uncaught
  const socket = (listenerOf(s) as unknown as { socket: dgram.Socket }).socket
  const msg = frame(7, 'set p0 0 0 2\r\nok\r\nversion\r\n')
  socket.emit('message', msg, { address: '127.0.0.1', port: 0, family: 'IPv4', size: msg.length })
  // memcached 1.6.18 the same (measured with a raw packet): the set is stored, no reply
  const c = await RawConn.open(s.address()!.port)
  c.send('get p0\r\n')
  assert.is(await c.until('END\r\n'), 'VALUE p0 0 2\r\nok\r\nEND\r\n')
  c.close()
})

test('a datagram from the server port (forged, or another server\'s reply) is dropped: no endless ping-pong', async () => {
  const s = server!
  const listener = listenerOf(s)
  const socket = (listener as unknown as { socket: dgram.Socket }).socket
  const before = listener.datagrams
  const msg = frame(8, 'version\r\n')
  // a reply to it would come back as a request (`VERSION …` → `ERROR` → `ERROR` …): memcached
  // 1.6.18 loops so for good (measured: bytes_read climbing by MB/s after one raw packet)
  socket.emit('message', msg, { address: '127.0.0.1', port: s.udpAddress()!.port, family: 'IPv4', size: msg.length })
  assert.not.ok(await waitFor(() => listener.datagrams > before + 10, 500), `looping: ${listener.datagrams - before} datagrams`)
  assert.is(listener.datagrams, before)
  assert.ok(listener.drops.ownPort >= 1)
})

test.run()
