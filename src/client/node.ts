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
import type { Wire } from './wire'

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
  #conns: Connection[] = []
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
  }

  /** Marked dead (after `removeAfter` failures) and not yet back. */
  get dead(): boolean {
    return this.#dead
  }

  /** Dead, or failed within the last `retry` ms: a new request would likely fail
   * (`FERROCACHE_SERVER_FAILING`), so a read that has another server goes there. */
  get down(): boolean {
    return this.#dead || (this.#failures > 0 && Date.now() < this.#retryAt)
  }

  /** The least busy connection, a new one while the pool is not full and all are busy,
   * or the reason no request can go to this server now. */
  connection(): Connection | CacheError {
    if (this.#closed) return cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed')
    if (this.#dead) {
      return cacheError(Error, 'FERROCACHE_SERVER_DEAD', `${this.label} is marked dead after ${this.#failures} failures (${this.#lastFailure})`, this.label)
    }
    let best: Connection | undefined
    for (const c of this.#conns) if (best === undefined || c.pending < best.pending) best = c
    if (best !== undefined && (best.pending === 0 || this.#conns.length >= this.#settings.poolSize)) return best
    if (this.#failures > 0 && Date.now() < this.#retryAt) {
      if (best !== undefined) return best
      return cacheError(
        Error,
        'FERROCACHE_SERVER_FAILING',
        `${this.label} failed ${this.#failures} time(s) (${this.#lastFailure}); retrying after ${this.#settings.retry} ms`,
        this.label,
      )
    }
    const conn = this.#open()
    this.#conns.push(conn)
    return conn
  }

  /** Sends on the best connection, or fails `p` with the reason it cannot go. */
  send(p: Pending, text: string | Uint8Array, value?: string | Uint8Array, tail?: string): void {
    const conn = this.connection()
    if (conn instanceof Connection) conn.send(p, text, value, tail)
    else p.fail(conn)
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#probeTimer)
    const conns = this.#conns
    this.#conns = []
    // A probe is no caller's request: it is not waited for.
    await Promise.all([...conns.map((c) => c.close()), this.#probing?.destroy()])
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
    if (this.#failures > 0 && Date.now() < this.#retryAt) return
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
          this.#conns.push(conn)
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
