// Client `protocol: 'binary'`: the shared CacheLike suite over memcached's binary protocol
// to ferrocached and to memcached 1.6.18; SASL PLAIN logins against ferrocached -S and
// memcached -S (Cyrus SASL, a sasldb from saslpasswd2): every method logged in, a wrong
// password or none refused within bounds, a server without SASL let through, one without
// PLAIN refused; a pipelined burst (quiet batches, opaques); the server's error statuses
// mapped to the meta path's errors; replies that fit no request or no protocol; TLS; a
// dead server probed back with `version`.
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Client, type ClientOptions } from '../src'
import { burst } from './helpers/burst'
import { cacheLikeSuite } from './helpers/cachelike'
import { makeCertificates } from './helpers/certs'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, startMemcached, waitFor, type Running } from './helpers/servers'
import { failure } from './helpers/settled'

const USER = 'app'
const PASS = 's3cret token' // a space: SASL PLAIN carries it (the text login could not)
const SASLPASSWD = '/usr/sbin/saslpasswd2'
const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []

async function remote(start: () => Promise<Running[]>) {
  const servers = await start()
  const cache = new Client({ servers: servers.map((s) => `127.0.0.1:${s.port}`), protocol: 'binary' })
  return { cache, close: async () => void (await Promise.all([cache.close(), ...servers.map((s) => s.stop())])) }
}

cacheLikeSuite('Client binary over two ferrocached', () => remote(() => startAll([() => startFerrocached(), () => startFerrocached()])))
cacheLikeSuite('Client binary over memcached 1.6.18', () => remote(async () => [await startMemcached()]))

interface Ctx {
  dir?: string
  /** ferrocached -S -Y: SASL logins from a user file. */
  ferrocached?: Running
  /** memcached -S: Cyrus SASL, PLAIN from a sasldb. */
  memcached?: Running
  /** ferrocached without logins. */
  plain?: Running
}

const s = suite<Ctx>('Client binary', {})

setUp(s, async (ctx) => {
  if (!existsSync(SASLPASSWD)) throw new Error(`${SASLPASSWD} is missing: CI installs sasl2-bin in .ci/run`)
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-client-binary-'))
  ctx.dir = dir
  chmodSync(dir, 0o711) // memcached -u nobody reads the sasldb
  const users = join(dir, 'users')
  writeFileSync(users, `${USER}:${PASS}\nother:x\n`, { mode: 0o644 })
  const sasldb = join(dir, 'sasldb2')
  execFileSync(SASLPASSWD, ['-p', '-a', 'memcached', '-c', '-f', sasldb, USER], { input: `${PASS}\n` })
  chmodSync(sasldb, 0o644)
  writeFileSync(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${sasldb}\n`)
  chmodSync(join(dir, 'memcached.conf'), 0o644) // not writeFileSync's mode, which the umask cuts (027: nobody reads nothing)
  process.env.SASL_CONF_PATH = dir // inherited by the memcached started next
  try {
    ;[ctx.ferrocached, ctx.memcached, ctx.plain] = await startAll([
      () => startFerrocached(['-S', '-Y', users]),
      () => startMemcached(['-S', ...asNobody]),
      () => startFerrocached(),
    ])
  } finally {
    delete process.env.SASL_CONF_PATH
  }
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.ferrocached?.stop(), ctx.memcached?.stop(), ctx.plain?.stop()])
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true })
})


function client(port: number, more: Partial<ClientOptions<'utf8'>> = {}): Client<'utf8'> {
  return new Client({ servers: [`127.0.0.1:${port}`], encoding: 'utf8', protocol: 'binary', ...more })
}

const saslServers = (ctx: Ctx): Array<[string, Running]> => [
  ['ferrocached -S', ctx.ferrocached!],
  ['memcached -S', ctx.memcached!],
]

s('SASL PLAIN: every method works logged in, on every pooled connection', async (ctx) => {
  for (const [name, server] of saslServers(ctx)) {
    const c = client(server.port, { username: USER, password: PASS, poolSize: 3 })
    try {
      // the first requests go out in the same write as the login
      const writes = await Promise.all(Array.from({ length: 200 }, (_, i) => c.set(`k${i}`, `v${i}`, { flags: i })))
      assert.ok(writes.every((w) => w === true), name)
      assert.is(await c.get('k7'), 'v7', name)
      const e = (await c.gets('k8'))!
      assert.is(e.flags, 8)
      assert.is(await c.cas('k8', 'new', e.cas), true)
      assert.is(await c.cas('k8', 'newer', e.cas), false)
      assert.equal([...(await c.getMany(['k1', 'none', 'k2']))], [['k1', 'v1'], ['k2', 'v2']])
      assert.is(await c.incr('n'), undefined, `${name}: a miss creates nothing`)
      assert.is(await c.get('n'), undefined)
      await c.set('n', '5')
      assert.is(await c.incr('n', 3), 8n)
      assert.is(await c.decr('n', 10), 0n)
      assert.is(await c.add('k1', 'x'), false)
      assert.is(await c.append('k1', Buffer.from('+')), true)
      assert.is(await c.get('k1'), 'v1+')
      assert.is(await c.touch('k1', 60_000), true)
      assert.is(await c.gat('k2', 60_000), 'v2')
      assert.is(await c.has('k3'), true)
      assert.is(await c.delete('k3'), true)
      assert.is(await c.deleteMany(['k4', 'k5', 'none']), 2)
      assert.ok((await c.stats()).cmd_set >= 200, name)
      await c.flush()
      assert.is(await c.get('k1'), undefined)
    } finally {
      await c.close()
    }
  }
})

s('a wrong password, an unknown user or no login: FERROCACHE_AUTH, within bounds, for every queued request', async (ctx) => {
  for (const [name, server] of saslServers(ctx)) {
    for (const [username, password] of [[USER, 'wrong'], ['nobody-here', PASS]] as const) {
      const c = client(server.port, { username, password, timeout: 2000, retry: 60_000 })
      try {
        const errors = await Promise.all([failure(c.get('a')), failure(c.set('b', 'v')), failure(c.getMany(['a', 'b']))])
        for (const err of errors) {
          assert.is(err.code, 'FERROCACHE_AUTH', `${name} ${username}: ${err.message}`)
          assert.match(err.message, new RegExp(`^login to 127\\.0\\.0\\.1:${server.port} as '${username}' failed: `))
        }
        // a refused login is a server failure: the next request is refused at once, with the reason
        const next = await failure(c.get('a'))
        assert.is(next.code, 'FERROCACHE_SERVER_FAILING')
        assert.match(next.message, /failed: /)
      } finally {
        await c.close()
      }
    }
    // without credentials the server refuses each request (memcached: "Auth failure.", status 0x20)
    const anon = client(server.port, { timeout: 2000 })
    try {
      const err = await failure(anon.get('a'))
      assert.is(err.code, 'FERROCACHE_SERVER_ERROR', `${name}: ${err.message}`)
      assert.match(err.message, /status 0x20/)
    } finally {
      await anon.close()
    }
  }
})

s('credentials against a server without SASL: let through, as the text login is', async (ctx) => {
  const memcached = await startMemcached(asNobody)
  try {
    for (const port of [ctx.plain!.port, memcached.port]) {
      const c = client(port, { username: USER, password: PASS })
      try {
        assert.is(await c.set('x', 'y'), true)
        assert.is(await c.get('x'), 'y')
      } finally {
        await c.close()
      }
    }
  } finally {
    await memcached.stop()
  }
})

s('a pipelined burst: 6000 requests at once, logged in, every reply to its request', async (ctx) => {
  // a 10 s request timeout, not the default 1 s: on a busy machine a server can take longer
  // than 1 s to answer 6000 requests sent at once (the last ones timed out, seen once)
  const plain = client(ctx.plain!.port, { poolSize: 2, timeout: 10_000 })
  const sasl = client(ctx.ferrocached!.port, { username: USER, password: PASS, timeout: 10_000 })
  try {
    await burst(plain, 'burst:')
    await burst(sasl, 'burst:', 500)
    // quiet batches mixed with single requests on the same connections
    const keys = Array.from({ length: 300 }, (_, i) => `mix${i}`)
    const ops: Array<Promise<unknown>> = []
    for (let round = 0; round < 5; round++) {
      ops.push(plain.setMany(keys.map((k) => [k, `${k}:${round}`])))
      ops.push(plain.get('mix0'))
      ops.push(plain.getMany(keys))
    }
    const results = await Promise.all(ops)
    for (let round = 0; round < 5; round++) {
      const got = results[3 * round + 2] as Map<string, string>
      assert.is(got.size, 300)
      assert.is(got.get('mix1'), `mix1:${round}`, 'the getMany after round n reads round n')
    }
    assert.is(await plain.deleteMany([...keys, 'absent1', 'absent2']), 300)
  } finally {
    await Promise.all([plain.close(), sasl.close()])
  }
})

s("the server's error statuses: the meta path's errors", async (ctx) => {
  const c = client(ctx.plain!.port)
  const m = client(ctx.memcached!.port, { username: USER, password: PASS })
  try {
    const big = 'x'.repeat(2 * 1024 * 1024)
    for (const cache of [c, m]) {
      const tooLarge = await failure(cache.set('big', big))
      assert.instance(tooLarge, RangeError)
      assert.is(tooLarge.code, 'FERROCACHE_TOO_LARGE')
      const manyTooLarge = await failure(cache.setMany([['ok', 'v'], ['big', big]]))
      assert.is(manyTooLarge.code, 'FERROCACHE_TOO_LARGE', 'a quiet set answers its error')
      assert.is(await cache.get('ok'), 'v', 'the rest of the batch was stored')
      await cache.set('text', 'abc')
      const nonNumeric = await failure(cache.incr('text'))
      assert.instance(nonNumeric, TypeError)
      assert.is(nonNumeric.code, 'FERROCACHE_NON_NUMERIC')
      assert.is(await cache.get('text'), 'abc', 'the connection goes on after an error status')
    }
  } finally {
    await Promise.all([c.close(), m.close()])
  }
})

/** A fake server answering every request packet with `answer(opcode, opaque)`. */
async function fakeServer(answer: (opcode: number, opaque: number) => Buffer): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((sock) => {
    sockets.add(sock)
    sock.on('error', () => {})
    sock.on('close', () => sockets.delete(sock))
    let pending = Buffer.alloc(0)
    sock.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 24 && pending.length >= 24 + pending.readUInt32BE(8)) {
        const size = 24 + pending.readUInt32BE(8)
        sock.write(answer(pending[1]!, pending.readUInt32BE(12)))
        pending = pending.subarray(size)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy()
        server.close(() => resolve())
      }),
  }
}

/** A response packet: `status`, `text` as its value. */
function response(opcode: number, opaque: number, status: number, text = ''): Buffer {
  const head = Buffer.alloc(24)
  head[0] = 0x81
  head[1] = opcode
  head.writeUInt16BE(status, 6)
  head.writeUInt32BE(Buffer.byteLength(text), 8)
  head.writeUInt32BE(opaque, 12)
  return Buffer.concat([head, Buffer.from(text)])
}

s('statuses only a server in trouble sends, and a reply with another opaque', async () => {
  const statuses: Array<[number, string, string]> = [
    [0x82, 'Out of memory', 'FERROCACHE_OUT_OF_MEMORY'],
    [0x84, 'Internal error', 'FERROCACHE_SERVER_ERROR'],
    [0x86, 'Temporary failure', 'FERROCACHE_SERVER_ERROR'],
  ]
  for (const [status, text, code] of statuses) {
    const fake = await fakeServer((opcode, opaque) => response(opcode, opaque, status, text))
    const c = client(fake.port)
    try {
      const err = await failure(c.set('k', 'v'))
      assert.is(err.code, code, text)
      assert.ok(err.message.includes(text) && err.message.includes(`status 0x${status.toString(16)}`), err.message)
    } finally {
      await c.close()
      await fake.close()
    }
  }
  // a SASL server without PLAIN: the login is refused before anything else is read
  const cram = await fakeServer((opcode, opaque) => response(opcode, opaque, 0, opcode === 0x20 ? 'CRAM-MD5 DIGEST-MD5' : ''))
  const login = client(cram.port, { username: USER, password: PASS })
  try {
    const err = await failure(login.get('k'))
    assert.is(err.code, 'FERROCACHE_AUTH')
    assert.match(err.message, /offers no PLAIN login \(mechanisms: CRAM-MD5 DIGEST-MD5\)/)
  } finally {
    await login.close()
    await cram.close()
  }
  // an answer that echoes some other request's opaque: out of step, the connection closes
  const liar = await fakeServer((opcode, opaque) => response(opcode, opaque + 7, 0))
  const c = client(liar.port)
  try {
    const err = await failure(c.delete('k'))
    assert.is(err.code, 'FERROCACHE_SERVER_ERROR')
    assert.match(err.message, /unexpected reply/)
  } finally {
    await c.close()
    await liar.close()
  }
})

s('a reply header that is not the protocol drops the connection: a request magic, a 4 GiB body', async () => {
  const bad: Array<[string, (opcode: number, opaque: number) => Buffer]> = [
    ['magic 0x80', (opcode, opaque) => Object.assign(response(opcode, opaque, 0), { 0: 0x80 })],
    ['body 4294967280 bytes', (opcode, opaque) => {
      const head = response(opcode, opaque, 0)
      head.writeUInt32BE(0xfffffff0, 8)
      return head
    }],
  ]
  for (const [what, answer] of bad) {
    const fake = await fakeServer(answer)
    const c = client(fake.port, { timeout: 5000 })
    try {
      const err = await failure(c.get('k'))
      assert.is(err.code, 'FERROCACHE_CONNECTION', err.message)
      assert.ok(err.message.includes('sent a malformed packet header') && err.message.includes(what), err.message)
    } finally {
      await c.close()
      await fake.close()
    }
  }
})

s('over TLS, logged in; a dead server probed back with version and the login', async (ctx) => {
  const certs = makeCertificates()
  const users = join(ctx.dir!, 'users')
  const tlsServer = await startFerrocached(['-Z', '-o', `ssl_chain_cert=${certs.path('server.pem')},ssl_key=${certs.path('server.key')}`, '-S', '-Y', users])
  // (10 s request timeout: the burst's 1200 requests over TLS, as above; 10 s to connect: a
  // TLS handshake on a busy machine took over the default 1 s, which retry 0 makes a failure)
  const c = client(tlsServer.port, {
    tls: { ca: certs.read('ca.pem') },
    username: USER,
    password: PASS,
    retry: 0,
    removeAfter: 1,
    reconnect: 100,
    timeout: 10_000,
    connectTimeout: 10_000,
  })
  let restarted: Running | undefined
  try {
    await burst(c, 'tls:', 300)
    const port = tlsServer.port
    await tlsServer.stop()
    await failure(c.get('tls:1'))
    assert.ok(await waitFor(() => c.servers[0]!.dead, 5_000), 'marked dead')
    restarted = await startFerrocached(['-Z', '-o', `ssl_chain_cert=${certs.path('server.pem')},ssl_key=${certs.path('server.key')}`, '-S', '-Y', users], {}, port)
    assert.ok(await waitFor(() => !c.servers[0]!.dead, 10_000), 'probed back')
    assert.is(await c.set('after', 'y'), true)
    assert.is(await c.get('after'), 'y')
  } finally {
    await c.close()
    await Promise.all([tlsServer.stop(), restarted?.stop()])
    rmSync(certs.dir, { recursive: true, force: true })
  }
})

s('options: binary takes SASL credentials the text login cannot carry, not NUL', () => {
  assert.is(client(1, { username: 'a b', password: 'c d' }).protocol, 'binary')
  assert.throws(() => client(1, { username: 'a\0b', password: 'c' }), /username must not contain NUL/)
  assert.throws(() => new Client({ servers: ['127.0.0.1:1'], protocol: 'binry' as 'binary' }), /'meta', 'text', 'twemproxy' or 'binary'/)
})

s.run()
