// Seeded random CacheLike calls for cachelike-differential.test.ts: good and bad arguments
// to every method, drawn up front so each subject (the embedded Cache, a Client over
// ferrocached, a Client over memcached) makes the very same call. A call's outcome is
// reduced to comparable JSON: values, Maps, bigints, CAS entries (the token replaced by
// what it does), and errors by class, code and message.
import type { CacheLike } from '../../src'
import { intRng } from './prng'

type Subject = CacheLike<'buffer'>

/** One drawn call: its text for a failure's report, and the call itself. `cas` holds the
 * tokens this subject's own `gets` returned, by key. */
export interface Call {
  what: string
  run(c: Subject, cas: Map<string, bigint>): Promise<unknown>
  /** The key of a store other than `set` (add, replace, append, prepend, cas), whose old
   * value memcached's meta `ms` drops when the new one is too large (docs/client.md). */
  storeKey?: string
}

// memcached's item size: key + value + 59 bytes (+4 with flags) within -I 1m
const ITEM_MAX = 1024 * 1024
const itemRoom = (key: string, flags: number) => ITEM_MAX - 59 - Buffer.byteLength(key) - (flags === 0 ? 0 : 4)

const GOOD_KEYS = ['a', 'b', 'n', 'ключ', 'x'.repeat(250), '𝄞'.repeat(62), 'big']
const BAD_KEYS: unknown[] = ['', 'a b', 'a\r\nflush_all', 'x'.repeat(251), 'é'.repeat(126), 'a\ud800', 'a\u007f', 42, null, undefined, {}]
const BAD_VALUES: unknown[] = [42, null, undefined, {}, [1], true, 1n]
const BAD_OPTIONS: unknown[] = [null, 60, 'utf8', [], { bogus: 1 }, { ttl: -1 }, { ttl: Number.NaN }, { ttl: '5' }, { flags: -1 }, { flags: 2 ** 32 }, { flags: 1.5 }, { encoding: 'hex' }]
const TTLS: unknown[] = [0, 60_000, 31 * 86_400_000, 1e12, Infinity, -1, Number.NaN, '5', undefined, null]
const DELTAS: unknown[] = [undefined, 1, 5n, 2n ** 64n - 1n, 0, -1, 1.5, '1', 2n ** 64n, null]
const CAS_BAD: unknown[] = [-1, 1.5, '1', 2n ** 64n, null, undefined]

/** Arguments shown in a report (bigints, long strings shortened). */
function show(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'bigint') return `${a}n`
      if (typeof a === 'string') return JSON.stringify(a.length > 40 ? `${a.slice(0, 12)}…(${a.length})` : a)
      if (Buffer.isBuffer(a)) return `<${a.length} bytes>`
      if (a === undefined) return 'undefined'
      try {
        return JSON.stringify(a, function (this: Record<string, unknown>, k, v: unknown) {
          const raw = this[k] // before toJSON: a Buffer, a long string
          if (Buffer.isBuffer(raw)) return `<${raw.length} bytes>`
          if (typeof raw === 'string' && raw.length > 40) return `${raw.slice(0, 12)}…(${raw.length})`
          return typeof v === 'bigint' ? `${v}n` : v
        })
      } catch {
        return String(a)
      }
    })
    .join(', ')
}

/** `count` calls from `seed`. */
export function drawCalls(seed: number, count: number): Call[] {
  const r = intRng(seed)
  const pick = <T>(list: readonly T[]): T => list[r(list.length)]!
  const chance = (n: number) => r(n) === 0
  const key = (): unknown => (chance(8) ? pick(BAD_KEYS) : pick(GOOD_KEYS))
  const goodKey = (): string => pick(GOOD_KEYS)
  const flagsOf = (): number => (chance(3) ? pick([1, 0xffff_ffff]) : 0)
  const value = (k: unknown, flags: number, json: boolean): unknown => {
    if (chance(12)) return pick(BAD_VALUES)
    if (json) return pick([{ a: [1, 'é'] }, 'text', 7, null, [true]])
    const room = typeof k === 'string' && k !== '' && Buffer.byteLength(k) <= 250 ? itemRoom(k, flags) : 100
    switch (r(6)) {
      case 0:
        return String(r(1000))
      case 1:
        return Buffer.from([0, 13, 10, 255, r(256)])
      case 2:
        return chance(2) ? Buffer.alloc(room + r(2)) : 'v'.repeat(room - r(2)) // at memcached's bound
      case 3:
        return 'é✓'.repeat(r(50))
      default:
        return `v${r(100)}`
    }
  }
  const writeOptions = (json: boolean): { options: unknown; flags: number } => {
    if (chance(10)) return { options: pick(BAD_OPTIONS), flags: 0 }
    const flags = flagsOf()
    const o: Record<string, unknown> = {}
    if (flags !== 0) o.flags = flags
    if (chance(3)) o.ttl = pick([0, 60_000, 31 * 86_400_000, 1e12, Infinity])
    if (json) o.encoding = 'json'
    else if (chance(6)) o.encoding = pick(['utf8', 'buffer'])
    return { options: Object.keys(o).length === 0 && chance(2) ? undefined : o, flags }
  }
  const readOptions = (): unknown => (chance(10) ? pick([null, { ttl: 1 }, { encoding: 'hex' }, 'utf8']) : chance(2) ? undefined : { encoding: pick(['utf8', 'json', 'buffer']) })
  const keyBatch = (): unknown => {
    if (chance(8)) return pick<unknown>(['abc', null, 5, [1], new Set(['a b']), Object.assign([], { 2: 'a' })])
    const list = Array.from({ length: r(5) }, () => (chance(15) ? pick(BAD_KEYS) : goodKey()))
    return chance(5) ? new Set(list) : list
  }

  const calls: Call[] = []
  for (let i = 0; i < count; i++) {
    const method = pick(['get', 'gets', 'getMany', 'set', 'set', 'set', 'setMany', 'add', 'replace', 'append', 'prepend', 'cas', 'cas', 'incr', 'decr', 'touch', 'gat', 'delete', 'deleteMany', 'has', 'flush'] as const)
    const json = chance(5)
    const k = key()
    let args: unknown[]
    let run: Call['run']
    switch (method) {
      case 'gets': {
        args = [k, readOptions()]
        run = async (c, cas) => {
          const e = await (c.gets as (...a: unknown[]) => Promise<{ cas: bigint } | undefined>)(...args)
          if (e !== undefined) cas.set(k as string, e.cas)
          return e
        }
        break
      }
      case 'get':
      case 'has':
      case 'delete':
        args = method === 'get' ? [k, readOptions()] : [k]
        run = (c) => (c[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'getMany':
      case 'deleteMany':
        args = method === 'getMany' ? [keyBatch(), readOptions()] : [keyBatch()]
        run = (c) => (c[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'set':
      case 'add':
      case 'replace': {
        const { options, flags } = writeOptions(json)
        args = [k, value(k, flags, json), options]
        run = (c) => (c[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      }
      case 'setMany': {
        const { options, flags } = writeOptions(json)
        const entries: unknown = chance(10)
          ? pick<unknown>(['ab', [['k']], ['k'], [[1, 'v']], null])
          : Array.from({ length: 1 + r(4) }, () => {
              const ek = chance(15) ? pick(BAD_KEYS) : goodKey()
              return [ek, value(ek, flags, json)]
            })
        args = [entries, options]
        run = (c) => c.setMany(...(args as Parameters<Subject['setMany']>))
        break
      }
      case 'append':
      case 'prepend':
        args = [k, chance(10) ? pick(BAD_VALUES) : chance(20) ? Buffer.alloc(2000) : String(r(10))]
        run = (c) => (c[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'cas': {
        const { options, flags } = writeOptions(json)
        const v = value(k, flags, json)
        const token = chance(6) ? pick(CAS_BAD) : chance(5) ? 0 : undefined // undefined: this subject's own token
        args = [k, v, token ?? '<own token>', options]
        run = (c, cas) => c.cas(k as string, v as string, token === undefined ? (cas.get(k as string) ?? 0n) : (token as bigint), options as undefined)
        break
      }
      case 'incr':
      case 'decr':
        args = [chance(3) ? 'n' : k, pick(DELTAS)]
        run = (c) => (c[method] as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'touch':
        args = [k, pick(TTLS)]
        run = (c) => (c.touch as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'gat':
        args = [k, pick(TTLS), readOptions()]
        run = (c) => (c.gat as (...a: unknown[]) => Promise<unknown>)(...args)
        break
      case 'flush':
        // an immediate flush only: a delayed one acts from the second before its deadline
        // on a server, at the deadline embedded (docs/client.md)
        args = chance(3) ? [pick([-1, Number.NaN, '5', 31 * 86_400_000, null])] : []
        run = (c) => (c.flush as (...a: unknown[]) => Promise<unknown>)(...args)
        break
    }
    const storeKey = typeof k === 'string' && ['add', 'replace', 'append', 'prepend', 'cas'].includes(method) ? k : undefined
    calls.push({ what: `${method}(${show(args)})`, run, storeKey })
    if (method === 'gets' || chance(4)) continue
    // a gets after most calls: it checks the key's state and hands out the next CAS token
    const g = goodKey()
    calls.push({
      what: `gets(${show([g])})`,
      run: async (c, cas) => {
        const e = await c.gets(g)
        if (e !== undefined) cas.set(g, e.cas)
        return e
      },
    })
  }
  return calls
}

/** What a call came to, as JSON both sides can be compared by. Server-reported errors
 * (too large, out of memory) name the server, so their messages are compared up to it. */
export async function outcome(call: () => Promise<unknown>): Promise<string> {
  let p: Promise<unknown>
  try {
    p = call()
  } catch (err) {
    return `threw instead of rejecting: ${describeError(err)}`
  }
  if (!(p instanceof Promise)) return 'returned no Promise'
  try {
    return JSON.stringify(canon(await p)) ?? 'undefined'
  } catch (err) {
    return describeError(err)
  }
}

function describeError(err: unknown): string {
  if (!(err instanceof Error)) return `non-Error ${String(err)}`
  const code = (err as { code?: unknown }).code
  const message = code === 'FERROCACHE_TOO_LARGE' ? err.message.replace(/^(value is too large).*/, '$1…') : err.message
  return `${err.constructor.name} [${String(code)}] ${message}`
}

/** `v` as plain JSON data: bytes as hex (long ones by length and sum: Buffer's toJSON
 * would make an array of a million numbers), Maps as entries, bigints as text, a CAS token
 * as what it is (each side has its own). */
function canon(v: unknown, key = ''): unknown {
  if (key === 'cas' && typeof v === 'bigint') return 'token'
  if (typeof v === 'bigint') return `${v}n`
  if (v instanceof Uint8Array) {
    if (v.length <= 64) return { bytes: Buffer.from(v).toString('hex') }
    let sum = 0
    for (const b of v) sum += b
    return { bytes: `${v.length} bytes, sum ${sum}` }
  }
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [k, canon(x)]) }
  if (Array.isArray(v)) return v.map((x) => canon(x))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, canon(x, k)]))
  return v
}
