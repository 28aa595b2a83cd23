// twemproxy (Debian's nutcracker, `hash: md5, distribution: ketama`) in front of three
// ferrocached: it puts every key where our ketama does, Client reads what it wrote, and
// every command it proxies works through it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { Continuum } from '../src/client/ketama'
import { keysHeldBy, setAll, startNutcracker, TextConn } from './helpers/nutcracker'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, type Running } from './helpers/servers'

let backends: Running[] = []
let proxy: Running
const WEIGHTS = [1, 2, 1]

setUp(test, async () => {
  backends = await startAll([() => startFerrocached(), () => startFerrocached(), () => startFerrocached()])
  proxy = await startNutcracker(backends.map((b, i) => ({ port: b.port, weight: WEIGHTS[i]! })))
})

tearDown(test, async () => {
  await proxy?.stop()
  await Promise.all(backends.map((b) => b.stop()))
})

test('nutcracker puts every key where our ketama does; Client reads them all', async () => {
  const keys = Array.from({ length: 1500 }, (_, i) => `nc:${i}:${(i * 2654435761) % 1000003}`)
  await setAll(proxy.port, keys)
  const held = await Promise.all(backends.map((b) => keysHeldBy(b.port, keys)))
  const ours = new Continuum(backends.map((b, i) => ({ host: '127.0.0.1', port: b.port, weight: WEIGHTS[i]! })))
  const client = new Client({ servers: backends.map((b, i) => `127.0.0.1:${b.port}:${WEIGHTS[i]}`), encoding: 'utf8' })
  for (const k of keys) {
    const on = held.flatMap((h, i) => (h.has(k) ? [i] : []))
    assert.equal(on, [ours.lookup(k)], k)
    assert.is(client.serverFor(k), `127.0.0.1:${backends[on[0]!]!.port}`)
  }
  const got = await client.getMany(keys)
  assert.is(got.size, keys.length)
  for (const k of keys) assert.is(got.get(k), k)
  await client.close()
})

test('every proxied command works through nutcracker', async () => {
  const c = await TextConn.open(proxy.port)
  // The keys spread over more than one backend, so multi-key gets are split and merged:
  // the backends' ports are random, so the sixth key is the first from cmd:f on that
  // lands on another backend than cmd:a
  const ours = new Continuum(backends.map((b, i) => ({ host: '127.0.0.1', port: b.port, weight: WEIGHTS[i]! })))
  const sixth = [...'fghijklmnopqrstuvwxyz'].map((c) => `cmd:${c}`).find((k) => ours.lookup(k) !== ours.lookup('cmd:a'))
  assert.ok(sixth !== undefined, 'a key on another backend')
  const keys = ['cmd:a', 'cmd:b', 'cmd:c', 'cmd:d', 'cmd:e', sixth]
  assert.ok(new Set(keys.map((k) => ours.lookup(k))).size >= 2)
  for (const [i, k] of keys.entries()) assert.is(await c.line(`set ${k} ${i} 0 2\r\nv${i}\r\n`), 'STORED\r\n')

  const all = await c.retrieve(`get ${keys.join(' ')} cmd:none\r\n`)
  assert.is(all, keys.map((k, i) => `VALUE ${k} ${i} 2\r\nv${i}\r\n`).join('') + 'END\r\n')
  const gets = await c.retrieve('gets cmd:a cmd:b\r\n')
  const tokens = [...gets.matchAll(/^VALUE (\S+) (\d+) 2 (\d+)\r\n/gm)].map((m) => [m[1], m[2], m[3]])
  assert.equal(tokens.map((t) => t.slice(0, 2)), [['cmd:a', '0'], ['cmd:b', '1']])

  assert.is(await c.line('add cmd:a 0 0 1\r\nx\r\n'), 'NOT_STORED\r\n')
  assert.is(await c.line('add cmd:new 0 0 1\r\nx\r\n'), 'STORED\r\n')
  assert.is(await c.line('replace cmd:missing 0 0 1\r\nx\r\n'), 'NOT_STORED\r\n')
  assert.is(await c.line('replace cmd:new 7 0 1\r\ny\r\n'), 'STORED\r\n')
  assert.is(await c.line('append cmd:new 0 0 1\r\n>\r\n'), 'STORED\r\n')
  assert.is(await c.line('prepend cmd:new 0 0 1\r\n<\r\n'), 'STORED\r\n')
  assert.is(await c.line('append cmd:missing 0 0 1\r\n>\r\n'), 'NOT_STORED\r\n')
  assert.is(await c.retrieve('get cmd:new\r\n'), 'VALUE cmd:new 7 3\r\n<y>\r\nEND\r\n')

  const cas = tokens[0]![2]
  assert.is(await c.line(`cas cmd:a 9 0 3 ${cas}\r\nnew\r\n`), 'STORED\r\n')
  assert.is(await c.line(`cas cmd:a 9 0 3 ${cas}\r\nold\r\n`), 'EXISTS\r\n')
  assert.is(await c.line(`cas cmd:missing 0 0 1 ${cas}\r\nx\r\n`), 'NOT_FOUND\r\n')
  assert.is(await c.retrieve('get cmd:a\r\n'), 'VALUE cmd:a 9 3\r\nnew\r\nEND\r\n')

  assert.is(await c.line('set cmd:n 0 0 2\r\n10\r\n'), 'STORED\r\n')
  assert.is(await c.line('incr cmd:n 5\r\n'), '15\r\n')
  assert.is(await c.line('decr cmd:n 20\r\n'), '0\r\n')
  assert.is(await c.line('incr cmd:missing 1\r\n'), 'NOT_FOUND\r\n')
  assert.is(await c.line('decr cmd:missing 1\r\n'), 'NOT_FOUND\r\n')
  assert.match(await c.line('incr cmd:a 1\r\n'), /^CLIENT_ERROR cannot increment or decrement non-numeric value\r\n$/)

  assert.is(await c.line('touch cmd:b 100\r\n'), 'TOUCHED\r\n')
  assert.is(await c.line('touch cmd:missing 100\r\n'), 'NOT_FOUND\r\n')
  assert.is(await c.line('delete cmd:b\r\n'), 'DELETED\r\n')
  assert.is(await c.line('delete cmd:b\r\n'), 'NOT_FOUND\r\n')
  assert.is(await c.retrieve('get cmd:b\r\n'), 'END\r\n')

  // noreply: nothing comes back, and the write happened.
  assert.is(await c.retrieve('set cmd:quiet 0 0 1 noreply\r\nq\r\nget cmd:quiet\r\n'), 'VALUE cmd:quiet 0 1\r\nq\r\nEND\r\n')
  c.close()

  // What went through the proxy is on the backend ketama names, readable directly.
  const client = new Client({ servers: backends.map((b, i) => `127.0.0.1:${b.port}:${WEIGHTS[i]}`), encoding: 'utf8' })
  assert.is(await client.get('cmd:new'), '<y>')
  assert.equal(await client.gets('cmd:a').then((e) => [e?.value, e?.flags]), ['new', 9])
  // memcached decrements in place, padding a shorter number with spaces: '15' -> '0 '.
  assert.is((await client.get('cmd:n'))?.trimEnd(), '0')
  await client.close()
})

test.run()
