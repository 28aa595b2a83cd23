// memcached's `lru tune|mode|temp_ttl` and `slabs automove ratio`, side by side with Debian's
// memcached 1.6.18: the same reply bytes for valid, invalid and out-of-range forms, and the
// same `stats settings` values afterwards (what each one does: crates/ferrocache-core/tests/lru_tune.rs).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

let servers: Running[] = []
let conns: RawConn[] = []

setUp(test, async () => {
  servers = await startAll([() => startMemcached(['-m', '64']), () => startFerrocached(['-m', '64'])])
  conns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
})

tearDown(test, async () => {
  for (const c of conns) c.close()
  await Promise.all(servers.map((s) => s.stop()))
})

/** One line to one server; a noreply line is followed by `mn` so its silence is seen. */
async function ask(c: RawConn, line: string): Promise<string> {
  c.send(`${line}\r\nmn\r\n`)
  const text = await c.until('MN\r\n')
  return text.replace(/MN\r\n$/, '')
}

async function same(line: string): Promise<string> {
  const [mc, fc] = await Promise.all(conns.map((c) => ask(c, line)))
  assert.is(fc, mc, `reply to ${JSON.stringify(line)}`)
  return mc as string
}

const NAMES = [
  'hot_lru_pct', 'warm_lru_pct', 'hot_max_factor', 'warm_max_factor', 'lru_segmented', 'temp_lru',
  'temporary_ttl', 'slab_automove_ratio',
]

/** The LRU lines of `stats settings` on both servers, which must agree. */
async function sameSettings(after: string): Promise<string> {
  const [mc, fc] = await Promise.all(
    conns.map(async (c) => {
      c.send('stats settings\r\n')
      const text = await c.until('END\r\n')
      return NAMES.map((n) => new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(text)?.[1] ?? '?').join(' ')
    }),
  )
  assert.is(fc, mc, `stats settings after ${after}`)
  return mc as string
}

test('lru tune: the same replies, and stats settings follows', async () => {
  assert.is(await sameSettings('start'), '20 40 0.20 2.00 yes no 61 0.80')
  for (const line of [
    'lru',
    'lru noreply',
    'lru foo',
    'lru foo bar baz',
    'lru tune',
    'lru tune 10 20',
    'lru tune 10 20 0.5',
    'lru tune 10 20 noreply',
    'lru tune 50 31 0.5 3',
    'lru tune 20 40 0 2',
    'lru tune 20 40 0.2 0',
    'lru tune 20 40 -1 2',
    'lru tune 20 40 -0 2',
    'lru tune -1 40 0.2 2',
    'lru tune a 40 0.2 2',
    'lru tune 20 40 abc 2',
    'lru tune 20 40 0.2x 2',
    'lru tune 20 40 1e 2',
    'lru tune 20 40 . 2',
    'lru tune 20 40 1e400 2',
    'lru tune 20 40 1e-310 2',
    'lru tune 20 40 0x 2',
  ]) {
    await same(line)
  }
  assert.is(await sameSettings('refused forms'), '20 40 0.20 2.00 yes no 61 0.80')
  for (const [line, settings] of [
    ['lru tune 10 20 0.5 3', '10 20 0.50 3.00 yes no 61 0.80'],
    ['lru tune 50 30 0.5 3 noreply', '50 30 0.50 3.00 yes no 61 0.80'],
    ['lru tune 0 0 0.25 1 extra', '0 0 0.25 1.00 yes no 61 0.80'],
    ['lru tune 30 40 1e2 0x1p-2', '30 40 100.00 0.25 yes no 61 0.80'],
    ['lru tune 20 40 .5 2.', '20 40 0.50 2.00 yes no 61 0.80'],
    ['lru tune 4294967295 1 +.5e1 INF', '-1 1 5.00 inf yes no 61 0.80'],
    ['lru tune 20 40 nan 2', '20 40 nan 2.00 yes no 61 0.80'],
    ['lru tune 4294967296 40 0.2 2', '0 40 0.20 2.00 yes no 61 0.80'],
    ['lru tune 20 40 0.2 2', '20 40 0.20 2.00 yes no 61 0.80'],
  ] as const) {
    await same(line)
    assert.is(await sameSettings(line), settings)
  }
})

test('lru mode: the same replies, and lru_segmented follows', async () => {
  for (const line of ['lru mode', 'lru mode noreply', 'lru mode FLAT', 'lru mode other']) await same(line)
  for (const [line, segmented] of [
    ['lru mode flat', 'no'],
    ['lru mode segmented', 'yes'],
    ['lru mode flat noreply', 'no'],
    ['lru mode segmented a b', 'yes'],
    ['lru mode flat extra', 'no'],
    ['lru mode segmented', 'yes'],
  ] as const) {
    await same(line)
    assert.is((await sameSettings(line)).split(' ')[4], segmented)
  }
})

test('slabs automove ratio: the same replies, and slab_automove_ratio follows', async () => {
  for (const line of [
    'slabs automove ratio',
    'slabs automove ratio noreply',
    'slabs automove ratio abc',
    'slabs automove ratio 0.5x',
    'slabs automove ratio .',
    'slabs automove ratio 1e+',
    'slabs automove ratio 1e400',
    'slabs automove ratio 1e-310',
    'slabs automove ratio 0x',
  ]) {
    await same(line)
  }
  for (const [line, ratio] of [
    ['slabs automove ratio 0.5', '0.50'],
    ['slabs automove ratio 1.5', '1.50'],
    ['slabs automove ratio 0', '0.00'],
    ['slabs automove ratio -1', '-1.00'],
    ['slabs automove ratio -0', '-0.00'],
    ['slabs automove ratio 0x1p-2', '0.25'],
    ['slabs automove ratio 1e-300', '0.00'],
    ['slabs automove ratio NaN', 'nan'],
    ['slabs automove ratio -nan', '-nan'],
    ['slabs automove ratio INFINITY', 'inf'],
    ['slabs automove ratio 0.7 noreply', '0.70'],
    ['slabs automove ratio 0.6 a b', '0.60'],
    ['slabs automove ratio 0.8', '0.80'],
  ] as const) {
    await same(line)
    assert.is((await sameSettings(line)).split(' ')[7], ratio)
  }
})

test('lru temp_ttl: the same replies, settings, and TEMP items in stats items', async () => {
  for (const line of ['lru temp_ttl', 'lru temp_ttl noreply', 'lru temp_ttl abc', 'lru temp_ttl 12x']) await same(line)
  for (const [line, settings] of [
    ['lru temp_ttl -1', 'no 61'],
    ['lru temp_ttl 100', 'yes 100'],
    ['lru temp_ttl -5 noreply', 'no 100'],
    ['lru temp_ttl 0 extra', 'yes 0'],
    ['lru temp_ttl 2147483648', 'no 0'],
    ['lru temp_ttl -2147483649', 'yes 2147483647'],
    ['lru temp_ttl 100 a b', 'yes 100'],
  ] as const) {
    await same(line)
    assert.is((await sameSettings(line)).split(' ').slice(5, 7).join(' '), settings)
  }
  // TTL 50 and 100: TEMP; 0 (never expires) and 101: not
  for (const [key, ttl] of [['t50', 50], ['t0', 0], ['t100', 100], ['t101', 101]] as const) {
    await same(`set ${key} 0 ${ttl} 1\r\nx`)
  }
  const itemLines = async (c: RawConn): Promise<string> => {
    const text = await ask(c, 'stats items')
    return [...text.matchAll(/^STAT items:\d+:(number|number_temp) (\d+)\r$/gm)].map((m) => `${m[1]}=${m[2]}`).join(' ')
  }
  const [mc, fc] = await Promise.all(conns.map(itemLines))
  assert.is(mc, 'number=4 number_temp=2')
  assert.is(fc, mc)
  await same('lru temp_ttl -1')
  const [mcOff, fcOff] = await Promise.all(conns.map(itemLines))
  assert.is(mcOff, 'number=4', 'number_temp only while the TEMP LRU is on')
  assert.is(fcOff, mcOff)
})

test.run()
