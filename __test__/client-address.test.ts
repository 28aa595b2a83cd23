// Client server strings with IPv6 literals: '[::1]:11211', '[::1]:11211:2', '::1' alone
// (default port); clear TypeErrors for malformed ones. Then a memcached listening on ::1
// only, reached through each form (skipped, saying so, without an IPv6 loopback).
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { tearDown } from './helpers/guard'
import { freePort, MEMCACHED, sleep, spawnOwned, stopChild } from './helpers/servers'
import type { ChildProcess } from 'node:child_process'

const started: ChildProcess[] = []
tearDown(test, async () => {
  await Promise.all(started.map((c) => stopChild(c)))
})

const labels = (servers: ConstructorParameters<typeof Client>[0]['servers']) => new Client({ servers }).servers.map((s) => s.server)

test('IPv6 server strings: bracketed with port and weight, bare with the default port', () => {
  assert.equal(labels(['[::1]:11311']), ['[::1]:11311'])
  assert.equal(labels(['[::1]']), ['[::1]:11211'])
  assert.equal(labels(['::1']), ['[::1]:11211'])
  assert.equal(labels(['fe80::1:2']), ['[fe80::1:2]:11211'], 'a bare address is all address: its last group is not a port')
  assert.equal(labels(['[2001:db8::7]:11311:3', '::ffff:127.0.0.1', '127.0.0.1:11311:2', 'localhost']), [
    '[2001:db8::7]:11311',
    '[::ffff:127.0.0.1]:11211',
    '127.0.0.1:11311',
    'localhost:11211',
  ])
  assert.equal(labels([{ host: '[::1]', port: 11311 }, { host: '::2' }]), ['[::1]:11311', '[::2]:11211'])
  // the weight counts: with 3:1, about three quarters of the keys go to the first
  const c = new Client({ servers: ['[::1]:11311:3', '[::1]:11312'] })
  const first = Array.from({ length: 2000 }, (_, i) => c.serverFor(`k${i}`)).filter((s) => s === '[::1]:11311').length
  assert.ok(first > 1300 && first < 1700, String(first))
  assert.throws(() => new Client({ servers: ['[::1]:11311', '::1:11311'] }), /servers\[1\]: '::1:11311' is not an IPv6 address; write an IPv6 address with a port as '\[address\]:port'/)
})

test('malformed IPv6 server strings are TypeErrors naming the entry', () => {
  const cases: Array<[string, RegExp]> = [
    ['[::1', /^servers\[0\] must look like 'host:port', 'host:port:weight', '\[ipv6\]:port' or a bare IPv6 address, got '\[::1'$/],
    ['[::1]x', /^servers\[0\] must look like .* got '\[::1\]x'$/],
    ['[::1]:', /^servers\[0\] must look like .* got '\[::1\]:'$/],
    ['::1]:11211', /^servers\[0\] must look like .* got '::1\]:11211'$/],
    ['[127.0.0.1]:11211', /^servers\[0\]: '127\.0\.0\.1' in brackets is not an IPv6 address$/],
    ['[::g]:11211', /^servers\[0\]: '::g' in brackets is not an IPv6 address$/],
    [':::1', /^servers\[0\]: ':::1' is not an IPv6 address/],
    ['1:2:3:4', /^servers\[0\]: '1:2:3:4' is not an IPv6 address/],
  ]
  for (const [spec, message] of cases) {
    assert.throws(
      () => new Client({ servers: [spec] }),
      (e: Error) => e instanceof TypeError && message.test(e.message),
      spec,
    )
  }
  assert.throws(() => new Client({ servers: ['[::1]:70000'] }), (e: Error) => e instanceof RangeError && /servers\[0\] port must be an integer from 1 to 65535/.test(e.message))
  assert.throws(() => new Client({ servers: [{ host: '[::1' }] }), (e: Error) => e instanceof TypeError && e.message === "servers[0].host must be a host name or an address, got '[::1'")
  assert.throws(() => new Client({ servers: ['::1', '[::1]:11211'] }), (e: Error) => e instanceof RangeError && e.message === 'servers lists [::1]:11211 twice')
})

/** Whether this machine can listen on `port` (0: any) of ::1. */
function canListenV6(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer()
    srv.once('error', () => resolve(false))
    srv.listen(port, '::1', () => srv.close(() => resolve(true)))
  })
}

/** memcached listening on ::1 only. */
async function memcachedOnV6(port: number): Promise<ChildProcess> {
  const args = ['-U', '0', '-l', '::1', '-p', String(port), '-t', '1']
  if (process.getuid?.() === 0) args.push('-u', 'nobody')
  const child = spawnOwned(MEMCACHED, args, { stdio: 'ignore' })
  started.push(child)
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(25)) {
    if (child.exitCode !== null) throw new Error(`memcached -l ::1 exited with ${child.exitCode}`)
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '::1')
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (up) return child
  }
  throw new Error(`memcached did not listen on [::1]:${port} within 10 s`)
}

test('a server listening on ::1 only: reached as [::1]:port, { host: "::1" }, and ::1 alone on 11211', async () => {
  if (!(await canListenV6(0))) {
    console.log('\n  SKIPPED: no IPv6 loopback (::1) on this machine; the IPv6 connection tests did not run')
    return
  }
  const port = await freePort()
  const server = await memcachedOnV6(port)
  for (const spec of [`[::1]:${port}`, { host: '::1', port }, { host: '[::1]', port }]) {
    for (const protocol of ['meta', 'text'] as const) {
      const c = new Client({ servers: [spec], protocol, encoding: 'utf8' })
      try {
        assert.is(await c.set('v6', `${protocol}`), true)
        assert.is(await c.get('v6'), protocol)
        assert.equal([...(await c.statsByServer()).keys()], [`[::1]:${port}`])
      } finally {
        await c.close()
      }
    }
  }
  // Not on 127.0.0.1: the address really is the IPv6 one.
  const v4 = new Client({ servers: [`127.0.0.1:${port}`], connectTimeout: 500, removeAfter: 10 })
  const err = (await v4.get('v6').catch((e: Error & { code: string }) => e)) as Error & { code: string }
  assert.is(err.code, 'FERROCACHE_CONNECTION')
  await v4.close()
  await stopChild(server)

  if (!(await canListenV6(11211))) {
    console.log('\n  SKIPPED: [::1]:11211 is in use; the bare "::1" (default port) connection test did not run')
    return
  }
  await memcachedOnV6(11211)
  const bare = new Client({ servers: ['::1'], encoding: 'utf8' })
  try {
    assert.is(await bare.set('bare', 'yes'), true)
    assert.is(await bare.get('bare'), 'yes')
  } finally {
    await bare.close()
  }
})

test.run()
