// Adversarial review of the UDP listener (src/server/udp.ts): datagrams that ask for far
// more reply than a client will read, sent faster than they can be answered, must not
// grow the server's memory without bound (Node's dgram queues every send in memory);
// replies that come in pieces must all go out, each a whole message. Bounded waits only.
import dgram from 'node:dgram'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type FerrocacheServer } from '../src/server'
import { MAX_SEND_QUEUE_BYTES, type UdpListener } from '../src/server/udp'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'

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

test.run()
