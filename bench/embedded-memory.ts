// Memory per item and full-GC time with N items held, for one contender per process so
// nothing else shares the heap or the RSS. Run by embedded.ts as a child:
//   node --expose-gc -r tsx/cjs bench/embedded-memory.ts <cache|lru-cache|map> <items>
// and prints one JSON line (a MemoryResult). `loop` runs the same insert loop and keeps
// nothing: the RSS the loop itself costs in any process (V8 grows its young generation from
// 8 to 32 MiB under this allocation rate), which the net figures subtract.
import { spawnSync } from 'node:child_process'
import { LRUCache } from 'lru-cache'
import { Cache } from '../src'

export type Impl = 'cache' | 'lru-cache' | 'map' | 'loop'

export interface MemoryResult {
  impl: Impl
  items: number
  /** RSS growth from before the container was created to after the inserts, per item. */
  bytesPerItem: number
  rssBeforeMiB: number
  rssAfterMiB: number
  heapUsedMiB: number
  insertMs: number
  /** Durations of successive full collections (`gc()`), in ms, with the items held. */
  gcMs: number[]
  /** The same before the container was created: what this process's GC costs anyway. */
  gcEmptyMs: number[]
}

const KEY_LEN = 16
const VALUE_LEN = 100

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with node --expose-gc')
  g()
}

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

/** Fills a container with `items` distinct flat strings: 16-byte keys, 100-byte values. */
function measure(impl: Impl, items: number): MemoryResult {
  const keyTpl = Buffer.alloc(KEY_LEN, 'k')
  const valueTpl = Buffer.alloc(VALUE_LEN, 'v')
  const text = (tpl: Buffer, i: number) => {
    tpl.write(String(i).padStart(12, '0'), tpl.length - 12, 'latin1')
    return tpl.toString('latin1') // a fresh flat string, as data read from anywhere would be
  }
  const gcEmptyMs = timeGcs()
  const rssBefore = process.memoryUsage().rss
  let set: (k: string, v: string) => void
  let keep: unknown
  if (impl === 'cache') {
    // Room for every item, so nothing is evicted; pages are only taken as they fill.
    const cache = new Cache({ memoryLimit: Math.max(64, Math.ceil((items * 400) / 2 ** 20)) * 2 ** 20 })
    set = (k, v) => void cache.setSync(k, v)
    keep = cache
  } else if (impl === 'lru-cache') {
    const lru = new LRUCache<string, string>({ max: items })
    set = (k, v) => void lru.set(k, v)
    keep = lru
  } else if (impl === 'map') {
    const map = new Map<string, string>()
    set = (k, v) => void map.set(k, v)
    keep = map
  } else {
    let last = ''
    set = (k, v) => void (last = v.length > k.length ? v : k) // both strings made, then dropped
    keep = () => last
  }
  const t0 = performance.now()
  for (let i = 0; i < items; i++) set(text(keyTpl, i), text(valueTpl, i))
  const insertMs = performance.now() - t0
  gc()
  gc()
  const mem = process.memoryUsage()
  const gcMs = timeGcs()
  if (impl === 'cache' && (keep as Cache).statsSync().curr_items !== items) {
    throw new Error(`the cache holds ${(keep as Cache).statsSync().curr_items} of ${items} items`)
  }
  return {
    impl,
    items,
    bytesPerItem: Math.round((mem.rss - rssBefore) / items),
    rssBeforeMiB: mib(rssBefore),
    rssAfterMiB: mib(mem.rss),
    heapUsedMiB: mib(mem.heapUsed),
    insertMs: Math.round(insertMs),
    gcMs,
    gcEmptyMs,
  }
}

/** Seven timed full collections, in ms. */
function timeGcs(): number[] {
  const times: number[] = []
  for (let i = 0; i < 7; i++) {
    const t = performance.now()
    gc()
    times.push(Math.round((performance.now() - t) * 100) / 100)
  }
  return times
}

/** Runs `measure` in a fresh Node process and returns its result. */
export function measureInChild(impl: Impl, items: number): MemoryResult {
  const r = spawnSync(process.execPath, ['--expose-gc', '-r', 'tsx/cjs', __filename, impl, String(items)], {
    encoding: 'utf8',
    timeout: 600_000,
    maxBuffer: 1 << 20,
  })
  if (r.status !== 0) throw new Error(`${impl} with ${items} items failed: ${r.error?.message ?? r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as MemoryResult
}

if (require.main === module) {
  const [impl, items] = process.argv.slice(2)
  if (!['cache', 'lru-cache', 'map', 'loop'].includes(impl) || !(Number(items) > 0)) {
    console.error('usage: embedded-memory.ts <cache|lru-cache|map|loop> <items>')
    process.exit(2)
  }
  console.log(JSON.stringify(measure(impl as Impl, Number(items))))
}
