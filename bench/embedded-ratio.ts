// getSync vs lru-cache's get, 100k keys of 16 bytes with 100-byte values (as embedded-ops.ts),
// timed in this process's CPU time rather than wall time, in short alternating slices: on a
// shared machine, time spent descheduled does not count, and both sides see the same load.
// A tight loop (the JIT inlines lru-cache's get into it), so the ratio is not benny's.
//
//   node -r tsx/cjs bench/embedded-ratio.ts          R=15 rounds of 150 ms each side
//   SYMLIB=path/to/lib.so node -r tsx/cjs ...        against another build (embedded-symlib.ts)
import './embedded-symlib'
import { loadavg } from 'node:os'
import { LRUCache } from 'lru-cache'
import { Cache } from '../src'
import { makeKeys } from './embedded-ops'

const N = Number(process.env.N ?? 100_000)
const ROUNDS = Number(process.env.R ?? 15)
const SLICE_S = 0.15

const keys = makeKeys(N)
const value = Buffer.alloc(100, 'v')
const cache = new Cache({ memoryLimit: '64mb' })
const lru = new LRUCache<string, Buffer>({ max: N * 2 })
for (const k of keys) {
  cache.setSync(k, value)
  lru.set(k, value)
}

/** Where results go, so the JIT cannot drop a call whose result is unused. */
export let sink: unknown

const cpuSeconds = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** Gets per CPU second over `seconds` of CPU time. */
function rate(get: (k: string) => unknown, seconds: number): number {
  let i = 0
  let n = 0
  const t0 = cpuSeconds()
  let t = t0
  while (t - t0 < seconds) {
    for (let j = 0; j < 1000; j++) {
      i = (i + 7919) % N // a stride through the keys, as embedded-ops.ts
      sink = get(keys[i])
    }
    n += 1000
    t = cpuSeconds()
  }
  return n / (t - t0)
}

const viaCache = (k: string) => cache.getSync(k)
const viaLru = (k: string) => lru.get(k)
rate(viaCache, 0.3) // warm-up: JIT and CPU caches
rate(viaLru, 0.3)
const ratios: number[] = []
const syncRates: number[] = []
const lruRates: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  const first = r % 2 === 0
  const a = rate(first ? viaCache : viaLru, SLICE_S)
  const b = rate(first ? viaLru : viaCache, SLICE_S)
  const [s, l] = first ? [a, b] : [b, a]
  syncRates.push(s)
  lruRates.push(l)
  ratios.push(s / l)
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]
const m = (x: number) => `${(x / 1e6).toFixed(2)}M`
console.log(
  `getSync ${m(median(syncRates))}/s, lru-cache ${m(median(lruRates))}/s (CPU time), ratio median ${median(ratios).toFixed(2)} ` +
    `(rounds ${ratios.map((x) => x.toFixed(2)).join(' ')}); load ${loadavg().map((x) => x.toFixed(1)).join(' ')}`,
)
