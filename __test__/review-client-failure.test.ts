// Adversarial review of the Client under failure, in meta, text and binary: a hung server
// (memcached SIGSTOPped: the kernel still accepts its connections) must be marked dead and
// its keys moved, then probed back; servers killed under pipelined batches (memcached and ferrocached); a
// server that takes requests and never reads them; TLS handshakes cut off or stalled;
// host names that do not resolve; the Client closed with requests in flight and used after.
// Every request must settle, with the documented error or its own result, never another's.
import net from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, type ClientOptions } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { sleep, startAll, startFerrocached, startMemcached, waitFor, within, type Running } from './helpers/servers'
import { failure, tally } from './helpers/settled'

type Err = Error & { code: string }
type Protocol = NonNullable<ClientOptions['protocol']>
const PROTOCOLS: Protocol[] = ['meta', 'text', 'binary']


/** `p`, its rejection marked handled: it is looked at later, once all have settled. */
function handled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {})
  return p
}

/** A TCP server of this file: `onSocket` does what it likes with each connection. */
interface Fake {
  port: number
  accepted(): number
  close(): Promise<void>
}

const fakes: Fake[] = []

async function fake(onSocket: (socket: net.Socket) => void): Promise<Fake> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    onSocket(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const f: Fake = {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  fakes.push(f)
  return f
}

interface Ctx {
  /** Two memcached for the hung-server test (the second one is stopped and continued). */
  pair?: Running[]
  ferrocached?: Running
}

const s = suite<Ctx>('Client under failure', {})

setUp(s, async (ctx) => {
  const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const [a, b, ferrocached] = await startAll([() => startMemcached(asNobody), () => startMemcached(asNobody), () => startFerrocached()])
  ctx.pair = [a!, b!]
  ctx.ferrocached = ferrocached
})

tearDown(s, async (ctx) => {
  // a stopped process takes SIGTERM only once continued
  for (const r of ctx.pair ?? []) r.child.kill('SIGCONT')
  await Promise.all([...(ctx.pair ?? []).map((r) => r.stop()), ctx.ferrocached?.stop(), ...fakes.map((f) => f.close())])
})

s('a hung server (SIGSTOP: TCP still accepted) is marked dead, its keys move, and it is probed back (meta, text, binary)', async (ctx) => {
  const [a, b] = ctx.pair!
  for (const protocol of PROTOCOLS) {
    const servers = [`127.0.0.1:${a!.port}`, `127.0.0.1:${b!.port}`]
    const c = new Client({ servers, protocol, encoding: 'utf8', timeout: 300, retry: 50, removeAfter: 2, reconnect: 300, remove: true })
    try {
      const keys = Array.from({ length: 40 }, (_, i) => `${protocol}:hung:${i}`)
      await c.setMany(keys.map((k) => [k, `value of ${k}`]))
      const onB = keys.filter((k) => c.serverFor(k) === servers[1])
      assert.ok(onB.length > 5 && onB.length < keys.length, `keys on both servers (${onB.length} of ${keys.length} on the second)`)
      b!.child.kill('SIGSTOP')
      // Each round waits at most `timeout` for the stopped server. A server counted up
      // again on every TCP connect (the kernel completes it) never reached `removeAfter`.
      let rounds = 0
      for (; rounds < 12 && !c.servers[1]!.dead; rounds++) {
        const results = await within(Promise.allSettled(onB.map((k) => c.get(k))), 5_000, 'a round of gets')
        for (const r of results) {
          if (r.status === 'rejected') assert.ok(['FERROCACHE_TIMEOUT', 'FERROCACHE_SERVER_FAILING'].includes((r.reason as Err).code), String(r.reason))
        }
        await sleep(60)
      }
      assert.ok(c.servers[1]!.dead, `${protocol}: the hung server was not marked dead after ${rounds} rounds of timeouts`)
      // its keys went to the live server (a miss there), and reads and writes work
      for (const k of onB) assert.is(c.serverFor(k), servers[0])
      assert.equal(await c.getMany(onB), new Map())
      assert.ok(await c.set(onB[0]!, 'written meanwhile'))
      assert.is(await c.get(onB[0]!), 'written meanwhile')
      b!.child.kill('SIGCONT')
      assert.ok(await waitFor(() => !c.servers[1]!.dead, 5_000), `${protocol}: the probe brought the server back`)
      // back on its server, with the values it kept
      assert.is(c.serverFor(onB[1]!), servers[1])
      assert.equal(await c.getMany(onB.slice(1)), new Map(onB.slice(1).map((k) => [k, `value of ${k}`])))
    } finally {
      b!.child.kill('SIGCONT')
      await c.close()
    }
  }
})

s('a second close() waits for the requests in flight, as the first does', async () => {
  // answers every request line 200 ms late
  const slow = await fake((socket) => {
    socket.on('data', (d: Buffer) => {
      const lines = d.toString('latin1').split('\n').length - 1
      setTimeout(() => socket.destroyed || socket.write('HD\r\n'.repeat(lines)), 200)
    })
  })
  const c = new Client({ servers: [`127.0.0.1:${slow.port}`], timeout: 5_000 })
  const order: string[] = []
  const inFlight = c.delete('k').then((v) => order.push(`delete ${v}`))
  await sleep(20)
  const first = c.close().then(() => order.push('first close'))
  const second = c.close().then(() => order.push('second close'))
  await within(Promise.all([inFlight, first, second]), 5_000, 'close')
  assert.equal(order, ['delete true', 'first close', 'second close'], 'a second close() resolved before the request in flight was answered')
})

s('close() waits for the requests in flight on connections let go when their server was marked dead', async () => {
  // takes connections and never answers: the first request's timeout marks the server
  // dead (removeAfter 1), while a second connection still has a request in flight
  const silent = await fake(() => {})
  const c = new Client({ servers: [`127.0.0.1:${silent.port}`], timeout: 300, removeAfter: 1, reconnect: 60_000 })
  const order: string[] = []
  const first = c.get('a')
  await sleep(100)
  // the first connection is busy: this one opens the pool's second, and times out 100 ms later
  const second = c.get('b').then(
    () => order.push('second answered'),
    (err: Err) => order.push(`second ${err.code}`),
  )
  assert.is((await failure(first, 5_000)).code, 'FERROCACHE_TIMEOUT')
  assert.ok(c.servers[0]!.dead, 'marked dead by the first timeout')
  await within(
    c.close().then(() => order.push('close')),
    5_000,
    'close',
  )
  await second
  assert.equal(order, ['second FERROCACHE_TIMEOUT', 'close'], 'close() resolved before a request made before it had settled')
})

s('after close(), getMany, setMany and deleteMany of no keys reject as the embedded Cache does', async () => {
  const c = new Client({ servers: ['127.0.0.1:1'] })
  await c.close()
  for (const [name, call] of [
    ['getMany', () => c.getMany([])],
    ['setMany', () => c.setMany([])],
    ['deleteMany', () => c.deleteMany([])],
    ['getMany of a key', () => c.getMany(['k'])],
    ['flush', () => c.flush()],
  ] as const) {
    assert.is((await failure(call())).code, 'FERROCACHE_CLOSED', name)
  }
})

s('TLS: a handshake the server cuts off is FERROCACHE_TLS; one it never answers fails after connectTimeout', async () => {
  // reads the ClientHello, answers half a ServerHello record header, then closes
  const cutOff = await fake((socket) => socket.once('data', () => socket.end(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02]))))
  const silent = await fake(() => {})
  for (const protocol of PROTOCOLS) {
    const c = new Client({ servers: [`127.0.0.1:${cutOff.port}`], protocol, tls: { rejectUnauthorized: false }, retry: 10_000 })
    try {
      const [get, set] = await Promise.all([failure(c.get('k')), failure(c.set('k', 'v'))])
      for (const err of [get, set]) {
        assert.is(err.code, 'FERROCACHE_TLS', `${protocol}: ${err.message}`)
        assert.match(err.message, `TLS handshake with 127.0.0.1:${cutOff.port} failed: the server closed the connection`)
      }
      const next = await failure(c.get('k'))
      assert.is(next.code, 'FERROCACHE_SERVER_FAILING')
      assert.match(next.message, 'the server closed the connection')
    } finally {
      await c.close()
    }
    const stalled = new Client({ servers: [`127.0.0.1:${silent.port}`], protocol, tls: true, connectTimeout: 200, timeout: 5_000 })
    try {
      const err = await failure(stalled.getMany(['a', 'b']), 3_000)
      assert.is(err.code, 'FERROCACHE_TIMEOUT')
      assert.match(err.message, `the TLS handshake with 127.0.0.1:${silent.port} (is it a TLS server?) timed out after 200 ms`)
    } finally {
      await stalled.close()
    }
  }
})

s('readFrom replica: a replica that just failed is skipped for the primary, not refused for `retry` ms', async (ctx) => {
  const [primary] = ctx.pair!
  // a replica address nobody listens on: the port of a server of this file, closed
  const gone = await fake(() => {})
  await gone.close()
  for (const protocol of PROTOCOLS) {
    const c = new Client({
      servers: [{ host: '127.0.0.1', port: primary!.port, replicas: [`127.0.0.1:${gone.port}`] }],
      readFrom: 'replica',
      protocol,
      encoding: 'utf8',
      retry: 10_000,
    })
    try {
      await c.set('replicated', protocol)
      // the read in flight when the replica fails is not resent (docs: Failures)
      assert.is((await failure(c.get('replicated'))).code, 'FERROCACHE_CONNECTION')
      // within `retry` the replica is failing: reads go to the primary
      assert.is(await c.get('replicated'), protocol, `${protocol}: a read went to the failing replica`)
      assert.equal(await c.getMany(['replicated', 'missing']), new Map([['replicated', protocol]]))
    } finally {
      await c.close()
    }
  }
})

s('a server SIGKILLed under pipelined getMany/setMany/get across three (memcached, ferrocached): every promise settles, never with another key\'s value', async (ctx) => {
  const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const [a] = ctx.pair!
  const b = ctx.ferrocached
  const valueOf = (k: string): string => `${k}|`.repeat(40)
  for (const protocol of PROTOCOLS) {
    const victim = await startMemcached(asNobody)
    const servers = [a!, b!, victim].map((r) => `127.0.0.1:${r.port}`)
    const c = new Client({ servers, protocol, encoding: 'utf8', timeout: 2_000, retry: 10_000 })
    try {
      const keys = Array.from({ length: 600 }, (_, i) => `${protocol}:batch:${i}`)
      await c.setMany(keys.map((k) => [k, valueOf(k)]))
      const gets: Array<Promise<Map<string, string>>> = []
      const singles: Array<Promise<string | undefined>> = []
      const writes: Array<Promise<void>> = []
      for (let round = 0; round < 12; round++) {
        gets.push(handled(c.getMany(keys)))
        writes.push(handled(c.setMany(keys.slice(round * 50, round * 50 + 50).map((k) => [k, valueOf(k)]))))
        for (let i = 0; i < 25; i++) singles.push(handled(c.get(keys[(round * 25 + i) % keys.length]!)))
        if (round === 3) victim.child.kill('SIGKILL')
        await sleep(1)
      }
      const settled = await within(Promise.allSettled([...gets, ...singles, ...writes]), 10_000, 'every request settles')
      const allowed = ['ok', 'FERROCACHE_CONNECTION', 'FERROCACHE_SERVER_FAILING']
      for (const [code, n] of Object.entries(tally(settled))) assert.ok(allowed.includes(code), `${protocol}: ${n} settled with ${code}`)
      for (const r of settled.slice(0, gets.length)) {
        if (r.status === 'fulfilled') for (const [k, v] of r.value as Map<string, string>) assert.is(v, valueOf(k), `${protocol}: getMany gave ${k} another value`)
      }
      settled.slice(gets.length, gets.length + singles.length).forEach((r, i) => {
        const k = keys[i % keys.length]!
        if (r.status === 'fulfilled') assert.is(r.value, valueOf(k), `${protocol}: get(${k}) gave another value`)
      })
      assert.ok(settled.some((r) => r.status === 'rejected'), `${protocol}: the kill failed nothing`)
      // the live servers' keys read as before, on the connections left
      const live = keys.filter((k) => c.serverFor(k) !== servers[2])
      const found = await c.getMany(live)
      assert.is(found.size, live.length)
      for (const [k, v] of found) assert.is(v, valueOf(k))
      const err = await failure(c.getMany(keys))
      assert.is(err.code, 'FERROCACHE_SERVER_FAILING', err.message)
    } finally {
      await c.close()
      await victim.stop()
    }
  }
})

s('a server that never reads: 20 000 requests all fail with FERROCACHE_TIMEOUT, then the server is failing; close() in flight settles them', async () => {
  const deaf = await fake((socket) => socket.pause())
  const c = new Client({ servers: [`127.0.0.1:${deaf.port}`], timeout: 300, retry: 10_000, encoding: 'utf8' })
  try {
    const value = 'v'.repeat(1000)
    const pending = Array.from({ length: 20_000 }, (_, i) => (i % 2 === 0 ? c.set(`deaf:${i}`, value) : c.get(`deaf:${i}`)))
    const settled = await within(Promise.allSettled(pending), 10_000, 'every request settles')
    assert.equal(tally(settled), { FERROCACHE_TIMEOUT: 20_000 })
    assert.is((await failure(c.get('next'))).code, 'FERROCACHE_SERVER_FAILING')
  } finally {
    await c.close()
  }
  const closing = new Client({ servers: [`127.0.0.1:${deaf.port}`], timeout: 300 })
  const inFlight = Promise.allSettled(Array.from({ length: 1000 }, (_, i) => closing.get(`deaf:${i}`)))
  await within(closing.close(), 5_000, 'close() with requests in flight')
  assert.equal(tally(await inFlight), { FERROCACHE_TIMEOUT: 1000 })
})

s('a reply arriving after its request timed out is not taken for the next one (meta and binary)', async () => {
  // the first request is answered 300 ms late with a hit; the others at once with a miss
  let n = 0
  const lateMeta = await fake((socket) => {
    socket.on('data', (d: Buffer) => {
      for (let lines = d.toString('latin1').split('\n').length - 1; lines > 0; lines--) {
        if (n++ === 0) setTimeout(() => socket.destroyed || socket.write('VA 4\r\nlate\r\n'), 300)
        else socket.write('EN\r\n')
      }
    })
  })
  const lateBinary = await fake((socket) => {
    let buf = Buffer.alloc(0)
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 24 && buf.length >= 24 + buf.readUInt32BE(8)) {
        const opaque = buf.readUInt32BE(12)
        buf = buf.subarray(24 + buf.readUInt32BE(8))
        const head = Buffer.alloc(24)
        head[0] = 0x81
        head.writeUInt32BE(opaque, 12)
        if (n++ === 0) {
          head[4] = 4 // flags
          head.writeUInt32BE(8, 8)
          setTimeout(() => socket.destroyed || socket.write(Buffer.concat([head, Buffer.alloc(4), Buffer.from('late')])), 300)
        } else {
          head.writeUInt16BE(1, 6) // not found
          socket.write(head)
        }
      }
    })
  })
  for (const [protocol, server] of [['meta', lateMeta], ['binary', lateBinary]] as const) {
    n = 0
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, encoding: 'utf8', timeout: 100, retry: 0 })
    try {
      assert.is((await failure(c.get('slow'))).code, 'FERROCACHE_TIMEOUT')
      const after = c.get('other')
      await sleep(400)
      assert.is(await after, undefined, `${protocol}: the late reply was taken for the next request`)
      assert.is(server.accepted(), 2, `${protocol}: the timed-out connection was not closed`)
    } finally {
      await c.close()
    }
  }
})

s('a host name that does not resolve fails with the name, then failing and dead like a refused one', async () => {
  for (const protocol of PROTOCOLS) {
    const c = new Client({ servers: ['no-such-host.invalid:11211'], protocol, connectTimeout: 3_000, retry: 0, removeAfter: 2 })
    try {
      for (let i = 0; i < 2; i++) {
        const err = await failure(c.get('k'))
        assert.ok(['FERROCACHE_CONNECTION', 'FERROCACHE_TIMEOUT'].includes(err.code), err.message)
        assert.match(err.message, 'no-such-host.invalid:11211')
      }
      const dead = await failure(c.get('k'))
      assert.is(dead.code, 'FERROCACHE_SERVER_DEAD')
    } finally {
      await c.close()
    }
  }
})

s('keys the wire cannot carry are TypeErrors sent nowhere; requests around them in the same tick stay in step', async (ctx) => {
  const [a, b] = ctx.pair!
  const bad = ['has space', 'new\nline', 'tab\tkey', 'nul\u0000', 'del\u007f', 'k'.repeat(251), 'é'.repeat(126), '']
  for (const protocol of PROTOCOLS) {
    const c = new Client({ servers: [`127.0.0.1:${a!.port}`, `127.0.0.1:${b!.port}`], protocol, encoding: 'utf8' })
    try {
      const longest = 'é'.repeat(125) // 250 bytes
      const keys = [`${protocol}:good`, longest, `${protocol}:ключ`]
      // stores first: requests of one tick may go on different connections of the pool,
      // in no set order
      assert.equal(await Promise.all(keys.map((k) => c.set(k, `v:${k}`))), [true, true, true])
      const round = await Promise.allSettled([
        ...keys.map((k) => c.set(k, `v:${k}`)),
        ...bad.map((k) => c.set(k, 'x')),
        c.getMany([keys[0]!, bad[0]!]),
        c.setMany([[keys[0]!, 'never'], [bad[1]!, 'never']]),
        ...bad.map((k) => c.get(k)),
        ...keys.map((k) => c.get(k)),
      ])
      const refused = round.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Err)
      assert.is(refused.length, bad.length * 2 + 2)
      for (const e of refused) assert.ok(e instanceof TypeError && e.code === 'FERROCACHE_BAD_KEY', `${protocol}: ${e.message}`)
      assert.equal(
        round.slice(-keys.length).map((r) => (r as PromiseFulfilledResult<unknown>).value),
        keys.map((k) => `v:${k}`),
      )
      assert.equal(await c.getMany(keys), new Map(keys.map((k) => [k, `v:${k}`])), `${protocol}: the refused setMany stored nothing`)
    } finally {
      await c.close()
    }
  }
})

s('a server without meta commands: its ERROR closes the connection, naming the fix; a store\'s value read as a command is answered to nobody', async () => {
  // memcached before 1.6: every line is a command; `get` is known, meta commands are not
  const executed: string[] = []
  const old = await fake((socket) => {
    let buf = ''
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (socket.destroyed) return
        if (line.startsWith('get ')) {
          executed.push(line)
          socket.write(line === 'get secret' ? 'VALUE secret 0 6\r\nhunter\r\nEND\r\n' : 'END\r\n')
        } else socket.write('ERROR\r\n')
      }
    })
  })
  const c = new Client({ servers: [`127.0.0.1:${old.port}`], poolSize: 1, encoding: 'utf8', retry: 0 })
  try {
    const settled = await within(Promise.allSettled([c.set('a', 'get secret'), c.get('b'), c.has('c'), c.getMany(['d', 'e'])]), 5_000, 'the requests')
    for (const r of settled) {
      assert.is(r.status, 'rejected')
      const err = (r as PromiseRejectedResult).reason as Err
      assert.is(err.code, 'FERROCACHE_SERVER_ERROR')
      assert.match(err.message, "answered ERROR: it does not know the command (memcached before 1.6 has no meta commands: use protocol 'text')")
    }
  } finally {
    await c.close()
  }
  // the same server in text: what it speaks
  const text = new Client({ servers: [`127.0.0.1:${old.port}`], protocol: 'text', encoding: 'utf8' })
  try {
    assert.is(await text.get('secret'), 'hunter')
    // the pipelined value did run as a command (nothing prevents that but 'text'); its
    // answer was read by nobody
    assert.equal(executed, ['get secret', 'get secret'])
  } finally {
    await text.close()
  }
})

s('a key with a lone surrogate is refused as the embedded Cache refuses it, not sent as U+FFFD (one key for many)', async (ctx) => {
  const [a] = ctx.pair!
  const cache = new Cache({ memoryLimit: '16mb' })
  try {
    for (const protocol of PROTOCOLS) {
      const c = new Client({ servers: [`127.0.0.1:${a!.port}`], protocol, encoding: 'utf8' })
      try {
        for (const key of ['\ud800', 'a\udfffb', 'pair\ud83d\ude00lone\ud83d']) {
          let expected = ''
          try {
            cache.getSync(key)
          } catch (e) {
            expected = (e as Error).message
          }
          assert.match(expected, 'lone surrogate', 'the embedded Cache refuses it')
          for (const call of [() => c.set(key, 'x'), () => c.get(key), () => c.getMany(['ok', key]), () => c.delete(key)]) {
            const err = await failure(call())
            assert.ok(err instanceof TypeError && err.code === 'FERROCACHE_BAD_KEY', `${protocol}: ${err.message}`)
            assert.is(err.message.replace(/^keys\[1\]/, 'key'), expected)
          }
        }
        // the key it would have collided with works as itself
        assert.ok(await c.set('\ufffd', `${protocol} replacement char`))
        assert.is(await c.get('\ufffd'), `${protocol} replacement char`)
        assert.is(await c.get('\ud83d\ude00'), undefined)
      } finally {
        await c.close()
      }
    }
  } finally {
    cache.close()
  }
})

s.run()
