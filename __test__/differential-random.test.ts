// Randomized differential test: seeded random streams of text, meta and binary requests over a
// few keys (helpers/diffgen.ts) go to Debian's memcached 1.6.18 and to ferrocached; each
// connection's reply stream must match byte for byte, CAS values aside (numbered by first
// appearance, helpers/diffrun.ts), and so must the `stats` command counters after the
// stream. A mismatch is shrunk to a minimal stream and printed.
//
// By default a fixed set of seeds runs (420 streams, about 20 s). A longer run:
//   DIFF_SEEDS=5000 [DIFF_FIRST=1] [DIFF_WIDE=1] npx uvu __test__ 'differential-random\.test\.ts$' -r tsx/cjs
// (DIFF_WIDE=1: wider streams, diffgen.ts `Sizing.wide`: writes cut at random bytes, more
// noreply, meta flags and limit-sized values, binary packets on a text connection,
// numbers at parsing edges in every numeric field; DIFF_MODE=text|meta|binary: streams of
// that kind of request only; DIFF_COUNT=150: longer streams.)
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DELTAS, EDGE_NUMBERS, focusOf, generate, NUMERIC, type Request } from './helpers/diffgen'
import { firstDifference, memcachedHeldReplies, memcachedNewItem, memcachedReadPastValue, minimise, runBoth, showStream, type Pair } from './helpers/diffrun'
import { setUp, tearDown } from './helpers/guard'
import { askOnce, RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const FIRST = Number(process.env.DIFF_FIRST ?? 1)
const SEEDS = Number(process.env.DIFF_SEEDS ?? 420)
/** A long run reports every differing seed; the default run stops at the first. */
const LONG = process.env.DIFF_SEEDS !== undefined
const WIDE = process.env.DIFF_WIDE === '1'
const FOCUS = focusOf(process.env.DIFF_MODE)
/** Requests a stream (about): 40, more in a campaign's DIFF_COUNT. */
const COUNT = Number(process.env.DIFF_COUNT ?? 40)
/** A campaign's chance of a mutated byte in a text or meta request (diffgen.ts `Sizing.mutate`). */
const MUTATE = Number(process.env.DIFF_MUTATE ?? 0)

let servers: Running[] = []
let pair: Pair

setUp(test, async () => {
  servers = await startAll([() => startMemcached(['-m', '64']), () => startFerrocached(['-m', '64'])])
  pair = { memcached: servers[0]!.port, ferrocached: servers[1]!.port }
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

/** Prints the shrunk stream and both servers' replies to it. */
async function report(seed: number, requests: Request[]): Promise<string> {
  const small = await minimise(pair, requests)
  const { expected, actual } = await runBoth(pair, small)
  const text =
    `seed ${seed}: ferrocached differs from memcached; shrunk from ${requests.length} to ${small.length} requests:\n` +
    `${showStream(small)}\n--- memcached:\n${expected}\n--- ferrocached:\n${actual}\n`
  console.log(`\n${text}`)
  return text
}

test(`seeds ${FIRST}..${FIRST + SEEDS - 1}: same replies as memcached`, async () => {
  const failed: number[] = []
  for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
    const requests = generate(seed, COUNT, { wide: WIDE, focus: FOCUS, mutate: MUTATE })
    const { expected, actual } = await runBoth(pair, requests)
    if (expected === actual) continue
    // A difference that does not come back on both of two reruns is printed but does not
    // fail: about one seed in a thousand differs on one run only (3 in 4000, measured),
    // each time an incr/decr that memcached wrote as a new unpadded item because a read's
    // reply, just sent, still held the old one (docs/protocol.md, known differences). A
    // real difference is deterministic and fails.
    const reruns = [await runBoth(pair, requests), await runBoth(pair, requests)]
    if (reruns.some((r) => r.expected === r.actual)) {
      console.log(`\nseed ${seed}: differed, not on every rerun:\n${firstDifference(expected, actual)}`)
      continue
    }
    // memcached refused an increment by what its memory held past the value (diffrun.ts)
    if (memcachedReadPastValue(expected, actual)) {
      console.log(`\nseed ${seed}: memcached read past a value of 2^63 or more (docs/protocol.md)`)
      continue
    }
    // memcached made an increment's result a new item: an unwritten reply or its LRU
    // maintainer's asynchronous bump held the item (diffrun.ts)
    if (memcachedNewItem(expected, actual)) {
      console.log(`\nseed ${seed}: memcached stored an increment as a new item (docs/protocol.md)`)
      continue
    }
    // memcached held a read's replies behind a value still to come (DIFF_MUTATE; diffrun.ts)
    if (MUTATE > 0 && memcachedHeldReplies(expected, actual)) {
      console.log(`\nseed ${seed}: memcached held replies behind a pending value (docs/protocol.md)`)
      continue
    }
    failed.push(seed)
    const text = await report(seed, requests)
    if (!LONG) assert.fixture(actual, expected, text)
  }
  assert.equal(failed, [], `differing seeds: ${failed.join(' ')}`)
})

// Seed 116 failed a full run: `gets` of a key holding a tab showed its CAS raw (the VALUE
// line's pattern wanted no whitespace in the key), and the two servers' counters were 2
// apart (what the one-off difference above leaves). CAS values are numbered in any key.
test('a VALUE line whose key holds a tab: its CAS is numbered, so counters apart do not differ', async () => {
  const text = (show: string): Request => ({ conn: 1, show, build: (r) => Buffer.from(show.replaceAll('$P', r.prefix), 'latin1'), batch: false, usesCas: false, risky: false })
  // one CAS value more used on ferrocached than on memcached
  assert.is((await askOnce(pair.ferrocached, Buffer.from('set apart 0 0 1\r\nx\r\n'))).reply, 'STORED\r\n')
  const { expected, actual } = await runBoth(pair, [text('ms $Pe\tf 2\r\nab\r\n'), text('gets $Pe\tf\r\n')])
  assert.match(actual, /VALUE r\d+:e\tf 0 2 #1\r\n/)
  assert.is(actual, expected)
})

// memcached reads an increment's value of 2^63 or more on past its end, looking for a '-'
// (docs/protocol.md, known differences): a chunk an item of dashes left behind makes it
// answer non-numeric. The harness tells that difference apart and does not fail on it.
test('an increment memcached refuses for the bytes past a value of 2^63 or more is told apart', async () => {
  const text = (show: string): Request => ({ conn: 1, show, build: (r) => Buffer.from(show.replaceAll('$P', r.prefix), 'latin1'), batch: true, usesCas: false, risky: false })
  const stream = [text(`set $Pk1 0 0 25\r\n${'-'.repeat(25)}\r\n`), text('delete $Pk1\r\n'), text('set $Pk2 0 0 20\r\n18446744073709551610\r\n'), text('incr $Pk2 1\r\n')]
  const { expected, actual } = await runBoth(pair, stream)
  assert.match(expected, /STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n/)
  assert.match(actual, /STORED\r\n18446744073709551611\r\n/)
  assert.ok(memcachedReadPastValue(expected, actual))
  // a wrong number, or ferrocached refusing where memcached counts, is not told apart
  assert.not.ok(memcachedReadPastValue(actual.replace('611', '612'), actual))
  assert.not.ok(memcachedReadPastValue(actual, expected))
})

// Session 18, seed 390134 (DIFF_MUTATE=0.1, 150 requests): memcached refused a quiet binary
// decrement of 18446744073709551615 for what lay past it, and a text get of the key differed
// first in the stream, as connection 1 is printed before connection 3: told apart too.
test('a read past a value on the binary connection is told apart where a text connection differs first', () => {
  const text = (v: string): string => `[conn 1]\nVALUE r135:d 4294967295 23\r\n${v}zvo\r\nEND\r\nMN\r\n\r\n[open]\n`
  const mark = 'op=a status=0 extras= key="" value="" bodylen=0 opaque=4277009102 cas=0'
  const refused = 'op=16 status=6 extras= key="" value="Non-numeric server-side value for incr or decr" bodylen=46 opaque=98 cas=0'
  // (the getk before the refusal shows a CAS numbered apart: numbers go by print order)
  const getk = (cas: string): string => `op=d status=0 extras=00000000 key="r135:b" value="18446744073709551615" bodylen=30 opaque=0 cas=${cas}`
  const expected = `${text('18446744073709551615')}[conn 3]\n${getk('#2')}\n${refused}\n${mark}\n[open]\n[stats] decr_hits 0`
  const actual = `${text('18446744073709551614')}[conn 3]\n${getk('#6')}\n${mark}\n[open]\n[stats] decr_hits 1`
  assert.ok(memcachedReadPastValue(expected, actual))
  // not without the refusal, nor ferrocached refusing where memcached counts
  assert.not.ok(memcachedReadPastValue(expected.replace(`${refused}\n`, ''), actual))
  assert.not.ok(memcachedReadPastValue(actual, expected))
})

// memcached stores an increment's result as a new, unpadded item while the item is referenced
// elsewhere: an unwritten mg reply in the same write (below, every run), or its LRU
// maintainer's asynchronous bump of a COLD item read twice (seeds 52257, 91219, 100349 of
// session 17: timing, on every run of a fresh server at times). Told apart, narrowly.
test('an increment memcached stored as a new item is told apart, and only that', async () => {
  const text = (show: string): Request => ({ conn: 1, show, build: (r) => Buffer.from(show.replaceAll('$P', r.prefix), 'latin1'), batch: true, usesCas: false, risky: false })
  const { expected, actual } = await runBoth(pair, [text('set $Pk 0 0 3\r\n100\r\n'), text('mg $Pk v\r\n'), text('decr $Pk 95\r\n'), text('mg $Pk v\r\n'), text('me $Pk\r\n')])
  assert.match(expected, /\r\n5\r\nVA 1\r\n5\r\nME \S+ exp=-1 la=\S+ cas=#1 fetch=yes cls=1 size=\d+\r\n/)
  assert.match(actual, /\r\n5\r\nVA 3\r\n5  \r\nME \S+ exp=-1 la=\S+ cas=#1 fetch=yes cls=1 size=\d+\r\n/)
  assert.ok(memcachedNewItem(expected, actual))
  // a value that is not memcached's padded, or the padding on memcached's side, is not
  assert.not.ok(memcachedNewItem(expected, actual.replace('\r\n5  \r\n', '\r\n6  \r\n')))
  assert.not.ok(memcachedNewItem(actual, expected))
  // `me` right after the increment (memcached's new item was never fetched), and binary, by their lines
  const me = (fetch: string, size: number): string => `MN\r\nME k exp=-1 la=<s> cas=#1 fetch=${fetch} cls=1 size=${size}\r\n`
  assert.ok(memcachedNewItem(me('no', 66), me('yes', 68)))
  assert.not.ok(memcachedNewItem(me('no', 66).replace('#1', '#2'), me('yes', 68)))
  const bin = (value: string, cas = '#3'): string => `op=c status=0 extras=ffffffff key="k" value=${JSON.stringify(value)} bodylen=${9 + value.length} opaque=1 cas=${cas}`
  assert.ok(memcachedNewItem(bin('9223372036854775807owx'), bin('9223372036854775807 owx')))
  assert.not.ok(memcachedNewItem(bin('9223372036854775807owx'), bin('9223372036854775807 owx', '#4')))
  assert.not.ok(memcachedNewItem(bin('abc'), bin('ab c')))
})

// A campaign's mutated byte can make a length too long: memcached then holds the replies
// before that storage command in its read until the value is complete, ferrocached sends
// them (docs/protocol.md, known differences). Told apart for DIFF_MUTATE campaigns only.
test('replies memcached holds behind a value still to come are told apart', async () => {
  const text = (show: string): Request => ({ conn: 1, show, build: (r) => Buffer.from(show.replaceAll('$P', r.prefix), 'latin1'), batch: true, usesCas: false, risky: true })
  const { expected, actual } = await runBoth(pair, [text('mg $Pk S\r\n'), text('ms $Pk 55 T1.5 I\r\n00012\r\n')])
  assert.match(expected, /^\[conn 1\]\n\n\[open\]/)
  assert.match(actual, /^\[conn 1\]\nCLIENT_ERROR invalid flag\r\n\n\[open\]/)
  assert.ok(memcachedHeldReplies(expected, actual))
  assert.not.ok(memcachedHeldReplies(actual, expected))
  assert.not.ok(memcachedHeldReplies(expected.replace('[conn 1]\n', '[conn 1]\nERROR\r\n'), actual))
})

// Seed 133783 (session 17, DIFF_MUTATE=0.15) differed on every run of its campaign: seed
// 133781 two streams before it had `flush_all -1` mutated to `flush_all +1`, a delayed flush
// the generator leaves out on purpose. It hides what is stored until its second ends, the
// wall clock's on ferrocached, memcached's own timer tick on memcached (docs/protocol.md): an
// `ms` stored in between stayed hidden on ferrocached only. Mutation leaves flush_all alone.
test('DIFF_MUTATE never sends a flush_all with a delay', () => {
  const delayed: string[] = []
  for (let seed = 1; seed <= 600; seed++) {
    // (every eligible request mutated; wide streams also send `flush_all x noreply`)
    for (const req of generate(seed, 40, { mutate: 1, wide: seed % 2 === 0 })) {
      if (req.conn === 3) continue
      // as memcached reads a line: up to a NUL, tokens split at spaces, strtol's delay
      for (const line of req.build({ prefix: 'r1:', cas: '1', now: 1_800_000_000 }).toString('latin1').split('\n')) {
        const tokens = line.replace(/\0.*$/s, '').replace(/\r$/, '').split(' ').filter((t) => t !== '')
        const delay = /^[\t\v\f\r ]*([+-]?\d+)(\s|$)/.exec(tokens[1] ?? '')
        if (tokens[0] === 'flush_all' && delay && Number(delay[1]) > 0) delayed.push(`seed ${seed}: ${JSON.stringify(req.show)}`)
      }
    }
  }
  assert.equal(delayed, [])
})

// DIFF_MUTATE_BINARY (binary-only campaigns) sets header bytes of binary packets, but never
// makes an opcode flush or stat (a delay from a packet's extras is memcached's own tick;
// stat's figures are each server's), touches no flush, and keeps the body length's top byte
// (a body past 2^31 - 1 abandoned leaves memcached unable to answer later ones).
test('DIFF_MUTATE_BINARY leaves flush, stat and the body length top byte alone', () => {
  const kinds = new Set<string>()
  for (let seed = 1; seed <= 300; seed++) {
    for (const req of generate(seed, 40, { mutateBinary: 1, focus: 'binary', wide: seed % 2 === 0 })) {
      const b = req.build({ prefix: 'r1:', cas: '1', now: 1_800_000_000 })
      const original = /^bin (\S+)/.exec(req.show)![1]!
      assert.not.ok(/^flush/.test(original) && req.show.includes(' <'), req.show)
      if (!req.show.includes(' <')) continue
      kinds.add(/ <(header|body|cut|byte)/.exec(req.show)![1]!)
      if (b.length < 24) continue
      assert.is(b[8], 0, req.show)
      assert.ok(![0x08, 0x18, 0x10].includes(b[1]!) || /^(stat|0x10)$/.test(original), req.show)
    }
  }
  assert.equal([...kinds].sort(), ['body', 'byte', 'cut', 'header'])
})

// memcachedReadPastValue excuses memcached's non-numeric answer where ferrocached counts,
// which would also hide ferrocached counting on a value that is not a number ('12abc',
// ' 5', '5\x00x'). So every value the generator writes that is not a number of 2^63 or
// more (the only ones memcached may refuse for what lies past them) is incremented and
// decremented by every delta here, where nothing is excused; with noreply too, which the
// generator no longer sends on text incr/decr.
test('incr/decr (and noreply) of every generated value below 2^63 by every delta answers as memcached', async () => {
  const big = (v: string): boolean => /^\s*0*(1844674407370955161[0-9]|922337203685477580[89])/.test(v)
  let request = ''
  let n = 0
  for (const value of NUMERIC.filter((v) => !big(v))) {
    for (const delta of DELTAS) {
      for (const [op, tail] of [['incr', ''], ['decr', ''], ['incr', ' noreply'], ['decr', ' noreply']]) {
        const key = `arith:${n++}`
        request += `set ${key} 0 0 ${Buffer.byteLength(value, 'latin1')}\r\n${value}\r\n${op} ${key} ${delta}${tail}\r\nget ${key}\r\n`
      }
    }
  }
  const answer = async (port: number): Promise<string> => {
    const c = await RawConn.open(port)
    try {
      c.send(Buffer.from(`${request}mn\r\n`, 'latin1'))
      return await c.until('MN\r\n')
    } finally {
      c.close()
    }
  }
  const [expected, actual] = await Promise.all([answer(pair.memcached), answer(pair.ferrocached)])
  assert.match(expected, /CLIENT_ERROR cannot increment or decrement non-numeric value/)
  assert.fixture(actual, expected)
})

// Every numeric field of the text and meta commands, each with every number at a parsing
// edge (signs, zeros, hex and float forms, 2^31/2^32/2^63/2^64 on both sides, white space
// inside the token), then a read of what was stored: the same bytes as memcached. A field's
// cases go in one write, each on keys of its own; a length's each on a connection of its
// own, as a length taken leaves the server waiting for the value.
test('every numeric field of text and meta commands reads numbers at parsing edges as memcached', async () => {
  const numbers = [...new Set(['5', '05', '00', '-0', '', '-1', '-5', '2147483647', '2147483648', '4294967295', '4294967296', '9223372036854775807', '9223372036854775808', '18446744073709551615', '18446744073709551616', '2592000', '2592001', '99999999999999999999999', '5x', 'x5', '\t5', '5\x00', ...EDGE_NUMBERS])]
  // {k}: the case's key, {n}: the number
  const fields: Record<string, string> = {
    flags: 'set {k} {n} 0 1\r\na\r\nmg {k} f v',
    exptime: 'set {k} 0 {n} 1\r\na\r\nmg {k} v',
    length: 'set {k} 0 0 {n}\r\naaaaa\r\nmg {k} v',
    cas: 'set {k} 0 0 1\r\na\r\ncas {k} 0 0 1 {n}\r\nb\r\nmg {k} v',
    touch: 'set {k} 0 0 1\r\na\r\ntouch {k} {n}\r\nmg {k} v',
    gat: 'set {k} 0 0 1\r\na\r\ngat {n} {k}\r\nmg {k} v',
    delete: 'set {k} 0 0 1\r\na\r\ndelete {k} {n}\r\nmg {k} v',
    incr: 'set {k} 0 0 2\r\n10\r\nincr {k} {n}\r\nmg {k} v',
    decr: 'set {k} 0 0 2\r\n10\r\ndecr {k} {n}\r\nmg {k} v',
    verbosity: 'verbosity {n}',
    'mg T': 'set {k} 0 0 1\r\na\r\nmg {k} T{n} v\r\nmg {k} v',
    'mg N': 'mg {k} N{n} v\r\nmg {k} v',
    // (a TTL none of the numbers is: R equal to the TTL left wins by the clocks' second)
    'mg R': 'set {k} 0 333 1\r\na\r\nmg {k} R{n} v c\r\nmg {k} v',
    'mg E': 'mg {k} E{n} v',
    'ms length': 'ms {k} {n}\r\naaaaa\r\nmg {k} v',
    'ms F': 'ms {k} 1 F{n}\r\na\r\nmg {k} f v',
    'ms T': 'ms {k} 1 T{n}\r\na\r\nmg {k} v',
    'ms C': 'ms {k} 1\r\na\r\nms {k} 1 C{n}\r\nb\r\nmg {k} v',
    'ms E': 'ms {k} 1 E{n}\r\na\r\nmg {k} v c',
    'ms N': 'ms {k} 1 N{n} MA\r\na\r\nmg {k} v',
    'md C': 'ms {k} 1\r\na\r\nmd {k} C{n}\r\nmg {k} v',
    'md E': 'ms {k} 1\r\na\r\nmd {k} E{n} I\r\nmg {k} v c',
    'md T': 'ms {k} 1\r\na\r\nmd {k} I T{n}\r\nmg {k} v',
    'ma D': 'ms {k} 2\r\n10\r\nma {k} D{n} v\r\nmg {k} v',
    'ma J': 'ma {k} N0 J{n} v\r\nmg {k} v',
    'ma N': 'ma {k} N{n} v\r\nmg {k} v',
    'ma C': 'ms {k} 2\r\n10\r\nma {k} C{n} v\r\nmg {k} v',
    'ma E': 'ms {k} 2\r\n10\r\nma {k} E{n} v c\r\nmg {k} v',
    'ma T': 'ms {k} 2\r\n10\r\nma {k} T{n} v\r\nmg {k} v',
  }
  const writes = Object.entries(fields).flatMap(([field, form]) => {
    const one = (n: string, i: number): string => `${form.replaceAll('{k}', `num:${field.replace(' ', '')}:${i}`).replaceAll('{n}', n)}\r\n`
    if (field.includes('length')) return numbers.map((n, i) => ({ show: `${field} ${JSON.stringify(n)}`, request: `${one(n, i)}mn\r\n` }))
    return [{ show: field, request: `${numbers.map(one).join('')}mn\r\n` }]
  })
  const differing: string[] = []
  await Promise.all(
    writes.map(async ({ show, request }) => {
      const conns = await Promise.all([RawConn.open(pair.memcached), RawConn.open(pair.ferrocached)])
      try {
        for (const c of conns) c.send(Buffer.from(request, 'latin1'))
        // a length taken leaves both servers waiting for the value (no MN): 300 ms, and up
        // to 3 s more while the two differ (a busy machine's late reply)
        const got = await Promise.all(conns.map((c) => c.until('MN\r\n', 300)))
        if (got[0] !== got[1]) {
          const more = await Promise.all(conns.map((c, i) => (got[i]!.endsWith('MN\r\n') ? '' : c.until('MN\r\n', 3_000))))
          more.forEach((m, i) => (got[i] += m))
        }
        const [expected, actual] = got.map((g) => g.replace(/ c\d+/g, ' c<cas>'))
        if (expected !== actual) differing.push(`${show}:\n${firstDifference(expected!, actual!)}`)
      } finally {
        for (const c of conns) c.close()
      }
    }),
  )
  assert.equal(differing, [])
})

test.run()
