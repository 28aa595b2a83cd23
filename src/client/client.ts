// The remote cache: the embedded `Cache`'s Promise API (CacheLike) over one or many
// memcached-protocol servers (ferrocached, memcached), or a proxy in front of them. Each
// key goes to one server by ketama; requests are meta commands (one reply each, flags and
// CAS in one round trip), text commands or binary packets (`protocol`, wire.ts, binary.ts),
// pipelined on a few connections per server.
import { inspect, type InspectOptions } from 'node:util'
import { abortable } from '../abort'
import { argumentsChecked } from '../arg-error'
import { entryKeyName, keyArray, splitEntries } from '../batch-args'
import { checkRaw, encodeValue } from '../encoding'
import { callSignal, parseWrite, readEncoding, toU64, type Write } from '../options'
import { delayToSeconds, requiredTtlToExptime, type NowMs } from '../ttl'
import { Fetcher } from '../fetch'
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
} from '../types'
import type { Pending } from './connection'
import { cacheError } from './errors'
import { Continuum } from './ketama'
import { checkKey } from './keys'
import { ServerNode, type BatchGroup } from './node'
import { parseClientOptions, type ClientOptions } from './options'
import { ARITH, FOUND, GET, GETS, OK, STORE, type Kind } from './requests'
import { sumStats, toCacheStats } from './stats'
import type { BatchResult, Bytes, Reject, StoreMode, Wire } from './wire'

/** The clock a ttl over 30 days is counted from: memcached takes such an exptime as a unix
 * time and reads it on the server's clock, which no test fakes. Taken when this module
 * loads, so a clock faked later (jest/sinon/vitest fake timers, MockDate) moves the app's
 * time, not where its items end: set to 2020, it stored every such item expired. */
const wallClock: NowMs = Date.now

/** A request as `Connection.send` takes it: text (or a binary packet), and for a store the
 * value and the tail. */
type Wired = [text: Bytes, value?: RawValue, tail?: string]

/** The requests of one server's share of a batch, and what reads their replies. */
interface BatchPart {
  pending: Pending
  count: number
  request(j: number): Wired
  /** What follows the requests (binary: the noop ending a batch of quiet requests). */
  end?(): Bytes | undefined
}

/** A CAS token no item holds (binary `cas(…, 0)`: see `#store`). */
const NO_ITEM_CAS = 0xffff_ffff_ffff_ffffn

/** append/prepend: raw bytes, no flags or ttl. */
const RAW: Write = { flags: 0, exptime: 0, encoding: 'buffer' }

/** Every key of a batch checked, by index (a hole of a sparse array too: it is no string). */
function checkKeys(list: string[]): string[] {
  for (let i = 0; i < list.length; i++) checkKey(list[i], `keys[${i}]`)
  return list
}

/** What twemproxy (nutcracker 0.5) does not forward, and what to do instead. */
const NOT_FORWARDED = {
  gat: ['gat', 'use get and touch'],
  flush: ['flush_all', 'flush through a Client connected to the servers themselves'],
  stats: ['stats', "read the servers' stats through a Client connected to them, or nutcracker's own stats port"],
} as const

/**
 * A cache spread over memcached-protocol servers, with the same methods as the embedded
 * `Cache` (without the `…Sync` twins: a network call cannot be synchronous).
 *
 * ```ts
 * const cache = new Client({ servers: ['10.0.0.1:11211', '10.0.0.2:11211'] })
 * await cache.set('user:1', JSON.stringify(user), { ttl: 60_000 })
 * const buf = await cache.get('user:1') // Buffer | undefined
 * await cache.close()
 *
 * // through twemproxy/nutcracker (text commands only), or logging in to `-Y` servers
 * const proxied = new Client({ servers: ['127.0.0.1:22121'], protocol: 'twemproxy' })
 * const loggedIn = new Client({ servers: ['[fd00::5]:11211'], username: 'app', password: 's3cret' })
 * // memcached's binary protocol, logging in with SASL PLAIN to servers started with -S
 * const sasl = new Client({ servers: ['10.0.0.1:11211'], protocol: 'binary', username: 'app', password: 's3cret' })
 * ```
 */
export class Client<E extends Encoding = 'buffer'> implements CacheLike<E> {
  readonly #nodes: ServerNode[]
  /** Replicas of each of `#nodes` (same index), with `readFrom: 'replica'`. */
  readonly #replicas: ServerNode[][]
  readonly #readFromReplica: boolean
  #nextReplica = 0
  readonly #encoding: Encoding
  readonly #wire: Wire
  readonly #remove: boolean
  readonly #timeout: number
  readonly #plain: Write
  #continuum: Continuum
  #closed = false
  /** What `close()` returns, every time it is called. */
  #closing: Promise<void> | undefined

  constructor(options: ClientOptions<E>) {
    const o = argumentsChecked(() => parseClientOptions(options))
    this.#encoding = o.encoding
    this.#wire = o.settings.wire
    this.#remove = o.remove
    this.#timeout = o.settings.timeout
    this.#plain = parseWrite(undefined, o.encoding)
    this.#nodes = o.servers.map((s) => new ServerNode(s, o.settings, () => this.#rebuild()))
    this.#readFromReplica = o.readFromReplica
    this.#replicas = o.servers.map((s) => (s.replicas ?? []).map((r) => new ServerNode(r, o.settings, () => {})))
    this.#continuum = new Continuum(this.#nodes)
  }

  /** The default encoding of values read. */
  get encoding(): E {
    return this.#encoding as E
  }

  /** The dialect spoken: `'meta'`, `'text'`, `'twemproxy'` or `'binary'` (the `protocol` option). */
  get protocol(): 'meta' | 'text' | 'twemproxy' | 'binary' {
    return this.#wire.protocol
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#closed
  }

  /** `host:port` of each server, and whether it is currently marked dead. */
  get servers(): Array<{
    /** `host:port` */
    server: string
    /** Marked dead after `removeAfter` failures, until a probe succeeds. */
    dead: boolean
  }> {
    return this.#nodes.map((n) => ({ server: n.label, dead: n.dead }))
  }

  /** `host:port` of the server `key` goes to now (ketama over the live servers). */
  serverFor(key: string): string {
    return this.#route(checkKey(key)).label
  }

  #rebuild(): void {
    // Without `remove` a dead server keeps its points: its keys fail fast instead of
    // moving (and coming back stale when it returns).
    if (this.#remove) this.#continuum = new Continuum(this.#nodes, this.#nodes.map((n) => !n.dead))
  }

  /** Throws FERROCACHE_CLOSED once `close()` was called. Checked before keys: a closed
   * `Cache` refuses every call whatever its key (its engine checks both, closed first). */
  #open(): void {
    if (this.#closed) throw cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed')
  }

  /** `key` checked, on an open client. */
  #key(key: string): string {
    this.#open()
    return checkKey(key)
  }

  /** A batch's keys checked, on an open client. */
  #keys(list: string[]): string[] {
    this.#open()
    return checkKeys(list)
  }

  #route(key: string): ServerNode {
    this.#open()
    if (this.#nodes.length === 1) return this.#nodes[0]!
    const i = this.#continuum.lookup(key)
    if (i === -1) throw cacheError(Error, 'FERROCACHE_NO_SERVERS', 'every server is marked dead')
    return this.#nodes[i]!
  }

  /** Where a read of `key` goes: the key's server, or in turn one of its live replicas. */
  #readRoute(key: string): ServerNode {
    const node = this.#route(key)
    if (!this.#readFromReplica) return node
    const replicas = this.#replicas[this.#nodes.indexOf(node)]!
    for (let tries = 0; tries < replicas.length; tries++) {
      const r = replicas[this.#nextReplica++ % replicas.length]!
      // a replica that just failed is skipped too: the primary can answer, where the
      // replica would refuse every read for `retry` ms before it is marked dead; so is
      // one with `maxPending` requests waiting (stopped, or slower than the reads come)
      if (!r.down && !r.full) return r
    }
    return node
  }

  #write(options: WriteOptions | undefined): Write {
    return options === undefined ? this.#plain : parseWrite(options, this.#encoding, wallClock)
  }

  /** One request for `key`; the Promise settles with what `kind` reads from the reply. */
  #one<T>(key: string, kind: Kind, encoding: Encoding, text: Bytes, value?: RawValue, tail?: string, read = false): Promise<T> {
    const node = read ? this.#readRoute(key) : this.#route(key)
    return new Promise<T>((resolve, reject) => {
      const p = this.#wire.one(kind, Date.now() + this.#timeout, encoding, node.label, resolve as (v: unknown) => void, reject)
      node.send(key, p, text, value, tail)
    })
  }

  /** Rejects what twemproxy would answer by closing the connection (and every request on it). */
  #forwarded(method: keyof typeof NOT_FORWARDED): void {
    if (this.#wire.protocol !== 'twemproxy') return
    const [command, instead] = NOT_FORWARDED[method]
    throw cacheError(
      Error,
      'FERROCACHE_NOT_FORWARDED',
      `${method}() is not available with protocol 'twemproxy': nutcracker 0.5 does not forward '${command}' (it closes the connection); ${instead}`,
    )
  }

  /** Groups key indexes by the server each key goes to. */
  #group(keys: readonly string[], read: boolean): Map<ServerNode, number[]> {
    const groups = new Map<ServerNode, number[]>()
    keys.forEach((key, i) => {
      const node = read ? this.#readRoute(key) : this.#route(key)
      const list = groups.get(node)
      if (list === undefined) groups.set(node, [i])
      else list.push(i)
    })
    return groups
  }

  /** One pipelined batch per server, split there by connection (a key goes where requests
   * on it are in flight, so it is answered in order with them): `part` gives the requests
   * for some key indexes, all written together, and what reads their replies. */
  #batch(
    keys: readonly string[],
    read: boolean,
    part: (indexes: number[], deadline: number, server: string, resolve: (r: BatchResult) => void, reject: Reject) => BatchPart,
  ): Promise<Array<BatchResult & { indexes: number[] }>> {
    // checked here too: with no keys nothing is routed, and a closed client must still
    // reject (as the embedded Cache does), not resolve an empty batch
    if (this.#closed) throw cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed')
    const perServer = [...this.#group(keys, read)].map(([node, indexes]) =>
      node.sendBatch(
        indexes.map((i) => keys[i]!),
        (positions): BatchGroup<BatchResult & { indexes: number[] }> => {
          const mine = positions.map((j) => indexes[j]!)
          let p: BatchPart | undefined
          const result = new Promise<BatchResult & { indexes: number[] }>((resolve, reject) => {
            p = part(mine, Date.now() + this.#timeout, node.label, (r) => resolve({ indexes: mine, ...r }), reject)
          })
          const made = p!
          return {
            pending: made.pending,
            result,
            // One queue entry for the part; every request goes into the same write.
            write: (conn) => {
              for (let j = 0; j < made.count; j++) {
                const [t, v, tail] = made.request(j)
                // counted by keys (a text getMany sends up to 100 on a line) for maxPending
                if (j === 0) conn.send(made.pending, t, v, tail, mine.length)
                else conn.sendMore(t, v, tail)
              }
              const end = made.end?.()
              if (end !== undefined) conn.sendMore(end)
            },
          }
        },
      ),
    )
    return Promise.all(perServer).then((parts) => parts.flat())
  }

  async get<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<Decoded<F> | undefined> {
    if (options === undefined) return this.#one(this.#key(key), GET, this.#encoding, this.#wire.get(key), undefined, undefined, true)
    const encoding = readEncoding(options, this.#encoding)
    return abortable(this.#one(this.#key(key), GET, encoding, this.#wire.get(key), undefined, undefined, true), options.signal)
  }

  async gets<F extends Encoding = E>(key: string, options?: ReadOptions<F>): Promise<CasEntry<Decoded<F>> | undefined> {
    const encoding = readEncoding(options, this.#encoding)
    return abortable(this.#one(this.#key(key), GETS, encoding, this.#wire.gets(key)), options?.signal)
  }

  async getMany<F extends Encoding = E>(keys: Iterable<string>, options?: ReadOptions<F>): Promise<Map<string, Decoded<F>>> {
    const encoding = readEncoding(options, this.#encoding)
    const list = this.#keys(keyArray(keys))
    const found = new Array<unknown>(list.length)
    const batch = this.#batch(list, true, (indexes, deadline, server, resolve, reject) => {
      const { pending, lines } = this.#wire.getMany(indexes.map((i) => list[i]!), deadline, encoding, server, resolve, reject)
      return { pending, count: lines.length, request: (j) => [lines[j]!] }
    })
    const results = await abortable(batch, options?.signal)
    for (const r of results) r.indexes.forEach((at, j) => (found[at] = r.values[j]))
    const out = new Map<string, Decoded<F>>()
    list.forEach((k, i) => {
      if (found[i] !== undefined) out.set(k, found[i] as Decoded<F>)
    })
    return out
  }

  /** A store, its arguments checked in the embedded Cache's order: the options (`w`, parsed
   * by the caller), the CAS token, the value, then the key. */
  #store(mode: StoreMode, key: string, value: unknown, w: Write, cas?: bigint, signal?: AbortSignal): Promise<boolean> {
    const raw = encodeValue(value, w.encoding)
    this.#key(key)
    // A binary header's CAS 0 means "no CAS" (a plain set): token 0 cannot be sent. No
    // item holds it (servers hand out CAS from 1), nor 2^64-1, which goes instead: the
    // server still refuses a value too large, and the compare fails, as `ms … C0` does.
    if (cas === 0n && this.#wire.binary) cas = NO_ITEM_CAS
    const [text, tail] = this.#wire.store(key, mode, w, cas)
    return abortable(this.#one(key, STORE, w.encoding, text, raw, tail), signal)
  }

  readonly #fetcher: Fetcher<E> = new Fetcher<E>(this)

  /** Read-through with one loader call per missing key, however many callers wait: see
   * `CacheLike.fetch`. */
  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, options?: FetchOptions<F>): Promise<Decoded<F>> {
    return this.#fetcher.fetch(key, loader, options)
  }

  async set<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean> {
    return this.#store('set', key, value, this.#write(options), undefined, options?.signal)
  }

  async setMany<F extends Encoding = E>(entries: Iterable<readonly [string, Encodable<F>]>, options?: WriteOptions<F>): Promise<void> {
    const w = this.#write(options)
    const { keys, values } = splitEntries(entries, w.encoding)
    this.#open()
    for (let i = 0; i < keys.length; i++) checkKey(keys[i], entryKeyName(i))
    const batch = this.#batch(keys, false, (indexes, deadline, server, resolve, reject) => ({
      pending: this.#wire.many(indexes.length, deadline, server, resolve, reject),
      count: indexes.length,
      request: (j) => {
        const i = indexes[j]!
        const [text, tail] = this.#wire.batchStore(keys[i]!, w)
        return [text, values[i]!, tail]
      },
      end: () => this.#wire.batchEnd(),
    }))
    await abortable(batch, options?.signal)
  }

  async add<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean> {
    return this.#store('add', key, value, this.#write(options), undefined, options?.signal)
  }

  async replace<F extends Encoding = E>(key: string, value: Encodable<F>, options?: WriteOptions<F>): Promise<boolean> {
    return this.#store('replace', key, value, this.#write(options), undefined, options?.signal)
  }

  async append(key: string, value: RawValue, options?: CallOptions): Promise<boolean> {
    const signal = callSignal(options)
    return this.#store('append', key, checkRaw(value), RAW, undefined, signal)
  }

  async prepend(key: string, value: RawValue, options?: CallOptions): Promise<boolean> {
    const signal = callSignal(options)
    return this.#store('prepend', key, checkRaw(value), RAW, undefined, signal)
  }

  async cas<F extends Encoding = E>(key: string, value: Encodable<F>, cas: bigint | number, options?: WriteOptions<F>): Promise<boolean> {
    const w = this.#write(options)
    return this.#store('cas', key, value, w, toU64('cas', cas), options?.signal)
  }

  #arith(key: string, incr: boolean, delta: bigint | number, options: CallOptions | undefined): Promise<bigint | undefined> {
    const signal = callSignal(options)
    const d = toU64('delta', delta)
    return abortable(this.#one(this.#key(key), ARITH, 'buffer', this.#wire.arith(key, incr, d)), signal)
  }

  async incr(key: string, delta: bigint | number = 1n, options?: CallOptions): Promise<bigint | undefined> {
    return this.#arith(key, true, delta, options)
  }

  async decr(key: string, delta: bigint | number = 1n, options?: CallOptions): Promise<bigint | undefined> {
    return this.#arith(key, false, delta, options)
  }

  async touch(key: string, ttl: number, options?: CallOptions): Promise<boolean> {
    const signal = callSignal(options)
    const exptime = requiredTtlToExptime(ttl, wallClock)
    return abortable(this.#one(this.#key(key), FOUND, 'buffer', this.#wire.touch(key, exptime)), signal)
  }

  async gat<F extends Encoding = E>(key: string, ttl: number, options?: ReadOptions<F>): Promise<Decoded<F> | undefined> {
    const encoding = readEncoding(options, this.#encoding)
    const exptime = requiredTtlToExptime(ttl, wallClock, 'gat')
    this.#key(key)
    this.#forwarded('gat')
    return abortable(this.#one(key, GET, encoding, this.#wire.gat(key, exptime)), options?.signal)
  }

  async delete(key: string, options?: CallOptions): Promise<boolean> {
    const signal = callSignal(options)
    return abortable(this.#one(this.#key(key), FOUND, 'buffer', this.#wire.delete(key)), signal)
  }

  async deleteMany(keys: Iterable<string>, options?: CallOptions): Promise<number> {
    const signal = callSignal(options)
    const list = this.#keys(keyArray(keys))
    const batch = this.#batch(list, false, (indexes, deadline, server, resolve, reject) => ({
      pending: this.#wire.many(indexes.length, deadline, server, resolve, reject),
      count: indexes.length,
      request: (j) => [this.#wire.batchDelete(list[indexes[j]!]!)],
      end: () => this.#wire.batchEnd(),
    }))
    const results = await abortable(batch, signal)
    return results.reduce((n, r) => n + r.hits, 0)
  }

  async has(key: string, options?: CallOptions): Promise<boolean> {
    const signal = callSignal(options)
    return abortable(this.#one(this.#key(key), this.#wire.hasKind, 'buffer', this.#wire.has(key)), signal)
  }

  /** Every server that is not marked dead (`remove` or not: it only decides where dead servers' keys go). */
  #live(): ServerNode[] {
    if (this.#closed) throw cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed')
    const live = this.#nodes.filter((n) => !n.dead)
    if (live.length === 0) throw cacheError(Error, 'FERROCACHE_NO_SERVERS', 'every server is marked dead')
    return live
  }

  /** Invalidates every item on every live server: after the requests made before it
   * are answered, and before those made after it are sent. */
  async flush(delay?: number, options?: CallOptions): Promise<void> {
    const signal = callSignal(options)
    const seconds = delayToSeconds(delay)
    this.#forwarded('flush')
    const all = Promise.all(
      this.#live().map(
        (node) =>
          new Promise((resolve, reject) => {
            const request = this.#wire.flush(seconds)
            node.sendFenced(this.#wire.one(OK, Date.now() + this.#timeout, 'buffer', node.label, resolve, reject), request)
          }),
      ),
    )
    await abortable(all, signal)
  }

  /** Each live server's counters, by `host:port`. */
  async statsByServer(options?: CallOptions): Promise<Map<string, CacheStats>> {
    const signal = callSignal(options)
    this.#forwarded('stats')
    const live = this.#live()
    const all = Promise.all(
      live.map(
        (node) =>
          new Promise<Map<string, string>>((resolve, reject) => {
            const { pending, request } = this.#wire.stats(Date.now() + this.#timeout, node.label, resolve, reject)
            node.sendAny(pending, request)
          }),
      ),
    )
    const replies = await abortable(all, signal)
    return new Map(live.map((n, i) => [n.label, toCacheStats(replies[i]!)]))
  }

  /** The live servers' counters summed (memcached's names; `time` is the latest clock). */
  async stats(options?: CallOptions): Promise<CacheStats> {
    return sumStats([...(await this.statsByServer(options)).values()])
  }

  /** Lets requests in flight finish (each within `timeout`), then closes every
   * connection; later calls reject with FERROCACHE_CLOSED. */
  close(): Promise<void> {
    // a second call waits for the same requests as the first (the nodes have let go of
    // their connections by then: closing them again would resolve at once)
    this.#closed = true
    this.#closing ??= Promise.all([...this.#nodes, ...this.#replicas.flat()].map((n) => n.close())).then(() => {})
    return this.#closing
  }

  /** `close()`, for `await using cache = new Client(…)`: the block's end waits for it
   * (Node 20.4 or later, TypeScript 5.2 or later). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /** What `util.inspect` and `console.log` show: `Client { closed: false, protocol: 'meta',
   * encoding: 'buffer', servers: [ { server: '127.0.0.1:11211', dead: false } ] }` (the
   * getters', with nothing sent to the servers). */
  [inspect.custom](depth: number | null, options: InspectOptions & { stylize(text: string, styleType: 'special'): string }): string | this {
    // options typed by shape: @types/node 26 has no InspectOptionsStylized (InspectContext)
    if (!(#closed in this)) return this // Client.prototype: Node's own display
    const name = this.constructor.name
    if (depth !== null && depth < 0) return options.stylize(`[${name}]`, 'special')
    const shown = { closed: this.#closed, protocol: this.#wire.protocol, encoding: this.#encoding, servers: this.servers }
    return `${name} ${inspect(shown, { ...options, depth })}`
  }
}
