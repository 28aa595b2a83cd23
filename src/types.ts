// The cache interface shared by the embedded `Cache` and the remote `Client`: one method
// set, memcached's semantics, lru-cache-like names, Promises everywhere.

/** How values come back: `Buffer` (default), a UTF-8 string, or parsed JSON. */
export type Encoding = 'buffer' | 'utf8' | 'json'

/** The type a read returns under encoding `E`. */
export type Decoded<E extends Encoding> = E extends 'utf8' ? string : E extends 'json' ? unknown : Buffer

/** What a write accepts under encoding `E`: bytes or text, or any JSON value for `json`. */
export type Encodable<E extends Encoding> = E extends 'json' ? unknown : string | Uint8Array

/** Raw bytes or text, stored as they are (append/prepend never JSON-encode). */
export type RawValue = string | Uint8Array

/** What every call of `CacheLike` takes as its last argument (reads and writes take more). */
export interface CallOptions {
  /** Gives up on the call when it aborts: a signal already aborted rejects the call before
   * it runs (nothing is sent), and an abort while a `Client` call waits for its reply
   * rejects it at once; both with a `DOMException` named `AbortError` whose `cause` is
   * `signal.reason` (Node's fs/promises rejects with an `AbortError` and that `cause` too,
   * an `Error` with code `'ABORT_ERR'`: test `err.name`). The request itself is not taken
   * back: it is written when the call is made (or once a `flush()` it waits behind is
   * answered), so an aborted write may still be stored; its reply is read and dropped. (`fetch` rejects
   * with `signal.reason` itself, as the global `fetch` does.) As in Node's own APIs, any
   * object with `aborted` (and `addEventListener`) is taken: another realm's signal, a
   * polyfill's. `AbortSignal.timeout(ms)` gives one call a deadline. */
  signal?: AbortSignal | undefined
}

/** Options of a read. */
export interface ReadOptions<E extends Encoding = Encoding> extends CallOptions {
  /** Overrides the cache's encoding for this call. */
  encoding?: E | undefined
}

/** Options of a write. */
export interface WriteOptions<E extends Encoding = Encoding> extends CallOptions {
  /** Time to live in milliseconds; 0 or omitted = never expires. memcached counts whole
   * seconds, so the ttl is rounded up to the next second; past 30 days it is sent as a unix
   * time, at the latest 2038-01-19 03:14:07 UTC (memcached's signed 32-bit exptime). */
  ttl?: number | undefined
  /** 32-bit unsigned client flags stored with the item (default 0). */
  flags?: number | undefined
  /** How to encode the value (the cache's encoding by default). */
  encoding?: E | undefined
}

/** Produces the value of a missing key for `fetch` (its result is stored, then returned).
 * `signal` aborts when every caller waiting on this load has given up (its `timeout` or
 * `signal`): pass it to the backend call to cancel it. */
export type FetchLoader<V> = (key: string, signal: AbortSignal) => V | PromiseLike<V>

/** `fetch`'s options: how to store the loaded value, and how long this call may wait. */
export interface FetchOptions<E extends Encoding = Encoding> extends WriteOptions<E> {
  /** Milliseconds this call waits at most (for the read, the loader and the store); then it
   * rejects with a `DOMException` named `TimeoutError`. Other callers of the same load keep
   * waiting; when none is left the load is dropped (its loader's `signal` aborts, nothing
   * is stored) and the next `fetch` of the key calls the loader again. Default: no limit. */
  timeout?: number | undefined
  /** Aborting it rejects this call with `signal.reason` (as `fetch` in Node does); the
   * load itself goes on for the other callers, as with `timeout`. */
  signal?: AbortSignal | undefined
}

/** A value with its CAS token and client flags (`gets`). */
export interface CasEntry<V> {
  /** The value, decoded with the read's encoding. */
  value: V
  /** The item's compare-and-swap token; pass it to `cas()`. */
  cas: bigint
  /** The 32-bit client flags stored with the item (memcached's opaque flags). */
  flags: number
}

/** One slab class, named as memcached's `stats slabs` / `stats items`. */
export interface SlabClassStats {
  /** Class number (1 = smallest chunks), as in `stats slabs`. */
  id: number
  /** Bytes per chunk: each item of this class takes one chunk. */
  chunk_size: number
  /** Chunks cut from one slab page. */
  chunks_per_page: number
  /** Pages assigned to this class. */
  total_pages: number
  /** Chunks in those pages. */
  total_chunks: number
  /** Chunks holding an item. */
  used_chunks: number
  /** Chunks free for new items. */
  free_chunks: number
  /** Bytes the items of this class actually need (key, value, header), without chunk slack. */
  mem_requested: number
  /** Reads that found an item of this class. */
  get_hits: number
  /** Stores into this class. */
  cmd_set: number
  /** Deletes that removed an item of this class. */
  delete_hits: number
  /** `incr` on an item of this class. */
  incr_hits: number
  /** `decr` on an item of this class. */
  decr_hits: number
  /** `cas` that stored into this class. */
  cas_hits: number
  /** `cas` refused because the item had changed. */
  cas_badval: number
  /** `touch`/`gat` on an item of this class. */
  touch_hits: number
  /** Items stored in this class. */
  number: number
  /** Items in the HOT LRU segment. */
  number_hot: number
  /** Items in the WARM LRU segment. */
  number_warm: number
  /** Items in the COLD LRU segment. */
  number_cold: number
  /** Seconds since the oldest HOT item was last used. */
  age_hot: number
  /** Seconds since the oldest WARM item was last used. */
  age_warm: number
  /** Seconds since the oldest COLD item (the next to evict) was last used. */
  age: number
  /** Live items removed to make room. */
  evicted: number
  /** Evicted items that had a TTL. */
  evicted_nonzero: number
  /** Seconds since the last eviction victim was last used. */
  evicted_time: number
  /** Stores refused because no memory could be found (with `evict: false`, or all busy). */
  outofmemory: number
  /** Stores that reused the chunk of an expired item. */
  reclaimed: number
  /** Items that expired without ever being read. */
  expired_unfetched: number
  /** Items evicted without ever being read. */
  evicted_unfetched: number
  /** Expired items freed by the background crawler. */
  crawler_reclaimed: number
  /** Items of this class the crawler looked at. */
  crawler_items_checked: number
  /** Items moved from HOT or WARM to COLD. */
  moves_to_cold: number
  /** Items moved from COLD to WARM (read while COLD). */
  moves_to_warm: number
  /** Items bumped within HOT or WARM. */
  moves_within_lru: number
}

/** Counters with memcached's `stats` names. */
export interface CacheStats {
  /** Unix time in seconds by the cache's clock. */
  time: number
  /** Items stored now (after an immediate `flush`, the flushed ones until they are reaped, within a second or so, as memcached counts them). */
  curr_items: number
  /** Items stored since start (every successful store counts). */
  total_items: number
  /** Bytes the stored items take (keys, values, headers). */
  bytes: number
  /** The memory limit for items (`memoryLimit`). */
  limit_maxbytes: number
  /** Bytes of slab pages allocated so far. */
  total_malloced: number
  /** Bytes of the hash table. */
  hash_bytes: number
  /** log2 of the hash table's slot count. */
  hash_power_level: number
  /** Whether the hash table is growing right now. */
  hash_is_expanding: boolean
  /** Keys read (`get`, `gets`, `gat`, `getMany` count each key). */
  cmd_get: number
  /** Store commands (`set`, `add`, `replace`, `append`, `prepend`, `cas`). */
  cmd_set: number
  /** `flush` / `flush_all` calls. */
  cmd_flush: number
  /** `touch` / `gat` calls. */
  cmd_touch: number
  /** Reads that found the key. */
  get_hits: number
  /** Reads that did not. */
  get_misses: number
  /** Reads that found the key expired. */
  get_expired: number
  /** Reads that found the key invalidated by a flush. */
  get_flushed: number
  /** Deletes of an existing key. */
  delete_hits: number
  /** Deletes of a missing key. */
  delete_misses: number
  /** `incr` on an existing key. */
  incr_hits: number
  /** `incr` on a missing key. */
  incr_misses: number
  /** `decr` on an existing key. */
  decr_hits: number
  /** `decr` on a missing key. */
  decr_misses: number
  /** `cas` that stored. */
  cas_hits: number
  /** `cas` on a missing key. */
  cas_misses: number
  /** `cas` refused because the item had changed. */
  cas_badval: number
  /** `touch`/`gat` on an existing key. */
  touch_hits: number
  /** `touch`/`gat` on a missing key. */
  touch_misses: number
  /** Live items removed to make room for new ones. */
  evictions: number
  /** Stores that reused the memory of an expired item. */
  reclaimed: number
  /** Items that expired without ever being read. */
  expired_unfetched: number
  /** Items evicted without ever being read. */
  evicted_unfetched: number
  /** Expired items freed by the background crawler. */
  crawler_reclaimed: number
  /** Items the crawler looked at (background walks and requested crawls). */
  crawler_items_checked: number
  /** Crawls started: background walks begun from the start, and requested crawls. */
  lru_crawler_starts: number
  /** Slab page moves started between classes (ferrocache's own figure). */
  slab_reassign_count: number
  /** Items a page move relocated into another chunk of their class. */
  slab_reassign_rescues: number
  /** Items a page move dropped for want of a free chunk of their class (not in `evictions`). */
  slab_reassign_evictions_nomem: number
  /** Slab pages moved between classes (automove). */
  slabs_moved: number
  /** Free pages not yet assigned to a class. */
  slab_global_page_pool: number
  /** Passes of the LRU maintainer. */
  lru_maintainer_juggles: number
  /** Per slab class with at least one page. */
  slabs: SlabClassStats[]
}

/**
 * The asynchronous cache API, implemented by the embedded `Cache` and the remote `Client`.
 * Keys are strings of 1 to 250 UTF-8 bytes without spaces or control characters.
 * `E` is the default encoding; every read and write can override it per call.
 */
export interface CacheLike<E extends Encoding = 'buffer'> {
  /** The default encoding of values read (the `encoding` option). */
  readonly encoding: E
  /** Whether `close()` has been called. */
  readonly closed: boolean
  /** The value, or `undefined` on a miss. */
  get<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<Decoded<F> | undefined>
  /** The value with its CAS token and flags, or `undefined` on a miss. */
  gets<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<CasEntry<Decoded<F>> | undefined>
  /** Every hit among `keys` (misses are absent from the Map). */
  getMany<F extends Encoding = E>(keys: Iterable<string>, options?: ReadOptions<F>): Promise<Map<string, Decoded<F>>>
  /** Read-through: the value, or on a miss the loader's result, stored with `options`
   * (ttl, flags, encoding; with `add`, so a value set while the loader ran stays) and
   * returned as `get` would return it. Concurrent misses of one
   * key share a single loader call; if it throws, every waiter rejects and nothing is
   * stored. A loader resolving `undefined` is an error (there is nothing to store). A loader
   * must not wait for a fetch of its own key (it would wait for itself; one called before
   * the loader's first `await` is refused). Without `timeout` or `signal` a call waits as
   * long as the loader: one that never settles holds the key's fetches that have neither. */
  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, options?: FetchOptions<F>): Promise<Decoded<F>>
  /** Stores the value unconditionally. Resolves `true`. */
  set<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean>
  /** Stores every entry with the same options. */
  setMany<F extends Encoding = E>(
    entries: Iterable<readonly [string, Encodable<F>]>,
    options?: WriteOptions<F>,
  ): Promise<void>
  /** Stores only if the key is missing; `false` when it exists. */
  add<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean>
  /** Stores only if the key exists; `false` when it is missing. */
  replace<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean>
  /** Appends raw bytes to an existing value; `false` when the key is missing. */
  append(key: string, value: RawValue, options?: CallOptions): Promise<boolean>
  /** Prepends raw bytes to an existing value; `false` when the key is missing. */
  prepend(key: string, value: RawValue, options?: CallOptions): Promise<boolean>
  /** Stores only if the item's CAS token is still `cas` (from `gets`); `true` when stored,
   * `false` when the item changed or is gone. */
  cas<F extends Encoding = E>(
    key: string,
    value: Encodable<F>,
    cas: bigint | number,
    options?: WriteOptions<F>,
  ): Promise<boolean>
  /** Adds `delta` (default 1) to a decimal value, wrapping at 2^64; the new value, or
   * `undefined` on a miss. Rejects when the stored value is not a number. Options after
   * the default delta: `incr(key, undefined, { signal })`. */
  incr(key: string, delta?: bigint | number, options?: CallOptions): Promise<bigint | undefined>
  /** Subtracts `delta` (default 1), stopping at 0; the new value, or `undefined`. */
  decr(key: string, delta?: bigint | number, options?: CallOptions): Promise<bigint | undefined>
  /** Sets a new ttl (ms, 0 = never); `false` on a miss. */
  touch(key: string, ttl: number, options?: CallOptions): Promise<boolean>
  /** Get-and-touch: sets a new ttl and returns the value, or `undefined` on a miss. */
  gat<F extends Encoding = E>(key: string, ttl: number, options?: ReadOptions<F>): Promise<Decoded<F> | undefined>
  /** `false` when the key was missing. */
  delete(key: string, options?: CallOptions): Promise<boolean>
  /** Deletes every key; how many existed. */
  deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number>
  /** Whether the key is live (does not count as a get or refresh its LRU position). */
  has(key: string, options?: CallOptions): Promise<boolean>
  /**
   * Invalidates every item, now or after `delay` milliseconds (rounded up to seconds). Reads
   * miss at once; the items' memory is reused for new ones before anything is evicted, and
   * `curr_items`/`bytes` count them until the background pass reaps them (within a second).
   * Over the network (`Client`) a delay is memcached's `flush_all <seconds>`, which acts from
   * the second before its deadline (up to a second early; `flush(1000)` hides at once).
   * Options after the delay: `flush(undefined, { signal })`.
   */
  flush(delay?: number, options?: CallOptions): Promise<void>
  /** Counters with memcached's stat names. */
  stats(options?: CallOptions): Promise<CacheStats>
  /** Releases the cache (memory or connection); later calls fail. */
  close(): void | Promise<void>
  /** `close()` for `await using cache: CacheLike = …`: the block's end waits for it
   * (Node 20.4 or later, TypeScript 5.2 or later). */
  [Symbol.asyncDispose](): Promise<void>
}
