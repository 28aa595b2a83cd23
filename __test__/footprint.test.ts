// The native footprint of embedded caches dropped without close() (issue 2's leak hunt):
// what stays resident while V8 has not yet collected them, and after it has.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const SRC = JSON.stringify(join(__dirname, '..', 'src'))

/** Runs `script` in a fresh node (with tsx and `global.gc`) and returns its stdout; it must exit 0. */
function runNode(script: string): string {
  const args = ['--expose-gc', '-r', 'tsx/cjs', '-e', script]
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 60_000 })
  assert.is(r.status, 0, `exit ${r.status} signal ${r.signal}: ${r.stderr}`)
  return r.stdout.trim()
}

test('small caches dropped without close() do not fragment the heap into hundreds of MiB', () => {
  // Each store's slab page table (~4 MiB) was calloc'd from glibc. Once a dropped store
  // was freed, glibc's mmap threshold rose past its size, so later stores' tables
  // came from the heap, written to zero whole, and freed out of order they fragmented it:
  // 1,200 such caches grew RSS by ~600 MiB, still resident after all were collected.
  // The tables are now their own mappings (crates/ferrocache-core/src/zeroed.rs).
  const out = runNode(`
    const { Cache } = require(${SRC})
    const rss = () => process.memoryUsage.rss()
    const before = rss()
    let max = 0
    ;(async () => {
      for (let n = 1; n <= 1200; n++) {
        const c = new Cache({ memoryLimit: '4mb' })
        for (let i = 0; i < 100; i++) c.setSync('k' + i, Buffer.alloc(1000, i))
        if (n % 100 === 0) {
          max = Math.max(max, rss() - before)
          await new Promise((r) => setImmediate(r)) // napi finalizers run between turns
        }
      }
      process.stdout.write(String(Math.round(max / 2 ** 20)))
    })()`)
  assert.ok(Number(out) < 200, `RSS grew by ${out} MiB for 1,200 dropped 4 MiB caches`)
})

/**
 * Drops `caches` 4 MiB caches holding `items` 1,000-byte items each, a turn of the event
 * loop every 100 (napi finalizers run between turns), then collects them all. Returns the
 * most threads alive at once and the MiB that stayed resident after collection.
 */
function dropLoop(caches: number, items: number): { threads: number; keptMiB: number } {
  const out = runNode(`
    const { Cache } = require(${SRC})
    const { readdirSync } = require('node:fs')
    const turn = () => new Promise((r) => setImmediate(r))
    const value = Buffer.alloc(1000, 1) // one value: no garbage of the test's own to collect
    ;(async () => {
      global.gc(); await turn()
      const before = process.memoryUsage.rss()
      const base = readdirSync('/proc/self/task').length
      let threads = 0
      for (let n = 1; n <= ${caches}; n++) {
        const c = new Cache({ memoryLimit: '4mb' })
        for (let i = 0; i < ${items}; i++) c.setSync('k' + i, value)
        if (n % 100 === 0) {
          threads = Math.max(threads, readdirSync('/proc/self/task').length - base)
          await turn()
        }
      }
      for (let i = 0; i < 3; i++) { global.gc(); await turn() }
      const keptMiB = Math.round((process.memoryUsage.rss() - before) / 2 ** 20)
      process.stdout.write(JSON.stringify({ threads, keptMiB }))
    })()`)
  return JSON.parse(out) as { threads: number; keptMiB: number }
}

test('caches with items dropped without close() give their memory back once collected', () => {
  // Each store's 8 hash tables (32 KiB each) came from glibc's heap; with ~150 dropped
  // stores awaiting a GC the heap grew by ~50 MiB, and freed in any order it stayed
  // resident (malloc_trim gave it back). Tables of 16 KiB or more are now mappings.
  // 1,500 caches: 44-51 MiB kept before, 11-15 after.
  const { keptMiB } = dropLoop(1500, 100)
  assert.ok(keptMiB < 30, `1,500 dropped caches kept ${keptMiB} MiB after collection`)
})

test('caches never written to and dropped are collected, and share two engine threads meanwhile', () => {
  // V8 heard only of slab pages, so an empty cache looked free: 5,000 dropped kept up to
  // 1,508 engine threads alive and ~490 MiB resident after collection. The store's other
  // memory is now reported when it is made (then ~335 threads at most, ~27 MiB kept). Each
  // store had a thread of its own until V8 collected it; all stores now share at most two
  // (crates/ferrocache-core/src/background.rs).
  const { threads, keptMiB } = dropLoop(5000, 0)
  assert.ok(threads <= 2, `${threads} engine threads alive at once`)
  assert.ok(keptMiB < 60, `5,000 dropped empty caches kept ${keptMiB} MiB after collection`)
})

test('a thousand live caches share two engine threads', () => {
  // A thread per store: 1,000 caches made 1,000 threads.
  const out = runNode(`
    const { Cache } = require(${SRC})
    const threads = () => require('node:fs').readdirSync('/proc/self/task').length
    const before = threads()
    const caches = []
    for (let i = 0; i < 1000; i++) caches.push(new Cache({ memoryLimit: '1mb', shards: 1 }))
    caches[999].setSync('k', 'v')
    process.stdout.write(String(threads() - before))
    for (const c of caches) c.close()`)
  assert.ok(Number(out) <= 2, `${out} engine threads for 1,000 caches`)
})

test.run()
