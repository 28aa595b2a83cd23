// `ferrocache/keyv`: a Keyv 5 storage adapter over an embedded `Cache` or a remote
// `Client`, so Keyv and cache-manager can sit on ferrocache.
//
// memcached cannot list keys, so `clear()` cannot find a namespace's items. Instead every
// item key carries its namespace's generation, a number kept in one counter key per
// namespace; `clear()` increments it and the old generation's items become unreachable
// (they leave by ttl or LRU eviction). Each operation reads the counter first, so a clear
// by another process on the same servers is seen at once. A counter that was itself
// evicted restarts from the clock (microseconds), never from an old generation.
/**
 * A Keyv 5 storage adapter over an embedded `Cache` or a remote `Client`
 * ({@link KeyvFerrocache}), usable by Keyv and cache-manager.
 *
 * @packageDocumentation
 * @module ferrocache/keyv
 */
import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { argError } from '../arg-error'
import { Cache } from '../cache'
import { Client, type ServerSpec } from '../client'
import type { CacheLike, Encoding } from '../types'

/** Options of `new KeyvFerrocache()`. */
export interface KeyvFerrocacheOptions {
  /** The cache to store in: an embedded `Cache` or a `Client`. Default: a new embedded
   * `Cache` owned by the adapter (closed by `disconnect()`). */
  cache?: CacheLike<Encoding>
  /** Shorthand for `cache: new Client({ servers })` (owned by the adapter). */
  servers?: readonly ServerSpec[]
  /** Prefix of every key the adapter writes (default `"keyv~"`): printable ASCII, no
   * spaces and no `|` (the adapter writes one after it), at most 32 characters. Lets other
   * users of the same cache keep clear of it. */
  prefix?: string
  /** The namespace whose items `clear()` removes. Keyv sets it from its own `namespace`. */
  namespace?: string
}

/** One entry of `setMany`, as Keyv passes it. */
export interface KeyvEntry {
  /** The key, as the caller gave it to Keyv (with Keyv's own namespace prefix). */
  key: string
  /** What Keyv serialized. */
  value: unknown
  /** Time to live in milliseconds. */
  ttl?: number
}

const MAX_KEY = 250
const SAFE = /^[\x21-\x7e]*$/
/** Ends the prefix in every key. A prefix cannot hold it, so where the prefix ends is
 * known: without it a prefix that extends another ('x' and 'xnQ') could spell the other's
 * namespace token, and the two adapters shared a namespace ('Bw6W70' and 'sess' there). */
const END_OF_PREFIX = '|'

/** A lone surrogate (half of a UTF-16 pair): UTF-8 cannot hold one. */
const LONE_SURROGATE = /\p{Surrogate}/u

/** SHA-256 of `s` in base64url. UTF-8 turns each lone surrogate into U+FFFD, so 'k\uD800',
 * 'k\uDC00' and 'k\uFFFD' would be one key: a string with one is hashed as its UTF-16
 * code units instead, after a 0xff byte (which UTF-8 never holds) to keep the two apart. */
function digest(s: string): string {
  const hash = createHash('sha256')
  if (LONE_SURROGATE.test(s)) hash.update(Buffer.from([0xff])).update(Buffer.from(s, 'utf16le'))
  else hash.update(s, 'utf8')
  return hash.digest('base64url')
}

/**
 * The item ttl for a Keyv ttl: memcached's clock counts whole unix seconds, so an item
 * given `ceil(ttl / 1000)` seconds can end up to a second early (at the next tick). Keyv
 * must never find its value gone before the expiry it recorded, so the item gets one
 * more second; Keyv's own check hides the value on time (and `has` checks it too).
 * NaN, Infinity and 0 store no expiry, as Keyv records none that ever passes; a negative
 * ttl (already past for Keyv) ends the item within two seconds instead of never.
 */
function storeTtl(ttl: number | undefined): number {
  return ttl === undefined || ttl === 0 || !Number.isFinite(ttl) ? 0 : Math.max(ttl, 0) + 1000
}

/**
 * Whether a stored value is one Keyv would still return: present and, when it is Keyv's
 * `{ value, expires }` record (JSON text from Keyv's default serializer, or the object when
 * Keyv has no serializer), not past `expires`. The item itself outlives that by up to two
 * seconds (see `storeTtl`). A text another serializer wrote counts as present.
 */
function live(stored: unknown): boolean {
  if (stored === undefined) return false
  let record: unknown = stored
  if (typeof stored === 'string') {
    if (!stored.includes('"expires":')) return true // no ttl (or not JSON): nothing to parse
    try {
      record = JSON.parse(stored)
    } catch {
      return true
    }
  }
  const expires = typeof record === 'object' && record !== null ? (record as { expires?: unknown }).expires : undefined
  return typeof expires !== 'number' || Date.now() <= expires
}

/** Marks an item holding a string as it is: JSON text never starts with '~'. Keyv hands
 * the adapter strings (its serializer's output); storing them as JSON escaped every quote
 * again (about a fifth more bytes, and a stringify and parse per call). Other values (Keyv
 * without a serializer) are stored as JSON, and so is a string with a lone surrogate:
 * UTF-8 would turn it into U+FFFD, JSON escapes it (`\ud800`). */
const TEXT = '~'

/** What to store for `value`, and how. */
function encode(value: unknown): { stored: unknown; encoding: 'utf8' | 'json' } {
  return typeof value === 'string' && !LONE_SURROGATE.test(value)
    ? { stored: TEXT + value, encoding: 'utf8' }
    : { stored: value, encoding: 'json' }
}

/** The value an item holds (`undefined` for a miss). */
function decode(text: string | undefined): unknown {
  if (text === undefined) return undefined
  return text.startsWith(TEXT) ? text.slice(TEXT.length) : JSON.parse(text)
}

/** A generation nobody used before: the clock in microseconds. */
function freshGeneration(): string {
  return (BigInt(Date.now()) * 1000n).toString()
}

/** A Keyv storage adapter (`KeyvStoreAdapter`) storing in ferrocache. */
export class KeyvFerrocache extends EventEmitter {
  /** What Keyv reads as the adapter's options. */
  readonly opts: {
    /** Prefix of every key the adapter writes (default `keyv~`). */
    prefix: string
    /** Identifies the store to Keyv. */
    dialect: 'ferrocache'
  }
  /** Set by Keyv to its namespace; scopes `clear()`. */
  namespace: string | undefined
  /** The cache the adapter stores in. */
  readonly cache: CacheLike<Encoding>
  readonly #owned: boolean
  readonly #prefix: string

  constructor(options: KeyvFerrocacheOptions | CacheLike<Encoding> = {}) {
    super()
    // FERROCACHE_BAD_ARGUMENT, as every other bad argument or option of the package
    if (typeof options !== 'object' || options === null) {
      throw argError(TypeError, `KeyvFerrocache: options must be an object or a cache, got ${options === null ? 'null' : typeof options}`)
    }
    const o: KeyvFerrocacheOptions = isCacheLike(options) ? { cache: options } : options
    const prefix = o.prefix ?? 'keyv~'
    if (typeof prefix !== 'string' || prefix.length > 32 || !SAFE.test(prefix) || prefix.includes(END_OF_PREFIX)) {
      throw argError(TypeError, `KeyvFerrocache: prefix must be at most 32 printable ASCII characters without spaces or '${END_OF_PREFIX}'`)
    }
    if (o.cache !== undefined && o.servers !== undefined) {
      throw argError(TypeError, 'KeyvFerrocache: pass either cache or servers, not both')
    }
    this.#prefix = prefix + END_OF_PREFIX
    this.opts = { prefix, dialect: 'ferrocache' }
    this.namespace = o.namespace
    this.#owned = o.cache === undefined
    this.cache = o.cache ?? (o.servers !== undefined ? new Client({ servers: o.servers }) : new Cache())
  }

  /** The memcached key of this namespace's generation counter. */
  #counterKey(): string {
    return `${this.#prefix}${this.#namespaceToken()}.gen`
  }

  #namespaceToken(): string {
    const ns = this.namespace ?? ''
    // base64url has no '.', so the token cannot run into the generation that follows it.
    const b64 = Buffer.from(ns, 'utf8').toString('base64url')
    return b64.length <= 64 && !LONE_SURROGATE.test(ns) ? `n${b64}` : `h${digest(ns)}`
  }

  /** The current generation of the namespace, creating the counter if needed. */
  async #generation(): Promise<string> {
    const key = this.#counterKey()
    const current = await this.cache.get(key, { encoding: 'utf8' })
    if (current !== undefined) return current
    const fresh = freshGeneration()
    if (await this.cache.add(key, fresh, { encoding: 'utf8' })) return fresh
    // Another writer created it between our get and add: use theirs.
    return (await this.cache.get(key, { encoding: 'utf8' })) ?? fresh
  }

  /** The memcached key of a Keyv key in generation `gen`: the key itself when it is safe
   * and short enough, else its SHA-256 (the `k`/`h` tag keeps the two apart). */
  #itemKey(gen: string, key: string): string {
    const head = `${this.#prefix}${this.#namespaceToken()}.${gen}.`
    if (SAFE.test(key) && head.length + 1 + key.length <= MAX_KEY) return `${head}k${key}`
    return `${head}h${digest(key)}`
  }

  /** The value stored under `key` in this namespace, or `undefined`. A failure (a server
   * down) is also emitted as `'error'`: Keyv 5 turns a failed `get` into `undefined`
   * without an event of its own, as it does for no other operation. */
  async get<Value>(key: string): Promise<Value | undefined> {
    try {
      const gen = await this.#generation()
      return decode(await this.cache.get(this.#itemKey(gen, key), { encoding: 'utf8' })) as Value | undefined
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err)
      throw err
    }
  }

  /** The values of `keys`, in order (`undefined` for a miss). */
  async getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    const gen = await this.#generation()
    const itemKeys = keys.map((k) => this.#itemKey(gen, k))
    const hits = await this.cache.getMany(itemKeys, { encoding: 'utf8' })
    return itemKeys.map((k) => decode(hits.get(k)) as Value | undefined)
  }

  /**
   * Stores `value` (what Keyv serialized) for at least `ttl` milliseconds (none: no
   * expiry). Keyv hides the value at its exact expiry itself; the item stays up to two
   * seconds longer (memcached's whole-second clock; the item gets one extra second).
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const gen = await this.#generation()
    const { stored, encoding } = encode(value)
    return this.cache.set(this.#itemKey(gen, key), stored, { encoding, ttl: storeTtl(ttl) })
  }

  /** Stores each entry with its own ttl; one result per entry: `false` for one that failed
   * (too large, say), whose error is emitted as `'error'`, as Keyv does for each failed
   * `set` when a store has no `setMany`. */
  async setMany(entries: KeyvEntry[]): Promise<boolean[]> {
    const gen = await this.#generation()
    const settled = await Promise.allSettled(
      entries.map(async (e) => {
        const { stored, encoding } = encode(e.value)
        return this.cache.set(this.#itemKey(gen, e.key), stored, { encoding, ttl: storeTtl(e.ttl) })
      }),
    )
    return settled.map((r) => {
      if (r.status === 'fulfilled') return r.value
      if (this.listenerCount('error') > 0) this.emit('error', r.reason)
      return false
    })
  }

  /** Deletes `key`; `false` if it was not there. */
  async delete(key: string): Promise<boolean> {
    const gen = await this.#generation()
    return this.cache.delete(this.#itemKey(gen, key))
  }

  /** `true` when every key existed (and is now gone). */
  async deleteMany(keys: string[]): Promise<boolean> {
    const gen = await this.#generation()
    const itemKeys = new Set(keys.map((k) => this.#itemKey(gen, k)))
    const deleted = await this.cache.deleteMany(itemKeys)
    return deleted === itemKeys.size
  }

  /** Whether `key` is stored and not past the expiry Keyv recorded (a read: Keyv calls this
   * instead of its own check, and the item outlives that expiry by up to two seconds). */
  async has(key: string): Promise<boolean> {
    const gen = await this.#generation()
    return live(decode(await this.cache.get(this.#itemKey(gen, key), { encoding: 'utf8' })))
  }

  /** `has` for each key, in order. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const gen = await this.#generation()
    const itemKeys = keys.map((k) => this.#itemKey(gen, k))
    const hits = await this.cache.getMany(itemKeys, { encoding: 'utf8' })
    return itemKeys.map((k) => live(decode(hits.get(k))))
  }

  /** Removes this namespace's items (and only those) by moving it to a new generation. */
  async clear(): Promise<void> {
    const key = this.#counterKey()
    if ((await this.cache.incr(key)) === undefined) {
      // No counter (never created, or evicted): whatever was stored under it is already
      // unreachable, since a recreated counter starts from the clock; start afresh.
      await this.cache.set(key, freshGeneration(), { encoding: 'utf8' })
    }
  }

  /** Closes the cache if the adapter created it; a cache passed in stays open. */
  async disconnect(): Promise<void> {
    if (this.#owned) await this.cache.close()
  }
}

function isCacheLike(x: KeyvFerrocacheOptions | CacheLike<Encoding>): x is CacheLike<Encoding> {
  return typeof (x as Partial<CacheLike<Encoding>>).get === 'function' && typeof (x as Partial<CacheLike<Encoding>>).getMany === 'function'
}

/** `new Keyv(createKeyvFerrocache(...))`: the adapter, for code that prefers a function. */
export function createKeyvFerrocache(options?: KeyvFerrocacheOptions | CacheLike<Encoding>): KeyvFerrocache {
  return new KeyvFerrocache(options)
}

export default KeyvFerrocache
