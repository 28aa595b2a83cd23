// The embedded cache: memcached's engine inside this process, items off the JS heap.
// Each `xxxSync` method is one call into Rust; the Promise twins run the same code (the
// work is well under a microsecond, so a thread hop would only add cost) and reject
// instead of throwing.

import { inspect, types, type InspectOptions } from 'node:util'

import type { NativeCache } from '../native/index'
import { argumentsChecked } from './arg-error'
import { keyArray, splitEntries } from './batch-args'
import { checkRaw, encodeValue } from './encoding'
import { native } from './native'
import { ops } from './native-ops'
import { lastCas, lastFlags, missed, takeHit, takeRead } from './scratch'
import { type CacheOptions, callSignal, parseCacheOptions, parseWrite, readEncoding, toU64, type Write } from './options'
import { delayToSeconds, requiredTtlToExptime } from './ttl'
import { Persistence, SnapshotError, type LoadReport, type SaveReport } from './persistence'
import { resolvePersistence } from './persistence/cache-options'
import { saveAtExit } from './persistence/exit-save'
import { Fetcher } from './fetch'
import type {
  CacheLike,
  CacheStats,
  CallOptions,
  CasEntry,
  Decoded,
  Encodable,
  Encoding,
  FetchLoader,
  FetchOptions,
  RawValue,
  ReadOptions,
  WriteOptions,
} from './types'

export type { CacheOptions }

const {
  cacheAdd,
  cacheAppend,
  cacheArith,
  cacheCas,
  cacheDelete,
  cacheDeleteMany,
  cacheFlushAll,
  cacheGat,
  cacheGet,
  cacheGetMany,
  cacheGets,
  cacheHas,
  cachePrepend,
  cacheReplace,
  cacheSet,
  cacheSetMany,
  cacheTouch,
} = ops

let nativeOf: (cache: Cache<Encoding>) => NativeCache

/** Each Cache's own property under this symbol: a function returning the cache itself,
 * which a Proxy's `get` passes on as it is (a Vue `reactive` too: it wraps objects, not
 * functions), so the server and the methods find the Cache behind a Proxy of one. */
const kSelf = Symbol('ferrocache.Cache')

/** `this` of a Cache's method called through a Proxy of the Cache (a Vue `reactive`, a
 * valtio or MobX proxy, an instrumenting wrapper: their `get` passes the method on, and the
 * call's `this` is the Proxy, whose private members V8 refuses to read): the Cache behind
 * it. The methods take this path only when `this` lacks `#id`, so a direct call costs one
 * brand check. */
function behind<C>(proxy: C): C {
  const self = (proxy as { [kSelf]?: unknown })[kSelf]
  if (typeof self === 'function') return self() as C
  throw new TypeError('this is not a Cache, nor a Proxy that passes on the Cache behind it: call the method on the Cache')
}

/** The Cache behind `value` if it is a Proxy of one (a Vue `reactive`, a wrapper that
 * instruments calls): the server reads the engine from `#native`, which a Proxy cannot
 * forward (it failed as "Cannot read private member #native…"). Else `value` as it is. */
export function cacheBehind(value: unknown): unknown {
  if (!types.isProxy(value)) return value
  const self = (value as { [kSelf]?: unknown })[kSelf]
  if (typeof self === 'function') return (self as () => unknown)()
  if (value instanceof Cache) {
    throw new TypeError('cache is a Proxy whose handler does not pass on the Cache behind it: give createServer the Cache itself')
  }
  return value
}

/** The engine behind a cache, for the network server (internal). */
export function nativeCacheOf(cache: Cache<Encoding>): NativeCache {
  return nativeOf(cache)
}

/**
 * An in-process memcached: slab memory limit, segmented LRU, TTLs, CAS, memcached's
 * stats. `E` is the default encoding of values read (`'buffer'` unless the options say).
 *
 * ```ts
 * const cache = new Cache({ memoryLimit: '256mb' })
 * await cache.set('user:1', JSON.stringify(user), { ttl: 60_000 })
 * const buf = await cache.get('user:1') // Buffer | undefined
 * ```
 */
export class Cache<E extends Encoding = 'buffer'> implements CacheLike<E> {
  readonly #native: NativeCache
  /** The engine's id for the `cache*` functions (cheaper to call than class methods). */
  readonly #id: number
  readonly #encoding: Encoding
  /** The write options of a call that passes none, parsed once. */
  readonly #plain: Write
  /** The engine's clock in ms, which a ttl over 30 days (an absolute exptime) is counted
   * from: `Date.now()` may be a test's fake clock (jest/sinon `setSystemTime`), and an
   * absolute time in the engine's past would expire the item as it is stored. */
  readonly #now = (): number => this.#native.now * 1000

  static {
    // Lets the network server (src/server) serve this cache's engine; not public API.
    nativeOf = (cache) => {
      // another copy of this module (a second install, jest.resetModules or its test
      // environment's realm) has its own Cache class: reading #native failed as "Cannot
      // read private member #native from an object whose class did not declare it"
      if (!(#native in cache)) {
        throw new TypeError(
          'cache is a Cache from another copy of the ferrocache module (a second install, jest.resetModules, another realm): create it with the same import as createServer',
        )
      }
      return cache.#native
    }
  }

  constructor(options?: CacheOptions<E>) {
    const { config, encoding, persist } = argumentsChecked(() => ({ ...parseCacheOptions(options), persist: resolvePersistence(options) }))
    this.#native = new native.NativeCache(config)
    // configurable: a Proxy's get may then answer otherwise (V8 would throw for it) and
    // createServer says what is wrong
    Object.defineProperty(this, kSelf, { value: () => this, configurable: true })
    this.#id = this.#native.id
    this.#encoding = encoding
    this.#plain = parseWrite(undefined, encoding)
    if (persist !== undefined) {
      let p: Persistence
      try {
        // throws when dataDir is locked or unusable, or `save` is no list of rules
        p = argumentsChecked(() => new Persistence(this.#native, persist))
      } catch (err) {
        this.#native.close() // the caller never gets this cache to close
        throw err
      }
      this.#persistence = p
      this.#saveOnClose = persist.saveOnClose
      if (persist.loadAsync) {
        this.loaded = p.load(persist.strictLoad).then((r) => {
          p.start()
          return r
        })
      } else {
        try {
          this.loaded = Promise.resolve(p.loadSync(persist.strictLoad))
          p.openAof()
        } catch (err) {
          this.#native.close()
          throw err
        }
        p.start()
      }
      if (persist.saveOnExit) {
        // only what changed since the last save: an exit right after a load writes nothing
        this.#forgetExit = saveAtExit(() => (this.#saveOnClose && !this.#native.closed ? p.exitSave() : undefined))
      }
    }
  }

  // ---- persistence (dataDir) ----
  #persistence: Persistence | undefined
  #saveOnClose = false
  #forgetExit: (() => void) | undefined
  /** Settles when the snapshot loaded at start is in (at once unless `loadAsync`). */
  loaded: Promise<LoadReport | undefined> = Promise.resolve(undefined)

  /**
   * A cache with `dataDir` whose snapshot is loaded on a worker thread before it resolves
   * (with `appendfsync` on this thread: the log is replayed before any write is served).
   */
  static async open<E extends Encoding = 'buffer'>(options?: CacheOptions<E>): Promise<Cache<E>> {
    const async = options?.dataDir !== undefined && options.appendfsync === undefined
    const cache = new Cache<E>({ ...options, ...(async ? { loadAsync: true } : {}) } as CacheOptions<E>)
    try {
      await cache.loaded
    } catch (err) {
      cache.#saveOnClose = false
      cache.close()
      throw err
    }
    return cache
  }

  /**
   * Writes a snapshot to `dataDir` on a worker thread (the cache keeps serving) and
   * resolves once the file is durable; rejects with a `SnapshotError` naming the file.
   */
  snapshot(): Promise<SaveReport> {
    const c = #id in this ? this : behind(this)
    if (c.#persistence === undefined) {
      return Promise.reject(new SnapshotError('snapshot() needs a cache created with dataDir', 'FERROCACHE_SNAPSHOT_IO', ''))
    }
    return c.#persistence.snapshot()
  }

  /** The snapshot scheduler of a cache with `dataDir` (stats, state); `undefined` without. */
  get persistence(): Persistence | undefined {
    const c = #id in this ? this : behind(this)
    return c.#persistence
  }

  #write(options: WriteOptions | undefined): Write {
    return options === undefined ? this.#plain : parseWrite(options, this.#encoding, this.#now)
  }

  /** The default encoding of values read. */
  get encoding(): E {
    const c = #id in this ? this : behind(this)
    return c.#encoding as E
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    const c = #id in this ? this : behind(this)
    return c.#native.closed
  }

  /** `get` without the Promise: returns or throws at once. */
  getSync<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Decoded<F> | undefined {
    const c = #id in this ? this : behind(this)
    const encoding = options === undefined ? c.#encoding : readEncoding(options, c.#encoding)
    // a Buffer read passes no asString: one napi argument read fewer on the hottest call
    const read = encoding === 'buffer' ? cacheGet(c.#id, key) : cacheGet(c.#id, key, true)
    return takeRead(read, encoding) as Decoded<F> | undefined
  }

  /** `gets` without the Promise: returns or throws at once. */
  getsSync<F extends Encoding = E>(key: string, options?: ReadOptions<F>): CasEntry<Decoded<F>> | undefined {
    const c = #id in this ? this : behind(this)
    const encoding = readEncoding(options, c.#encoding)
    const read = encoding === 'buffer' ? cacheGets(c.#id, key) : cacheGets(c.#id, key, true)
    if (missed(read)) return undefined
    const cas = lastCas()
    const flags = lastFlags()
    return { value: takeRead(read, encoding) as Decoded<F>, cas, flags }
  }

  /** `getMany` without the Promise: returns or throws at once. */
  getManySync<F extends Encoding = E>(keys: Iterable<string>, options?: ReadOptions<F>): Map<string, Decoded<F>> {
    const c = #id in this ? this : behind(this)
    const encoding = readEncoding(options, c.#encoding)
    const list = keyArray(keys)
    const hits = cacheGetMany(c.#id, list, encoding !== 'buffer')
    const out = new Map<string, Decoded<F>>()
    let offset = 0 // values that fitted lie one after another in the scratch buffer
    for (let i = 0; i < list.length; i++) {
      const hit = hits[i]
      if (hit === -1) continue
      out.set(list[i], takeHit(hit, offset, encoding) as Decoded<F>)
      if (typeof hit === 'number') offset += hit
    }
    return out
  }

  /** `set` without the Promise: returns or throws at once. */
  setSync<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): boolean {
    const c = #id in this ? this : behind(this)
    const w = c.#write(options)
    return cacheSet(c.#id, key, encodeValue(value, w.encoding), w.flags, w.exptime)
  }

  /** `setMany` without the Promise: returns or throws at once. */
  setManySync<F extends Encoding = E>(
    entries: Iterable<readonly [string, Encodable<F>]>,
    options?: WriteOptions<F>,
  ): void {
    const c = #id in this ? this : behind(this)
    const w = c.#write(options)
    const { keys, values } = splitEntries(entries, w.encoding)
    cacheSetMany(c.#id, keys, values, w.flags, w.exptime)
  }

  /** `add` without the Promise: returns or throws at once. */
  addSync<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): boolean {
    const c = #id in this ? this : behind(this)
    const w = c.#write(options)
    return cacheAdd(c.#id, key, encodeValue(value, w.encoding), w.flags, w.exptime)
  }

  /** `replace` without the Promise: returns or throws at once. */
  replaceSync<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): boolean {
    const c = #id in this ? this : behind(this)
    const w = c.#write(options)
    return cacheReplace(c.#id, key, encodeValue(value, w.encoding), w.flags, w.exptime)
  }

  /** `append` without the Promise: returns or throws at once. */
  appendSync(key: string, value: RawValue, options?: CallOptions): boolean {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheAppend(c.#id, key, checkRaw(value))
  }

  /** `prepend` without the Promise: returns or throws at once. */
  prependSync(key: string, value: RawValue, options?: CallOptions): boolean {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cachePrepend(c.#id, key, checkRaw(value))
  }

  /** `cas` without the Promise: returns or throws at once. */
  casSync<F extends Encoding = E>(
    key: string,
    value: Encodable<F>,
    cas: bigint | number,
    options?: WriteOptions<F>,
  ): boolean {
    const c = #id in this ? this : behind(this)
    const w = c.#write(options)
    const token = toU64('cas', cas)
    return cacheCas(c.#id, key, encodeValue(value, w.encoding), w.flags, w.exptime, token)
  }

  /** `incr` without the Promise: returns or throws at once. */
  incrSync(key: string, delta: bigint | number = 1n, options?: CallOptions): bigint | undefined {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheArith(c.#id, key, true, toU64('delta', delta))
  }

  /** `decr` without the Promise: returns or throws at once. */
  decrSync(key: string, delta: bigint | number = 1n, options?: CallOptions): bigint | undefined {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheArith(c.#id, key, false, toU64('delta', delta))
  }

  /** `touch` without the Promise: returns or throws at once. */
  touchSync(key: string, ttl: number, options?: CallOptions): boolean {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheTouch(c.#id, key, requiredTtlToExptime(ttl, c.#now))
  }

  /** `gat` without the Promise: returns or throws at once. */
  gatSync<F extends Encoding = E>(key: string, ttl: number, options?: ReadOptions<F>): Decoded<F> | undefined {
    const c = #id in this ? this : behind(this)
    const encoding = readEncoding(options, c.#encoding)
    const exptime = requiredTtlToExptime(ttl, c.#now, 'gat')
    const read = encoding === 'buffer' ? cacheGat(c.#id, key, exptime) : cacheGat(c.#id, key, exptime, true)
    return takeRead(read, encoding) as Decoded<F> | undefined
  }

  /** `delete` without the Promise: returns or throws at once. */
  deleteSync(key: string, options?: CallOptions): boolean {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheDelete(c.#id, key)
  }

  /** `deleteMany` without the Promise: returns or throws at once. */
  deleteManySync(keys: Iterable<string>, options?: CallOptions): number {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheDeleteMany(c.#id, keyArray(keys))
  }

  /** `has` without the Promise: returns or throws at once. */
  hasSync(key: string, options?: CallOptions): boolean {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return cacheHas(c.#id, key)
  }

  /** `flush` without the Promise: returns or throws at once. */
  flushSync(delay?: number, options?: CallOptions): void {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    cacheFlushAll(c.#id, delayToSeconds(delay))
  }

  /** `stats` without the Promise: returns or throws at once. */
  statsSync(options?: CallOptions): CacheStats {
    const c = #id in this ? this : behind(this)
    callSignal(options)
    return c.#native.stats() as unknown as CacheStats
  }

  async get<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<Decoded<F> | undefined> {
    return this.getSync(key, options)
  }

  async gets<F extends Encoding = E>(
    key: string,
    options?: ReadOptions<F>,
  ): Promise<CasEntry<Decoded<F>> | undefined> {
    return this.getsSync(key, options)
  }

  async getMany<F extends Encoding = E>(
    keys: Iterable<string>,
    options?: ReadOptions<F>,
  ): Promise<Map<string, Decoded<F>>> {
    return this.getManySync(keys, options)
  }

  readonly #fetcher: Fetcher<E> = new Fetcher<E>(this)

  /** Read-through with one loader call per missing key, however many callers wait: see
   * `CacheLike.fetch`. */
  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, options?: FetchOptions<F>): Promise<Decoded<F>> {
    const c = #id in this ? this : behind(this)
    return c.#fetcher.fetch(key, loader, options)
  }

  async set<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean> {
    return this.setSync(key, value, options)
  }

  async setMany<F extends Encoding = E>(
    entries: Iterable<readonly [string, Encodable<F>]>,
    options?: WriteOptions<F>,
  ): Promise<void> {
    this.setManySync(entries, options)
  }

  async add<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean> {
    return this.addSync(key, value, options)
  }

  async replace<F extends Encoding = E>(
    key: string,
    value: Encodable<F>,
    options?: WriteOptions<F>,
  ): Promise<boolean> {
    return this.replaceSync(key, value, options)
  }

  async append(key: string, value: RawValue, options?: CallOptions): Promise<boolean> {
    return this.appendSync(key, value, options)
  }

  async prepend(key: string, value: RawValue, options?: CallOptions): Promise<boolean> {
    return this.prependSync(key, value, options)
  }

  async cas<F extends Encoding = E>(
    key: string,
    value: Encodable<F>,
    cas: bigint | number,
    options?: WriteOptions<F>,
  ): Promise<boolean> {
    return this.casSync(key, value, cas, options)
  }

  async incr(key: string, delta?: bigint | number, options?: CallOptions): Promise<bigint | undefined> {
    return this.incrSync(key, delta, options)
  }

  async decr(key: string, delta?: bigint | number, options?: CallOptions): Promise<bigint | undefined> {
    return this.decrSync(key, delta, options)
  }

  async touch(key: string, ttl: number, options?: CallOptions): Promise<boolean> {
    return this.touchSync(key, ttl, options)
  }

  async gat<F extends Encoding = E>(key: string, ttl: number, options?: ReadOptions<F>): Promise<Decoded<F> | undefined> {
    return this.gatSync(key, ttl, options)
  }

  async delete(key: string, options?: CallOptions): Promise<boolean> {
    return this.deleteSync(key, options)
  }

  async deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number> {
    return this.deleteManySync(keys, options)
  }

  async has(key: string, options?: CallOptions): Promise<boolean> {
    return this.hasSync(key, options)
  }

  async flush(delay?: number, options?: CallOptions): Promise<void> {
    this.flushSync(delay, options)
  }

  async stats(options?: CallOptions): Promise<CacheStats> {
    return this.statsSync(options)
  }

  /** Frees the engine's memory at once; every later call throws (or rejects). With
   * `dataDir` (and `saveOnClose`, the default) a last snapshot is written first. */
  close(): void {
    const c = #id in this ? this : behind(this)
    c.#forgetExit?.()
    if (!c.#native.closed) c.#persistence?.close(c.#saveOnClose)
    c.#native.close()
  }

  /** `close()`, for `using cache = new Cache()` (and `await using`, which falls back to it):
   * the cache is closed when the block ends (Node 20.4 or later, TypeScript 5.2 or later). */
  [Symbol.dispose](): void {
    this.close()
  }

  /** `close()` as a Promise, for `await using` on a `CacheLike` (which a `Client`, whose
   * close waits for requests in flight, can be): the shared interface declares it. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }

  /** What `util.inspect` and `console.log` show: `Cache { closed: false, encoding: 'buffer',
   * items: 2, bytes: 130, memoryLimit: 67108864 }` (the `curr_items`, `bytes` and
   * `limit_maxbytes` of `stats()`, while open), and `dataDir` when it has one. */
  [inspect.custom](depth: number | null, options: InspectOptions & { stylize(text: string, styleType: 'special'): string }): string | this {
    // options typed by shape: @types/node 26 has no InspectOptionsStylized (InspectContext)
    // a Proxy of a Cache: inspect calls this with the Proxy; Cache.prototype, which has no
    // engine, gets Node's own display
    const self = (this as { [kSelf]?: unknown })[kSelf]
    const c = #id in this ? this : typeof self === 'function' ? (self() as this) : undefined
    if (c === undefined) return this
    const name = c.constructor.name
    if (depth !== null && depth < 0) return options.stylize(`[${name}]`, 'special')
    const closed = c.#native.closed
    const shown: Record<string, unknown> = { closed, encoding: c.#encoding }
    if (!closed) {
      // one read of counters the engine keeps (no item is visited); stats() throws once closed
      const s = c.#native.stats() as unknown as CacheStats
      Object.assign(shown, { items: s.curr_items, bytes: s.bytes, memoryLimit: s.limit_maxbytes })
    }
    if (c.#persistence !== undefined) shown['dataDir'] = c.#persistence.dataDir
    // the figures stand for the cache's own properties: the depth left applies to them
    return `${name} ${inspect(shown, { ...options, depth })}`
  }
}
