// `watch sysevents`: accepted as memcached 1.6.18 accepts it, alone or with other filters,
// and the lines ferrocached writes for its background work: a round of the expiry walk
// per class and LRU (`type=lru_crawler`, memcached's field names where ferrocached has the
// figure: docs/protocol.md, "watch") and an automove page move (`type=slab_move`).
// memcached's own crawler lines come right after its start, so its field names are
// compared with a freshly started memcached.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown, tearDownEach } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

let servers: Running[] = []
/** Connections a test opened, closed after it. */
let opened: RawConn[] = []

setUp(test, async () => {
  servers = await startAll([() => startMemcached(), () => startFerrocached(['-m', '8'])])
})

tearDownEach(test, async () => {
  for (const c of opened) c.close()
  opened = []
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

async function open(port: number): Promise<RawConn> {
  const c = await RawConn.open(port)
  opened.push(c)
  return c
}

/** A watcher with `filters` on `port`, once its OK came. */
async function watcher(port: number, filters: string): Promise<RawConn> {
  const w = await open(port)
  w.send(`watch ${filters}\r\n`)
  assert.is((await w.until(/\n$/, 10_000)).split('\n')[0], 'OK\r', `watch ${filters}`)
  return w
}

/** Reads `w`'s lines until one matches `want` (at most `ms`); all lines read so far. */
async function linesUntil(w: RawConn, want: RegExp, ms = 10_000): Promise<string[]> {
  const deadline = Date.now() + ms
  let text = ''
  while (Date.now() < deadline) {
    text += (await w.settle(20, 200)).toString('latin1')
    if (text.split('\n').some((l) => want.test(l))) break
  }
  return text.split('\n').filter((l) => l !== '')
}

const HEAD = /^ts=\d{10}\.(0|[1-9]\d{0,5}) gid=\d+ /

/** The `name=` words of a log line after its head. */
function fields(line: string): string[] {
  return line
    .replace(HEAD, '')
    .split(' ')
    .map((w) => w.split('=')[0]!)
}

/** `stats items` number of items per class id. */
async function itemsPerClass(port: number): Promise<Map<number, number>> {
  const c = await open(port)
  c.send('stats items\r\n')
  const text = await c.until('END\r\n')
  c.close()
  return new Map([...text.matchAll(/^STAT items:(\d+):number (\d+)\r$/gm)].map((m) => [Number(m[1]), Number(m[2])]))
}

test('watch sysevents: OK alone and with other filters, as memcached; memcached field names', async () => {
  // a memcached of our own: its crawler writes its status lines in its first seconds
  const [mc] = await startAll([() => startMemcached()])
  try {
    // ferrocached writes lines for the classes its walk met items of
    const c = await open(servers[1]!.port)
    c.send('set one 0 0 1\r\n1\r\n')
    assert.is(await c.until('\r\n'), 'STORED\r\n')
    const [mw, fw] = await Promise.all([watcher(mc!.port, 'sysevents'), watcher(servers[1]!.port, 'sysevents')])
    const [mcLines, fcLines] = await Promise.all([linesUntil(mw, / type=lru_crawler /), linesUntil(fw, / type=lru_crawler /)])
    const mcLine = mcLines.find((l) => l.includes(' type=lru_crawler '))
    const fcLine = fcLines.find((l) => l.includes(' type=lru_crawler '))
    assert.ok(mcLine && HEAD.test(mcLine), `memcached: ${mcLines.slice(0, 2)}`)
    assert.ok(fcLine && HEAD.test(fcLine), `ferrocached: ${fcLines.slice(0, 2)}`)
    // ferrocached leaves out the two of memcached's scheduler; the rest in its order
    const mcFields = fields(mcLine!)
    assert.equal(mcFields, ['type', 'crawler', 'lru', 'low_mark', 'next_reclaims', 'since_run', 'next_run', 'elapsed', 'examined', 'reclaimed'])
    assert.equal(
      fields(fcLine!),
      mcFields.filter((f) => f !== 'low_mark' && f !== 'next_reclaims'),
    )
  } finally {
    await mc!.stop()
  }
  for (const filters of ['sysevents fetchers', 'fetchers sysevents mutations', 'sysevents sysevents', 'sysevents bogus', 'SYSEVENTS']) {
    const conns = await Promise.all(servers.map((s) => open(s.port)))
    for (const c of conns) c.send(`watch ${filters}\r\n`)
    const replies = await Promise.all(conns.map(async (c) => (await c.until(/\n$/, 10_000)).split('\n')[0]))
    assert.is(replies[1], replies[0], filters)
    for (const c of conns) c.close()
  }
})

test('watch sysevents fetchers: the expiry walk reclaims what expired, between the lookups', async () => {
  const fc = servers[1]!
  const both = await watcher(fc.port, 'sysevents fetchers')
  const fetchers = await watcher(fc.port, 'fetchers')
  const c = await open(fc.port)
  let batch = ''
  for (let i = 0; i < 20; i++) batch += `set gone${i} 0 1 5 noreply\r\nvalue\r\n`
  c.send(`${batch}set kept 0 0 5\r\nvalue\r\n`)
  await c.until('STORED\r\n')
  const [cls] = [...(await itemsPerClass(fc.port)).entries()].find(([, n]) => n >= 21) ?? []
  assert.ok(cls, 'the 21 items share a class')
  c.send('get kept\r\n')
  await c.until('END\r\n')
  // within a few seconds the items expire and a round of the walk reclaims them
  const mine = new RegExp(`^type=lru_crawler crawler=${cls} lru=(hot|warm|cold|temp) since_run=0 next_run=[01] elapsed=\\d+ examined=(\\d+) reclaimed=(\\d+)$`)
  let reclaimed = 0
  const seen: string[] = []
  const deadline = Date.now() + 10_000
  while (reclaimed < 20 && Date.now() < deadline) {
    const lines = await linesUntil(both, / reclaimed=[1-9]/, 1_000)
    for (const l of lines) {
      assert.match(l, HEAD)
      const m = mine.exec(l.replace(HEAD, ''))
      if (!m) continue
      assert.ok(Number(m[2]) >= Number(m[3]), l)
      reclaimed += Number(m[3])
    }
    seen.push(...lines)
  }
  assert.is(reclaimed, 20, `the 20 expired items reclaimed: ${seen.slice(0, 6).join('\n')}`)
  assert.ok(seen.some((l) => / type=item_get key=kept status=found /.test(l)), 'the lookup is in the same stream')
  const other = (await fetchers.settle(20, 300)).toString('latin1')
  assert.ok(other.includes(' type=item_get key=kept '), other)
  assert.not.ok(other.includes('type=lru_crawler'), 'a fetchers watcher sees no crawler lines')
})

test('watch sysevents: an automove page move after a shift of value sizes', async () => {
  const fc = servers[1]!
  const w = await watcher(fc.port, 'sysevents')
  const c = await open(fc.port)
  const send = async (prefix: string, from: number, n: number, value: string): Promise<void> => {
    let batch = ''
    for (let i = from; i < from + n; i++) batch += `set ${prefix}${i} 0 0 ${value.length} noreply\r\n${value}\r\n`
    c.send(batch + 'mn\r\n')
    await c.until('MN\r\n', 10_000)
  }
  // 100-byte values take all 8 pages, then 2000-byte values evict
  for (let b = 0; b < 100; b++) await send('small', b * 1000, 1000, 's'.repeat(100))
  const smallClass = [...(await itemsPerClass(fc.port)).entries()].find(([, n]) => n > 10_000)?.[0]
  let moves: string[] = []
  const deadline = Date.now() + 15_000
  for (let b = 0; moves.length === 0 && Date.now() < deadline; b++) {
    await send('large', b * 200, 200, 'l'.repeat(2000))
    const text = (await w.settle(20, 100)).toString('latin1')
    moves = text.split('\n').filter((l) => l.includes(' type=slab_move '))
  }
  const largeClass = [...(await itemsPerClass(fc.port)).entries()].find(([k, n]) => k !== smallClass && n > 100)?.[0]
  assert.ok(smallClass && largeClass && moves.length > 0, 'a page moved')
  for (const l of moves) assert.match(l.replace(HEAD, ''), new RegExp(`^type=slab_move src=${smallClass} dst=${largeClass}$`), l)
  // as memcached: `slabs reassign` moves a page without a line
  c.send(`slabs reassign ${largeClass} ${smallClass}\r\n`)
  assert.is(await c.until('\r\n'), 'OK\r\n')
  const after = (await w.settle(50, 500)).toString('latin1')
  assert.not.ok(after.split('\n').some((l) => l.includes(' type=slab_move src=' + largeClass)), after)
})

test.run()
