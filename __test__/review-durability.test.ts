// Durability review (session 18): what a data directory's files promise across restarts
// with other settings and damage (docs/persistence.md). Embedded caches: no process to
// start, every directory removed at the end.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cache, SnapshotError } from '../src'
import { tearDown } from './helpers/guard'

const dirs: string[] = []
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferrocache-durability-'))
  dirs.push(d)
  return d
}

/** Opens `dir` without appendfsync and returns the refusal that start must meet. */
function refusedWithoutLog(dir: string): SnapshotError {
  let err: unknown
  try {
    new Cache({ dataDir: dir, save: '' }).close()
  } catch (e) {
    err = e
  }
  assert.instance(err, SnapshotError)
  assert.is((err as SnapshotError).code, 'FERROCACHE_LOG_NOT_REPLAYED')
  return err as SnapshotError
}

tearDown(test, () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

test('a log with writes no snapshot has is refused without appendfsync (not skipped, not replayed stale later)', () => {
  const dir = dataDir()
  // a run with the log that stops without a snapshot (as a kill -9 does): the log alone has k
  const a = new Cache({ dataDir: dir, appendfsync: 'always', save: '', saveOnClose: false })
  a.setSync('k', 'A')
  a.close()
  // Before: this loaded nothing and said nothing (k missed), its snapshot at close held
  // k = B, and the next start with the log replayed k = A over it.
  const err = refusedWithoutLog(dir)
  assert.is(err.path, join(dir, 'appendonly.aof'))
  assert.match(err.message, /Start with appendfsync/)
  // the lock was released, and with the log everything is there; a stop with a snapshot
  // leaves a log that holds nothing newer, which opens without appendfsync
  const b = new Cache({ dataDir: dir, appendfsync: 'always', save: '' })
  assert.is(String(b.getSync('k')), 'A')
  b.close()
  const c = new Cache({ dataDir: dir, save: '' })
  assert.is(String(c.getSync('k')), 'A')
  c.close()
})

test('a log with writes the snapshot that loaded lacks (the newest one damaged) is refused without appendfsync', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, appendfsync: 'always', save: '' })
  a.setSync('k1', '1')
  await a.snapshot() // snapshot 1
  a.setSync('k2', '2')
  a.close() // snapshot 2; segment 2 (k2) stays while snapshot 1 is kept
  const newest = join(dir, 'snapshot-0000000002.fcs')
  const bytes = readFileSync(newest)
  bytes[bytes.length >> 1] ^= 0xff
  writeFileSync(newest, bytes)
  // Before: snapshot 2 was moved aside, snapshot 1 loaded and the start went on: k2, in
  // segment 2 only, was missing (and its next save made segment 2 look covered for good)
  const err = refusedWithoutLog(dir)
  assert.is(err.path, join(dir, 'appendonly-0000000002.aof'))
  // the way out: with the log, snapshot 1 and segment 2 give both keys; then it opens either way
  const b = new Cache({ dataDir: dir, appendfsync: 'always', save: '' })
  assert.equal([String(b.getSync('k1')), String(b.getSync('k2'))], ['1', '2'])
  b.close()
  const c = new Cache({ dataDir: dir, save: '' })
  assert.is(String(c.getSync('k2')), '2')
  c.close()
})

test.run()
