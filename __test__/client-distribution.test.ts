// Client over three ferrocached servers: keys land where ketama says (checked on each
// server directly), weights shift the share, and a killed server's keys fail over
// (`remove: true`) or fail fast (default) and come back when it restarts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { Continuum } from '../src/client/ketama'
import { keysHeldBy } from './helpers/nutcracker'
import { setUp, tearDown, tearDownEach } from './helpers/guard'
import { startAll, startFerrocached, stopChild, waitFor, type Running } from './helpers/servers'

let servers: Running[] = []
const addr = (s: Running) => `127.0.0.1:${s.port}`
const keys = Array.from({ length: 900 }, (_, i) => `dist:${i}`)

setUp(test, async () => {
  servers = await startAll([() => startFerrocached(), () => startFerrocached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

// A test that kills a server restarts it itself; if it failed first, the next tests still
// get all three (on the same ports: their keys hash by address).
tearDownEach(test, async () => {
  for (const [i, s] of servers.entries()) {
    if (s.child.exitCode !== null || s.child.signalCode !== null) servers[i] = await startFerrocached([], {}, s.port)
  }
})

/** Which server index holds each key, asked of each server directly (-1 = none). */
async function owners(list: readonly string[]): Promise<number[]> {
  const held = await Promise.all(servers.map((s) => keysHeldBy(s.port, list)))
  return list.map((k) => {
    const on = held.flatMap((h, i) => (h.has(k) ? [i] : []))
    assert.ok(on.length <= 1, `${k} is on ${on.length} servers`)
    return on[0] ?? -1
  })
}

async function flushAll(): Promise<void> {
  const c = new Client({ servers: servers.map(addr) })
  await c.flush()
  await c.close()
}

test('every key lands on the server ketama names, checked on each server', async () => {
  await flushAll()
  const client = new Client({ servers: servers.map(addr) })
  await client.setMany(keys.map((k) => [k, 'v']))
  const expected = new Continuum(servers.map((s) => ({ host: '127.0.0.1', port: s.port, weight: 1 })))
  const got = await owners(keys)
  keys.forEach((k, i) => {
    assert.is(got[i], expected.lookup(k), k)
    assert.is(client.serverFor(k), addr(servers[got[i]!]!))
  })
  for (let s = 0; s < 3; s++) {
    const share = got.filter((o) => o === s).length
    assert.ok(share > 180, `server ${s} holds ${share} of 900`)
  }
  await client.close()
})

test('weights: a server of weight 4 takes most keys, where ketama says', async () => {
  await flushAll()
  const client = new Client({ servers: [`${addr(servers[0]!)}:1`, `${addr(servers[1]!)}:4`, { host: '127.0.0.1', port: servers[2]!.port, weight: 1 }] })
  await client.setMany(keys.map((k) => [k, 'w']))
  const expected = new Continuum(servers.map((s, i) => ({ host: '127.0.0.1', port: s.port, weight: i === 1 ? 4 : 1 })))
  const got = await owners(keys)
  keys.forEach((k, i) => assert.is(got[i], expected.lookup(k), k))
  const heavy = got.filter((o) => o === 1).length
  assert.ok(heavy > 500 && heavy < 750, `weight 4 of 6 holds ${heavy} of 900`)
  await client.close()
})

/** Calls `op` until it resolves (bounded); returns the codes of the failures seen. */
async function untilItWorks(op: () => Promise<unknown>, ms: number): Promise<string[]> {
  const codes: string[] = []
  const end = Date.now() + ms
  for (;;) {
    try {
      await op()
      return codes
    } catch (err) {
      codes.push((err as { code?: string }).code ?? String(err))
      if (Date.now() > end) throw new Error(`still failing after ${ms} ms: ${codes.slice(-3)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

test('remove: a killed server\'s keys move to the others, and come back after a restart', async () => {
  await flushAll()
  const client = new Client({ servers: servers.map(addr), remove: true, retry: 50, removeAfter: 2, reconnect: 200, timeout: 1000 })
  await client.setMany(keys.map((k) => [k, 'before']))
  const victim = servers[1]!
  const mine = keys.filter((k) => client.serverFor(k) === addr(victim))
  const others = keys.filter((k) => client.serverFor(k) !== addr(victim))
  assert.ok(mine.length > 100)
  await stopChild(victim.child, 'SIGKILL')

  const codes = await untilItWorks(() => client.set(mine[0]!, 'moved'), 15_000)
  assert.ok(codes.length >= 1, 'the first requests saw the failure')
  for (const c of codes) assert.ok(['FERROCACHE_CONNECTION', 'FERROCACHE_SERVER_FAILING'].includes(c), c)
  assert.equal(client.servers.map((s) => s.dead), [false, true, false])
  for (const k of mine) assert.is.not(client.serverFor(k), addr(victim))
  // Only the dead server's keys moved: everything else is where it was.
  for (const k of others.slice(0, 200)) assert.is(await client.get(k, { encoding: 'utf8' }), 'before', k)
  await client.setMany(mine.map((k) => [k, 'moved']))
  assert.is((await client.getMany(mine)).size, mine.length)

  servers[1] = await startFerrocached([], {}, victim.port)
  assert.ok(await waitFor(() => !client.servers[1]!.dead, 15_000), 'the probe brought it back')
  for (const k of mine) assert.is(client.serverFor(k), addr(victim))
  await client.set(mine[0]!, 'home')
  const held = await keysHeldBy(victim.port, mine)
  assert.ok(held.has(mine[0]!), 'the key is on the restarted server again')
  assert.is(await client.get(mine[0]!, { encoding: 'utf8' }), 'home')
  await client.close()
})

test('without remove: a dead server\'s keys fail fast, the others keep working', async () => {
  // a long request timeout, so "no wait" below has seconds of margin on a stalled machine
  const client = new Client({ servers: servers.map(addr), retry: 50, removeAfter: 2, reconnect: 60_000, timeout: 20_000 })
  const victim = servers[2]!
  const mine = keys.filter((k) => client.serverFor(k) === addr(victim))
  const other = keys.find((k) => client.serverFor(k) !== addr(victim))!
  await client.set(mine[0]!, 'x')
  await stopChild(victim.child, 'SIGKILL')
  const end = Date.now() + 15_000
  let code = ''
  while (code !== 'FERROCACHE_SERVER_DEAD' && Date.now() < end) {
    code = await client.get(mine[0]!).then(
      () => 'resolved',
      (e: { code: string }) => e.code,
    )
    assert.ok(['FERROCACHE_CONNECTION', 'FERROCACHE_SERVER_FAILING', 'FERROCACHE_SERVER_DEAD'].includes(code), code)
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.is(code, 'FERROCACHE_SERVER_DEAD')
  const t0 = Date.now()
  const err = (await client.get(mine[1]!).catch((e: unknown) => e)) as { code: string; server: string }
  assert.is(err.code, 'FERROCACHE_SERVER_DEAD')
  assert.is(err.server, addr(victim))
  assert.ok(Date.now() - t0 < 5_000, 'no wait for a dead server (the request timeout is 20 s)')
  assert.is(client.serverFor(mine[0]!), addr(victim), 'no rehash without remove')
  assert.is(await client.set(other, 'still'), true)
  await client.close()
  servers[2] = await startFerrocached([], {}, victim.port)
})

test.run()
