// One server of the pool: a few pipelined connections, and its health. A connection
// failure makes the server "failing": requests to it fail at once for `retry` ms, then
// a new connection is tried. After `removeAfter` failures in a row it is dead: it stays
// out for `reconnect` ms, then a background probe (`mn`; text and binary: `version`)
// brings it back.
// (libmemcached's RETRY_TIMEOUT / SERVER_FAILURE_LIMIT / DEAD_TIMEOUT, twemproxy's
// server_retry_timeout / server_failure_limit.)
import { hostPort } from './address'
import { Connection, type Pending } from './connection'
import { cacheError, type CacheError } from './errors'
import type { Login } from './login'
import type { TlsSettings } from './tls'
import type { Bytes, Wire } from './wire'

export interface NodeSettings {
  poolSize: number
  timeout: number
  connectTimeout: number
  retry: number
  removeAfter: number
  reconnect: number
  /** Requests waiting for replies (queued on the pool or held by a flush) at which new
   * ones are refused at once with FERROCACHE_QUEUE_FULL. */
  maxPending: number
  /** The dialect: decides the probe. */
  wire: Wire
  /** Sent first on every connection. */
  login: Login | undefined
}

export interface NodeAddress {
  host: string
  port: number
  weight: number
  name?: string
  /** Replicas of this server, for `readFrom: 'replica'`. */
  replicas?: NodeAddress[]
  /** Connect with TLS. */
  tls?: TlsSettings
}

export class ServerNode {
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly name: string | undefined
  /** `host:port`, for messages and per-server results. */
  readonly label: string
  readonly #settings: NodeSettings
  readonly #tls: TlsSettings | undefined
  readonly #onChange: (node: ServerNode) => void
  /** The pool's open connections. */
  #conns: Connection[] = []
  /** The pool's connections by `poolIndex`. */
  readonly #byIndex: Array<Connection | undefined>
  /** Each key's latest request, while it may be in flight: its connection's `poolIndex`
   * << 24 | its number there (`Connection.queued`, low 24 bits). The key's next requests
   * go on that connection until it is answered. Settled entries are swept as it grows. */
  #latest = new Map<string, number>()
  #sweepAt = SWEEP_MIN
  /** A flush (`sendFenced`) waits for the requests made before it, or for its answer:
   * requests made meanwhile wait in `#held`, in order. */
  #fenced = false
  #held: Held[] = []
  /** The requests `#held` stands for (a batch's keys each). */
  #heldRequests = 0
  /** `#lift` is sending the held requests. */
  #liftRunning = false
  /** `close()` waiting for the fence to lift. */
  readonly #unfenced: Array<() => void> = []
  #failures = 0
  /** What the last failure was, for the messages of requests refused meanwhile. */
  #lastFailure = ''
  /** Within `retry` ms of the last counted failure (`#openRetryWindow`). */
  #inRetry = false
  #retryTimer: NodeJS.Timeout | undefined
  #dead = false
  #probeTimer: NodeJS.Timeout | undefined
  /** The probe's connection while its answer is awaited (not in the pool yet). */
  #probing: Connection | undefined
  /** Connections let go when the server was marked dead, until their requests in flight
   * settle: `close()` waits for those too. */
  readonly #draining = new Set<Connection>()
  #closed = false

  constructor(address: NodeAddress, settings: NodeSettings, onChange: (node: ServerNode) => void) {
    this.host = address.host
    this.port = address.port
    this.weight = address.weight
    this.name = address.name
    this.label = hostPort(address.host, address.port)
    this.#settings = settings
    this.#tls = address.tls
    this.#onChange = onChange
    this.#byIndex = new Array<Connection | undefined>(settings.poolSize).fill(undefined)
  }

  /** Marked dead (after `removeAfter` failures) and not yet back. */
  get dead(): boolean {
    return this.#dead
  }

  /** Dead, or failed within the last `retry` ms: a new request would likely fail
   * (`FERROCACHE_SERVER_FAILING`), so a read that has another server goes there. */
  get down(): boolean {
    return this.#dead || this.#failing()
  }

  /** `maxPending` requests wait for its replies: a new one would be refused
   * (`FERROCACHE_QUEUE_FULL`), so a read that has another server goes there. */
  get full(): boolean {
    return this.#full() !== undefined
  }

  /** A connection failed within the last `retry` ms. */
  #failing(): boolean {
    return this.#failures > 0 && this.#inRetry
  }

  /** Sends one request on `key`, or fails `p` with the reason it cannot go. It goes on the
   * connection where the key's latest request is still in flight, so the server answers
   * them in the order they were made; else on the least busy one. */
  send(key: string, p: Pending, text: Bytes, value?: Bytes, tail?: string): void {
    const refused = this.#refused() ?? this.#full()
    if (refused !== undefined) return p.fail(refused)
    if (this.#fenced) this.#hold(key, p, text, value, tail)
    else this.#sendNow(key, p, text, value, tail)
  }

  // apart from `send`, so its arguments are only captured when a fence holds them
  #hold(key: string, p: Pending, text: Bytes, value?: Bytes, tail?: string): void {
    this.#holdGo(() => this.#sendNow(key, p, text, value, tail), 1)
  }

  #sendNow(key: string, p: Pending, text: Bytes, value?: Bytes, tail?: string): void {
    const conn = this.#connection(key)
    if (!(conn instanceof Connection)) return p.fail(conn)
    conn.send(p, text, value, tail)
    this.#inFlight(key, conn)
  }

  /** Sends a batch on `keys` (this server's share), split by the connection each key must
   * go on: where its latest request is in flight, else (all the others) the least busy
   * one. `group` makes one part for the keys at `positions`: what reads its replies, and
   * what writes its requests. Resolves with every part's result. */
  sendBatch<R>(keys: readonly string[], group: (positions: number[]) => BatchGroup<R>): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      // a batch larger than maxPending still goes when nothing waits: only its start is bounded
      const refused = this.#refused() ?? this.#full()
      if (refused !== undefined) {
        const all = group(keys.map((_, j) => j))
        all.pending.fail(refused)
        return all.result.then((r) => resolve([r]), reject)
      }
      const go = (): void => {
        const parts = new Map<Connection | CacheError, number[]>()
        let free: Connection | CacheError | undefined
        keys.forEach((key, j) => {
          const target = this.#pinned(key) ?? (free ??= this.#dead ? this.#deadError() : this.#pick())
          const list = parts.get(target)
          if (list === undefined) parts.set(target, [j])
          else list.push(j)
        })
        const results: Array<Promise<R>> = []
        for (const [target, positions] of parts) {
          const g = group(positions)
          results.push(g.result)
          if (!(target instanceof Connection)) {
            g.pending.fail(target)
            continue
          }
          g.write(target)
          for (const j of positions) this.#inFlight(keys[j]!, target)
        }
        Promise.all(results).then(resolve, reject)
      }
      if (this.#fenced) this.#holdGo(go, keys.length)
      else go()
    })
  }

  /** Sends a request about no key (`stats`) on the least busy connection. */
  sendAny(p: Pending, text: Bytes): void {
    const refused = this.#refused() ?? this.#full()
    if (refused !== undefined) return p.fail(refused)
    const go = (): void => {
      const conn = this.#dead ? this.#deadError() : this.#pick()
      if (conn instanceof Connection) conn.send(p, text)
      else p.fail(conn)
    }
    if (this.#fenced) this.#holdGo(go, 1)
    else go()
  }

  /** Sends a request that applies to every key (`flush_all`) in order with all the
   * others: once every request made before it is answered, and before any made after
   * it is sent (those wait for its answer). */
  sendFenced(p: Pending, text: Bytes): void {
    const refused = this.#refused() ?? this.#full()
    if (refused !== undefined) return p.fail(refused)
    const start = (): void => {
      this.#fenced = true
      this.#whenIdle(() => {
        const conn = this.#dead ? this.#deadError() : this.#pick()
        if (conn instanceof Connection) return conn.send(this.#lifting(p), text)
        p.fail(conn)
        this.#lift()
      })
    }
    if (this.#fenced) this.#holdGo(start, 1)
    else start()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#probeTimer)
    clearTimeout(this.#retryTimer)
    // requests held by a flush were made before close(): they go, and are answered, first
    if (this.#fenced) await new Promise<void>((resolve) => this.#unfenced.push(resolve))
    const conns = [...this.#conns, ...this.#draining]
    this.#conns = []
    // A probe is no caller's request: it is not waited for.
    await Promise.all([...conns.map((c) => c.close()), this.#probing?.destroy()])
  }

  /** Why no request can go to this server now: closed, or marked dead. */
  #refused(): CacheError | undefined {
    if (this.#closed) return cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed')
    if (this.#dead) return this.#deadError()
    return undefined
  }

  /** FERROCACHE_QUEUE_FULL when `maxPending` requests already wait for this server's
   * replies: a server that stopped reading (or answers slower than requests come) would
   * otherwise hold every request made meanwhile in memory until its `timeout`. Not a
   * failure of the server: the requests already sent decide that. */
  #full(): CacheError | undefined {
    let waiting = this.#heldRequests
    for (const c of this.#conns) waiting += c.requests
    if (waiting < this.#settings.maxPending) return undefined
    return cacheError(
      Error,
      'FERROCACHE_QUEUE_FULL',
      `${this.label} has ${waiting} requests waiting for replies (maxPending ${this.#settings.maxPending}); refused without sending`,
      this.label,
    )
  }

  #holdGo(go: () => void, requests: number): void {
    this.#held.push({ go, requests })
    this.#heldRequests += requests
  }

  #deadError(): CacheError {
    return cacheError(Error, 'FERROCACHE_SERVER_DEAD', `${this.label} is marked dead after ${this.#failures} failures (${this.#lastFailure})`, this.label)
  }

  /** The connection for a request on `key`: where its latest one is in flight, else the
   * least busy. */
  #connection(key: string): Connection | CacheError {
    if (this.#dead) return this.#deadError()
    return this.#pinned(key) ?? this.#pick()
  }

  /** The connection where `key`'s latest request is in flight (not yet answered or failed). */
  #pinned(key: string): Connection | undefined {
    // one connection at a time: a new one opens only once the last failed with its requests
    if (this.#settings.poolSize === 1) return undefined
    const at = this.#latest.get(key)
    if (at === undefined) return undefined
    const conn = this.#byIndex[at >>> 24]
    return conn !== undefined && !conn.closed && !conn.settled(at & SEQ_MASK) ? conn : undefined
  }

  /** Notes that `key`'s latest request is the one just queued on `conn`. */
  #inFlight(key: string, conn: Connection): void {
    if (this.#settings.poolSize === 1) return
    this.#latest.set(key, (conn.poolIndex << 24) | (conn.queued & SEQ_MASK))
    if (this.#latest.size >= this.#sweepAt) this.#sweep()
  }

  /** Drops the keys whose latest request was answered; next sweep at twice what is left.
   * The few in flight go to a new map (cheaper than deleting most entries one by one). */
  #sweep(): void {
    const inFlight = new Map<string, number>()
    for (const [key, at] of this.#latest) {
      const conn = this.#byIndex[at >>> 24]
      if (conn !== undefined && !conn.closed && !conn.settled(at & SEQ_MASK)) inFlight.set(key, at)
    }
    this.#latest = inFlight
    this.#sweepAt = Math.max(SWEEP_MIN, inFlight.size * 2)
  }

  /** A connection answered all its requests: once none is in flight on the pool, the
   * record of keys in flight goes at once. Else, after a burst of many keys (a large
   * `setMany`), it kept them all until twice as many were recorded: never, with fewer
   * keys in use after it. */
  #drained(): void {
    if (this.#latest.size < SWEEP_MIN) return
    for (const c of this.#conns) if (c.pending > 0) return
    this.#latest = new Map()
    this.#sweepAt = SWEEP_MIN
  }

  /** Puts `conn` in the pool, at an index no open connection holds. */
  #join(conn: Connection): void {
    const free = this.#byIndex.findIndex((c) => c === undefined || c.closed)
    conn.poolIndex = free === -1 ? 0 : free
    // `#latest` still names the closed one's requests by this index: numbered from 0, the
    // new one would count them in flight, holding those keys to it (every key that failed
    // with the old one, until the new one had answered as many) and keeping them at sweeps
    const before = this.#byIndex[conn.poolIndex]
    if (before !== undefined) conn.numberFrom(before.queued)
    this.#byIndex[conn.poolIndex] = conn
    this.#conns.push(conn)
  }

  /** The least busy connection, a new one while the pool is not full and all are busy,
   * or the reason no request can go to this server now. */
  #pick(): Connection | CacheError {
    const best = leastBusy(this.#conns)
    if (best !== undefined && (best.pending === 0 || this.#conns.length >= this.#settings.poolSize)) return best
    if (this.#failing()) {
      if (best !== undefined) return best
      return cacheError(
        Error,
        'FERROCACHE_SERVER_FAILING',
        `${this.label} failed ${this.#failures} time(s) (${this.#lastFailure}); retrying after ${this.#settings.retry} ms`,
        this.label,
      )
    }
    const conn = this.#open()
    this.#join(conn)
    return conn
  }

  /** Calls `then` once no request is in flight on any of the pool's connections. */
  #whenIdle(then: () => void): void {
    const busy = this.#conns.filter((c) => c.pending > 0)
    let left = busy.length
    if (left === 0) return then()
    for (const c of busy) c.whenIdle(() => --left === 0 && then())
  }

  /** `p`, lifting the fence once it is answered or fails: the requests held behind it go. */
  #lifting(p: Pending): Pending {
    let lifted = false
    const lift = (): void => {
      if (lifted) return
      lifted = true
      this.#lift()
    }
    return {
      // it waited for the requests made before it: its `timeout` runs from now
      deadline: Date.now() + this.#settings.timeout,
      reply(head, buf, start, end) {
        const done = p.reply(head, buf, start, end)
        // at once: a request made when the flush's Promise settles comes after the held ones
        if (done || p.broken === true) lift()
        return done
      },
      fail(err) {
        p.fail(err)
        lift()
      },
      get broken() {
        return p.broken
      },
      get failure() {
        return p.failure
      },
    }
  }

  /** Sends the requests held by a fence, in order, until one of them fences again. */
  #lift(): void {
    this.#fenced = false
    // A held flush that fails at once (the server failing or dead) lifts its own fence
    // from inside the loop below: that loop goes on with the next one. Starting over here
    // re-sent the requests already gone, and the flush again, without end.
    if (this.#liftRunning) return
    this.#liftRunning = true
    const held = this.#held
    let i = 0
    try {
      while (i < held.length && !this.#fenced) {
        const h = held[i++]!
        this.#heldRequests -= h.requests
        h.go()
      }
    } finally {
      this.#liftRunning = false
      // a new fence keeps the rest; requests made meanwhile were pushed behind them
      this.#held = held.slice(i)
    }
    if (!this.#fenced) for (const resolve of this.#unfenced.splice(0)) resolve()
  }

  #open(): Connection {
    return new Connection({
      host: this.host,
      port: this.port,
      timeout: this.#settings.timeout,
      connectTimeout: this.#settings.connectTimeout,
      login: this.#settings.login,
      binary: this.#settings.wire.binary,
      tls: this.#tls,
      // a server counts as up once it answers, not once TCP connects: the kernel
      // accepts connections for a hung (or SIGSTOPped) server, whose requests then time
      // out; reset on connect, its failures never reached `removeAfter`
      onAnswer: () => {
        this.#failures = 0
      },
      onFailure: (conn, err, failed, byPeer) => this.#lost(conn, err, failed, byPeer),
      onIdle: () => this.#drained(),
    })
  }

  #lost(conn: Connection, err: CacheError, failed: boolean, byPeer: boolean): void {
    this.#conns = this.#conns.filter((c) => c !== conn)
    if (!failed || this.#closed || this.#dead) return
    // nutcracker closes a client's connection behind some of its own error replies (a
    // multi-get touching a backend it cannot reach): the proxy is up, and counting that
    // would refuse every key for `retry` ms. The next request opens a new connection;
    // a refused or timed-out one counts, and so does one closed before any reply.
    if (byPeer && this.#settings.wire.protocol === 'twemproxy') return
    this.#lastFailure = err.message
    // Connections failing together (a crash breaks them all) count once per retry window.
    if (this.#failing()) return
    this.#failures++
    this.#openRetryWindow()
    if (this.#failures >= this.#settings.removeAfter) this.#markDead()
  }

  /** `retry` ms during which the server is not tried again, ended by a timer: compared
   * with `Date.now`, a frozen one (a mocked date) kept the server failing for good. */
  #openRetryWindow(): void {
    clearTimeout(this.#retryTimer)
    this.#inRetry = this.#settings.retry > 0
    if (!this.#inRetry) return
    this.#retryTimer = setTimeout(() => (this.#inRetry = false), this.#settings.retry)
    this.#retryTimer.unref()
  }

  #markDead(): void {
    this.#dead = true
    for (const c of this.#conns) {
      // its requests in flight were made before any close(): it waits for them (each
      // within `timeout`); resolved already, it would leave them pending past it
      this.#draining.add(c)
      void c.close().then(() => this.#draining.delete(c))
    }
    this.#conns = []
    this.#scheduleProbe()
    this.#onChange(this)
  }

  #scheduleProbe(): void {
    this.#probeTimer = setTimeout(() => this.#probe(), this.#settings.reconnect)
    this.#probeTimer.unref()
  }

  /** One `mn` (text and binary: `version`) on a fresh connection, after the login if there is
   * one: an answer brings the server back. */
  #probe(): void {
    if (this.#closed) return
    const conn = new Connection({
      host: this.host,
      port: this.port,
      timeout: this.#settings.timeout,
      connectTimeout: this.#settings.connectTimeout,
      login: this.#settings.login,
      binary: this.#settings.wire.binary,
      tls: this.#tls,
      onAnswer: () => {},
      onIdle: () => this.#drained(),
      // Counts only once the probe succeeded and the connection joined the pool.
      onFailure: (c, err, failed, byPeer) => {
        if (this.#conns.includes(c)) this.#lost(c, err, failed, byPeer)
      },
    })
    const wire = this.#settings.wire
    this.#probing = conn
    conn.send(
      {
        deadline: Date.now() + this.#settings.connectTimeout + this.#settings.timeout,
        reply: (head, buf, at) => {
          this.#probing = undefined
          if (!wire.probeAnswered(head, buf, at) || this.#closed) {
            void conn.close()
            if (!this.#closed) this.#scheduleProbe()
            return true
          }
          this.#dead = false
          this.#failures = 0
          this.#inRetry = false
          clearTimeout(this.#retryTimer)
          this.#join(conn)
          this.#onChange(this)
          return true
        },
        fail: () => {
          this.#probing = undefined
          if (!this.#closed) this.#scheduleProbe()
        },
      },
      wire.probe,
    )
  }
}

/** What a fence holds: what sends it, and how many requests that is. */
interface Held {
  go: () => void
  requests: number
}

/** A request's number on its connection, as `#latest` keeps it (wrapping: far fewer are
 * ever in flight at once). */
const SEQ_MASK = 0xffffff
/** `#latest` is swept of answered keys when it reaches this size, or twice what the last
 * sweep left. */
const SWEEP_MIN = 4096

/** One connection's part of a batch (`ServerNode.sendBatch`): the queue entry that reads its
 * replies, its result, and what writes its requests (`pending` first). */
export interface BatchGroup<R> {
  pending: Pending
  result: Promise<R>
  write(conn: Connection): void
}

/** The open connection with the fewest requests in flight. */
function leastBusy(conns: readonly Connection[]): Connection | undefined {
  let best: Connection | undefined
  for (const c of conns) if (!c.closed && (best === undefined || c.pending < best.pending)) best = c
  return best
}
