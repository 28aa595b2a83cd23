// Issue 2's embedded-API requirements that no other test checked directly: engine settings
// refused with the option's own name, close() giving the memory back at once, and the
// method set (Promise methods, their Sync twins, the interface the remote Client shares).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { Cache, Client } from '../src'
import { throwsLike } from './cache-assert'

test('engine settings out of range are refused with the option named as the caller wrote it', () => {
  const refused = (options: ConstructorParameters<typeof Cache>[0], message: RegExp): void => {
    const err = throwsLike(() => new Cache(options), RangeError, message)
    assert.not.match(err.message, /memory limit|item size max|slab min size/, 'engine wording instead of the option name')
  }
  refused({ memoryLimit: 1000 }, /^memoryLimit must hold at least one slab page: 1048576 bytes .*got 1000$/)
  refused({ memoryLimit: '2mb', maxItemSize: '4mb' }, /^memoryLimit must hold at least one slab page: 4194304 bytes \(maxItemSize\), got 2097152$/)
  refused({ maxItemSize: '100' }, /^maxItemSize must be from 1024 bytes \('1kb'\) to 16 MiB \('16mb'\), got 100$/)
  refused({ maxItemSize: '32mb' }, /^maxItemSize must be from 1024 bytes .*got 33554432$/)
  refused({ slabMinSize: 600_000 }, /^slabMinSize must be at most 524240 \(half of maxItemSize minus 48\), got 600000$/)
  refused({ slabMinSize: 500, maxItemSize: '1kb' }, /^slabMinSize must be at most 464 .*got 500$/)
  // the limits themselves are accepted
  for (const options of [
    { memoryLimit: '1mb' },
    { memoryLimit: '4mb', maxItemSize: '4mb' },
    { maxItemSize: '1kb', slabMinSize: 464 },
    { maxItemSize: '16mb', memoryLimit: '16mb' },
    { slabMinSize: 524_240 },
  ]) {
    new Cache(options).close()
  }
})

test('close() gives the slab memory back at once, without waiting for a GC', () => {
  // In a fresh process: there the allocator maps each 1 MiB page on its own and unmaps it
  // when freed. (In a long-lived one, glibc may serve pages from its heap after earlier
  // frees, and keep what it cannot trim for the next cache: reused, but not shown in RSS.)
  const script = `
    const { Cache } = require(${JSON.stringify(join(__dirname, '..', 'src'))})
    const rss = () => process.memoryUsage.rss()
    const before = rss()
    const cache = new Cache({ memoryLimit: '64mb' })
    const value = Buffer.alloc(4000, 7)
    for (let i = 0; i < 20000; i++) cache.setSync('k' + i, value) // fills every page (evicts)
    const malloced = cache.statsSync().total_malloced
    const full = rss()
    cache.close()
    console.log(JSON.stringify({ malloced, grown: full - before, freed: full - rss() }))`
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  assert.is(r.status, 0, r.stderr)
  const { malloced, grown, freed } = JSON.parse(r.stdout) as { malloced: number; grown: number; freed: number }
  const MiB = 1024 * 1024
  assert.is(malloced, 64 * MiB)
  assert.ok(grown > 48 * MiB, `the full cache grew RSS by only ${Math.round(grown / MiB)} MiB`)
  assert.ok(freed > 48 * MiB, `close() returned ${Math.round(freed / MiB)} of 64 MiB of slab pages`)
})

test('every method of the issue is a Promise method with a Sync twin on Cache, and on Client', () => {
  const methods = ['get', 'gets', 'getMany', 'set', 'setMany', 'add', 'replace', 'append', 'prepend', 'cas', 'incr', 'decr', 'touch', 'gat', 'delete', 'deleteMany', 'has', 'flush', 'stats']
  const cache = new Cache({ encoding: 'utf8' })
  for (const name of methods) {
    const own = cache as unknown as Record<string, unknown>
    assert.type(own[name], 'function', `Cache.${name}`)
    assert.type(own[`${name}Sync`], 'function', `Cache.${name}Sync`)
    assert.type((Client.prototype as unknown as Record<string, unknown>)[name], 'function', `Client.${name}`)
  }
  // each Promise method returns a Promise even when it fails
  const p = cache.get('bad key')
  assert.instance(p, Promise)
  p.catch(() => undefined)
  cache.close()
})

test.run()
