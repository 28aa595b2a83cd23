// Memory per item and full-GC time with N items held, for one contender per process so
// nothing else shares the heap or the RSS. Run by embedded.ts as a child:
//   node --expose-gc -r tsx/cjs bench/embedded-memory.ts <cache|lru-cache|map> <items>
// and prints one JSON line (a MemoryResult). `loop` runs the same insert loop and keeps
// nothing: the RSS the loop itself costs in any process (V8 grows its young generation from
// 8 to 32 MiB under this allocation rate), which the net figures subtract.
//
// A full GC's wall time on this shared 2-core machine is partly other processes' doing: V8
// marks on the main thread and helper threads, and whatever keeps the cores busy stretches
// the pause. So each collection is also split by Linux's schedstat into the main thread's
// time on a CPU and its time waiting in a run queue for one, and the collections are spread
// out in time (so a burst of other work spoils few of them) and taken again once the
// container is dropped (the same heap and machine, without the items). Where `chrt` may
// (root, or an RTPRIO limit), they are also timed with the process's threads at real-time
// priority for those collections only: the GC's duration when it has the cores.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
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
  /** Of each `gcMs` collection, the main thread's time on a CPU (Linux; runs saved before
   * 2026-11-27 10:30 UTC have none of these three). */
  gcOnCpuMs?: number[]
  /** Of each `gcMs` collection, the main thread's time waiting in a run queue for a CPU. */
  gcRunQueueMs?: number[]
  /** Collections once the container is dropped (the cache closed, the others unreferenced). */
  gcDroppedMs?: number[]
  /** Collections with the items held and the process's threads at real-time priority
   * (`chrt -f`), so no other process delays them; absent where that is not allowed. */
  gcRealTimeMs?: number[]
}

/** Full collections timed per phase, each after a pause, so a burst of other work on the
 * machine spoils a few of them rather than a whole run of back-to-back ones. */
export const GC_SAMPLES = 15
export const GC_GAP_MS = 20

const KEY_LEN = 16
const VALUE_LEN = 100

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc
  if (!g) throw new Error('run with node --expose-gc')
  g()
}

/** Where the `loop` row's strings go, so the JIT cannot drop them unmade. */
export let sink: unknown

/** The container being measured. A module-level reference, because a local one that is not
 * read after the insert loop is dead to the optimised code: V8 then collected the lru-cache
 * and the Map in the two `gc()`s before the RSS was read (2026-11-27: 36 and 41 B per item,
 * their GC timed on an empty heap). */
export let measured: unknown

const mib = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

/** Fills a container with `items` distinct flat strings: 16-byte keys, 100-byte values. */
function measure(impl: Impl, items: number): MemoryResult {
  const keyTpl = Buffer.alloc(KEY_LEN, 'k')
  const valueTpl = Buffer.alloc(VALUE_LEN, 'v')
  const text = (tpl: Buffer, i: number) => {
    tpl.write(String(i).padStart(12, '0'), tpl.length - 12, 'latin1')
    return tpl.toString('latin1') // a fresh flat string, as data read from anywhere would be
  }
  const gcEmptyMs = timeGcs().wall
  const rssBefore = process.memoryUsage().rss
  let set: (k: string, v: string) => void
  let cache: Cache | undefined
  if (impl === 'cache') {
    // Room for every item, so nothing is evicted; pages are only taken as they fill.
    cache = new Cache({ memoryLimit: Math.max(64, Math.ceil((items * 400) / 2 ** 20)) * 2 ** 20 })
    const c = cache
    measured = c
    set = (k, v) => void c.setSync(k, v)
  } else if (impl === 'lru-cache') {
    const lru = new LRUCache<string, string>({ max: items })
    measured = lru
    set = (k, v) => void lru.set(k, v)
  } else if (impl === 'map') {
    const map = new Map<string, string>()
    measured = map
    set = (k, v) => void map.set(k, v)
  } else {
    set = (k, v) => void (sink = v.length > k.length ? v : k) // both strings made, then dropped
  }
  const t0 = performance.now()
  for (let i = 0; i < items; i++) set(text(keyTpl, i), text(valueTpl, i))
  const insertMs = performance.now() - t0
  gc()
  gc()
  const mem = process.memoryUsage()
  const held = timeGcs()
  const gcRealTimeMs = atRealTimePriority(() => timeGcs().wall)
  if (cache && cache.statsSync().curr_items !== items) {
    throw new Error(`the cache holds ${cache.statsSync().curr_items} of ${items} items`)
  }
  if ((measured instanceof LRUCache || measured instanceof Map) && measured.size !== items) {
    throw new Error(`the ${impl} holds ${measured.size} of ${items} items`)
  }
  // drop the container (`set` was all that still reached it)
  cache?.close()
  cache = undefined
  measured = undefined
  set = () => {}
  gc()
  gc()
  const gcDroppedMs = timeGcs().wall
  return {
    impl,
    items,
    bytesPerItem: Math.round((mem.rss - rssBefore) / items),
    rssBeforeMiB: mib(rssBefore),
    rssAfterMiB: mib(mem.rss),
    heapUsedMiB: mib(mem.heapUsed),
    insertMs: Math.round(insertMs),
    gcMs: held.wall,
    gcEmptyMs,
    ...(held.onCpu.length ? { gcOnCpuMs: held.onCpu, gcRunQueueMs: held.runQueue } : {}),
    gcDroppedMs,
    ...(gcRealTimeMs ? { gcRealTimeMs } : {}),
  }
}

/** `f()` with every thread of this process at real-time (FIFO) priority, restored after;
 * undefined without running `f` where `chrt` is missing or not allowed. */
function atRealTimePriority<T>(f: () => T): T | undefined {
  const chrt = (policy: '-f' | '-o', priority: number) =>
    spawnSync('chrt', ['-a', policy, '-p', String(priority), String(process.pid)]).status === 0
  if (process.platform !== 'linux' || !chrt('-f', 10)) return undefined
  try {
    return f()
  } finally {
    chrt('-o', 0)
  }
}

const ms2 = (ms: number) => Math.round(ms * 100) / 100

/** The main thread's [time on a CPU, time waiting in a run queue] so far, in ms, from
 * Linux's schedstat (nanoseconds, unlike the tick-based `process.cpuUsage()`); undefined
 * where there is none. */
function mainThreadTimes(): [number, number] | undefined {
  try {
    const [onCpu, waiting] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number)
    return [onCpu / 1e6, waiting / 1e6]
  } catch {
    return undefined
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4))

/** GC_SAMPLES timed full collections, GC_GAP_MS apart: wall time in ms, and where
 * schedstat exists, the main thread's part of each on a CPU and waiting for one. */
function timeGcs(): { wall: number[]; onCpu: number[]; runQueue: number[] } {
  const wall: number[] = []
  const onCpu: number[] = []
  const runQueue: number[] = []
  for (let i = 0; i < GC_SAMPLES; i++) {
    Atomics.wait(pause, 0, 0, GC_GAP_MS) // asleep: the machine's other work runs meanwhile
    const before = mainThreadTimes()
    const t = performance.now()
    gc()
    wall.push(ms2(performance.now() - t))
    const after = mainThreadTimes()
    if (before && after) {
      onCpu.push(ms2(after[0] - before[0]))
      runQueue.push(ms2(after[1] - before[1]))
    }
  }
  return { wall, onCpu, runQueue }
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
