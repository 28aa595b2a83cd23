// Differential: the same seeded random sequence of every CacheLike operation against the
// embedded Cache and against Client over three ferrocached, in meta, text and binary;
// every result must match
// (CAS tokens are compared by what they do, each side using its own).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, type CacheLike } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { startAll, startFerrocached, type Running } from './helpers/servers'
import { intRng as rng } from './helpers/prng'

let servers: Running[] = []

setUp(test, async () => {
  servers = await startAll([() => startFerrocached(), () => startFerrocached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

type Op = (c: CacheLike<'utf8'>, cas: Map<string, bigint>) => Promise<unknown>

function plan(seed: number, count: number): Array<[string, Op]> {
  const r = rng(seed)
  const key = () => `m:${r(40)}`
  const value = () => (r(4) === 0 ? String(r(1000)) : 'v'.repeat(r(3000)) + r(10))
  const ops: Array<[string, Op]> = []
  for (let i = 0; i < count; i++) {
    const k = key()
    const v = value()
    const flags = r(3) === 0 ? r(2 ** 32) : 0
    const d = r(5) === 0 ? 2n ** 64n - 1n : BigInt(r(100))
    const keys = Array.from({ length: 1 + r(8) }, key)
    const digit = String(r(10)) // drawn now: both sides must do the very same operation
    const pick = r(17)
    const name = ['get', 'gets', 'getMany', 'set', 'setMany', 'add', 'replace', 'append', 'prepend', 'cas', 'incr', 'decr', 'touch', 'gat', 'delete', 'deleteMany', 'has'][pick]!
    const choices: Op[] = [
      (c) => c.get(k),
      async (c, cas) => {
        const e = await c.gets(k)
        if (e) cas.set(k, e.cas)
        return e && { value: e.value, flags: e.flags }
      },
      async (c) => [...(await c.getMany(keys))],
      (c) => c.set(k, v, { flags }),
      (c) => c.setMany(keys.map((x) => [x, v] as const)),
      (c) => c.add(k, v, { flags }),
      (c) => c.replace(k, v),
      (c) => c.append(k, digit),
      (c) => c.prepend(k, digit),
      (c, cas) => c.cas(k, v, cas.get(k) ?? 1n),
      (c) => c.incr(k, d).catch((e: { code: string }) => e.code),
      (c) => c.decr(k, d).catch((e: { code: string }) => e.code),
      (c) => c.touch(k, 60_000),
      (c) => c.gat(k, 60_000),
      (c) => c.delete(k),
      (c) => c.deleteMany(keys),
      (c) => c.has(k),
    ]
    const op = choices[pick]!
    ops.push([`${name} ${k}`, op])
  }
  return ops
}

const big = (_: string, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)
const short = (v: unknown) => (JSON.stringify(v, big) ?? 'undefined').replace(/v{20,}/g, (m) => `v*${m.length}`).slice(0, 300)

for (const protocol of ['meta', 'text', 'binary'] as const) {
  test(`3000 random operations give the same results embedded and over three servers (${protocol})`, async () => {
    const embedded = new Cache({ encoding: 'utf8' })
    const remote = new Client({ servers: servers.map((s) => `127.0.0.1:${s.port}`), encoding: 'utf8', protocol })
    await remote.flush()
    const casA = new Map<string, bigint>()
    const casB = new Map<string, bigint>()
    const ops = plan(20261125, 3000)
    for (const [i, [name, op]] of ops.entries()) {
      const a = await op(embedded, casA)
      const b = await op(remote, casB)
      if (JSON.stringify(b, big) !== JSON.stringify(a, big)) assert.unreachable(`op ${i}: ${name}: embedded ${short(a)}, remote ${short(b)}`)
    }
    // And the final contents agree key by key.
    const all = Array.from({ length: 40 }, (_, i) => `m:${i}`)
    assert.equal([...(await remote.getMany(all))], [...(await embedded.getMany(all))])
    embedded.close()
    await remote.close()
  })
}

test.run()
