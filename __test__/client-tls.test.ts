// Client `tls`: the CacheLike suite over TLS to ferrocached -Z; every method over TLS to
// memcached 1.6.18 -Z -Y, logged in, meta and text (its TLS stalls on requests pipelined
// behind values over 16 KB: docs/client.md); the three protocols, logins and client
// certificates against ferrocached --tls-ca -Y with thousands of pipelined requests; certificate
// failures as FERROCACHE_TLS that make the server failing, then dead, as an unreachable
// one; SNI; plain and TLS mixed up fail within bounds; a restarted server is probed back
// over TLS.
import { chmodSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import tls from 'node:tls'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Client, type ClientOptions } from '../src'
import { burst } from './helpers/burst'
import { cacheLikeSuite } from './helpers/cachelike'
import { makeCertificates, type TestCertificates } from './helpers/certs'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, startMemcached, waitFor, within, type Running } from './helpers/servers'
import { failure } from './helpers/settled'

const USER = 'app'
const PASS = 's3cret-token'

let made: TestCertificates | undefined
/** The certificates, made on first use (the CacheLike suites run before the tests below). */
function certs(): TestCertificates {
  if (made !== undefined) return made
  made = makeCertificates()
  writeFileSync(made.path('users'), `${USER}:${PASS}\n`)
  chmodSync(made.path('users'), 0o644) // not writeFileSync's mode, which the umask cuts (027: nobody reads nothing)
  // memcached -u nobody reads the -Y file after dropping root (the certificates before)
  chmodSync(made.dir, 0o711)
  return made
}

/** ferrocached serving TLS with memcached's flags. */
const tlsFlags = (): string[] => ['-Z', '-o', `ssl_chain_cert=${certs().path('server.pem')},ssl_key=${certs().path('server.key')}`]
/** Trusting the test CA. */
const trusting = (): tls.ConnectionOptions => ({ ca: certs().read('ca.pem') })

cacheLikeSuite('Client over TLS to ferrocached -Z', async () => {
  const server = await startFerrocached(tlsFlags())
  const cache = new Client({ servers: [`127.0.0.1:${server.port}`], tls: trusting() })
  return { cache, close: async () => void (await Promise.all([cache.close(), server.stop()])) }
})

interface Ctx {
  /** ferrocached -Z: a server certificate, no logins. */
  tls?: Running
  /** ferrocached --tls-ca -Y: client certificates from the CA and a login required. */
  strict?: Running
  /** memcached -Z -Y, as nobody when the tests run as root. */
  memcached?: Running
  /** memcached without TLS. */
  plain?: Running
}

const s = suite<Ctx>('Client tls', {})

setUp(s, async (ctx) => {
  const c = certs()
  const asNobody = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  ;[ctx.tls, ctx.strict, ctx.memcached, ctx.plain] = await startAll([
    () => startFerrocached(tlsFlags()),
    () => startFerrocached(['--tls-cert', c.path('server.pem'), '--tls-key', c.path('server.key'), '--tls-ca', c.path('ca.pem'), '-Y', c.path('users')]),
    () => startMemcached([...tlsFlags(), '-Y', c.path('users'), ...asNobody]),
    () => startMemcached(),
  ])
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.tls?.stop(), ctx.strict?.stop(), ctx.memcached?.stop(), ctx.plain?.stop()])
  made?.remove()
})


function client(port: number, more: Partial<ClientOptions<'utf8'>> = {}): Client<'utf8'> {
  return new Client({ servers: [`127.0.0.1:${port}`], encoding: 'utf8', tls: trusting(), ...more })
}

s('tls is checked: TypeErrors naming the option', () => {
  const make = (options: Record<string, unknown>) => () => new Client({ servers: ['127.0.0.1:1'], ...options } as ClientOptions)
  assert.throws(make({ tls: 'yes' }), (e: Error) => e instanceof TypeError && /^tls must be true, false or an object of tls\.connect options .* got 'yes'$/.test(e.message))
  assert.throws(make({ tls: null }), (e: Error) => e instanceof TypeError && /^tls must be .* got null$/.test(e.message))
  assert.throws(make({ tls: { host: 'x' } }), (e: Error) => e instanceof TypeError && e.message === 'tls.host cannot be set: the address comes from servers')
  assert.throws(make({ tls: { port: 1 } }), (e: Error) => e instanceof TypeError && /^tls\.port cannot be set/.test(e.message))
  assert.throws(make({ tls: { servername: 5 } }), (e: Error) => e instanceof TypeError && e.message === 'tls.servername must be a string, got number')
  assert.throws(make({ tls: { rejectUnauthorized: 'no' } }), (e: Error) => e instanceof TypeError && /^tls\.rejectUnauthorized must be a boolean, got 'no'$/.test(e.message))
  assert.throws(make({ tls: { ca: 5 } }), (e: Error) => e instanceof TypeError && /^tls: .*"options\.ca" property/.test(e.message))
  assert.throws(make({ tls: { cert: 'not a certificate', key: 'nor a key' } }), (e: Error) => e instanceof TypeError && /^tls: .*(PEM|no start line)/.test(e.message))
  assert.throws(make({ tls: { secureContext: {} } }), (e: Error) => e instanceof TypeError && /^tls\.secureContext must come from tls\.createSecureContext\(\)$/.test(e.message))
  const perServer = (entry: Record<string, unknown>) => () => new Client({ servers: [entry] } as unknown as ClientOptions)
  assert.throws(perServer({ host: 'h', tls: 1 }), (e: Error) => e instanceof TypeError && /^servers\[0\]\.tls must be true, false or an object/.test(e.message))
  assert.throws(perServer({ host: 'h', replicas: [{ host: 'r', tls: 'on' }] }), (e: Error) => e instanceof TypeError && /^servers\[0\]\.replicas\[0\]\.tls must be/.test(e.message))
  // a misspelt field would have meant plain TCP without a word
  assert.throws(perServer({ host: 'h', tsl: true }), (e: Error) => e instanceof TypeError && /^servers\[0\] has an unknown field 'tsl' \(known: .*tls/.test(e.message))
  for (const ok of [true, false, {}, { ca: certs().read('ca.pem'), servername: 'localhost', rejectUnauthorized: true }]) {
    void new Client({ servers: ['127.0.0.1:1'], tls: ok }).close()
  }
})

s("meta, text and 'twemproxy' over TLS: 6000 pipelined requests each get their own reply", async (ctx) => {
  for (const protocol of ['meta', 'text', 'twemproxy'] as const) {
    const c = client(ctx.tls!.port, { protocol, poolSize: 1, timeout: 10_000 })
    try {
      await burst(c, `burst-${protocol}:`)
      const big = 'x'.repeat(300_000) // values over many TLS records
      await c.set(`big-${protocol}`, big)
      assert.is(await c.get(`big-${protocol}`), big)
    } finally {
      await c.close()
    }
  }
})

s('memcached 1.6.18 -Z -Y: every method, logged in, meta and text; pipelined batches under 16 KB', async (ctx) => {
  for (const protocol of ['meta', 'text'] as const) {
    const c = client(ctx.memcached!.port, { protocol, username: USER, password: PASS, timeout: 5_000 })
    const p = `mc-${protocol}:`
    try {
      assert.is(await c.set(`${p}a`, 'one', { flags: 7, ttl: 60_000 }), true)
      assert.is(await c.get(`${p}a`), 'one')
      const entry = (await c.gets(`${p}a`))!
      assert.is(entry.flags, 7)
      assert.is(await c.cas(`${p}a`, 'two', entry.cas), true)
      assert.is(await c.cas(`${p}a`, 'three', entry.cas), false)
      assert.is(await c.add(`${p}a`, 'x'), false)
      assert.is(await c.append(`${p}a`, Buffer.from('!')), true)
      assert.is(await c.gat(`${p}a`, 60_000), 'two!')
      assert.is(await c.touch(`${p}a`, 60_000), true)
      assert.is(await c.has(`${p}a`), true)
      await c.set(`${p}n`, '41')
      assert.is(await c.incr(`${p}n`), 42n)
      assert.is(await c.decr(`${p}n`, 2), 40n)
      await c.setMany([[`${p}m1`, '1'], [`${p}m2`, '2']])
      assert.equal([...(await c.getMany([`${p}m1`, `${p}none`, `${p}m2`])).entries()], [[`${p}m1`, '1'], [`${p}m2`, '2']])
      assert.is(await c.deleteMany([`${p}m1`, `${p}m2`, `${p}none`]), 2)
      assert.is(await c.delete(`${p}a`), true)
      assert.is(await c.get(`${p}a`), undefined)
      const big = 'v'.repeat(300_000) // alone in its write: memcached stalls only on what follows it
      assert.is(await c.set(`${p}big`, big), true)
      assert.is(await c.get(`${p}big`), big)
      // a batch of 100 stores (~9 KB) and one of 200 gets with 100 values in reply
      const keys = Array.from({ length: 100 }, (_, i) => `${p}k${i}`)
      await c.setMany(keys.map((k, i) => [k, `${i}`.padEnd(50, '.')]))
      const got = await c.getMany([...keys, ...keys.map((k) => `${k}-none`)])
      assert.equal([...got.keys()], keys)
      assert.ok([...got.values()].every((v, i) => v === `${i}`.padEnd(50, '.')))
      assert.ok(Number((await c.stats()).cmd_set) > 100)
    } finally {
      await c.close()
    }
  }
})

s('a client certificate and a login (meta and text); without the certificate FERROCACHE_TLS, a bad password FERROCACHE_AUTH', async (ctx) => {
  const mine = { ...trusting(), cert: certs().read('client.pem'), key: certs().read('client.key') }
  for (const protocol of ['meta', 'text'] as const) {
    const c = client(ctx.strict!.port, { protocol, tls: mine, username: USER, password: PASS, poolSize: 1, timeout: 10_000 })
    try {
      await burst(c, `strict-${protocol}:`, 500)
    } finally {
      await c.close()
    }
  }
  const noCert = client(ctx.strict!.port, { username: USER, password: PASS })
  try {
    const e = await failure(noCert.get('k'))
    assert.is(e.code, 'FERROCACHE_TLS', e.message)
    assert.match(e.message, new RegExp(`^TLS (handshake with|connection to) 127\\.0\\.0\\.1:${ctx.strict!.port} failed: .*certificate`))
  } finally {
    await noCert.close()
  }
  const wrong = client(ctx.strict!.port, { tls: mine, username: USER, password: 'nope' })
  try {
    const e = await failure(wrong.get('k'))
    assert.is(e.code, 'FERROCACHE_AUTH')
    assert.match(e.message, /login to .* as 'app' failed: CLIENT_ERROR authentication failure/)
  } finally {
    await wrong.close()
  }
})

s('a certificate the CA did not sign: FERROCACHE_TLS naming why, then failing and dead like an unreachable server', async (ctx) => {
  const port = ctx.tls!.port
  const c = client(port, { tls: { ca: certs().read('other-ca.pem') }, retry: 100, removeAfter: 2 })
  try {
    const first = await failure(c.get('k'))
    assert.is(first.code, 'FERROCACHE_TLS')
    assert.is(first.server, `127.0.0.1:${port}`)
    assert.match(first.message, new RegExp(`^TLS handshake with 127\\.0\\.0\\.1:${port} failed: unable to verify the first certificate \\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\\)$`))
    const refused = await failure(c.get('k'))
    assert.is(refused.code, 'FERROCACHE_SERVER_FAILING')
    assert.match(refused.message, /failed 1 time\(s\) \(TLS handshake with .* failed: unable to verify/)
    await new Promise((r) => setTimeout(r, 150))
    assert.is((await failure(c.get('k'))).code, 'FERROCACHE_TLS', 'tried again after retry ms')
    assert.is((await failure(c.get('k'))).code, 'FERROCACHE_SERVER_DEAD')
    assert.equal(c.servers, [{ server: `127.0.0.1:${port}`, dead: true }])
  } finally {
    await c.close()
  }
  // the system's CAs do not know the test CA either; a name the certificate does not hold
  for (const [option, why] of [
    [true, /unable to verify the first certificate/],
    [{ ...trusting(), servername: 'elsewhere.example' }, /Hostname\/IP does not match certificate's altnames.*ERR_TLS_CERT_ALTNAME_INVALID/],
  ] as const) {
    const other = client(port, { tls: option })
    try {
      const e = await failure(other.get('k'))
      assert.is(e.code, 'FERROCACHE_TLS')
      assert.match(e.message, why)
    } finally {
      await other.close()
    }
  }
  const anyway = client(port, { tls: { rejectUnauthorized: false } })
  try {
    assert.is(await anyway.set('unverified', 'ok'), true)
  } finally {
    await anyway.close()
  }
})

s('SNI: the host name by default, none for an IP address, servername when given', async () => {
  const seen: Array<string | false | null> = []
  const server = tls.createServer({ cert: certs().read('server.pem'), key: certs().read('server.key') }, (socket) => {
    seen.push(socket.servername)
    socket.on('error', () => {})
    // a miss for every meta get
    socket.on('data', (d: Buffer) => socket.write('EN\r\n'.repeat(d.toString().split('\n').length - 1)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  try {
    const byName = new Client({ servers: [{ host: 'localhost', port }], tls: trusting() })
    const byAddress = new Client({ servers: [`127.0.0.1:${port}`], tls: trusting() })
    const named = new Client({ servers: [{ host: '127.0.0.1', port, tls: { ...trusting(), servername: 'cache.example', checkServerIdentity: () => undefined } }] })
    for (const c of [byName, byAddress, named]) {
      try {
        assert.is(await within(c.get('k'), 10_000, 'a get'), undefined)
      } finally {
        await c.close()
      }
    }
    assert.equal(seen, ['localhost', false, 'cache.example'])
  } finally {
    await new Promise((r) => server.close(r))
  }
})

s("plain TCP to a TLS server and TLS to a plain server fail within connectTimeout + timeout, not hang; a server's tls: false", async (ctx) => {
  const bounds = { connectTimeout: 1000, timeout: 1000 }
  const plain = new Client({ servers: [`127.0.0.1:${ctx.tls!.port}`], ...bounds })
  try {
    const e = await failure(plain.get('k'))
    assert.ok(['FERROCACHE_CONNECTION', 'FERROCACHE_TIMEOUT'].includes(e.code), e.message)
  } finally {
    await plain.close()
  }
  const overTls = client(ctx.plain!.port, bounds)
  try {
    const e = await failure(overTls.get('k'))
    assert.ok(['FERROCACHE_TLS', 'FERROCACHE_TIMEOUT'].includes(e.code), e.message)
    assert.match(e.message, /TLS handshake with .*is it a TLS server\?/)
  } finally {
    await overTls.close()
  }
  // a server's own `tls: false` takes it out of the Client's TLS
  const mixed = new Client({ servers: [{ host: '127.0.0.1', port: ctx.plain!.port, tls: false }], tls: trusting(), encoding: 'utf8', ...bounds })
  try {
    assert.is(await mixed.set('mixed', 'plain'), true)
    assert.is(await mixed.get('mixed'), 'plain')
  } finally {
    await mixed.close()
  }
})

s('a TLS server restarted on its port: the probe reconnects over TLS, with the login and the client certificate', async (ctx) => {
  const port = ctx.strict!.port
  const mine = { ...trusting(), cert: certs().read('client.pem'), key: certs().read('client.key') }
  const c = client(port, { tls: mine, username: USER, password: PASS, retry: 0, removeAfter: 1, reconnect: 100 })
  try {
    assert.is(await c.set('before', 'x'), true)
    await ctx.strict!.stop()
    await failure(c.get('before'))
    assert.ok(await waitFor(() => c.servers[0]!.dead, 5_000), 'marked dead')
    const c2 = certs()
    ctx.strict = await startFerrocached(['--tls-cert', c2.path('server.pem'), '--tls-key', c2.path('server.key'), '--tls-ca', c2.path('ca.pem'), '-Y', c2.path('users')], {}, port)
    assert.ok(await waitFor(() => !c.servers[0]!.dead, 10_000), 'probed back')
    assert.is(await c.set('after', 'y'), true)
    assert.is(await c.get('after'), 'y')
  } finally {
    await c.close()
  }
})

s.run()
