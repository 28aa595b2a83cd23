// Items over this store's item size limit arriving from elsewhere: an append-only log or a
// snapshot written under a larger -I (maxItemSize), a primary with a larger -I. What fits
// is kept, what does not is left out (deleted: no older value survives) and counted, and
// the count is visible (a warning, stats), never a crash or another item lost. memcached
// has neither restart files of this kind nor replication, so there is no reply to match.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { collectingLogger } from './helpers/logs'
import { setUp, tearDown } from './helpers/guard'
import { caughtUp, stats } from './helpers/replication'
import { askOnce } from './helpers/raw'
import { startAll, startFerrocached, waitFor, type Running } from './helpers/servers'

interface LogLine {
  level: number
  msg: string
  notStored?: number
}


const BIG = Buffer.alloc(1_500_000, 'b') // over 1m's bound, under 2m's

let dir = ''
let servers: Running[] = []
setUp(test, () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-bound-'))
})
tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
  rmSync(dir, { recursive: true, force: true })
})

test('a log and a snapshot written under a larger maxItemSize load what fits and count the rest', async () => {
  const data = join(dir, 'embedded')
  const big = new Cache({ dataDir: data, appendfsync: 'always', maxItemSize: '2m', saveOnClose: false })
  big.setSync('before', 'kept')
  big.setSync('huge', BIG)
  big.setSync('after', 'kept too')
  big.close() // no snapshot: every change is in the log only
  const lines: LogLine[] = []
  const small = new Cache({ dataDir: data, appendfsync: 'always', maxItemSize: '1m', logger: collectingLogger(lines) })
  try {
    assert.is(small.getSync('before', { encoding: 'utf8' }), 'kept')
    assert.is(small.getSync('after', { encoding: 'utf8' }), 'kept too')
    assert.is(small.hasSync('huge'), false)
    const replayed = lines.find((l) => l.msg === 'append-only log replayed')
    assert.is(replayed?.notStored, 1, JSON.stringify(lines))
    assert.ok(lines.some((l) => l.level === 40 && /items not stored/.test(l.msg) && l.notStored === 1), JSON.stringify(lines))
    assert.ok(small.persistence!.stats().some(([k, v]) => k === 'aof_last_load_keys_not_stored' && v === '1'))
  } finally {
    small.close()
  }
  // a snapshot (saved on close above) under a larger bound: the load report counts it
  const snap = join(dir, 'snapshot')
  const writer = new Cache({ dataDir: snap, maxItemSize: '2m' })
  writer.setSync('k', 'v')
  writer.setSync('huge', BIG)
  writer.close()
  lines.length = 0
  const reader = new Cache({ dataDir: snap, maxItemSize: '1m', logger: collectingLogger(lines) })
  try {
    assert.is(reader.getSync('k', { encoding: 'utf8' }), 'v')
    assert.is(reader.hasSync('huge'), false)
    assert.is((await reader.loaded)?.notStored, 1)
    assert.ok(lines.some((l) => l.level === 40 && /items not stored/.test(l.msg) && l.notStored === 1), JSON.stringify(lines))
    assert.ok(reader.persistence!.stats().some(([k, v]) => k === 'rdb_last_load_keys_not_stored' && v === '1'))
  } finally {
    reader.close()
  }
})

test('a replica with a smaller -I than its primary counts and logs the items it cannot hold', async () => {
  const [primary] = await startAll([() => startFerrocached(['-I', '2m'])])
  servers = [primary!]
  const replica = await startFerrocached(['-I', '1m', '--replica-of', `127.0.0.1:${primary!.port}`])
  servers.push(replica)
  const set = (key: string, value: Buffer) => Buffer.concat([Buffer.from(`set ${key} 0 0 ${value.length}\r\n`), value, Buffer.from('\r\n')])
  // an older value that fits first: the replica must not keep it once the primary replaced it
  assert.is((await askOnce(primary!.port, set('huge', Buffer.from('old')))).reply, 'STORED\r\n')
  await caughtUp(primary!, replica)
  assert.is((await askOnce(replica.port, Buffer.from('get huge\r\n'))).reply, 'VALUE huge 0 3\r\nold\r\nEND\r\n')
  assert.is((await askOnce(primary!.port, set('huge', BIG))).reply, 'STORED\r\n')
  assert.is((await askOnce(primary!.port, set('small', Buffer.from('v')))).reply, 'STORED\r\n')
  await caughtUp(primary!, replica)
  assert.is((await askOnce(replica.port, Buffer.from('get small\r\n'))).reply, 'VALUE small 0 1\r\nv\r\nEND\r\n')
  assert.is((await askOnce(replica.port, Buffer.from('get huge\r\n'))).reply, 'END\r\n')
  assert.is((await stats(replica.port)).get('repl_not_stored'), '1', 'the divergence shows in stats')
  assert.ok(await waitFor(() => /items from the primary not stored/.test(replica.stderr())), replica.stderr())
})

test.run()
