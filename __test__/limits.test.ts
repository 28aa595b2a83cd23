// Limits that hold against ferrocached processes (server-bad-input.test.ts has the
// never-reading client, huge values and endless lines): length headers near 2^63 answered
// as memcached answers them, a binary header announcing 4 GiB that buffers at most one
// key, one multiget naming a big item thousands of times (built a budget at a time), clients that trickle a request in (slowloris) closed by the idle timeout, a flood
// of 3000 connections against -c 1024, and RSS under churn within the item memory plus a
// fixed overhead (figures in docs/security.md). Every loop is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { binaryPacket } from './helpers/corpus'
import { RawConn } from './helpers/raw'
import { sleep, startAll, startFerrocached, startMemcached, within, type Running } from './helpers/servers'
import { readFileSync } from 'node:fs'

const MiB = 1024

/** Peak resident memory (VmHWM) and current (VmRSS) of a process, KiB. */
function memory(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN)
  return { peak: field('VmHWM'), now: field('VmRSS') }
}

/** Sends `request` on a new connection; the reply once it ends with `until` (or the connection closes). */
async function exchange(port: number, request: string | Buffer, until: string | RegExp = /\r\n$/): Promise<string> {
  const c = await RawConn.open(port)
  c.send(request)
  const reply = await c.until(until, 5_000)
  c.close()
  return reply
}

const ALIVE = 'STORED\r\nVALUE alive 0 2\r\nok\r\nEND\r\n'

async function serves(port: number): Promise<void> {
  assert.is(await exchange(port, 'set alive 0 0 2\r\nok\r\nget alive\r\n', 'END\r\n'), ALIVE)
}

/**
 * `serves` once the server has caught up with the connections just closed: until then a
 * new one can still be refused as over the limit (polled, at most 15 s).
 */
async function servesAgain(port: number): Promise<void> {
  const deadline = Date.now() + 15_000
  let reply = ''
  while ((reply = await exchange(port, 'set alive 0 0 2\r\nok\r\nget alive\r\n', 'END\r\n')) !== ALIVE && Date.now() < deadline) {
    await sleep(100)
  }
  assert.is(reply, ALIVE)
}

test('length headers near 2^63 and 2^64: memcached\'s replies, nothing waited for', async () => {
  const [mc, fc] = (await startAll([() => startMemcached(), () => startFerrocached()])) as [Running, Running]
  try {
    const requests = [
      'set k 0 0 9223372036854775808\r\nversion\r\n',
      'set k 0 0 18446744073709551615\r\nversion\r\n',
      'ms k 9223372036854775807\r\nversion\r\n',
      'ms k 2147483647\r\nversion\r\n',
      'cas k 0 0 9223372036854775807 1\r\nversion\r\n',
      'incr k 99999999999999999999999\r\nversion\r\n',
    ]
    for (const r of requests) {
      const [expected, actual] = await Promise.all([exchange(mc.port, r, 'VERSION 1.6.18\r\n'), exchange(fc.port, r, 'VERSION 1.6.18\r\n')])
      assert.is(actual, expected, r)
      assert.match(actual, /VERSION 1\.6\.18\r\n$/, 'the next request is served at once')
    }
  } finally {
    await Promise.all([mc.stop(), fc.stop()])
  }
})

test('a binary header announcing a 64 KiB key and a 4 GiB body is hung up on, nothing large buffered', async () => {
  const fc = await startFerrocached()
  try {
    const before = memory(fc.child.pid!).now
    const c = await RawConn.open(fc.port)
    const header = binaryPacket('get keylen=65535 bodylen=4294967295').subarray(0, 24)
    c.send(header)
    // the whole "key": over memcached's 16 KiB read buffer, hung up on without a reply
    // (binary-refusal-close.test.ts compares that with memcached)
    c.send(Buffer.alloc(65535, 0x6b))
    assert.ok(await c.waitClosed(10_000), 'connection closed')
    assert.is(c.take().length, 0, 'no reply')
    assert.ok(memory(fc.child.pid!).now - before < 16 * MiB, 'nothing large buffered')
    await serves(fc.port)
  } finally {
    await fc.stop()
  }
})

test('one get naming a 1 MB item 5000 times: a client that does not read holds a few MiB, one that reads gets it all', async () => {
  const fc = await startFerrocached()
  try {
    const value = 'b'.repeat(1_000_000)
    assert.is(await exchange(fc.port, `set a 0 0 ${value.length}\r\n${value}\r\n`), 'STORED\r\n')
    const before = memory(fc.child.pid!).now
    const hog = await RawConn.open(fc.port)
    hog.socket.pause() // 5 GB of replies if they were all built at once
    hog.send(`get${' a'.repeat(5000)}\r\n`)
    await sleep(1_000)
    const grown = memory(fc.child.pid!).now - before
    assert.ok(grown < 32 * MiB, `RSS grew by ${grown >> 10} MiB for one multiget nobody reads`)
    hog.close()
    // A reader gets every value and END, in order: the multiget resumes where it stopped.
    const reader = await RawConn.open(fc.port)
    const chunks: Buffer[] = []
    let received = 0
    const expected = Buffer.from(`${`VALUE a 0 ${value.length}\r\n${value}\r\n`.repeat(50)}END\r\nMN\r\n`)
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 20_000)
      reader.socket.on('data', (d: Buffer) => {
        chunks.push(d)
        received += d.length
        if (received >= expected.length) {
          clearTimeout(timer)
          resolve()
        }
      })
    })
    reader.send(`get${' a'.repeat(50)}\r\nmn\r\n`)
    await done
    assert.is(received, expected.length)
    assert.ok(Buffer.concat(chunks).equals(expected), 'every value, then END, then the next reply')
    reader.close()
  } finally {
    await fc.stop()
  }
})

test('values on their way in: all connections together hold at most max(-m, 64 MiB); more get SERVER_ERROR', async () => {
  const fc = await startFerrocached(['-m', '16'])
  const conns: RawConn[] = []
  try {
    const before = memory(fc.child.pid!).now
    const body = Buffer.alloc(1_000_000 - 10, 0x61) // each value 10 bytes short of complete
    for (let i = 0; i < 150; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => RawConn.open(fc.port)))
      for (const [j, c] of batch.entries()) c.send(Buffer.concat([Buffer.from(`set k${i + j} 0 0 1000000\r\n`), body]))
      conns.push(...batch)
    }
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && conns.filter((c) => c.closed).length < 150 - 64; ) await sleep(50)
    const refused = conns.filter((c) => c.closed)
    assert.ok(refused.length >= 150 - 64, `${refused.length} of 150 refused`)
    for (const c of refused.slice(0, 10)) assert.is((await c.settle(5, 50)).toString(), 'SERVER_ERROR out of memory storing object\r\n')
    const grown = memory(fc.child.pid!).now - before
    assert.ok(grown < 96 * MiB, `RSS grew by ${grown >> 10} MiB with 150 values half sent`)
    const stats = await exchange(fc.port, 'stats\r\n', 'END\r\n')
    assert.ok(Number(/STAT read_buf_bytes (\d+)/.exec(stats)?.[1]) <= 64 * 1024 * 1024)
    assert.ok(Number(/STAT read_buf_oom (\d+)/.exec(stats)?.[1]) >= 150 - 64)
    // The ones still held complete normally.
    const held = conns.filter((c) => !c.closed)
    const done = await Promise.all(held.slice(0, 5).map((c) => (c.send('bbbbbbbbbb\r\n'), c.until('\r\n', 3_000))))
    for (const r of done) assert.is(r, 'STORED\r\n')
  } finally {
    for (const c of conns) c.close()
  }
  try {
    // given back as the server sees the closes (polled: later on a busy machine)
    const deadline = Date.now() + 15_000
    let held = /STAT read_buf_bytes (\d+)/.exec(await exchange(fc.port, 'stats\r\n', 'END\r\n'))?.[1]
    while (held !== '0' && Date.now() < deadline) {
      await sleep(100)
      held = /STAT read_buf_bytes (\d+)/.exec(await exchange(fc.port, 'stats\r\n', 'END\r\n'))?.[1]
    }
    assert.is(held, '0', 'given back when the connections close')
    await serves(fc.port)
  } finally {
    await fc.stop()
  }
})

test('slowloris: trickling a line or a value is closed by the idle timeout, steady clients are not', async () => {
  const fc = await startFerrocached(['-o', 'idle_timeout=1'])
  try {
    const line = await RawConn.open(fc.port)
    const value = await RawConn.open(fc.port)
    const steady = await RawConn.open(fc.port)
    value.send('set v 0 0 100\r\n')
    // One byte every 200 ms keeps the socket busy but never finishes a request: were the
    // bytes counted as activity, the trickling would keep both open for the whole 10 s.
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !(line.closed && value.closed); ) {
      line.send('g')
      value.send('x')
      steady.send('mn\r\n')
      await sleep(200)
    }
    assert.ok(line.closed, 'a line that never ends is closed')
    assert.ok(value.closed, 'a value that never ends is closed')
    assert.not.ok(steady.closed, 'a client finishing requests stays')
    assert.match(await steady.until('MN\r\n', 10_000), /^(MN\r\n)+$/)
    steady.close()
  } finally {
    await fc.stop()
  }
})

test('3000 connections against -c 1024: at most 1024 stay, the rest are refused, all are served', async () => {
  const fc = await startFerrocached(['-c', '1024'])
  const conns: RawConn[] = []
  try {
    for (let i = 0; i < 3000; i += 250) {
      conns.push(...(await Promise.all(Array.from({ length: 250 }, () => RawConn.open(fc.port, 10_000)))))
    }
    for (let waited = 0; waited < 8_000 && conns.filter((c) => !c.closed).length > 1024; waited += 50) await sleep(50)
    const open = conns.filter((c) => !c.closed)
    assert.ok(open.length <= 1024 && open.length >= 1000, `${open.length} open`)
    const refused = conns.filter((c) => c.closed)
    const refusal = await Promise.all(refused.slice(0, 20).map((c) => c.settle(10, 100)))
    for (const r of refusal) assert.ok(r.length === 0 || r.toString() === 'ERROR Too many open connections\r\n')
    const sample = open.filter((_, i) => i % 64 === 0)
    const replies = await Promise.all(sample.map((c) => (c.send('mn\r\n'), c.until('MN\r\n', 3_000))))
    for (const r of replies) assert.is(r, 'MN\r\n')
    const stats = await open[0]!.until('END\r\n', 10).then(() => (open[0]!.send('stats\r\n'), open[0]!.until('END\r\n', 3_000)))
    const rejected = Number(/STAT rejected_connections (\d+)/.exec(stats)?.[1])
    assert.ok(rejected >= 3000 - 1024, `rejected_connections ${rejected}`)
  } finally {
    for (const c of conns) c.close()
  }
  try {
    await servesAgain(fc.port)
  } finally {
    await fc.stop()
  }
})

/** Pipelines noreply sets of log-uniform sizes (1 byte..maxValue) until `totalBytes` are sent. */
async function churn(port: number, totalBytes: number, maxValue: number, seed: number): Promise<void> {
  let s = seed >>> 0
  const rnd = (): number => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32
  const payload = Buffer.alloc(maxValue, 0x61)
  let sent = 0
  const worker = async (id: number): Promise<void> => {
    const c = await RawConn.open(port)
    const closed = new Promise<void>((r) => c.socket.once('close', () => r()))
    while (sent < totalBytes && !c.closed) {
      const len = Math.max(1, Math.floor(Math.exp(rnd() * Math.log(maxValue))))
      const head = Buffer.from(`set k${id}:${Math.floor(rnd() * 1e6)} 0 0 ${len} noreply\r\n`)
      sent += len
      if (!c.socket.write(Buffer.concat([head, payload.subarray(0, len), Buffer.from('\r\n')]))) {
        await within(Promise.race([new Promise((r) => c.socket.once('drain', r)), closed]), 30_000, 'the server reading on')
      }
    }
    assert.not.ok(c.closed, 'the server kept the connection')
    c.send('mn\r\n')
    await c.until('MN\r\n', 10_000)
    c.close()
  }
  await Promise.all([0, 1, 2, 3].map(worker))
}

test('RSS under churn stays within -m plus the fixed overhead', async () => {
  const limitMiB = 16
  const fc = await startFerrocached(['-m', String(limitMiB)])
  try {
    await sleep(300)
    const idle = memory(fc.child.pid!).now
    // 4x the item memory in small values (many items: hash table, LRU), then in large ones.
    await churn(fc.port, 4 * limitMiB * 1024 * 1024, 2_000, 1)
    await churn(fc.port, 4 * limitMiB * 1024 * 1024, 1_000_000, 2)
    const { peak } = memory(fc.child.pid!)
    const stats = await exchange(fc.port, 'stats\r\n', 'END\r\n')
    assert.ok(Number(/STAT evictions (\d+)/.exec(stats)?.[1]) > 0, 'the churn filled the cache')
    const overhead = peak - idle - limitMiB * MiB
    assert.ok(overhead < 16 * MiB, `peak RSS ${peak >> 10} MiB = idle ${idle >> 10} MiB + ${limitMiB} MiB items + ${overhead >> 10} MiB`)
    await serves(fc.port)
  } finally {
    await fc.stop()
  }
})

test.run()
