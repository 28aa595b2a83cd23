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

/** Options of a read. */
export interface ReadOptions<E extends Encoding = Encoding> {
  /** Overrides the cache's encoding for this call. */
  encoding?: E
}

/** Options of a write. */
export interface WriteOptions<E extends Encoding = Encoding> {
  /** Time to live in milliseconds; 0 or omitted = never expires. memcached counts whole
   * seconds, so the ttl is rounded up to the next second. */
  ttl?: number
  /** 32-bit unsigned client flags stored with the item (default 0). */
  flags?: number
  /** How to encode the value (the cache's encoding by default). */
  encoding?: E
}

/** Produces the value of a missing key for `fetch` (its result is stored, then returned). */
export type FetchLoader<V> = (key: string) => V | PromiseLike<V>

/** A value with its CAS token and client flags (`gets`). */
export interface CasEntry<V> {
  value: V
  /** The item's compare-and-swap token; pass it to `cas()`. */
  cas: bigint
  flags: number
}

/** One slab class, named as memcached's `stats slabs` / `stats items`. */
export interface SlabClassStats {
  id: number
  chunk_size: number
  chunks_per_page: number
  total_pages: number
  total_chunks: number
  used_chunks: number
  free_chunks: number
  mem_requested: number
  get_hits: number
  cmd_set: number
  delete_hits: number
  incr_hits: number
  decr_hits: number
  cas_hits: number
  cas_badval: number
  touch_hits: number
  number: number
  number_hot: number
  number_warm: number
  number_cold: number
  age_hot: number
  age_warm: number
  age: number
  evicted: number
  evicted_nonzero: number
  evicted_time: number
  outofmemory: number
  reclaimed: number
  expired_unfetched: number
  evicted_unfetched: number
  crawler_reclaimed: number
  moves_to_cold: number
  moves_to_warm: number
  moves_within_lru: number
}

/** Counters with memcached's `stats` names. */
export interface CacheStats {
  /** Unix time in seconds by the cache's clock. */
  time: number
  curr_items: number
  total_items: number
  bytes: number
  limit_maxbytes: number
  total_malloced: number
  hash_bytes: number
  hash_power_level: number
  hash_is_expanding: boolean
  cmd_get: number
  cmd_set: number
  cmd_flush: number
  cmd_touch: number
  get_hits: number
  get_misses: number
  get_expired: number
  get_flushed: number
  delete_hits: number
  delete_misses: number
  incr_hits: number
  incr_misses: number
  decr_hits: number
  decr_misses: number
  cas_hits: number
  cas_misses: number
  cas_badval: number
  touch_hits: number
  touch_misses: number
  evictions: number
  reclaimed: number
  expired_unfetched: number
  evicted_unfetched: number
  crawler_reclaimed: number
  slab_reassign_count: number
  slabs_moved: number
  slab_global_page_pool: number
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
  /** The value, or `undefined` on a miss. */
  get<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<Decoded<F> | undefined>
  /** The value with its CAS token and flags, or `undefined` on a miss. */
  gets<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<CasEntry<Decoded<F>> | undefined>
  /** Every hit among `keys` (misses are absent from the Map). */
  getMany<F extends Encoding = E>(keys: Iterable<string>, options?: ReadOptions<F>): Promise<Map<string, Decoded<F>>>
  /** Read-through: the value, or on a miss the loader's result, stored with `options`
   * (ttl, flags, encoding) and returned as `get` would return it. Concurrent misses of one
   * key share a single loader call; if it throws, every waiter rejects and nothing is
   * stored. A loader resolving `undefined` is an error (there is nothing to store). */
  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, options?: WriteOptions<F>): Promise<Decoded<F>>
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
  append(key: string, value: RawValue): Promise<boolean>
  /** Prepends raw bytes to an existing value; `false` when the key is missing. */
  prepend(key: string, value: RawValue): Promise<boolean>
  /** Stores only if the item's CAS token is still `cas` (from `gets`); `true` when stored,
   * `false` when the item changed or is gone. */
  cas<F extends Encoding = E>(
    key: string,
    value: Encodable<F>,
    cas: bigint | number,
    options?: WriteOptions<F>,
  ): Promise<boolean>
  /** Adds `delta` (default 1) to a decimal value, wrapping at 2^64; the new value, or
   * `undefined` on a miss. Rejects when the stored value is not a number. */
  incr(key: string, delta?: bigint | number): Promise<bigint | undefined>
  /** Subtracts `delta` (default 1), stopping at 0; the new value, or `undefined`. */
  decr(key: string, delta?: bigint | number): Promise<bigint | undefined>
  /** Sets a new ttl (ms, 0 = never); `false` on a miss. */
  touch(key: string, ttl: number): Promise<boolean>
  /** Get-and-touch: sets a new ttl and returns the value, or `undefined` on a miss. */
  gat<F extends Encoding = E>(key: string, ttl: number, options?: ReadOptions<F>): Promise<Decoded<F> | undefined>
  /** `false` when the key was missing. */
  delete(key: string): Promise<boolean>
  /** Deletes every key; how many existed. */
  deleteMany(keys: Iterable<string>): Promise<number>
  /** Whether the key is live (does not count as a get or refresh its LRU position). */
  has(key: string): Promise<boolean>
  /** Invalidates every item, now or after `delay` milliseconds (rounded up to seconds). */
  flush(delay?: number): Promise<void>
  /** Counters with memcached's stat names. */
  stats(): Promise<CacheStats>
  /** Releases the cache (memory or connection); later calls fail. */
  close(): void | Promise<void>
}
