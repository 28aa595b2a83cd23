// Review of the Client's text protocol against memcached 1.6.18, beside the meta path:
// values whose bytes look like protocol (END, VALUE, CRLF, nothing), values near 1 MiB
// and past it on a server with -I 4m, the edges of numbers (incr at 2^64-1, CAS tokens,
// flags at 2^32-1, ttls past 30 days), UTF-8 and repeated keys in a multi-get, a login
// with 10 000 requests behind it; then key placement through nutcracker with an IPv6 backend.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { NUTCRACKER } from './helpers/nutcracker'
import { freePort, MEMCACHED, spawnOwned, startAll, startMemcached, stopChild, waitForPort, type Running } from './helpers/servers'

interface Ctx {
  small?: Running
  large?: Running
}

const s = suite<Ctx>('Client text vs meta against memcached 1.6.18', {})

setUp(s, async (ctx) => {
  ;[ctx.small, ctx.large] = await startAll([() => startMemcached(), () => startMemcached(['-I', '4m', '-m', '64'])])
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.small?.stop(), ctx.large?.stop()])
})

const PROTOCOLS = ['meta', 'text'] as const
type Err = Error & { code: string }

async function each(port: number, run: (c: Client, protocol: string) => Promise<void>): Promise<void> {
  for (const protocol of PROTOCOLS) {
    const c = new Client({ servers: [`127.0.0.1:${port}`], protocol })
    try {
      await run(c, protocol)
    } finally {
      await c.close()
    }
  }
}

s('values that look like protocol come back byte for byte, alone and in a multi-get', async (ctx) => {
  const values: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from('END\r\n'),
    Buffer.from('\r\nEND\r\nVALUE k 0 5\r\nhello\r\nEND\r\n'),
    Buffer.from('VALUE '),
    Buffer.from('\r\n'),
    Buffer.from('\n'),
    Buffer.from('\r'),
    Buffer.from([0, 255, 13, 10, 69, 78, 68, 13, 10]),
    Buffer.from('VA 3 \r\nEN\r\n'),
  ]
  await each(ctx.small!.port, async (c, protocol) => {
    const keys = values.map((_, i) => `${protocol}:look:${i}`)
    await c.setMany(keys.map((k, i) => [k, values[i]!] as const))
    for (let i = 0; i < values.length; i++) assert.equal(await c.get(keys[i]!), values[i], `${protocol} ${i}`)
    const many = await c.getMany([...keys, 'absent', keys[1]!])
    assert.equal([...many.keys()], keys)
    keys.forEach((k, i) => assert.equal(many.get(k), values[i], `${protocol} getMany ${i}`))
    assert.is(await c.has(keys[0]!), true, 'an empty value is there')
  })
})

s('values near 1 MiB, and up to 4 MiB on a server with -I 4m; too large is FERROCACHE_TOO_LARGE and the connection stays in step', async (ctx) => {
  const big = (n: number, seed: number) => Buffer.alloc(n, seed)
  await each(ctx.small!.port, async (c, protocol) => {
    // memcached's item header and key take some of the 1 MiB: about 1 MiB - 100 fits
    const fits = big(1024 * 1024 - 512, 7)
    assert.is(await c.set(`${protocol}:near`, fits), true)
    const over = c.set(`${protocol}:over`, big(1024 * 1024 + 1, 8))
    const after = c.get(`${protocol}:near`)
    assert.is(((await over.catch((e: Err) => e)) as Err).code, 'FERROCACHE_TOO_LARGE')
    assert.equal(await after, fits, `${protocol}: the request behind the refused value gets its own reply`)
  })
  await each(ctx.large!.port, async (c, protocol) => {
    const values = [big(3 * 1024 * 1024 + 3, 1), big(4 * 1024 * 1024 - 4096, 2)]
    await c.setMany(values.map((v, i) => [`${protocol}:large:${i}`, v] as const))
    const many = await c.getMany([`${protocol}:large:0`, `${protocol}:large:1`])
    assert.equal(many.get(`${protocol}:large:0`), values[0])
    assert.equal(many.get(`${protocol}:large:1`), values[1])
  })
})

s('numbers at their edges: incr wraps at 2^64, CAS 2^64-1, flags 2^32-1, non-numeric incr, ttl past 30 days', async (ctx) => {
  const results: Record<string, unknown[]> = {}
  await each(ctx.small!.port, async (c, protocol) => {
    const k = (name: string) => `${protocol}:num:${name}`
    const out: unknown[] = []
    await c.set(k('n'), '18446744073709551614')
    out.push(await c.incr(k('n')), await c.incr(k('n')), await c.decr(k('n'), 5n), await c.incr(k('n'), 2n ** 64n - 1n))
    out.push(await c.decr(k('n'), 2n ** 64n - 1n))
    await c.set(k('text'), 'abc')
    out.push(((await c.incr(k('text')).catch((e: Err) => e)) as Err).code)
    out.push(await c.cas(k('n'), 'x', 2n ** 64n - 1n), await c.cas(k('absent'), 'x', 2n ** 64n - 1n))
    await c.set(k('flags'), 'f', { flags: 2 ** 32 - 1 })
    out.push((await c.gets(k('flags')))?.flags)
    // 31 days: sent as an absolute unix time, so the item lives (a relative 2678400 would
    // be read as a time in 1970: gone at once)
    await c.set(k('ttl'), 'long', { ttl: 31 * 24 * 3600 * 1000 })
    out.push(String(await c.get(k('ttl'))), await c.touch(k('ttl'), 40 * 24 * 3600 * 1000), String(await c.get(k('ttl'))))
    results[protocol] = out
  })
  assert.equal(results.text, results.meta)
  assert.equal(results.meta, [18446744073709551615n, 0n, 0n, 18446744073709551615n, 0n, 'FERROCACHE_NON_NUMERIC', false, false, 2 ** 32 - 1, 'long', true, 'long'])
})

s('UTF-8 and repeated keys in a getMany split over get lines (text) match the meta path', async (ctx) => {
  await each(ctx.small!.port, async (c, protocol) => {
    const keys = Array.from({ length: 230 }, (_, i) => `${protocol}:ключ:${i}:é`)
    await c.setMany(keys.filter((_, i) => i % 3 !== 0).map((k) => [k, k] as const))
    const asked = [...keys, ...keys.slice(0, 50), keys[7]!]
    const many = await c.getMany(asked)
    assert.is(many.size, keys.filter((_, i) => i % 3 !== 0).length, protocol)
    for (const [k, v] of many) assert.equal(v, Buffer.from(k), protocol)
  })
})

s('a login with a UTF-8 password, 10 000 requests queued behind it: all through, or all FERROCACHE_AUTH', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-review-login-'))
  writeFileSync(join(dir, 'users'), 'app:pässwörd-✓\n')
  const server = await startMemcached(['-Y', join(dir, 'users')])
  try {
    for (const protocol of PROTOCOLS) {
      for (const password of ['pässwörd-✓', 'pässwörd-x']) {
        // 10 s: 10 000 sets on one connection took ~350 ms beside two busy processes, a third of the default 1 s
        const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, username: 'app', password, poolSize: 1, timeout: 10_000 })
        try {
          const outcomes = await Promise.all(
            Array.from({ length: 10_000 }, (_, i) => c.set(`login:${i}`, 'v').then(String, (e: Err) => e.code)),
          )
          const counts = new Map<string, number>()
          for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1)
          assert.equal([...counts], [[password.endsWith('✓') ? 'true' : 'FERROCACHE_AUTH', 10_000]], `${protocol} ${password}`)
        } finally {
          await c.close()
        }
      }
    }
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

s('through nutcracker with an IPv6 backend: every key is where the Client puts it', async (ctx) => {
  const v6 = await new Promise<boolean>((resolve) => {
    const probe = net.createServer().once('error', () => resolve(false))
    probe.listen(0, '::1', () => probe.close(() => resolve(true)))
  })
  if (!v6) {
    console.log('\n  SKIPPED: no IPv6 loopback (::1); the nutcracker IPv6 placement check did not run')
    return
  }
  const port6 = await freePort()
  const backend6 = spawnOwned(MEMCACHED, ['-l', '::1', '-p', String(port6), '-U', '0', '-t', '1', ...(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])], {
    stdio: 'ignore',
  })
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-review-v6-'))
  const port = await freePort()
  let proxy: ReturnType<typeof spawnOwned> | undefined
  const clients: Client[] = []
  try {
    const v4 = ctx.small!.port
    for (let tries = 0; ; tries++) {
      const up = await new Promise<boolean>((resolve) => {
        const c = net.connect(port6, '::1')
        c.once('connect', () => (c.destroy(), resolve(true)))
        c.once('error', () => resolve(false))
      })
      if (up) break
      if (tries === 200) throw new Error(`memcached did not listen on [::1]:${port6}`)
      await new Promise((r) => setTimeout(r, 25))
    }
    writeFileSync(
      join(dir, 'conf.yml'),
      ['pool:', `  listen: 127.0.0.1:${port}`, '  hash: md5', '  distribution: ketama', '  servers:', `   - ::1:${port6}:1`, `   - 127.0.0.1:${v4}:1`, ''].join('\n'),
    )
    proxy = spawnOwned(NUTCRACKER, ['-c', join(dir, 'conf.yml'), '-s', String(await freePort()), '-o', join(dir, 'log')], { stdio: 'ignore' })
    await waitForPort(port, 10_000, proxy)
    const through = new Client({ servers: [`127.0.0.1:${port}`], protocol: 'twemproxy' })
    const direct = new Client({ servers: [`[::1]:${port6}`, `127.0.0.1:${v4}`] })
    const onV6 = new Client({ servers: [`[::1]:${port6}`] })
    clients.push(through, direct, onV6)
    const keys = Array.from({ length: 150 }, (_, i) => `v6place:${i}`)
    await through.setMany(keys.map((k) => [k, 'x'] as const))
    const stored = await onV6.getMany(keys)
    const placed = keys.filter((k) => direct.serverFor(k) === `[::1]:${port6}`)
    assert.ok(placed.length > 30 && placed.length < 120, String(placed.length))
    assert.equal([...stored.keys()].sort(), placed.sort())
  } finally {
    await Promise.all(clients.map((c) => c.close()))
    if (proxy) await stopChild(proxy)
    await stopChild(backend6)
    rmSync(dir, { recursive: true, force: true })
  }
})

s.run()
