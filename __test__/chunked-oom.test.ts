// A store refused for memory whose item memcached 1.6.18 chunks (larger than its
// slab_chunk_max, 512 KiB): memcached allocates the chunks while it reads the value, so the
// refusal is "SERVER_ERROR Out of memory during read", no store_no_memory, and a set leaves the
// old value (a smaller item's refusal drops it). ferrocache keeps such items whole; with
// -m 4 -M both servers hold four 600 KB values and refuse a fifth: the replies, the items
// left and the counters must match, in text, meta and binary; a Client's error is
// FERROCACHE_OUT_OF_MEMORY whatever its protocol.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { binaryPacket } from './helpers/corpus'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'
import { failure } from './helpers/settled'

const SIZE = 600_000
const OLD = 'a'.repeat(SIZE)
const NEW = 'b'.repeat(SIZE)

let servers: Running[] = []
let conns: RawConn[] = []
let binConns: RawConn[] = []

setUp(test, async () => {
  const flags = ['-m', '4', '-M']
  servers = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  conns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
  binConns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
})

tearDown(test, async () => {
  for (const c of [...conns, ...binConns]) c.close()
  await Promise.all(servers.map((s) => s.stop()))
})

/** Text requests' replies up to an `mn` sent after them. */
async function replies(c: RawConn, requests: string): Promise<string> {
  c.send(requests + 'mn\r\n')
  return (await c.until('MN\r\n', 10_000)).slice(0, -'MN\r\n'.length)
}

/** Binary requests' replies (hex) up to a noop's sent after them. */
async function binaryReplies(c: RawConn, requests: Buffer[]): Promise<string> {
  const noop = binaryPacket('noop opaque=99')
  c.send(Buffer.concat([...requests, noop]))
  const end = binaryPacket('noop magic=0x81 opaque=99').toString('hex')
  let got = Buffer.alloc(0)
  while (!got.toString('hex').endsWith(end)) got = Buffer.concat([got, await c.atLeast(1)])
  return got.toString('hex').slice(0, -end.length)
}

test('a store memcached would chunk, refused for memory: its replies, items and counters', async () => {
  const outcome = await Promise.all(
    conns.map(async (c, s) => {
      const fill = [0, 1, 2, 3].map((i) => `set k${i} 0 0 ${SIZE}\r\n${OLD}\r\n`).join('')
      const filled = await replies(c, fill)
      const cas = (await replies(c, 'gets k1\r\n')).split(' ')[4]?.split('\r\n')[0]
      const before = await c.stats()
      const text = await replies(
        c,
        [
          `set k0 0 0 ${SIZE}\r\n`,
          `add n1 0 0 ${SIZE}\r\n`,
          `replace k1 0 0 ${SIZE}\r\n`,
          `cas k1 0 0 ${SIZE} ${cas}\r\n`,
          `append k2 0 0 ${SIZE}\r\n`,
          `ms k3 ${SIZE}\r\n`,
          `ms k3 ${SIZE} q\r\n`,
          `ms k3 ${SIZE} MA\r\n`,
          `set k3 0 0 ${SIZE} noreply\r\n`,
        ]
          .map((line) => line + NEW + '\r\n')
          .join(''),
      )
      const binSet = (op: string): Buffer =>
        binaryPacket(`${op} key=k0 extras=0000000000000000 value=${NEW} opaque=7`)
      const binary = await binaryReplies(binConns[s]!, [binSet('set'), binSet('setq')])
      const after = await c.stats()
      const delta = (name: string): number => Number(after.get(name)) - Number(before.get(name))
      const left = await replies(c, ['k0', 'k1', 'k2', 'k3', 'n1'].map((k) => `mg ${k} s v\r\n`).join(''))
      const counters = Object.fromEntries(['cmd_set', 'store_no_memory', 'curr_items', 'cas_misses'].map((n) => [n, delta(n)]))
      return { filled, text, binary, left: left.replace(/[ab]+/g, (v) => `${v[0]}×${v.length}`), counters }
    }),
  )
  const [mc, fc] = outcome
  assert.is(mc!.text.split('SERVER_ERROR Out of memory during read\r\n').length, 7 + 1, 'memcached: seven shown refusals')
  assert.ok(mc!.left.includes(`VA ${SIZE} s${SIZE}\r\na×${SIZE}`), 'memcached: the old values stay')
  assert.equal(fc, mc)
})

test('a Client rejects that refusal with FERROCACHE_OUT_OF_MEMORY in every protocol, from either server', async () => {
  // (the four old values are still there: memory is still full)
  const got: string[] = []
  for (const s of servers) {
    for (const protocol of ['meta', 'text', 'binary'] as const) {
      const c = new Client({ servers: [`127.0.0.1:${s.port}`], protocol })
      try {
        const err = await failure(c.set('k0', NEW))
        got.push(`${protocol}: ${err.code}`)
        assert.match(err.message, /Out of memory during read/, err.message)
      } finally {
        await c.close()
      }
    }
  }
  assert.equal(got, [...Array(2)].flatMap(() => ['meta', 'text', 'binary'].map((p) => `${p}: FERROCACHE_OUT_OF_MEMORY`)))
})

test.run()
