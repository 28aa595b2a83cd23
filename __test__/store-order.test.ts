// A storage command whose own allocation evicts the item it is about to replace. memcached
// 1.6.18 allocates the request's item before it looks the key up, so under memory pressure
// (the key at the COLD tail of a full class) replace/append/prepend/cas find the key gone
// (NOT_STORED, NOT_FOUND for cas) and add/set store; the same commands in the meta and
// binary protocols likewise. Both servers run the same commands on their own oldest keys:
// replies, presence afterwards and the counters must match.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { binaryPacket } from './helpers/corpus'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const KEYS = 3000
const VALUE = 'v'.repeat(1000)

let servers: Running[] = []
let conns: RawConn[] = []
let binConns: RawConn[] = []

setUp(test, async () => {
  // 2 MiB: one class of 1000-byte values fills it and evicts
  servers = await startAll([() => startMemcached(['-m', '2']), () => startFerrocached(['-m', '2'])])
  conns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
  binConns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
})

tearDown(test, async () => {
  for (const c of [...conns, ...binConns]) c.close()
  await Promise.all(servers.map((s) => s.stop()))
})

/** Keys still present, oldest first, with their CAS (one `mg` each: FETCHED, not ACTIVE). */
async function present(c: RawConn): Promise<{ key: string; cas: string }[]> {
  let batch = ''
  for (let i = 0; i < KEYS; i++) batch += `mg k${i} c\r\n`
  c.send(batch + 'mn\r\n')
  const lines = (await c.until('MN\r\n', 15_000)).split('\r\n').slice(0, KEYS)
  return lines.flatMap((l, i) => (l.startsWith('HD c') ? [{ key: `k${i}`, cas: l.slice(4) }] : []))
}

/**
 * One request on one server: its reply (binary as hex) once complete. A binary request goes
 * on the server's second connection (memcached fixes a connection's protocol at its first
 * byte).
 */
async function request(s: number, req: string | Buffer): Promise<string> {
  if (typeof req === 'string') {
    conns[s]!.send(req)
    return conns[s]!.until(/\r\n$/)
  }
  const c = binConns[s]!
  c.send(req)
  let reply = await c.atLeast(24)
  const whole = 24 + (reply.length >= 24 ? reply.readUInt32BE(8) : 0)
  if (reply.length < whole) reply = Buffer.concat([reply, await c.atLeast(whole - reply.length)])
  return reply.toString('hex')
}

function binaryReplace(key: string): Buffer {
  return binaryPacket(`replace key=${key} extras=0000000000000000 value=${VALUE} opaque=7`)
}

type Step = { name: string; build: (key: string, cas: string) => string | Buffer; stored: boolean }

const STEPS: Step[] = [
  { name: 'replace', build: (k) => `replace ${k} 0 0 1000\r\n${VALUE}\r\n`, stored: false },
  { name: 'ms MR', build: (k) => `ms ${k} 1000 MR\r\n${VALUE}\r\n`, stored: false },
  { name: 'binary replace', build: (k) => binaryReplace(k), stored: false },
  { name: 'cas', build: (k, cas) => `cas ${k} 0 0 1000 ${cas}\r\n${VALUE}\r\n`, stored: false },
  { name: 'ms C', build: (k, cas) => `ms ${k} 1000 C${cas}\r\n${VALUE}\r\n`, stored: false },
  { name: 'prepend', build: (k) => `prepend ${k} 0 0 1000\r\n${VALUE}\r\n`, stored: false },
  { name: 'append', build: (k) => `append ${k} 0 0 1000\r\n${VALUE}\r\n`, stored: false },
  { name: 'add', build: (k) => `add ${k} 0 0 1000\r\n${VALUE}\r\n`, stored: true },
  { name: 'ms ME', build: (k) => `ms ${k} 1000 ME\r\n${VALUE}\r\n`, stored: true },
  { name: 'set', build: (k) => `set ${k} 0 0 1000\r\n${VALUE}\r\n`, stored: true },
  // last: memcached evicts the next-oldest key of the class, ferrocached that of the key's
  // shard; the small request item takes no room from the full class
  { name: 'small append', build: (k) => `append ${k} 0 0 5\r\nhello\r\n`, stored: true },
]

test('a command whose own allocation evicts its key: the same replies as memcached', async () => {
  let batch = ''
  for (let i = 0; i < KEYS; i++) batch += `set k${i} 0 0 1000 noreply\r\n${VALUE}\r\n`
  for (const c of conns) c.send(batch + 'mn\r\n')
  await Promise.all(conns.map((c) => c.until('MN\r\n', 15_000)))
  const oldest = await Promise.all(conns.map(present))
  for (const keys of oldest) assert.ok(keys.length > STEPS.length && keys.length < KEYS, 'evicting')
  for (const [i, step] of STEPS.entries()) {
    const outcome = await Promise.all(
      conns.map(async (c, s) => {
        const { key, cas } = oldest[s]![i]!
        // a refused command gave its chunk back: a new key takes it, so the class is full
        // again (after a stored one nothing is free, and a new key would evict this one)
        if (i > 0 && !STEPS[i - 1]!.stored) {
          assert.is(await request(s, `set filler${i} 0 0 1000\r\n${VALUE}\r\n`), 'STORED\r\n')
        }
        const before = await c.stats()
        const reply = await request(s, step.build(key, cas))
        const after = await c.stats()
        const delta = (name: string): number => Number(after.get(name)) - Number(before.get(name))
        const there = (await request(s, `mg ${key}\r\n`)) === 'HD\r\n'
        return { reply, there, evictions: delta('evictions'), cmd_set: delta('cmd_set'), cas_misses: delta('cas_misses') }
      }),
    )
    const [mc, fc] = outcome
    assert.equal(fc, mc, step.name)
    assert.is(mc!.there, step.stored, `${step.name}: key present afterwards`)
    assert.is(mc!.evictions, 1, `${step.name}: one eviction`)
  }
})

test('TEMP LRU: a class holding only TEMP items answers out of memory, none evicted', async () => {
  const outcome = await Promise.all(
    conns.map(async (c, s) => {
      assert.is(await request(s, 'lru temp_ttl 1000\r\n'), 'OK\r\n')
      // TTL 500: TEMP items, never evicted; the class's other items are evicted for them
      let stored = 0
      let refusal = ''
      for (let i = 0; i < KEYS && refusal === ''; i++) {
        const reply = await request(s, `set temp${i} 0 500 1000\r\n${VALUE}\r\n`)
        if (reply === 'STORED\r\n') stored++
        else refusal = reply
      }
      const after = await c.stats()
      const first = await request(s, 'mg temp0\r\n')
      await request(s, 'lru temp_ttl -1\r\n')
      return { refusal, stored, items: after.get('curr_items'), first }
    }),
  )
  const [mc, fc] = outcome
  assert.is(mc!.refusal, 'SERVER_ERROR out of memory storing object\r\n')
  assert.equal(fc, mc)
})

test('embedded Cache: a replace whose allocation evicts its key is refused, an add stored', () => {
  const cache = new Cache({ memoryLimit: '2mb', shards: 1, slabAutomove: false })
  try {
    for (let i = 0; i < KEYS; i++) cache.setSync(`k${i}`, VALUE)
    const oldest = (): number => {
      for (let i = 0; i < KEYS; i++) if (cache.hasSync(`k${i}`)) return i
      throw new Error('nothing left')
    }
    const evictions = (): number => cache.statsSync().evictions
    let lo = oldest()
    let ev = evictions()
    assert.is(cache.replaceSync(`k${lo}`, VALUE), false)
    assert.is(cache.hasSync(`k${lo}`), false)
    assert.is(evictions(), ev + 1)
    cache.setSync('filler1', VALUE) // takes the chunk the refused replace gave back
    lo = oldest()
    ev = evictions()
    const entry = cache.getsSync(`k${lo}`)
    assert.ok(entry)
    assert.is(cache.casSync(`k${lo}`, VALUE, entry.cas), false)
    assert.is(cache.hasSync(`k${lo}`), false)
    assert.is(evictions(), ev + 1)
    cache.setSync('filler2', VALUE)
    lo = oldest()
    ev = evictions()
    assert.is(cache.addSync(`k${lo}`, VALUE), true)
    assert.is(cache.hasSync(`k${lo}`), true)
    assert.is(evictions(), ev + 1)
  } finally {
    cache.close()
  }
})

test.run()
