// Snapshots of an embedded cache: round trips through dataDir, damaged files, rules,
// failures. Every wait is bounded; every directory is removed afterwards.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { Cache, SnapshotError, parseSaveRules } from '../src'
import { createServer } from '../src/server'
import { eventually } from './cache-assert'
import { RawConn } from './helpers/raw'
import { tearDown } from './helpers/guard'

const dirs: string[] = []
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferrocache-persist-'))
  dirs.push(d)
  return d
}
const snapshots = (d: string): string[] => readdirSync(d).filter((n) => n.endsWith('.fcs')).sort()

tearDown(test, () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

test('save rules parse as Redis pairs; bad ones name the problem', () => {
  assert.equal(parseSaveRules('900 1 300 100 60 10000'), [
    { seconds: 900, changes: 1 },
    { seconds: 300, changes: 100 },
    { seconds: 60, changes: 10000 },
  ])
  assert.equal(parseSaveRules(''), [])
  assert.equal(parseSaveRules('  '), [])
  assert.throws(() => parseSaveRules('900'), /pairs/)
  assert.throws(() => parseSaveRules('900 x'), /"x"/)
  assert.throws(() => parseSaveRules('0 1'), /at least 1/)
})

test('items come back with values, flags, CAS and their remaining TTL', async () => {
  const dir = dataDir()
  // no snapshot at close: the load must read the one reported below (a last one written at
  // close, past `short`'s second on a busy machine, held 5001 items: the load counted 5001)
  const a = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  for (let i = 0; i < 5000; i++) a.setSync(`k${i}`, `value ${i}`, { flags: i })
  a.setSync('short', 'x', { ttl: 3_000 })
  a.setSync('long', 'y', { ttl: 3_600_000 })
  const before = a.getsSync('k42')!
  // 2 s pass before the snapshot and the restart: a TTL restarted by the load would keep
  // `short` alive until 5 s after it was set
  await new Promise((r) => setTimeout(r, 2_000))
  const report = await a.snapshot()
  // `short` ends on the whole second 2-3 s after its set, which may fall before this
  // snapshot's walk (a set late in its second): then it is gone now too
  const shortGone = a.getSync('short') === undefined
  assert.ok(report.items === 5002 || (report.items === 5001 && shortGone), `snapshot of ${report.items} items`)
  assert.ok(report.path.startsWith(dir) && statSync(report.path).size === report.fileBytes)
  a.close()

  const b = new Cache({ dataDir: dir, save: '' })
  const loaded = await b.loaded
  // `short` ends on the whole second 2-3 s after its set: a load that starts past that
  // second (a set late in its second, a slow snapshot or reopen) counts it expired instead
  assert.is(loaded!.items + loaded!.expired, report.items)
  assert.ok(loaded!.items >= 5001, `loaded ${loaded!.items}`)
  for (let i = 0; i < 5000; i += 499) {
    const e = b.getsSync(`k${i}`, { encoding: 'utf8' })!
    assert.is(e.value, `value ${i}`)
    assert.is(e.flags, i)
  }
  assert.is(b.getsSync('k42')!.cas, before.cas)
  // the CAS counter continues above every loaded value
  b.setSync('fresh', 'z')
  assert.ok(b.getsSync('fresh')!.cas > before.cas)
  // `short` keeps its original expiry, the whole second 3 s after the set: 2 s have passed,
  // so at most 1 s is left (or it is gone); a TTL restarted by the load would leave 2-3 s.
  // Read with meta `mg t` (whole seconds left) through a server over this cache: no
  // wall-clock bound, which a slow load or snapshot would break.
  const server = createServer({ cache: b, port: 0 })
  const { port } = await server.listen()
  const conn = await RawConn.open(port)
  conn.send('mg short t\r\n')
  const left = await conn.until(/\r\n$/)
  conn.close()
  await server.close()
  assert.match(left, /^(EN|HD t[01])\r\n$/, `short after the load: ${JSON.stringify(left)}`)
  assert.ok(await eventually(() => b.getSync('short') === undefined, 3_000))
  assert.ok(b.getSync('long'))
  b.close()
})

test('close() writes a last snapshot unless told not to', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, save: '' })
  a.setSync('kept', '1')
  a.close()
  assert.is(snapshots(dir).length, 1)
  const b = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  assert.is(b.getSync('kept', { encoding: 'utf8' }), '1')
  b.setSync('lost', '2')
  b.close()
  assert.is(snapshots(dir).length, 1)
  const c = await Cache.open({ dataDir: dir, save: '', saveOnClose: false })
  assert.is(c.getSync('lost'), undefined)
  assert.ok(c.getSync('kept'))
  c.close()
})

// ferrocached exited 1 on SIGTERM when a snapshot was running: the async snapshot held a
// borrow of the native cache and close() asked for an exclusive one
test('close() while a snapshot is being written closes, and the snapshot still finishes', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  for (let i = 0; i < 20_000; i++) a.setSync(`k${i}`, 'v'.repeat(100))
  const running = a.snapshot()
  a.close()
  assert.ok(a.closed)
  const report = await running
  assert.is(report.items, 20_000)
  const b = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  assert.is(b.getSync('k19999', { encoding: 'utf8' }), 'v'.repeat(100))
  b.close()
})

test('a damaged newest snapshot is set aside and the previous one loads', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  a.setSync('old', '1')
  await a.snapshot()
  for (let i = 0; i < 2000; i++) a.setSync(`new${i}`, 'v'.repeat(100))
  const bad = await a.snapshot()
  a.close()
  truncateSync(bad.path, bad.fileBytes - 10)

  // strict: refuses, names file and offset, moves nothing
  try {
    new Cache({ dataDir: dir, save: '', strictLoad: true })
    assert.unreachable('strict load must throw')
  } catch (err) {
    assert.instance(err, SnapshotError)
    const e = err as SnapshotError
    assert.is(e.code, 'FERROCACHE_SNAPSHOT_CORRUPT')
    assert.is(e.path, bad.path)
    assert.ok(typeof e.offset === 'number' && e.offset > 0)
    assert.match(e.message, /corrupt at byte \d+/)
  }
  assert.is(snapshots(dir).length, 2)

  const b = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  const r = (await b.loaded)!
  assert.is(r.items, 1)
  assert.is(r.rejected.length, 1)
  assert.is(r.rejected[0]!.error.code, 'FERROCACHE_SNAPSHOT_CORRUPT')
  assert.ok(r.rejected[0]!.movedTo!.endsWith('.corrupt'))
  assert.ok(b.getSync('old'))
  assert.is(b.getSync('new1'), undefined)
  b.close()

  // zero-length and future-version files: both skipped, the good one still wins
  writeFileSync(join(dir, 'snapshot-0000000099.fcs'), '')
  const future = Buffer.alloc(64)
  Buffer.from('\x89FCSNAP\n', 'latin1').copy(future)
  future.writeUInt32LE(7, 8)
  writeFileSync(join(dir, 'snapshot-0000000098.fcs'), future)
  const c = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  const rc = (await c.loaded)!
  assert.equal(
    rc.rejected.map((x) => x.error.code),
    ['FERROCACHE_SNAPSHOT_CORRUPT', 'FERROCACHE_SNAPSHOT_UNSUPPORTED'],
  )
  assert.match(rc.rejected[1]!.error.message, /format version 7/)
  assert.is(rc.items, 1)
  c.close()
})

test('save rules write a snapshot after enough changes', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, save: '1 3', saveOnClose: false })
  a.setSync('one', '1')
  a.setSync('two', '2')
  await new Promise((r) => setTimeout(r, 2_200))
  assert.is(snapshots(dir).length, 0, 'two changes are below the rule')
  a.deleteSync('one')
  assert.ok(await eventually(() => snapshots(dir).length === 1, 5_000))
  const stats = Object.fromEntries(a.persistence!.stats())
  assert.ok(await eventually(() => Object.fromEntries(a.persistence!.stats()).rdb_saves === '1', 2_000))
  assert.is(stats.rdb_last_bgsave_status, 'ok')
  assert.is(Object.fromEntries(a.persistence!.stats()).rdb_changes_since_last_save, '0')
  a.close()
})

test('one cache per data directory: a second one is refused until the first closes', () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  a.setSync('k', 'v')
  for (let round = 0; round < 2; round++) {
    assert.throws(
      () => new Cache({ dataDir: dir, save: '' }),
      (e: unknown) =>
        e instanceof SnapshotError &&
        e.code === 'FERROCACHE_DATA_DIR_LOCKED' &&
        e.path === join(dir, 'LOCK') &&
        e.message.includes(`data directory ${dir} is in use by another cache (process ${process.pid}`),
    )
  }
  assert.is(a.getSync('k', { encoding: 'utf8' }), 'v', 'the first cache is untouched')
  a.close()
  const b = new Cache({ dataDir: dir, save: '' })
  b.setSync('k2', 'v2')
  b.close()
  // a cache that failed to load releases the directory too
  writeFileSync(join(dir, 'snapshot-9999999999.fcs'), 'not a snapshot')
  assert.throws(() => new Cache({ dataDir: dir, strictLoad: true }), (e: unknown) => e instanceof SnapshotError && e.code === 'FERROCACHE_SNAPSHOT_CORRUPT')
  rmSync(join(dir, 'snapshot-9999999999.fcs'))
  const c = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  assert.is(c.getSync('k2', { encoding: 'utf8' }), 'v2')
  c.close()
})

test('repeated snapshots do not grow the process (their buffers go back to the OS)', async () => {
  // before: their buffers stayed in malloc arenas of the snapshot threads, ~2-3 MiB of RSS
  // per snapshot (74 MiB over these 25); now flat (7 MiB, the churn's own)
  const dir = dataDir()
  const c = new Cache({ dataDir: dir, save: '', saveOnClose: false, memoryLimit: 64 * 1024 * 1024 })
  const big = Buffer.alloc(200_000, 1)
  for (let i = 0; i < 100_000; i++) c.setSync(`k${i}`, big.subarray(0, (i * 7919) % 2000))
  const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20
  let settled = 0
  for (let s = 0; s < 30; s++) {
    const saved = c.snapshot()
    // writes of assorted sizes while it runs
    for (let i = 0; i < 20_000; i++) {
      c.setSync(`k${(i * 31 + s) % 100_000}`, big.subarray(0, (i * 104729 + s) % (i % 50 === 0 ? 200_000 : 3000)))
    }
    await saved
    if (s === 4) settled = rssMiB()
  }
  const grown = rssMiB() - settled
  c.close()
  assert.ok(grown < 30, `RSS grew ${grown.toFixed(1)} MiB over 25 snapshots`)
})

test('an unusable data directory fails the save; the cache keeps serving', async () => {
  const dir = dataDir()
  const file = join(dir, 'not-a-directory')
  // a directory that is a file is refused at start (load cannot list it)...
  writeFileSync(file, '')
  assert.throws(() => new Cache({ dataDir: file }), (e: unknown) => e instanceof SnapshotError && /not-a-directory/.test(e.message))
  // ...and when it turns into one later, saves fail
  rmSync(file)
  const a = new Cache({ dataDir: file, save: '', saveOnClose: false })
  rmSync(file, { recursive: true }) // the cache created it (with its lock file)
  writeFileSync(file, '')
  a.setSync('k', 'v')
  try {
    await a.snapshot()
    assert.unreachable('must fail')
  } catch (err) {
    assert.instance(err, SnapshotError)
    assert.is((err as SnapshotError).code, 'FERROCACHE_SNAPSHOT_IO')
    assert.match((err as Error).message, /not-a-directory/)
  }
  assert.is(Object.fromEntries(a.persistence!.stats()).rdb_last_bgsave_status, 'err')
  assert.is(a.getSync('k', { encoding: 'utf8' }), 'v')
  a.close()
})

test('persistence options need dataDir and are checked', () => {
  assert.throws(() => new Cache({ save: '1 1' }), /needs dataDir/)
  assert.throws(() => new Cache({ dataDir: dataDir(), save: '1' }), /pairs/)
  assert.throws(() => new Cache({ dataDir: dataDir(), keepSnapshots: 0 }), /keepSnapshots/)
})

// A child process that uses a cache with dataDir and ends without close(): `how` is what it
// does last. Returns the child's exit status and stdout (or stderr).
function runChild(dir: string, how: string, options = '', out: 'stdout' | 'stderr' = 'stdout'): string {
  const program = `
    const { Cache } = require(${JSON.stringify(join(__dirname, '..', 'src'))})
    const fs = require('node:fs')
    const dir = ${JSON.stringify(dir)}
    const c = new Cache({ dataDir: dir, save: '', encoding: 'utf8'${options} })
    const how = ${JSON.stringify(how)}
    if (how === 'read') { process.stdout.write(JSON.stringify([c.getSync('a') ?? null, c.getSync('b') ?? null])) }
    if (how === 'set a, return') c.setSync('a', '1')
    if (how === 'delete a missing key, return') c.deleteSync('missing')
    if (how === 'set b, process.exit') { c.setSync('b', '2'); process.exit(3) }
    if (how === 'set b, throw') { c.setSync('b', '3'); throw new Error('boom') }
    if (how === 'set a, later exit listener reads') {
      c.setSync('a', '4')
      process.on('exit', () => process.stdout.write(c.getSync('a') + ' ' + c.statsSync().curr_items))
    }
    if (how === 'set a, later exit listener closes') { c.setSync('a', '5'); process.on('exit', () => c.close()) }
    if (how === 'set a, directory replaced by a file') {
      c.setSync('a', '6')
      fs.renameSync(dir, dir + '.moved')
      fs.writeFileSync(dir, 'a file')
    }
  `
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', program], { encoding: 'utf8', timeout: 30_000 })
  assert.ok(r.error === undefined, String(r.error))
  return `${r.status}:${r[out]}`
}

test('a cache still open when the process exits writes its last snapshot (not when nothing changed, nor with saveOnExit: false)', () => {
  const dir = dataDir()
  assert.is(runChild(dir, 'set a, return'), '0:')
  assert.is(snapshots(dir).length, 1, 'the exit of a process whose loop ran dry saved')
  assert.is(runChild(dir, 'read'), '0:["1",null]')
  const before = snapshots(dir)
  assert.is(runChild(dir, 'read'), '0:["1",null]')
  assert.equal(snapshots(dir), before, 'nothing changed: nothing written')
  assert.is(runChild(dir, 'set b, process.exit'), '3:')
  assert.is(runChild(dir, 'read'), '0:["1","2"]')
  // an uncaught exception ends the process through 'exit' too
  assert.match(runChild(dir, 'set b, throw'), /^1:/)
  assert.is(runChild(dir, 'read'), '0:["1","3"]')
  // opted out: the write is lost, as before
  assert.is(runChild(dir, 'set a, return', ', saveOnExit: false'), '0:')
  assert.is(runChild(dir, 'read'), '0:["1","3"]')
})

test('the save at exit leaves the cache to later exit listeners, and a failed one says so and exits 1', () => {
  const dir = dataDir()
  // Before: the save closed the cache, so an 'exit' listener registered after it (a script
  // printing its stats at exit) threw 'the cache is closed' and the process exited 1
  assert.is(runChild(dir, 'set a, later exit listener reads'), '0:4 1')
  assert.is(runChild(dir, 'read'), '0:["4",null]')
  // a later listener's close() after the save writes no second snapshot for no change
  const before = snapshots(dir).length
  assert.is(runChild(dir, 'set a, later exit listener closes'), '0:')
  assert.is(snapshots(dir).length, before + 1)
  assert.is(runChild(dir, 'read'), '0:["5",null]')
  // Before: the failed save was silent (no logger) and the process exited 0, the write lost
  const failed = runChild(dir, 'set a, directory replaced by a file', '', 'stderr')
  assert.match(failed, /^1:ferrocache: the snapshot at exit failed, the changes since the last save are lost: /)
  rmSync(dir)
  renameSync(`${dir}.moved`, dir)
  assert.is(runChild(dir, 'read'), '0:["5",null]', 'the write was lost, as said')
})

test('a process with the log that exits saves what a start without it would refuse (replayed records, logged misses)', () => {
  const dir = dataDir()
  // a run with the log that ended without a snapshot (as a kill -9 does): only the log has a
  assert.is(runChild(dir, 'set a, return', ", appendfsync: 'always', saveOnExit: false"), '0:')
  assert.match(runChild(dir, 'read', '', 'stderr'), /^1:[^]*FERROCACHE_LOG_NOT_REPLAYED/)
  // the way out the refusal gives: a start with the log. Before: its replayed records were
  // counted as no change, so its exit saved nothing and the directory stayed refused
  assert.is(runChild(dir, 'read', ", appendfsync: 'always'"), '0:["1",null]')
  assert.is(runChild(dir, 'read'), '0:["1",null]')
  // a miss logs the key's absence (a replica, a replay, may hold a value evicted here) but
  // counts as no change. Before: the exit saved nothing, the log kept the record, and the
  // next start without the log was refused after a clean exit
  assert.is(runChild(dir, 'delete a missing key, return', ", appendfsync: 'always'"), '0:')
  assert.is(runChild(dir, 'read'), '0:["1",null]')
})

test.run()
