// Throughput of the embedded Cache (sync and async) against lru-cache and a plain Map:
// 100k keys of 16 bytes with 100-byte values, in three mixes: get only (all hits),
// get-heavy 90/10 and set only. benny (benchmark.js) runs every case in this process.
import b from 'benny'
import { LRUCache } from 'lru-cache'
import { Cache } from '../src'

export const KEYS = 100_000
export const VALUE_SIZE = 100

export interface OpsResult {
  scenario: string
  name: string
  ops: number
  margin: number
}

/** The contenders behind one small interface, so every case runs the same loop. */
interface Contender {
  name: string
  get(key: string): unknown
  set(key: string, value: Buffer): unknown
  async?: boolean
  /** Frees what the contender holds outside the JS heap (a Cache's engine and its share of
   * the background walks), so nothing of it runs beside the memory and GC children. */
  close?: () => void
}

function contenders(): Contender[] {
  const cache = new Cache({ memoryLimit: '64mb' })
  const asyncCache = new Cache({ memoryLimit: '64mb' })
  const lru = new LRUCache<string, Buffer>({ max: KEYS * 2 })
  const map = new Map<string, Buffer>()
  return [
    { name: 'Cache getSync/setSync', get: (k) => cache.getSync(k), set: (k, v) => cache.setSync(k, v), close: () => cache.close() },
    {
      name: 'Cache get/set (await)',
      get: (k) => asyncCache.get(k),
      set: (k, v) => asyncCache.set(k, v),
      async: true,
      close: () => asyncCache.close(),
    },
    { name: 'lru-cache', get: (k) => lru.get(k), set: (k, v) => lru.set(k, v) },
    { name: 'Map', get: (k) => map.get(k), set: (k, v) => map.set(k, v) },
  ]
}

/**
 * `n` distinct 16-byte keys as flat strings, like keys read from a request or a file. (Keys
 * built with `+` or a template are rope strings whose pieces every native call must
 * gather; pre-building 100k of them would measure that artefact more than the caches.)
 */
export function makeKeys(n: number): string[] {
  const tpl = Buffer.alloc(16, 'k')
  return Array.from({ length: n }, (_, i) => {
    tpl.write(String(i).padStart(12, '0'), 4, 'latin1')
    return tpl.toString('latin1')
  })
}

/** Where results go, so the JIT cannot drop a call whose result is unused. */
export let sink: unknown

/** getsPerSet: null = gets only, 0 = sets only. hot: one key over and over, so every
 * byte touched stays in the CPU cache: what remains is the cost of the call itself. */
type Scenario = { name: string; getsPerSet: number | null; hot?: boolean }
export const SCENARIOS: Scenario[] = [
  { name: 'get (100% hits)', getsPerSet: null },
  { name: 'get-heavy 90% get / 10% set', getsPerSet: 9 },
  { name: 'set only', getsPerSet: 0 },
  { name: 'get, one hot key', getsPerSet: null, hot: true },
]

/** Extra rounds of the target's pair (getSync vs lru-cache get, 100% hits), in alternating
 * order, so the verdict rests on a median rather than one pair of runs on a shared machine. */
export const RATIO_ROUNDS = 5

export interface OpsRun {
  ops: OpsResult[]
  /** getSync ops/s ÷ lru-cache get ops/s, one per extra round. */
  getRatios: number[]
}

export async function runOps(maxTime: number): Promise<OpsRun> {
  const keys = makeKeys(KEYS)
  const value = Buffer.alloc(VALUE_SIZE, 'v')
  const all = contenders()
  for (const c of all) for (const k of keys) await c.set(k, value)
  const results: OpsResult[] = []
  for (const scenario of SCENARIOS) {
    const cases = all.map((c) => {
      let i = 0
      const op = (): unknown => {
        if (!scenario.hot) i = (i + 7919) % KEYS // a stride through the keys, not a sequential scan
        const key = keys[i]
        if (scenario.getsPerSet === 0 || (scenario.getsPerSet !== null && i % (scenario.getsPerSet + 1) === 0)) {
          return (sink = c.set(key, value))
        }
        return (sink = c.get(key))
      }
      const fn = c.async ? async () => op() : () => op()
      return b.add(c.name, () => fn, { maxTime, minSamples: 5 })
    })
    const summary = await b.suite(scenario.name, ...cases, b.cycle())
    for (const r of summary.results) results.push({ scenario: scenario.name, name: r.name, ops: r.ops, margin: r.margin })
  }
  const sync = all[0]
  const lru = all[2]
  const getRatios: number[] = []
  for (let round = 0; round < RATIO_ROUNDS; round++) {
    const pair = round % 2 === 0 ? [sync, lru] : [lru, sync]
    const cases = pair.map((c) => {
      let i = 0
      const op = (): unknown => {
        i = (i + 7919) % KEYS
        return (sink = c.get(keys[i]))
      }
      return b.add(c.name, () => op, { maxTime: maxTime / 2, minSamples: 5 })
    })
    const summary = await b.suite(`getSync vs lru-cache, round ${round + 1}`, ...cases, b.cycle())
    const opsOf = (name: string) => summary.results.find((r) => r.name === name)?.ops ?? NaN
    getRatios.push(opsOf(sync.name) / opsOf(lru.name))
  }
  for (const c of all) c.close?.()
  return { ops: results, getRatios }
}
