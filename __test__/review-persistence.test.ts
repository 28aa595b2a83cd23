// Persistence requirements of issue 4 that no other test pinned (review): scheduled saves
// that fail retry with a growing backoff instead of every second, and --keep-snapshots /
// keepSnapshots reaches the files. Every wait is bounded; every directory is removed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cache } from '../src'
import { collectingLogger } from './helpers/logs'
import { tearDown } from './helpers/guard'
import { waitFor } from './helpers/servers'

const dirs: string[] = []
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferrocache-review-'))
  dirs.push(d)
  return d
}
tearDown(test, () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface LogLine {
  msg: string
  time: number
  retryInSec?: number
  err?: string
}


test('a failing scheduled save is retried after 5 s, then 10 s, not on every rule check', async () => {
  const lines: LogLine[] = []
  const dir = join(dataDir(), 'data')
  const cache = new Cache({ dataDir: dir, save: '1 1', saveOnClose: false, logger: collectingLogger(lines) })
  try {
    // the data directory turns into a file: every save fails from now on
    rmSync(dir, { recursive: true })
    writeFileSync(dir, '')
    cache.setSync('k', 'v')
    const failures = (): LogLine[] => lines.filter((l) => l.msg === 'snapshot failed; the previous snapshot is kept')
    assert.ok(await waitFor(() => failures().length >= 1, 10_000), JSON.stringify(lines))
    const first = failures()[0]!
    assert.is(first.retryInSec, 5)
    assert.match(String(first.err), /data/)
    // the rule ("1 1") is due on every check meanwhile; without the backoff it would save
    // (and fail) again about a second later. (Log times, not a sleep: a stalled machine
    // only makes the gap longer.)
    assert.ok(await waitFor(() => failures().length >= 2, 15_000), JSON.stringify(failures()))
    const second = failures()[1]!
    assert.ok(second.time - first.time >= 4_900, `retried after ${second.time - first.time} ms`)
    assert.is(second.retryInSec, 10, 'the backoff doubles')
    assert.is(Object.fromEntries(cache.persistence!.stats()).rdb_save_failures, '2')
    // the cache served throughout
    assert.is(cache.getSync('k', { encoding: 'utf8' }), 'v')
    // once the directory is usable again, the next try succeeds
    rmSync(dir)
    mkdirSync(dir)
    await cache.snapshot()
    assert.is(Object.fromEntries(cache.persistence!.stats()).rdb_last_bgsave_status, 'ok')
  } finally {
    cache.close()
  }
})

test('keepSnapshots: older snapshots beyond the count are deleted after each save', async () => {
  const dir = dataDir()
  const cache = new Cache({ dataDir: dir, save: '', saveOnClose: false, keepSnapshots: 3 })
  try {
    for (let i = 0; i < 5; i++) {
      cache.setSync(`k${i}`, 'v')
      await cache.snapshot()
    }
    assert.equal(
      readdirSync(dir).filter((n) => n.endsWith('.fcs')).sort(),
      ['snapshot-0000000003.fcs', 'snapshot-0000000004.fcs', 'snapshot-0000000005.fcs'],
    )
  } finally {
    cache.close()
  }
})

test('a save in progress reports the items and bytes written so far (rdb_current_save_*)', async () => {
  const dir = dataDir()
  const cache = new Cache({ dataDir: dir, save: '', saveOnClose: false, memoryLimit: '256mb' })
  try {
    const N = 300_000
    const value = Buffer.alloc(100, 7)
    for (let i = 0; i < N; i++) cache.setSync(`key${i}`, value)
    const stat = (name: string): number => Number(Object.fromEntries(cache.persistence!.stats())[name])
    const saving = cache.snapshot()
    // the save runs on Rust threads: this loop (bounded in count and time) watches the
    // counters move while the event loop is held
    const seen = new Set<string>()
    const deadline = Date.now() + 10_000
    for (let n = 0; n < 5_000_000 && Date.now() < deadline; n++) {
      const items = stat('rdb_current_save_keys_processed')
      const bytes = stat('rdb_current_save_bytes')
      assert.ok(items >= 0 && items <= N && bytes >= 0, `${items} items, ${bytes} bytes`)
      if (items > 0 && items < N) seen.add(`${items}:${bytes}`)
      if (items === N) break
    }
    assert.is(stat('rdb_bgsave_in_progress'), 1)
    assert.ok(seen.size >= 2, `progress seen part-way: ${[...seen].join(' ')}`)
    const report = await saving
    assert.is(report.items, N)
    assert.is(stat('rdb_bgsave_in_progress'), 0)
    assert.is(stat('rdb_last_save_keys'), N)
    assert.is(stat('rdb_last_save_bytes'), report.fileBytes)
  } finally {
    cache.close()
  }
})

test.run()
