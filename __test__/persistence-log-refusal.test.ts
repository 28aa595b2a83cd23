// An embedded Cache whose append-only log cannot write refuses writes, as ferrocached does
// (docs/persistence.md "When the log cannot write"): every write method and its Sync twin
// throws / rejects with code FERROCACHE_LOG_FAILED naming the log file and the OS error,
// reads are served, and the first write after the log can write again goes ahead, with the
// record the failure left written before it.
//
// The failure is real: this process's file size limit (RLIMIT_FSIZE, set with util-linux
// `prlimit` on our own PID) is lowered to the log's current size, so the next record's
// write() fails with EFBIG (node ignores SIGXFSZ). The lowered limit covers only
// synchronous code (no await inside it), so nothing else of the run writes meanwhile.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cache, isLogWriteError, type AppendFsync, type LogWriteError } from '../src'
import { tearDown } from './helpers/guard'

const EFBIG = 27
const dirs: string[] = []
const open: Cache<'utf8'>[] = []

tearDown(test, () => {
  for (const c of open) if (!c.closed) c.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function newCache(dir: string, appendfsync: AppendFsync): Cache<'utf8'> {
  const c = new Cache({ dataDir: dir, appendfsync, save: '', saveOnClose: false, encoding: 'utf8' })
  open.push(c)
  return c
}

function fileSizeLimit(): string {
  return execFileSync('prlimit', ['--pid', String(process.pid), '--fsize', '--output=SOFT', '--noheadings']).toString().trim()
}

/** Runs `fn` (synchronous) while no file of this process may grow past `bytes`. */
function withFileSizeLimit<T>(bytes: number, fn: () => T): T {
  const before = fileSizeLimit()
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes}:`])
  try {
    return fn()
  } finally {
    execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${before}:`])
  }
}

function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

function assertLogError(err: unknown, dir: string, applied: boolean, what: string): void {
  assert.ok(isLogWriteError(err), `${what}: expected a LogWriteError, got ${String(err)}`)
  const e = err as LogWriteError
  assert.is(e.code, 'FERROCACHE_LOG_FAILED', what)
  assert.is(e.applied, applied, `${what}: applied`)
  assert.is(e.path, join(dir, 'appendonly.aof'), `${what}: path`)
  assert.is(e.errno, EFBIG, `${what}: errno`)
  assert.match(e.message, /^append-only log write failed: cannot write \S*appendonly\.aof: File too large \(os error 27\)/, what)
  assert.match(e.message, applied ? /was made in memory but is not durable/ : /this change was not made/, what)
}

const statLine = (c: Cache<'utf8'>, name: string): string | undefined => c.persistence?.stats().find(([n]) => n === name)?.[1]

/** The keys every test starts with; `late` is the write whose own record fails. */
function seed(c: Cache<'utf8'>): bigint {
  assert.ok(c.setSync('kept', 'v1'))
  assert.ok(c.setSync('n', '10'))
  assert.ok(c.setSync('gone', 'x'))
  return c.getsSync('kept')!.cas
}

const LATE = 'y'.repeat(200)

/** Every write, by name, as the Sync twin and as the Promise method. */
function writes(c: Cache<'utf8'>, cas: bigint): Array<[string, () => unknown, () => Promise<unknown>]> {
  return [
    ['set', () => c.setSync('kept', 'v2'), () => c.set('kept', 'v2')],
    ['add', () => c.addSync('new', '1'), () => c.add('new', '1')],
    ['add of an existing key', () => c.addSync('kept', '1'), () => c.add('kept', '1')],
    ['replace', () => c.replaceSync('kept', 'v3'), () => c.replace('kept', 'v3')],
    ['append', () => c.appendSync('kept', '+'), () => c.append('kept', '+')],
    ['prepend', () => c.prependSync('kept', '+'), () => c.prepend('kept', '+')],
    ['cas', () => c.casSync('kept', 'v4', cas), () => c.cas('kept', 'v4', cas)],
    ['incr', () => c.incrSync('n'), () => c.incr('n')],
    ['decr', () => c.decrSync('n', 3), () => c.decr('n', 3)],
    ['touch', () => c.touchSync('kept', 60_000), () => c.touch('kept', 60_000)],
    ['delete', () => c.deleteSync('gone'), () => c.delete('gone')],
    ['delete of a missing key', () => c.deleteSync('missing'), () => c.delete('missing')],
    ['flush', () => c.flushSync(), () => c.flush()],
    ['setMany', () => c.setManySync([['m1', '1'], ['m2', '2']]), () => c.setMany([['m1', '1'], ['m2', '2']])],
    ['deleteMany', () => c.deleteManySync(['gone', 'kept']), () => c.deleteMany(['gone', 'kept'])],
  ]
}

/** Reads answer from memory as before the failure; `late` was made before its record failed. */
function assertReadsServed(c: Cache<'utf8'>): void {
  assert.is(c.getSync('kept'), 'v1')
  assert.is(c.getSync('late'), LATE)
  assert.is(c.getsSync('n')?.value, '10')
  assert.equal([...c.getManySync(['kept', 'gone', 'new', 'm1'])], [['kept', 'v1'], ['gone', 'x']])
  assert.ok(c.hasSync('gone'))
  assert.not.ok(c.hasSync('new'))
  assert.is(c.gatSync('kept', 60_000), 'v1', 'gat is served as a read, as by the server')
}

/** The log works again: the next write goes ahead; a restart replays everything acknowledged and the failed record. */
function assertRecovers(c: Cache<'utf8'>, dir: string, fsync: AppendFsync): void {
  assert.ok(c.setSync('after', 'ok'), 'the first write after the log can write again succeeds')
  assert.is(c.persistence?.logWriteError, undefined)
  assert.is(statLine(c, 'aof_last_write_status'), 'ok')
  assert.is(c.incrSync('n', 5), 15n)
  c.close()
  const again = newCache(dir, fsync)
  assert.is(again.getSync('late'), LATE, 'the record the failure left was written by the retry')
  assert.is(again.getSync('after'), 'ok')
  assert.is(again.getSync('kept'), 'v1', 'refused writes left no record')
  assert.is(again.getSync('n'), '15')
  assert.is(again.getSync('gone'), 'x')
  assert.not.ok(again.hasSync('new'))
  again.close()
}

test('Sync writes throw FERROCACHE_LOG_FAILED while the log cannot write; reads answer; the first write after it can goes ahead', () => {
  if (process.platform !== 'linux') return
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-logfail-'))
  dirs.push(dir)
  const c = newCache(dir, 'always')
  const cas = seed(c)
  const log = join(dir, 'appendonly.aof')
  withFileSizeLimit(statSync(log).size, () => {
    // the write whose own record fails: made in memory, not acknowledged
    assertLogError(thrown(() => c.setSync('late', LATE)), dir, true, 'set whose record fails')
    for (const [name, write] of writes(c, cas)) assertLogError(thrown(write), dir, false, name)
    assertReadsServed(c)
    const why = c.persistence?.logWriteError
    assert.is(why?.errno, EFBIG)
    assert.is(why?.path, log)
    assert.match(why?.message ?? '', /appendonly\.aof: File too large/)
    assert.is(statLine(c, 'aof_last_write_status'), 'err')
  })
  assertRecovers(c, dir, 'always')
})

test('Promise writes reject with FERROCACHE_LOG_FAILED while the log cannot write; reads resolve; then writes resolve again', async () => {
  if (process.platform !== 'linux') return
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-logfail-'))
  dirs.push(dir)
  const c = newCache(dir, 'everysec')
  const cas = seed(c)
  // the calls start inside the lowered limit (their work is synchronous); they settle after
  const { late, refused, reads } = withFileSizeLimit(statSync(join(dir, 'appendonly.aof')).size, () => ({
    late: c.set('late', LATE),
    refused: writes(c, cas).map(([name, , write]) => [name, write()] as const),
    reads: Promise.all([c.get('kept'), c.gets('n'), c.getMany(['kept', 'new']), c.has('gone'), c.gat('kept', 60_000)]),
  }))
  assertLogError(await late.then(() => undefined, (err: unknown) => err), dir, true, 'set whose record fails')
  for (const [name, pending] of refused) {
    assertLogError(await pending.then(() => undefined, (err: unknown) => err), dir, false, name)
  }
  const [kept, n, many, has, gat] = await reads
  assert.is(kept, 'v1')
  assert.is(n?.value, '10')
  assert.equal([...many], [['kept', 'v1']])
  assert.ok(has)
  assert.is(gat, 'v1')
  assert.is(await c.get('late'), LATE)
  // after the limit is lifted (the log thread may retry first; either way writes go ahead)
  assert.ok(await c.set('after', 'ok'))
  assert.is(await c.get('after'), 'ok')
  assertRecovers(c, dir, 'everysec')
})

test('setMany and deleteMany stop at the entry whose record fails; applied says earlier ones were made', () => {
  if (process.platform !== 'linux') return
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-logfail-'))
  dirs.push(dir)
  const c = newCache(dir, 'always')
  assert.ok(c.setSync('d1', '1'))
  assert.ok(c.setSync('d2', '2'))
  const big = 'b'.repeat(4000)
  // room for the small records, not for the big one
  withFileSizeLimit(statSync(join(dir, 'appendonly.aof')).size + 1000, () => {
    const err = thrown(() => c.setManySync([['s1', 'x'], ['s2', big], ['s3', 'z']]))
    assertLogError(err, dir, true, 'setMany')
    assert.is(c.getSync('s1'), 'x')
    assert.is(c.getSync('s2'), big, 'made in memory, its record kept for a retry')
    assert.not.ok(c.hasSync('s3'), 'the batch stopped at the failing entry')
    assertLogError(thrown(() => c.deleteManySync(['d1', 'd2'])), dir, false, 'deleteMany')
    assert.ok(c.hasSync('d1'))
  })
  assert.is(c.deleteManySync(['d1', 'd2']), 2)
  c.close()
  const again = newCache(dir, 'always')
  assert.is(again.getSync('s2'), big)
  assert.not.ok(again.hasSync('d1'))
  again.close()
})

test('a cache with dataDir but no log refuses nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-logfail-'))
  dirs.push(dir)
  const c = new Cache({ dataDir: dir, save: '', saveOnClose: false, encoding: 'utf8' })
  open.push(c)
  assert.ok(c.setSync('a', '1'))
  assert.is(c.persistence?.logWriteError, undefined)
  assert.is(c.incrSync('b'), undefined)
  c.close()
})

test.run()
