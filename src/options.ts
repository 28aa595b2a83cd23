// Validation of the options a `Cache` takes at construction and per call. Errors are
// TypeError (wrong type, unknown name) or RangeError (out of range) naming the option.

import type { NativeCacheOptions } from '../native/index'
import { checkSignal } from './abort'
import { argError } from './arg-error'
import { checkEncoding, describe, isEncoding } from './encoding'
import { type CachePersistenceOptions, PERSISTENCE_OPTION_NAMES } from './persistence/cache-options'
import { parseSize } from './size'
import { type NowMs, ttlToExptime } from './ttl'
import type { CallOptions, Encoding, ReadOptions, WriteOptions } from './types'

/** Settings of an embedded cache; every one has memcached's default. Persistence
 * (`dataDir`, `save`, …) is off unless `dataDir` is given. */
export interface CacheOptions<E extends Encoding = Encoding> extends CachePersistenceOptions {
  /** Memory for items: bytes or a size string such as `'256mb'` (default `'64mb'`, `-m`). */
  memoryLimit?: number | string | undefined
  /** Largest item, key and header included: bytes or a size string (default `'1mb'`, `-I`). */
  maxItemSize?: number | string | undefined
  /** Ratio between slab chunk sizes, above 1 (default 1.25, `-f`). */
  growthFactor?: number | undefined
  /** Minimum key + value space of the smallest chunk in bytes (default 48, `-n`). */
  slabMinSize?: number | undefined
  /** Explicit chunk sizes of the first slab classes, smallest first, instead of the
   * `growthFactor`/`slabMinSize` series (memcached's `-o slab_sizes`): up to 62 integers,
   * each from `slabMinSize` (48) to `maxItemSize` and more than 8 above the one before;
   * each is rounded up to a multiple of 8. memcached's 512 KiB class (unless the last size
   * is larger) and a whole page follow them for larger items. */
  slabSizes?: readonly number[] | undefined
  /** memcached's `-o slab_chunk_max`: its largest slab class, where the `growthFactor`
   * series or `slabSizes` end (bytes or a size string; default 512 KiB, at most
   * `maxItemSize`; a multiple of 8 from 64 to `maxItemSize`). memcached chunks larger
   * items; here they stay whole in classes past it (the series goes on while a page holds
   * two chunks, then a whole page). It also bounds the values `incr`/`decr` take, as
   * memcached refuses a chunked item. */
  slabChunkMax?: number | string | undefined
  /** Evict least recently used items when full (default true); `false` makes writes fail
   * instead, like memcached's `-M`. */
  evict?: boolean | undefined
  /** Independently locked shards, a power of two from 1 to 256 (default 8). */
  shards?: number | undefined
  /** Move slab pages between size classes as the value-size mix shifts (default true). */
  slabAutomove?: boolean | undefined
  /** Let slab pages change size class at all (default true). `false` is memcached's
   * `-o no_slab_reassign`: `slabs reassign` is refused, automove moves nothing and a lowered
   * memory limit frees no page holding items. */
  slabReassign?: boolean | undefined
  /** memcached's `-o slab_automove_window` (default 30, an integer of at least 3): without
   * eviction (`evict: false`) a class hands a page back to the pool once it has had more
   * than 2.5 pages' worth of free chunks and no out-of-memory or new page for this many
   * seconds (one sample a second). */
  slabAutomoveWindow?: number | undefined
  /** The hash table's first size, 2^`hashPower` slots of 8 bytes split between the shards
   * (memcached's `-o hashpower`, 12 to 32; default 2^12 slots per shard). The memory is
   * mapped lazily; on Linux a table larger than the machine's RAM and swap is refused. */
  hashPower?: number | undefined
  /** Grow the hash table once 3/4 full (default true). `false` is memcached's
   * `-o no_hashexpand`: it keeps its size until 15/16 full (a slot holds one item, so it
   * grows past that all the same). */
  hashExpand?: boolean | undefined
  /** Slab pages past the first two come in 2 MiB-aligned pairs advised for transparent
   * huge pages (Linux `MADV_HUGEPAGE`), as memcached's `-L` (default false). Reads of a
   * large cache gain a few percent; writes into fresh memory were measured at about half
   * their throughput with THP in `madvise` mode, so it is off unless asked for. */
  largePages?: boolean | undefined
  /** Default encoding of values read (default `'buffer'`). */
  encoding?: E | undefined
}

const CACHE_OPTIONS = new Set([
  'memoryLimit',
  'maxItemSize',
  'growthFactor',
  'slabMinSize',
  'slabSizes',
  'slabChunkMax',
  'evict',
  'shards',
  'slabAutomove',
  'slabReassign',
  'slabAutomoveWindow',
  'hashPower',
  'hashExpand',
  'largePages',
  'encoding',
  ...PERSISTENCE_OPTION_NAMES,
])
const CALL_OPTIONS = new Set(['signal'])
const READ_OPTIONS = new Set(['encoding', 'signal'])
const WRITE_OPTIONS = new Set(['ttl', 'flags', 'encoding', 'signal'])
const FETCH_OPTIONS = new Set([...WRITE_OPTIONS, 'timeout'])

/** What a positional ttl or encoding (memcached clients' `set(key, value, lifetime)`,
 * Keyv's `set(key, value, ttl)`, `get(key, 'utf8')`) should have been. Both readings of a
 * number: memcached clients' lifetime is seconds, Keyv's ttl ms, and `{ ttl: 60 }` after
 * `set(key, value, 60)` would keep the item 60 ms. */
function positionalHint(value: unknown, allowed: ReadonlySet<string>): string {
  if (typeof value === 'number' && allowed.has('ttl')) {
    if (!(value > 0 && Number.isSafeInteger(value * 1000))) return ' (a ttl goes as { ttl: ms })'
    return ` (a ttl goes as { ttl: ms }: ${value} ms is { ttl: ${value} }, ${value} s is { ttl: ${value * 1000} })`
  }
  if (typeof value === 'string' && allowed.has('encoding') && isEncoding(value)) return ` (an encoding goes as { encoding: '${value}' })`
  return ''
}

/** lru-cache's options, what users migrating try first in `new Cache()`: where each goes here. */
const LRU_CACHE_OPTIONS: Readonly<Record<string, string>> = {
  ttl: 'a ttl goes with each write: set(key, value, { ttl })',
  max: "the bound is bytes: memoryLimit, e.g. '64mb'",
  maxSize: "the bound is bytes: memoryLimit, e.g. '64mb'",
  fetchMethod: 'the loader goes with each call: fetch(key, loader, options)',
}

function checkObject(value: unknown, name: string, allowed: ReadonlySet<string>): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw argError(TypeError, `${name} must be an object, got ${value === null ? 'null' : typeof value}${positionalHint(value, allowed)}`)
  }
  // for-in over a small literal is cheap (no key array); options often come per call.
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    if (!allowed.has(key)) {
      const lru = allowed.has('memoryLimit') && Object.hasOwn(LRU_CACHE_OPTIONS, key) ? `${LRU_CACHE_OPTIONS[key]}; ` : ''
      throw argError(TypeError, `unknown option '${key}' in ${name} (${lru}known: ${[...allowed].join(', ')})`)
    }
  }
  return value as Record<string, unknown>
}

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw argError(TypeError, `${name} must be a boolean, got ${typeof value}`)
  return value
}

function checkNumber(name: string, value: unknown): number {
  if (typeof value !== 'number') throw argError(TypeError, `${name} must be a number, got ${typeof value}`)
  return value
}

/** The engine settings and default encoding for `new Cache(options)`. */
export function parseCacheOptions(options: unknown): { config: NativeCacheOptions; encoding: Encoding } {
  const config: NativeCacheOptions = {}
  if (options === undefined) return { config, encoding: 'buffer' }
  const o = checkObject(options, 'options', CACHE_OPTIONS)
  if (o.memoryLimit !== undefined) config.memoryLimit = parseSize('memoryLimit', o.memoryLimit)
  if (o.maxItemSize !== undefined) config.itemSizeMax = parseSize('maxItemSize', o.maxItemSize)
  if (o.growthFactor !== undefined) {
    const f = checkNumber('growthFactor', o.growthFactor)
    if (!(f > 1) || !Number.isFinite(f)) throw new RangeError(`growthFactor must be greater than 1, got ${f}`)
    config.growthFactor = f
  }
  if (o.slabMinSize !== undefined) {
    const n = checkNumber('slabMinSize', o.slabMinSize)
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`slabMinSize must be a positive integer, got ${n}`)
    config.slabMinSize = n
  }
  if (o.shards !== undefined) {
    const n = checkNumber('shards', o.shards)
    if (!Number.isInteger(n) || n < 1 || n > 256 || (n & (n - 1)) !== 0) {
      throw new RangeError(`shards must be a power of two from 1 to 256, got ${n}`)
    }
    config.shards = n
  }
  if (o.slabSizes !== undefined) config.slabSizes = checkSlabSizeList(o.slabSizes)
  if (o.slabChunkMax !== undefined) config.slabChunkMax = parseSize('slabChunkMax', o.slabChunkMax)
  checkSlabSettings(config)
  if (o.evict !== undefined) config.evict = checkBoolean('evict', o.evict)
  if (o.slabAutomove !== undefined) config.slabAutomove = checkBoolean('slabAutomove', o.slabAutomove)
  if (o.slabReassign !== undefined) config.slabReassign = checkBoolean('slabReassign', o.slabReassign)
  if (o.slabAutomoveWindow !== undefined) {
    const n = checkNumber('slabAutomoveWindow', o.slabAutomoveWindow)
    if (!Number.isInteger(n) || n < 3 || n > 2 ** 32 - 1) {
      throw new RangeError(`slabAutomoveWindow must be an integer from 3 to 4294967295 (memcached's -o slab_automove_window must be > 2), got ${n}`)
    }
    config.slabAutomoveWindow = n
  }
  if (o.hashPower !== undefined) {
    const n = checkNumber('hashPower', o.hashPower)
    if (!Number.isInteger(n) || n < 12 || n > 32) {
      throw new RangeError(`hashPower must be an integer from 12 to 32 (memcached's -o hashpower range), got ${n}`)
    }
    config.hashPower = n
  }
  if (o.hashExpand !== undefined) config.hashExpand = checkBoolean('hashExpand', o.hashExpand)
  if (o.largePages !== undefined) config.largePages = checkBoolean('largePages', o.largePages)
  const encoding = o.encoding === undefined ? 'buffer' : checkEncoding(o.encoding, 'encoding')
  return { config, encoding }
}

const MiB = 1024 * 1024

/** The engine's limits on the slab settings (`Config::validate` in ferrocache-core), checked
 * here so that the error names the option as the caller wrote it. */
function checkSlabSettings(config: NativeCacheOptions): void {
  const itemMax = config.itemSizeMax ?? MiB
  if (itemMax < 1024 || itemMax > 16 * MiB) {
    throw new RangeError(`maxItemSize must be from 1024 bytes ('1kb') to 16 MiB ('16mb'), got ${itemMax}`)
  }
  const page = Math.max(MiB, itemMax) // a page holds the largest item
  const limit = config.memoryLimit ?? 64 * MiB
  if (limit < page) {
    const why = page > MiB ? '(maxItemSize)' : '(1 MiB)'
    throw new RangeError(`memoryLimit must hold at least one slab page: ${page} bytes ${why}, got ${limit}`)
  }
  const chunkMax = config.slabChunkMax
  if (chunkMax !== undefined && (chunkMax < 64 || chunkMax > itemMax || chunkMax % 8 !== 0)) {
    throw new RangeError(`slabChunkMax must be a multiple of 8 from 64 to maxItemSize (${itemMax}), got ${chunkMax}`)
  }
  const minSizeMax = Math.floor(itemMax / 2) - 48
  if (config.slabMinSize !== undefined && config.slabMinSize > minSizeMax) {
    throw new RangeError(`slabMinSize must be at most ${minSizeMax} (half of maxItemSize minus 48), got ${config.slabMinSize}`)
  }
  if (config.slabSizes !== undefined) {
    // memcached's _parse_slab_sizes bounds, -n to slab_chunk_max (here the largest item:
    // memcached's no_chunked_items takes sizes up to its 1 MiB page)
    const min = config.slabMinSize ?? 48
    const max = itemMax
    let last = 0
    for (const size of config.slabSizes) {
      if (size < min || size > max) throw new RangeError(`slabSizes: ${size} is out of range (${min} to ${max}: slabMinSize to maxItemSize)`)
      if (size <= last + 8) throw new RangeError(`slabSizes: ${size} must be more than 8 bytes above the size before it (${last})`)
      last = size
    }
  }
}

/** `slabSizes`' type and length; its bounds need `slabMinSize` and `maxItemSize` (above). */
function checkSlabSizeList(value: unknown): number[] {
  if (!Array.isArray(value)) throw new TypeError(`slabSizes must be an array of numbers, got ${typeof value}`)
  if (value.length === 0 || value.length > 62) throw new RangeError(`slabSizes must list 1 to 62 sizes, got ${value.length}`)
  return value.map((v, i) => {
    const n = checkNumber(`slabSizes[${i}]`, v)
    if (!Number.isSafeInteger(n)) throw new RangeError(`slabSizes[${i}] must be an integer, got ${n}`)
    return n
  })
}

/** `fetch`'s option names: a write's and `timeout` (the values are checked where they are
 * read); an unknown one names them all (parseWrite's list left `timeout` out). */
export function checkFetchOptionNames(options: object): void {
  checkObject(options, 'options', FETCH_OPTIONS)
}

/** The encoding a read uses. `options.signal` is checked too (an aborted one throws its
 * AbortError, so a call with it runs nothing); the caller reads it from `options`. */
export function readEncoding(options: ReadOptions | undefined, fallback: Encoding): Encoding {
  if (options === undefined) return fallback
  const o = checkObject(options, 'options', READ_OPTIONS)
  const encoding = o.encoding === undefined ? fallback : checkEncoding(o.encoding, 'options.encoding')
  checkSignal(o.signal)
  return encoding
}

/** The signal of a call whose only option is `signal` (incr, touch, delete, flush, …),
 * checked as readEncoding checks it. */
export function callSignal(options: CallOptions | undefined): AbortSignal | undefined {
  if (options === undefined) return undefined
  return checkSignal(checkObject(options, 'options', CALL_OPTIONS).signal)
}

/** A write's options as the engine takes them. */
export interface Write {
  flags: number
  exptime: number
  encoding: Encoding
}

export function checkFlags(value: unknown): number {
  const n = checkNumber('flags', value)
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) {
    throw argError(RangeError, `flags must be an integer from 0 to 4294967295, got ${n}`)
  }
  return n
}

/** A write's options checked (`signal` as in readEncoding); a ttl over 30 days becomes a
 * unix time counted from `now`. */
export function parseWrite(options: WriteOptions | undefined, fallback: Encoding, now?: NowMs): Write {
  if (options === undefined) return { flags: 0, exptime: 0, encoding: fallback }
  const o = checkObject(options, 'options', WRITE_OPTIONS)
  const w = {
    flags: o.flags === undefined ? 0 : checkFlags(o.flags),
    exptime: ttlToExptime(o.ttl, 'options.ttl', now),
    encoding: o.encoding === undefined ? fallback : checkEncoding(o.encoding, 'options.encoding'),
  }
  checkSignal(o.signal)
  return w
}

/** An incr/decr delta or a CAS token as the engine's unsigned 64-bit bigint. */
export function toU64(name: string, value: unknown): bigint {
  if (typeof value === 'bigint') {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw argError(RangeError, `${name} must be between 0 and 2^64-1, got ${value}`)
    }
    return value
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw argError(RangeError, `${name} must be a non-negative safe integer or a bigint, got ${value}`)
    }
    return BigInt(value)
  }
  // incr(key, { signal }): the options follow the delta, as a flush's its delay; and
  // cas(key, value, { ttl }) or without a token: the token is required, before the options
  const options = typeof value === 'object' && value !== null && !(value instanceof Promise)
  let hint = ''
  if (name === 'delta' && options) hint = ' (options go third: incr(key, undefined, options))'
  if (name === 'cas' && (options || value === undefined)) hint = " (the token from gets() goes third, options fourth: cas(key, value, entry.cas, options))"
  const got = value instanceof Promise ? describe(value) : typeof value
  throw argError(TypeError, `${name} must be a bigint or a number, got ${got}${hint}`)
}
