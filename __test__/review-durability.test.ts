// Durability review (session 18): what a data directory's files promise across restarts
// with other settings and damage (docs/persistence.md). Embedded caches, and ferrocached
// once for what it says when such a refusal comes after a --load-async load (session 20);
// every directory removed at the end.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cache, SnapshotError } from '../src'
import { tearDown } from './helpers/guard'
import { freePort, runCli } from './helpers/servers'

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

/**
 * A directory whose newest snapshot (2, k1 and k2) is damaged and whose log segment 2 holds
 * k2, which the older snapshot 1 lacks.
 */
async function newestSnapshotDamaged(): Promise<string> {
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
  return dir
}

test('a log with writes the snapshot that loaded lacks (the newest one damaged) is refused without appendfsync', async () => {
  const dir = await newestSnapshotDamaged()
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

test('ferrocached --load-async: the exit after such a refusal says what was refused, not a strict load', async () => {
  const dir = await newestSnapshotDamaged()
  /** ferrocached --load-async on `dir`: its exit code and its fatal lines' messages. */
  const start = async (extra: string[]): Promise<{ code: number | null; fatal: Array<Record<string, unknown>>; stderr: string }> => {
    const args = ['-p', String(await freePort()), '-l', '127.0.0.1', '-U', '0', '--data-dir', dir, '--save', '', '--load-async', ...extra]
    const r = await runCli(args, {}, 15_000)
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('{'))
    const fatal = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o.level === 60)
    return { code: r.code, fatal, stderr: r.stderr }
  }
  // --strict-load: the damaged snapshot itself refuses the load (nothing moved aside)
  const strict = await start(['--strict-load'])
  assert.is(strict.code, 1, strict.stderr)
  assert.equal(
    strict.fatal.map((o) => [o.msg, o.code]),
    [
      ['snapshot load failed', 'FERROCACHE_SNAPSHOT_CORRUPT'],
      ['cannot load the snapshot (--strict-load), exiting', 'FERROCACHE_SNAPSHOT_CORRUPT'],
    ],
  )
  // without it snapshot 1 loads, then the log's segment 2 refuses the directory: no strict
  // load was asked for (before: 'cannot load the snapshot (strict), exiting')
  const after = await start([])
  assert.is(after.code, 1, after.stderr)
  assert.equal(
    after.fatal.map((o) => [o.msg, o.code]),
    [
      ['snapshot load failed', 'FERROCACHE_LOG_NOT_REPLAYED'],
      ['the snapshot loaded, then the data directory was refused: its append-only log holds writes that snapshot lacks, exiting', 'FERROCACHE_LOG_NOT_REPLAYED'],
    ],
  )
  assert.match(String(after.fatal[1]!.err), /Start with appendfsync/)
})

/**
 * A run with the log on `dir` (snapshot 1 holds a 64 KiB value) whose `snapshot()` fails
 * after the log rotated: a child whose file size limit (RLIMIT_FSIZE, set on itself once
 * loaded) lets the new log's 12-byte header through and refuses the snapshot's bytes
 * (EFBIG). Returns what that snapshot() settled with.
 */
async function snapshotFailedAfterRotation(dir: string): Promise<string> {
  const a = new Cache({ dataDir: dir, appendfsync: 'always', save: '', saveOnClose: false })
  a.setSync('big', 'v'.repeat(64 << 10))
  await a.snapshot() // snapshot 1; segment 1 goes, the log holds its header only
  a.close()
  const program = `
    const { Cache } = require(${JSON.stringify(join(__dirname, '..', 'src'))})
    const { execFileSync } = require('node:child_process')
    const c = new Cache({ dataDir: ${JSON.stringify(dir)}, appendfsync: 'always', save: '', saveOnClose: false, saveOnExit: false })
    process.on('SIGXFSZ', () => {}) // a write past the limit then fails (EFBIG) instead of killing
    execFileSync('prlimit', ['--pid', String(process.pid), '--fsize=4096:'])
    c.snapshot().then(() => 'saved', (e) => String(e.code)).then((r) => { c.close(); process.stdout.write(r) })
  `
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', program], { encoding: 'utf8', timeout: 30_000 })
  assert.ok(r.error === undefined, String(r.error))
  assert.is(r.status, 0, r.stderr)
  return r.stdout
}

test('a segment holding no record (a snapshot that failed after the log rotated) does not refuse a start without appendfsync', async () => {
  const dir = dataDir()
  assert.is(await snapshotFailedAfterRotation(dir), 'FERROCACHE_SNAPSHOT_IO')
  // the rotation sealed the log (its header, no record) as segment 2; snapshot 2 is not there
  const segment = join(dir, 'appendonly-0000000002.aof')
  assert.is(statSync(segment).size, 12)
  assert.ok(!readdirSync(dir).some((n) => n.startsWith('snapshot-0000000002')), readdirSync(dir).join(' '))
  // Before: refused (FERROCACHE_LOG_NOT_REPLAYED, path the segment) until a save succeeded,
  // though no write was missing
  const b = new Cache({ dataDir: dir, save: '' })
  assert.is(b.getSync('big', { encoding: 'utf8' })?.length, 64 << 10)
  b.setSync('unlogged', '1')
  b.close() // snapshot 3
  // the newest snapshot damaged: snapshot 1 loads, and segment 2 after it lacks nothing
  // (before: refused after the load)
  const newest = join(dir, 'snapshot-0000000003.fcs')
  const bytes = readFileSync(newest)
  bytes[bytes.length >> 1] ^= 0xff
  writeFileSync(newest, bytes)
  const c = new Cache({ dataDir: dir, save: '', saveOnClose: false })
  assert.is(c.getSync('unlogged'), undefined, 'snapshot 1 loaded')
  assert.is(c.getSync('big', { encoding: 'utf8' })?.length, 64 << 10)
  c.close()
  // one byte past the header may be a record (cut short by a crash, or its length damaged
  // with whole records behind it: only the replay with the log tells): refused
  appendFileSync(segment, Buffer.from([1]))
  assert.is(refusedWithoutLog(dir).path, segment)
  const d = new Cache({ dataDir: dir, appendfsync: 'always', save: '' })
  assert.is(d.getSync('big', { encoding: 'utf8' })?.length, 64 << 10)
  d.close()
})

test.run()
