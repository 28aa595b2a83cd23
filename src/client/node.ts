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
  /** Each slot's connection: its own, or one borrowed while the server is failing. */
  readonly #slots: Array<Connection | undefined>
  /** The connection each slot opened. */
  readonly #own: Array<Connection | undefined>
  /** A flush (`sendFenced`) waits for the requests made before it, or for its answer:
   * requests made meanwhile wait in `#held`, in order. */
  #fenced = false
  #held: Array<() => void> = []
  /** `close()` waiting for the fence to lift. */
  readonly #unfenced: Array<() => void> = []
  #failures = 0
  /** What the last failure was, for the messages of requests refused meanwhile. */
  #lastFailure = ''
  #retryAt = 0
  #dead = false
  #probeTimer: NodeJS.Timeout | undefined
  /** The probe's connection while its answer is awaited (not in the pool yet). */
  #probing: Connection | undefined
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
    this.#slots = new Array<Connection | undefined>(settings.poolSize).fill(undefined)
    this.#own = [...this.#slots]
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

  /** A connection failed within the last `retry` ms. */
  #failing(): boolean {
    return this.#failures > 0 && Date.now() < this.#retryAt
  }

  /** The slot of the pool `key` goes to: every request on a key goes on its slot's
   * connection, so the server answers them in the order they were made. */
  slotOf(key: string): number {
    const size = this.#settings.poolSize
    return size === 1 ? 0 : keyHash(key) % size
  }

  /** Sends one request on `slot`'s connection, or fails `p` with the reason it cannot go. */
  send(slot: number, p: Pending, text: Bytes, value?: Bytes, tail?: string): void {
    const refused = this.#refused()
    if (refused !== undefined) return p.fail(refused)
    if (this.#fenced) this.#held.push(() => this.#sendNow(slot, p, text, value, tail))
    else this.#sendNow(slot, p, text, value, tail)
  }

  #sendNow(slot: number, p: Pending, text: Bytes, value?: Bytes, tail?: string): void {
    const conn = this.#connection(slot)
    if (conn instanceof Connection) conn.send(p, text, value, tail)
    else p.fail(conn)
  }

  /** Runs `write` (which queues `p` first, then may add more requests to it: a batch) on
   * `slot`'s connection, or fails `p` with the reason it cannot go. */
  sendWith(slot: number, p: Pending, write: (conn: Connection) => void): void {
    const refused = this.#refused()
    if (refused !== undefined) return p.fail(refused)
    const go = (): void => {
      const conn = this.#connection(slot)
      if (conn instanceof Connection) write(conn)
      else p.fail(conn)
    }
    if (this.#fenced) this.#held.push(go)
    else go()
  }

  /** Sends a request about no key (`stats`) on the least busy open connection. */
  sendAny(p: Pending, text: Bytes): void {
    const best = leastBusy(this.#conns)
    this.send(best === undefined ? 0 : Math.max(0, this.#slots.indexOf(best)), p, text)
  }

  /** Sends a request that applies to every key (`flush_all`) in order with all the
   * others: once every request made before it is answered, and before any made after
   * it is sent (those wait for its answer). */
  sendFenced(p: Pending, text: Bytes): void {
    const refused = this.#refused()
    if (refused !== undefined) return p.fail(refused)
    const start = (): void => {
      this.#fenced = true
      this.#whenIdle(() => {
        const conn = this.#connection(0)
        if (conn instanceof Connection) return conn.send(this.#lifting(p), text)
        p.fail(conn)
        this.#lift()
      })
    }
    if (this.#fenced) this.#held.push(start)
    else start()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#probeTimer)
    // requests held by a flush were made before close(): they go, and are answered, first
    if (this.#fenced) await new Promise<void>((resolve) => this.#unfenced.push(resolve))
    const conns = this.#conns
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

  #deadError(): CacheError {
    return cacheError(Error, 'FERROCACHE_SERVER_DEAD', `${this.label} is marked dead after ${this.#failures} failures (${this.#lastFailure})`, this.label)
  }

  /** `slot`'s connection: its own, opened on first use. While the server is failing (a
   * connection broke within `retry` ms) a slot without one borrows the least busy other,
   * and keeps it while requests are in flight on it: its keys' requests stay in order. */
  #connection(slot: number): Connection | CacheError {
    if (this.#dead) return this.#deadError()
    const current = this.#slots[slot]
    if (current !== undefined && !current.closed && (current === this.#own[slot] || current.pending > 0 || this.#failing())) return current
    if (this.#failing()) {
      const borrowed = leastBusy(this.#conns)
      if (borrowed !== undefined) return (this.#slots[slot] = borrowed)
      return cacheError(
        Error,
        'FERROCACHE_SERVER_FAILING',
        `${this.label} failed ${this.#failures} time(s) (${this.#lastFailure}); retrying after ${this.#settings.retry} ms`,
        this.label,
      )
    }
    const conn = this.#open()
    this.#conns.push(conn)
    this.#own[slot] = conn
    this.#slots[slot] = conn
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
    const held = this.#held
    let i = 0
    while (i < held.length && !this.#fenced) held[i++]!()
    // a new fence keeps the rest; requests made meanwhile were pushed behind them
    this.#held = held.slice(i)
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
    this.#retryAt = Date.now() + this.#settings.retry
    if (this.#failures >= this.#settings.removeAfter) this.#markDead()
  }

  #markDead(): void {
    this.#dead = true
    for (const c of this.#conns) void c.close()
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
          this.#retryAt = 0
          // slot 0's connection, unless one closed when the server died still has requests in flight
          const old = this.#slots[0]
          if (old === undefined || old.pending === 0) {
            this.#conns.push(conn)
            this.#own[0] = conn
            this.#slots[0] = conn
          } else void conn.close()
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

/** The open connection with the fewest requests in flight. */
function leastBusy(conns: readonly Connection[]): Connection | undefined {
  let best: Connection | undefined
  for (const c of conns) if (!c.closed && (best === undefined || c.pending < best.pending)) best = c
  return best
}

/** FNV-1a over the key's UTF-16 units, then murmur3's finalizer (FNV's low bits alone
 * follow the characters' low bits: `k1` and `k3` would share a connection of two). */
function keyHash(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}
