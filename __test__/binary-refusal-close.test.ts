// A binary request memcached 1.6.18 refuses with an error and a close (`0x0004 Invalid
// arguments` for an empty or overlong key): it closes right after the reply, so what the
// client sends next meets a reset. ferrocached used to linger (read and drop for 200 ms),
// which left memjs's calls made in that window unanswered for good.
import * as net from 'node:net'
import memjs from 'memjs'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { sleep, startAll, startFerrocached, startMemcached, waitFor, within, type Running } from './helpers/servers'

let ferrocached: Running
let memcached: Running

setUp(test, async () => {
  ;[ferrocached, memcached] = await startAll([() => startFerrocached(), () => startMemcached()])
})

tearDown(test, async () => {
  await Promise.all([ferrocached.stop(), memcached.stop()])
})

/** A binary add (flags and exptime 0) of `key` = `value`. */
function binaryAdd(key: string, value: string): Buffer {
  const b = Buffer.alloc(24 + 8 + key.length + value.length)
  b[0] = 0x80
  b[1] = 0x02
  b.writeUInt16BE(key.length, 2)
  b[4] = 8
  b.writeUInt32BE(8 + key.length + value.length, 8)
  b.write(key + value, 32, 'latin1')
  return b
}

const NOOP = Buffer.from([0x80, 0x0a, ...Array<number>(22).fill(0)])

interface Seen {
  reply: string
  /** The error the writes after the server's FIN met, if any. */
  reset: string
}

/**
 * Sends the refused request, reads its reply and the server's FIN, then writes noops 20 ms
 * apart (five at most, all well within the 200 ms ferrocached lingered), as a client that has
 * not noticed the close would: memcached's socket is gone, the first resets and a later
 * write fails.
 */
function refuseThenWrite(port: number, key: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    const got: Buffer[] = []
    let reset = ''
    s.once('connect', () => s.write(binaryAdd(key, 'v')))
    s.on('data', (d: Buffer) => got.push(d))
    s.once('end', async () => {
      for (let i = 0; i < 5 && !reset && !s.destroyed; i++) {
        s.write(NOOP)
        await sleep(20)
      }
      s.destroy()
      resolve({ reply: Buffer.concat(got).toString('hex'), reset })
    })
    s.on('error', (err: NodeJS.ErrnoException) => (reset = err.code ?? err.message))
    s.once('close', () => (got.length === 0 ? reject(new Error(`closed with no reply: ${reset}`)) : undefined))
  })
}

test('a write after the 0x0004 reply and FIN meets a reset, as from memcached', async () => {
  for (const key of ['', 'k'.repeat(251)]) {
    const [want, got] = await Promise.all([refuseThenWrite(memcached.port, key), refuseThenWrite(ferrocached.port, key)])
    assert.match(want.reply, /^8102000000000004/, `memcached's reply (key length ${key.length})`)
    assert.ok(want.reset !== '', `memcached: the write after the FIN met no reset (key length ${key.length})`)
    assert.is(got.reply, want.reply, `the reply (key length ${key.length})`)
    assert.ok(got.reset !== '', `ferrocached: the write after the FIN met no reset (key length ${key.length}): it was read and dropped`)
  }
})

// memcached reads a binary request's header, extras and key into its 16 KiB read buffer:
// one that does not fit fills it, and memcached hangs up without a reply, over the rest it
// did not read: a reset. ferrocached answered 0x0004 once the whole key was in.
/** What one write of `request` gets: the reply's first 8 bytes (hex) and the socket error. */
function oneWrite(port: number, request: Buffer): Promise<{ reply: string; error: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' })
    const got: Buffer[] = []
    let error = ''
    s.once('connect', () => s.write(request))
    s.on('data', (d: Buffer) => got.push(d))
    s.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message))
    s.once('close', () => resolve({ reply: Buffer.concat(got).toString('hex').slice(0, 16), error }))
    setTimeout(() => s.destroy(), 5_000).unref()
  })
}

test('a binary header, extras and key over 16 KiB: a reset without a reply, as memcached; memjs settles', async () => {
  for (const keylen of [16352, 16353, 40000]) {
    // No value: at 16352 the request is then exactly the 16 KiB memcached reads. A value
    // byte past it is unread at memcached's close in about half the runs (a reset after the
    // 0x0004 then, 100 of 200 measured), whether it had arrived is the machine's timing.
    const request = binaryAdd('k'.repeat(keylen), '')
    const [want, got] = await Promise.all([oneWrite(memcached.port, request), oneWrite(ferrocached.port, request)])
    assert.equal(got, want, `key length ${keylen}`)
    const over = keylen > 16384 - 24 - 8
    assert.equal(want, { reply: over ? '' : '8102000000000004', error: over ? 'ECONNRESET' : '' }, `memcached (key length ${keylen})`)
  }
  for (const server of [memcached, ferrocached]) {
    const client = memjs.Client.create(`127.0.0.1:${server.port}`, { retries: 0, timeout: 5, logger: { log: () => {} } })
    try {
      let settled = 0
      for (const call of [client.get('k'.repeat(20_000)), client.delete('n')]) call.then(() => settled++, () => settled++)
      assert.ok(await waitFor(() => settled === 2, 1_000), `${server === memcached ? 'memcached' : 'ferrocached'}: ${settled} of 2 calls settled`)
    } finally {
      client.close()
    }
  }
})

// memjs writes its next call while the server still reads the refused add's value:
// memcached closes over the unread bytes and memjs fails both calls with ECONNRESET.
// ferrocached read the value and the delete and dropped them: the delete never settled
// (0 of 20 tries; 20 of 20 now, as memcached). With a value the socket buffers hold whole
// the reset can find memjs idle, and both servers then lose a try now and then (1 MB:
// memcached 14 of 15): three tries each, two must settle.
/** Larger than the kernel's socket buffers on loopback take (a few MB): memjs is still
 * writing it when the reset comes, so the write fails, whoever was first. */
const VALUE = 'v'.repeat(16 * 1024 * 1024)

async function memjsTry(server: Running): Promise<boolean> {
  const client = memjs.Client.create(`127.0.0.1:${server.port}`, { retries: 0, timeout: 5, logger: { log: () => {} } })
  try {
    await client.set('warm', 'x', {})
    let settled = 0
    const add = client.add('', VALUE, {})
    const del = client.delete('n')
    for (const call of [add, del]) call.then(() => settled++, () => settled++)
    const ok = await waitFor(() => settled === 2, 1_000)
    // the client goes on over a new connection
    const { value } = await within(client.get('warm'), 2_000, 'get after the close')
    assert.is(value?.toString(), 'x')
    return ok
  } finally {
    client.close()
  }
}

test('memjs: a call made behind a refused add settles promptly, as against memcached', async () => {
  for (const server of [memcached, ferrocached]) {
    const name = server === memcached ? 'memcached' : 'ferrocached'
    let settled = 0
    for (let i = 0; i < 3; i++) if (await memjsTry(server)) settled++
    assert.ok(settled >= 2, `${name}: the calls settled within 1 s in ${settled} of 3 tries`)
  }
})


// memjs awaits the refused call's reply, then makes its next call on the same socket. The
// FIN memcached sends with the reply is there first: memjs writes on a socket it is
// closing, and the call is never answered (40 of 40 measured). ferrocached sent its FIN
// some 30 µs after the reply, from node's destroy(): the call reached the open socket, the
// close reset over it and memjs failed it with ECONNRESET (15 of 40). The FIN now follows
// the reply from the same native call. Which comes first is still the machine's timing, for
// memcached too: the resets are counted, not required absent.
async function resetsAfterRefusal(server: Running, rounds: number): Promise<number> {
  let resets = 0
  for (let i = 0; i < rounds; i++) {
    const client = memjs.Client.create(`127.0.0.1:${server.port}`, { retries: 0, timeout: 5, logger: { log: () => {} } })
    try {
      await client.get('warm')
      const refused = await client.delete('').then(
        () => 'deleted',
        (e: Error) => e.message,
      )
      assert.is(refused, 'MemJS DELETE: Invalid arguments')
      let outcome = ''
      client.increment('', 1, {}).then(
        () => (outcome = 'answered'),
        (e: Error) => (outcome = e.message),
      )
      await waitFor(() => outcome !== '', 30)
      if (/ECONNRESET/.test(outcome)) resets++
    } finally {
      client.close()
    }
  }
  return resets
}

test("memjs: a call made after a refused call's reply meets the FIN, as against memcached, not a reset", async () => {
  const rounds = 30
  const want = await resetsAfterRefusal(memcached, rounds)
  const got = await resetsAfterRefusal(ferrocached, rounds)
  assert.ok(got <= want + 3, `calls failed with ECONNRESET: ferrocached ${got} of ${rounds}, memcached ${want}`)
})

test.run()
