// Review of the Client's reply parsing and connection handling against scripted servers
// that misbehave on purpose: malformed value headers (a negative byte count crashed the
// process), a proxy that closes a connection behind an error reply (it made the whole
// proxy "failing"), a late reply after a timeout, a probe still waiting when the client
// closes, and IPv6 zone ids. Every server here is an in-process net.Server of this file.
import net from 'node:net'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Worker } from 'node:worker_threads'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { tearDown } from './helpers/guard'
import { sleep, startMemcached, waitFor, within } from './helpers/servers'
import { failure } from './helpers/settled'

// gc() for the memory check (a flag that can be set at run time, before first use)
v8.setFlagsFromString('--expose-gc')


/** A scripted server: `answer` gets each request line and the socket, and writes what it likes. */
interface Scripted {
  port: number
  /** Connections open now, as the server sees them. */
  open(): number
  /** Connections accepted so far. */
  accepted(): number
  close(): Promise<void>
}

const servers: Scripted[] = []
tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.close()))
})

async function scripted(answer: (line: string, socket: net.Socket, n: number) => void): Promise<Scripted> {
  const sockets = new Set<net.Socket>()
  let accepted = 0
  const server = net.createServer((socket) => {
    sockets.add(socket)
    const n = accepted++
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    let buf = ''
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1')
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '')
        buf = buf.slice(nl + 1)
        if (!socket.destroyed) answer(line, socket, n)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const s: Scripted = {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  servers.push(s)
  return s
}

test('a malformed value header (negative, non-numeric, huge byte count) drops the connection, in both protocols', async () => {
  const cases: Array<['meta' | 'text', string]> = [
    ['text', 'VALUE k 0 -100\r\n'],
    ['meta', 'VA -100\r\n'],
    ['text', 'VALUE k 0 -1\r\nEND\r\n'],
    ['text', 'VALUE k 0 abc\r\nEND\r\n'],
    ['meta', 'VA 5x\r\nhello\r\n'],
    ['meta', 'VA 99999999999999999\r\n'],
    ['text', 'VALUE k 0 \r\nEND\r\n'],
  ]
  for (const [protocol, reply] of cases) {
    const server = await scripted((_line, socket) => socket.write(reply))
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, timeout: 2_000 })
    try {
      const err = await failure(c.get('k'))
      assert.is(err.code, 'FERROCACHE_CONNECTION', `${protocol} ${JSON.stringify(reply)}: ${err.message}`)
      assert.match(err.message, /sent a malformed value header/)
    } finally {
      await c.close()
    }
  }
})

test('half a reply, then the server closes: FERROCACHE_CONNECTION at once, in both protocols', async () => {
  const halves = { text: 'VALUE k 0 5\r\nhel', meta: 'VA 5\r\nhel' }
  for (const protocol of ['meta', 'text'] as const) {
    const server = await scripted((_line, socket) => socket.end(halves[protocol]))
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, timeout: 10_000 })
    try {
      const err = await failure(c.get('k'))
      assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
    } finally {
      await c.close()
    }
  }
})

test('a reply line that never ends (1 MiB without a line end) drops the connection before the timeout', async () => {
  const server = await scripted((_line, socket) => {
    socket.write('SERVER_ERROR ')
    socket.write(Buffer.alloc(1024 * 1024, 0x78))
  })
  for (const protocol of ['meta', 'text'] as const) {
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, timeout: 10_000 })
    try {
      const err = await failure(c.get('k'))
      assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
      assert.match(err.message, /sent a line of over 65536 bytes: SERVER_ERROR xxx/)
    } finally {
      await c.close()
    }
  }
})

test('twemproxy: the proxy closing a connection behind an error reply does not make it failing', async () => {
  // nutcracker 0.5 answers a multi-get touching an unreachable backend with SERVER_ERROR
  // and (depending on timing) closes the client connection: the next requests must be
  // sent on a new connection, not refused with FERROCACHE_SERVER_FAILING for `retry` ms.
  const proxy = await scripted((line, socket) => {
    if (line.startsWith('get down')) {
      socket.end('SERVER_ERROR Connection refused\r\n')
    } else if (line.startsWith('get ')) {
      socket.write('END\r\n')
    }
  })
  const c = new Client({ servers: [`127.0.0.1:${proxy.port}`], protocol: 'twemproxy', retry: 60_000, poolSize: 1 })
  try {
    for (let i = 0; i < 3; i++) {
      // a get pipelined behind the multi-get is in flight when the proxy closes
      const [many, behind] = await Promise.all([failure(c.getMany(['down:1', 'down:2'])), failure(c.get('up'))])
      assert.is(many.code, 'FERROCACHE_SERVER_ERROR', many.message)
      assert.is(behind.code, 'FERROCACHE_CONNECTION', behind.message)
      assert.is(await c.get('up'), undefined, `round ${i}: the proxy is up`)
    }
    assert.equal(c.servers[0]!.dead, false)
  } finally {
    await c.close()
  }
  // The close can come as a reset: nutcracker closing the connection with the client's next
  // request unread makes the kernel send RST, not FIN (seen in client-text's nutcracker
  // test): the same close by the proxy, after replies, so not failing either
  const resetter = await scripted((line, socket) => {
    if (line.startsWith('get down')) socket.write('SERVER_ERROR Connection refused\r\n')
    else if (line === 'get behind') socket.resetAndDestroy()
    else if (line.startsWith('get ')) socket.write('END\r\n')
  })
  const r = new Client({ servers: [`127.0.0.1:${resetter.port}`], protocol: 'twemproxy', retry: 60_000, poolSize: 1 })
  try {
    for (let i = 0; i < 3; i++) {
      assert.is((await failure(r.getMany(['down:1', 'down:2']))).code, 'FERROCACHE_SERVER_ERROR')
      const reset = await failure(r.get('behind'))
      assert.match(reset.message, /failed: ECONNRESET$/, `round ${i}: ${reset.message}`)
      assert.is(await r.get('up'), undefined, `round ${i}: the proxy is up`)
    }
  } finally {
    await r.close()
  }
  // A proxy closing connections before any reply counts as failing.
  const closer = await scripted((_line, socket) => socket.destroy())
  const early = new Client({ servers: [`127.0.0.1:${closer.port}`], protocol: 'twemproxy', retry: 60_000, poolSize: 1 })
  try {
    assert.is((await failure(early.get('k'))).code, 'FERROCACHE_CONNECTION')
    assert.is((await failure(early.get('k'))).code, 'FERROCACHE_SERVER_FAILING')
  } finally {
    await early.close()
  }
  // Toward a server (protocol 'text') such a close still counts as the server failing.
  const t = new Client({ servers: [`127.0.0.1:${proxy.port}`], protocol: 'text', retry: 60_000, poolSize: 1 })
  try {
    await Promise.all([failure(t.get('down:1')), failure(t.get('up'))])
    assert.is((await failure(t.get('up'))).code, 'FERROCACHE_SERVER_FAILING')
  } finally {
    await t.close()
  }
})

test('a reply cut in two at every byte boundary is read whole (text and meta)', async () => {
  const replies = {
    text: 'VALUE a 5 7\r\nEND\r\nVA\r\nVALUE b 0 0\r\n\r\nEND\r\n',
    meta: 'VA 7 f5 c12\r\nEND\r\nVA\r\nEN\r\n',
  }
  for (const protocol of ['text', 'meta'] as const) {
    const reply = replies[protocol]
    for (let cut = 1; cut < reply.length; cut++) {
      // answers the last request of a write (text: the `get a b` line; meta: the second mg)
      const server = await scripted((line, socket) => {
        if (line === 'get a b' || line === 'mg b v f c') {
          socket.write(reply.slice(0, cut))
          setTimeout(() => socket.destroyed || socket.write(reply.slice(cut)), 5)
        }
      })
      const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, encoding: 'utf8', poolSize: 1 })
      try {
        if (protocol === 'text') {
          const many = await c.getMany(['a', 'b'])
          assert.equal([...many], [['a', 'END\r\nVA'], ['b', '']], `cut at ${cut}`)
        } else {
          const [a, b] = await Promise.all([c.gets('a'), c.gets('b')])
          assert.equal([a, b], [{ value: 'END\r\nVA', cas: 12n, flags: 5 }, undefined], `cut at ${cut}`)
        }
      } finally {
        await c.close()
        await server.close()
      }
    }
  }
})

test('text: an error line in place of a get line\'s END fails the getMany; what follows stays in step', async () => {
  // memcached answers a multi-get that fails midway with the error line alone (no END)
  const server = await scripted((line, socket) => {
    if (line.startsWith('get k0 ')) socket.write('VALUE k0 0 1\r\na\r\nSERVER_ERROR out of memory writing get response\r\n')
    else if (line.startsWith('get k100 ')) socket.write('VALUE k100 0 1\r\nb\r\nEND\r\n')
    else if (line === 'get after') socket.write('VALUE after 0 1\r\nz\r\nEND\r\n')
  })
  const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol: 'text', encoding: 'utf8', poolSize: 1 })
  try {
    const keys = Array.from({ length: 150 }, (_, i) => `k${i}`)
    const [many, after] = await Promise.all([failure(c.getMany(keys)), c.get('after')])
    assert.is(many.code, 'FERROCACHE_OUT_OF_MEMORY', many.message)
    assert.is(after, 'z')
    assert.is(await c.get('after'), 'z')
    assert.is(server.accepted(), 1, 'the connection stayed')
  } finally {
    await c.close()
  }
})

test('a reply arriving after its request timed out is never taken for the next request', async () => {
  // The first request of each connection is answered 300 ms late with a VALUE; later
  // ones at once with END. A client that kept the connection would read the late VALUE
  // as the reply to the second get.
  const server = await scripted((line, socket, n) => {
    if (line === 'get slow' && n === 0) setTimeout(() => socket.destroyed || socket.write('VALUE slow 0 4\r\nlate\r\nEND\r\n'), 300)
    else if (line.startsWith('get ')) socket.write('END\r\n')
  })
  const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol: 'text', timeout: 100, retry: 0, encoding: 'utf8' })
  try {
    assert.is((await failure(c.get('slow'))).code, 'FERROCACHE_TIMEOUT')
    const after = c.get('other')
    await sleep(400)
    assert.is(await after, undefined)
    assert.is(await c.get('slow'), undefined, 'a new connection: answered at once')
    assert.is(server.accepted(), 2)
  } finally {
    await c.close()
  }
})

test('close() also ends a probe that is still waiting for its answer', async () => {
  // Answers nothing: the first request times out, the server is dead, its probe hangs.
  const server = await scripted(() => {})
  const c = new Client({ servers: [`127.0.0.1:${server.port}`], timeout: 100, removeAfter: 1, reconnect: 20, connectTimeout: 10_000 })
  await failure(c.get('k'))
  assert.ok(c.servers[0]!.dead)
  assert.ok(await waitFor(() => server.accepted() === 2 && server.open() === 1, 3_000), 'the probe connected')
  await c.close()
  assert.ok(await waitFor(() => server.open() === 0, 500), 'no socket left open once close() resolved')
})

// A login's and a probe's deadline is connectTimeout + timeout away: past setTimeout's
// longest delay (2^31 - 1 ms) with the largest timeout taken, and Node fires such a timer
// after 1 ms (TimeoutOverflowWarning). Every login then timed out at once, and a dead
// server's probes too, so it never came back.
test('timeout 2^31 - 1 (the largest taken): a login and a probe wait for their answer', async () => {
  const warnings: string[] = []
  const onWarning = (w: Error): void => void warnings.push(w.name)
  process.on('warning', onWarning)
  const later = (socket: net.Socket, text: string): void => void setTimeout(() => socket.destroyed || socket.write(text), 50)
  const clients: Client[] = []
  try {
    const loginServer = await scripted((line, socket) => {
      if (line === 'app pass') later(socket, 'STORED\r\n') // the login's value
      else if (line.startsWith('mg ')) later(socket, 'EN\r\n')
    })
    const loggedIn = new Client({ servers: [`127.0.0.1:${loginServer.port}`], username: 'app', password: 'pass', timeout: 2 ** 31 - 1 })
    clients.push(loggedIn)
    assert.is(await within(loggedIn.get('k'), 5_000, 'a get behind a login'), undefined)
    // the first connection is closed before it answers: dead (removeAfter 1); the probe's `mn` is answered late
    const probed = await scripted((line, socket, n) => {
      if (n === 0) socket.destroy()
      else if (line === 'mn') later(socket, 'MN\r\n')
      else if (line.startsWith('mg ')) later(socket, 'EN\r\n')
    })
    const c = new Client({ servers: [`127.0.0.1:${probed.port}`], timeout: 2 ** 31 - 1, removeAfter: 1, reconnect: 20 })
    clients.push(c)
    assert.is((await failure(c.get('k'))).code, 'FERROCACHE_CONNECTION')
    assert.ok(c.servers[0]!.dead)
    assert.ok(await waitFor(() => !c.servers[0]!.dead, 3_000), `the probe brought the server back (${probed.accepted()} connections)`)
    assert.is(await within(c.get('k'), 5_000, 'a get after the probe'), undefined)
    assert.equal(warnings, [])
  } finally {
    process.off('warning', onWarning)
    await Promise.all(clients.map((c) => c.close()))
  }
})

test('create and close 60 clients in text and meta: no sockets or timers left behind', async () => {
  const server = await scripted((line, socket) => {
    if (line.startsWith('get ')) socket.write('END\r\n')
    else if (line.startsWith('mg ')) socket.write('EN\r\n')
  })
  const handles = () => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length
  const before = handles()
  for (let i = 0; i < 60; i++) {
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol: i % 2 === 0 ? 'text' : 'meta', poolSize: 2 })
    if (i % 2 === 0) assert.is(await c.get('k'), undefined)
    else assert.equal(await Promise.all([c.has('a'), c.has('b')]), [false, false])
    await c.close()
  }
  assert.ok(await waitFor(() => server.open() === 0, 2_000), 'every connection closed')
  assert.ok(handles() <= before, `${handles()} active handles, ${before} before`)
})

/** What the arrayBuffers of this process grow by while `run` writes through an idle
 * Client of one connection to a server that reads `ms` requests by their byte counts and
 * answers NS to each: what that idle connection keeps, once `run` is done. */
async function keptByIdleConnection(run: (c: Client) => Promise<void>, idleMs = 50): Promise<number> {
  const gc = vm.runInNewContext('gc') as () => void
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    let skip = 0
    let head = ''
    socket.on('data', (chunk: Buffer) => {
      let at = 0
      while (at < chunk.length) {
        if (skip > 0) {
          const n = Math.min(skip, chunk.length - at)
          skip -= n
          at += n
          if (skip === 0) socket.write('NS\r\n')
          continue
        }
        const nl = chunk.indexOf(10, at)
        if (nl === -1) {
          head += chunk.toString('latin1', at)
          break
        }
        const line = head + chunk.toString('latin1', at, nl)
        head = ''
        at = nl + 1
        const size = /^ms \S+ (\d+)/.exec(line)
        if (size) skip = Number(size[1]) + 2
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const c = new Client({ servers: [`127.0.0.1:${(server.address() as net.AddressInfo).port}`], poolSize: 1, timeout: 20_000 })
  const held = () => {
    gc()
    gc()
    return process.memoryUsage().arrayBuffers
  }
  try {
    assert.is(await c.set('warm', 'x'), false)
    const before = held()
    await run(c)
    await sleep(idleMs)
    return held() - before
  } finally {
    await c.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

test('after one 32 MiB value an idle connection does not keep a buffer of its size', async () => {
  const kept = await keptByIdleConnection(async (c) => {
    assert.is(await c.set('big', Buffer.alloc(32 * 1024 * 1024, 1)), false)
  })
  assert.ok(kept < 8 * 1024 * 1024, `${Math.round(kept / 1024 / 1024)} MiB still held by the idle connection`)
})

// Its write buffers were sized to the burst's (up to 4 MiB) and kept, the one being
// written into and two spares: ~4-5 MiB per connection that ever wrote a burst of large
// values (42 MiB for a Client of four servers), for as long as the Client lived. They now
// go once it has been idle a while (500 ms).
test('after bursts of 1 MB values an idle connection lets its grown write buffers go', async () => {
  const kept = await keptByIdleConnection(async (c) => {
    for (let round = 0; round < 3; round++) {
      const value = Buffer.alloc(900_000, round)
      await Promise.all(Array.from({ length: 8 }, (_, i) => c.set(`big:${i}`, value)))
    }
    for (let i = 0; i < 3; i++) assert.is(await c.set('small', 'x'), false)
  }, 700) // they go 500 ms after the connection went idle
  assert.ok(kept < 512 * 1024, `${(kept / 1024 / 1024).toFixed(1)} MiB still held by the idle connection`)
})

test('IPv6 zone ids: kept in brackets and alone; a zone id with a colon is refused, not read as a port', () => {
  assert.equal(new Client({ servers: ['fe80::1%lo', '[fe80::1%lo]:11311'] }).servers.map((s) => s.server), ['[fe80::1%lo]:11211', '[fe80::1%lo]:11311'])
  assert.throws(() => new Client({ servers: ['fe80::1%lo:11311'] }), /servers\[0\]: 'fe80::1%lo:11311' is not an IPv6 address; write an IPv6 address with a port as '\[address\]:port'/)
  assert.throws(() => new Client({ servers: ['[fe80::1%lo:1]:11311'] }), /in brackets is not an IPv6 address/)
  assert.throws(() => new Client({ servers: [{ host: '[fe80::1%a:b]' }] }), /servers\[0\]\.host must be a host name or an address/)
})

// A timer whose time came while the event loop was held (a long synchronous run: a 100000-key
// setMany's requests made at once, on a busy machine) ran before the I/O that had come
// meanwhile: 'connecting to … timed out' though the connection was up, a timeout though
// the reply was in the socket. Now such a verdict waits one turn for that I/O.
test('a connect or request timer due while the event loop was held lets the I/O that came meanwhile in first', async () => {
  const hold = (ms: number): void => {
    for (const end = performance.now() + ms; performance.now() < end; );
  }
  const memcached = await startMemcached(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])
  try {
    const slowConnect = new Client({ servers: [`127.0.0.1:${memcached.port}`], connectTimeout: 200, timeout: 10_000, retry: 0 })
    try {
      const first = slowConnect.get('a') // the connect begins
      hold(500) // the kernel completes it meanwhile
      assert.is(await first, undefined, 'connected, not timed out')
    } finally {
      await slowConnect.close()
    }
    const slowRead = new Client({ servers: [`127.0.0.1:${memcached.port}`], timeout: 200, retry: 0 })
    try {
      assert.is(await slowRead.get('a'), undefined)
      const second = slowRead.get('b')
      await new Promise((resolve) => setImmediate(resolve)) // written (a nextTick flush)
      hold(500) // memcached answers meanwhile
      assert.is(await second, undefined, 'the reply in the socket, not a timeout')
    } finally {
      await slowRead.close()
    }
  } finally {
    await memcached.stop()
  }
})

// The verdict's immediate must be referenced: an unreferenced one left the poll blocking
// on the open socket with no timer due, so a request to a server that never answers (or a
// TLS handshake it never answers) waited for other I/O or another timer. Run in a worker,
// whose event loop has no timer of the test harness to wake it: only the 3 s bound there.
test('a server that never answers: the request and the TLS handshake time out on time', async () => {
  const code = `
    const net = require('node:net')
    const { parentPort } = require('node:worker_threads')
    const { Client } = require(${JSON.stringify(path.join(__dirname, '../src'))})
    const silent = net.createServer((s) => s.on('error', () => {})).listen(0, '127.0.0.1', async () => {
      const servers = ['127.0.0.1:' + silent.address().port]
      const took = {}
      for (const [what, options] of [['request', { timeout: 200 }], ['handshake', { connectTimeout: 200, tls: { rejectUnauthorized: false } }]]) {
        const client = new Client({ servers, retry: 0, ...options })
        const began = performance.now()
        let bound
        const code = await Promise.race([
          client.get('k').then(() => 'answered', (e) => e.code),
          new Promise((resolve) => (bound = setTimeout(resolve, 3000, 'bound'))),
        ])
        clearTimeout(bound)
        took[what] = [code, Math.round(performance.now() - began)]
        await client.close()
      }
      silent.close()
      parentPort.postMessage(took)
    })`
  const worker = new Worker(code, { eval: true, execArgv: ['--require', 'tsx/cjs'] })
  try {
    const took = await within(
      new Promise<Record<string, [string, number]>>((resolve, reject) => {
        worker.once('message', resolve)
        worker.once('error', reject)
      }),
      20_000,
      "the worker's report",
    )
    for (const what of ['request', 'handshake']) {
      const [code, ms] = took[what]!
      assert.is(code, 'FERROCACHE_TIMEOUT', what)
      assert.ok(ms < 1500, `${what}: timed out after ${ms} ms, not ~200`)
    }
  } finally {
    await worker.terminate()
  }
})

test.run()
