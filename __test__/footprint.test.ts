// The native footprint of embedded caches dropped without close() (issue 2's leak hunt):
// what stays resident while V8 has not yet collected them, and after it has.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

const SRC = JSON.stringify(join(__dirname, '..', 'src'))

/** Runs `script` in a fresh node (with tsx) and returns its stdout; it must exit 0. */
function runNode(script: string): string {
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { encoding: 'utf8', timeout: 60_000 })
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

test.run()
