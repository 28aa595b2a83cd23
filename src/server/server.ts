// The TCP server: accepts connections (node `net`), enforces the connection limit, gives
// each socket a native protocol session, and shuts down gracefully. With `udpPort` it
// serves memcached's UDP protocol too (udp.ts).
import { EventEmitter } from 'node:events'
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { isMainThread } from 'node:worker_threads'
import type { NativeCache, NativeServerInfo } from '../../native/index'
import { argumentsChecked } from '../arg-error'
import { Cache, cacheBehind, nativeCacheOf } from '../cache'
import type { Encoding } from '../types'
import { native } from '../native'
import { Replication } from '../replication'
import { exposureWarning, readUserFile } from './auth'
import { CLOSE_SHUTDOWN, Connection } from './connection'
import { MetricsServer, type StatsFamily } from './metrics'
import { levelForVerbosity, silentLogger } from './logger'
import type { Logger } from './log'
import { resolveServerOptions, type ServerOptions, type ResolvedServerOptions } from './options'
import { settingsReport } from './settings'
import { createTlsServer, refreshTls, requiresClientCertificates, verifyModeOf, type TlsOptions } from './tls'
import { UdpListener } from './udp'

/** memcached's reply to a connection over the limit, sent before closing it. */
export const TOO_MANY_CONNECTIONS = 'ERROR Too many open connections\r\n'

/** The least room for partial requests of all connections together (see setInflightLimit). */
const INFLIGHT_FLOOR = 64 * 1024 * 1024

/** How often log lines the engine's background thread wrote are sent to watchers. */
const WATCH_POLL_MS = 100

/** ferrocache's own version, logged at start. */
const VERSION = (require('../../package.json') as { version: string }).version

/**
 * What `version` and `stats` report: the memcached release whose protocol we speak.
 * Clients gate features on it (libmemcached treats "0.1.0" as a server too old for
 * `version noreply`, touch and more), so it cannot be ferrocache's own version.
 */
export const PROTOCOL_VERSION = '1.6.18'

/** The addresses a server listens on ([[FerrocacheServer.addresses]]). */
export interface ListenerAddresses {
  /** Each TCP listener, in `listen` order. */
  tcp: net.AddressInfo[]
  /** Each UDP socket (`udpPort`), one per `listen` address. */
  udp: net.AddressInfo[]
}

/**
 * A memcached-compatible server over a [[Cache]]. Events: `'listening'`, `'shutdown'` (a
 * client sent `shutdown` with `enableShutdown`; the server is already closing), `'close'`.
 */
export class FerrocacheServer<E extends Encoding = 'buffer'> extends EventEmitter {
  /** The options in force, defaults filled in. */
  readonly options: ResolvedServerOptions
  /** The cache the server serves; created from the options unless one was passed. */
  readonly cache: Cache<E>
  private readonly ownsCache: boolean
  private readonly native: NativeCache
  private readonly info: NativeServerInfo
  /** The first listener (`address()`); `listenServers` holds them all (`-l a,b`). */
  private readonly server: net.Server
  private readonly listenServers: net.Server[]
  /** memcached's UDP (`udpPort`, -U): one socket per address (src/server/udp.ts). */
  private readonly udpListeners: UdpListener[]
  private readonly connections = new Set<Connection>()
  /** Connections that sent `watch` (memcached's log stream). */
  private readonly watchers = new Set<Connection>()
  /**
   * While watchers exist: writes the lines the engine's background thread logged (`watch
   * sysevents`), which no request's batch flushes (memcached's logger thread writes on its
   * own passes too).
   */
  private watchPoll: NodeJS.Timeout | undefined
  private readonly log: Logger
  private closing: Promise<void> | undefined
  /** Set while closing: resolves the close once the last connection is gone. */
  private whenIdle: (() => void) | undefined
  /** Each listener's address as `stats conns` prints it (`tcp:127.0.0.1:11211`, `unix:/path`). */
  private readonly listenAddrs = new Map<net.Server, string>()
  /** Polls the verbosity the `verbosity` command sets (only with followVerbosity). */
  private verbosityTimer: NodeJS.Timeout | undefined
  private verbosity: number
  /** With an idle timeout: closes connections trickling a request in (Connection.stalled). */
  private idleSweep: NodeJS.Timeout | undefined
  /** The HTTP server of `/metrics` and the status page (with `metricsPort`). */
  private readonly metrics: MetricsServer | undefined
  /** Role, replica links, the link to a primary (docs/replication.md). */
  private readonly replication: Replication
  /** The persistence lines of `stats` (rdb_*, aof_*), joined with replication's. */
  private persistenceStats: string[][] = []
  /** With TLS: the options in force (`refresh_certs` replaces the PEMs) and the TLS listeners. */
  private tlsOptions: TlsOptions | undefined
  private readonly tlsServers: tls.Server[] = []

  constructor(options: ServerOptions<E> = {}) {
    super()
    // a Proxy of a Cache (a Vue reactive, a wrapper that instruments calls) serves that Cache
    if (options?.cache !== undefined) options = { ...options, cache: argumentsChecked(() => cacheBehind(options.cache)) as Cache<E> }
    this.options = argumentsChecked(() => resolveServerOptions(options))
    this.log = options.logger ?? silentLogger()
    this.ownsCache = options.cache === undefined
    // without a cache E is the default, 'buffer': the cache created here is one
    this.cache = options.cache ?? (new Cache(this.options.cacheOptions) as Cache<Encoding> as Cache<E>)
    this.native = nativeCacheOf(this.cache)
    this.info = new native.NativeServerInfo(PROTOCOL_VERSION)
    this.info.setMaxConnections(this.options.connLimit)
    this.info.setShutdownEnabled(this.options.enableShutdown)
    // Values on their way in are held outside the item memory: all connections together
    // may buffer as much as -m (at least 64 MiB) before the one growing is refused.
    this.info.setInflightLimit(Math.max(this.options.memoryLimit, INFLIGHT_FLOOR))
    // persistence: the `snapshot` command and the rdb_* lines of `stats`
    const persistence = this.cache.persistence
    this.info.setSnapshotEnabled(persistence !== undefined)
    // -D: per-prefix stats on from the start (`stats detail on` turns them on, split at ':')
    const { cas, flush, dump, watch, reqsPerEvent, protocol } = this.options.switches
    this.info.setSwitches({ cas, flush, dump, watch, reqsPerEvent, protocol, prefixDelimiter: this.options.prefixDelimiter })
    // -C: memcached's items are 8 bytes smaller, so its size limits let 8 more bytes in
    this.native.setUseCas(this.options.switches.cas)
    // (before persistence: its first stats lines arrive at once and are joined with these)
    this.replication = new Replication(this.native, this.info, this.options.replication, this.log, () =>
      this.updateExtraStats(),
    )
    persistence?.onStats((lines) => {
      this.persistenceStats = lines
      this.updateExtraStats()
    })
    // a replica inside its full sync saves no snapshot (docs/replication.md, Snapshots)
    this.replication.onPartialStore = (partial) => {
      const held = persistence?.hold(partial ? "replica full sync in progress (the store holds part of the primary's data)" : undefined)
      if (!partial && persistence?.appendfsync !== undefined) {
        // the log skipped the sync (docs/persistence.md): it resumes from this snapshot's walk
        this.log.info('snapshot after the full sync: the append-only log resumes from it')
        persistence.snapshot().catch(() => undefined) // logged by Persistence
      }
      return held
    }
    this.replication.start()
    this.info.verbosity = this.options.verbosity
    this.verbosity = this.options.verbosity
    const { metricsPort, metricsHost } = this.options
    this.metrics =
      metricsPort === undefined ? undefined : new MetricsServer(this, { port: metricsPort, host: metricsHost, logger: this.log })
    // Half-open: a client that sends its requests and then shuts down its side (nc -N,
    // scripts) still gets every reply; Connection closes once they are written.
    // pauseOnConnect: nothing is read before Connection takes the socket over (adoptSocket).
    // With TLS: node's tls server (see tls.ts), whose sockets Connection reads with 'data'.
    const tlsOptions = this.options.tls
    this.tlsOptions = tlsOptions
    if (tlsOptions) this.info.setTls()
    if (tlsOptions?.sessionCache === true) this.info.setTlsSessionCache()
    try {
      // memcached's -o settings, through the admin commands' code (before logins exist)
      for (const line of this.options.startupCommands) {
        const reply = this.info.runAdmin(this.native, line)
        // `stats sizes_enable` (-o track_sizes) answers its status (with -C an error: off)
        if (reply !== 'OK\r\n' && !reply.startsWith('STAT sizes_status ')) throw new RangeError(`${line}: ${reply.trim()}`)
      }
      this.info.setLruMaintainer(this.options.switches.lruMaintainer)
      const create = (secure: boolean): net.Server => {
        if (!tlsOptions || !secure) {
          const plain: net.Server = net.createServer({ noDelay: true, allowHalfOpen: true, pauseOnConnect: true }, (socket) => this.accept(socket, plain))
          return plain
        }
        const server: tls.Server = createTlsServer(
          tlsOptions,
          this.options.connLimit,
          (socket) => this.accept(socket, server),
          () => this.refusedEarly(),
          (err, socket) => this.handshakeFailed(err, socket),
          () => this.info.tlsNewSession(),
        )
        this.tlsServers.push(server)
        return server
      }
      // a Unix socket is plain text with TLS on, as memcached's (-s with -Z)
      this.listenServers = this.options.unixSocket ? [create(false)] : this.options.listen.map((a) => create(a.tls !== false))
      this.server = this.listenServers[0]!
      this.udpListeners = this.options.udpListen.map((a) => this.createUdp(a.host, a.port))
      // Logins (-Y/--auth-file): sessions opened from now on must authenticate.
      if (this.options.authFile !== undefined) this.loadUsers(this.options.authFile)
    } catch (err) {
      if (this.ownsCache) this.cache.close()
      throw err
    }
    // Listen errors reject listen(); later ones go to 'error' listeners, or the log.
    for (const server of this.listenServers) {
      server.on('error', (err) => {
        if (!server.listening) return
        if (this.listenerCount('error') > 0) this.emit('error', err)
        else this.log.error({ err: err.message }, 'server error')
      })
    }
  }

  /**
   * Starts listening (and the metrics port, with `metricsPort`); resolves with the bound
   * address (port 0 picks a free one). If the metrics port cannot listen, the server is
   * closed again and the promise rejects.
   */
  async listen(): Promise<net.AddressInfo> {
    const addr = await this.listenMemcached()
    try {
      await this.metrics?.listen()
    } catch (err) {
      await this.close(0)
      throw err
    }
    return addr
  }

  /** Listens on every address (or the Unix socket); resolves with the first's address. */
  private async listenMemcached(): Promise<net.AddressInfo> {
    const unix = this.options.unixSocket
    if (unix !== undefined) {
      removeStaleSocket(unix.path)
      // memcached's -a: the socket's permissions, from the bind on (as memcached, by the
      // umask: a chmod after it left a moment where the umask's mode let others connect).
      // The bind is synchronous in listen(); workers may not set the umask.
      const umask = isMainThread ? process.umask(0o777 & ~unix.mode) : undefined
      const listened = this.listenOne(this.server, { path: unix.path, backlog: this.options.backlog })
      if (umask !== undefined) process.umask(umask)
      await listened
      chmodSync(unix.path, unix.mode)
      this.listenAddrs.set(this.server, `unix:${unix.path}`)
      return this.listening({ address: unix.path, family: 'unix', port: 0 })
    }
    // UDP first: once TCP accepts (what readiness checks watch), UDP answers too
    for (const udp of this.udpListeners) await udp.bind()
    let first: net.AddressInfo | undefined
    for (const [i, a] of this.options.listen.entries()) {
      const server = this.listenServers[i]!
      await this.listenOne(server, { port: a.port, host: a.host, backlog: this.options.backlog })
      const addr = server.address() as net.AddressInfo
      this.listenAddrs.set(server, connAddr(addr.family, addr.address, addr.port))
      first ??= addr
    }
    return this.listening(first!)
  }

  private listenOne(server: net.Server, where: net.ListenOptions): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      server.once('error', onError)
      server.listen(where, () => {
        server.off('error', onError)
        resolve()
      })
    })
  }

  /** Everything after the listeners are bound. */
  private listening(addr: net.AddressInfo): net.AddressInfo {
    // `stats conns` lists them first; memcached counts them as connections
    this.info.setListeners([...this.listenAddrs.values()])
    // memcached's tcpport is -p, whatever -l and -s say (port 0 here: the port picked)
    this.reportSettings(this.options.port !== 0 || this.options.unixSocket ? this.options.port : addr.port)
    if (this.options.idleTimeout > 0) {
      this.idleSweep = setInterval(() => this.sweepStalled(), this.options.idleTimeout)
      this.idleSweep.unref()
    }
    if (this.options.followVerbosity) {
      // Connections opened after a `verbosity` command log at its level.
      this.verbosityTimer = setInterval(() => this.followVerbosity(), 1000)
      this.verbosityTimer.unref()
    }
    const also = [...this.listenAddrs.values()].slice(1)
    this.log.info({ host: addr.address, port: addr.port, ...(also.length > 0 ? { also } : {}), version: VERSION, protocol: PROTOCOL_VERSION }, 'listening')
    for (const server of this.listenServers) {
      const bound = server.address()
      if (bound === null || typeof bound === 'string') continue
      // Logins, or client certificates this listener requires, keep strangers out (not on
      // a notls: listener, nor with ssl_verify_mode 0 or 1).
      const secure = this.tlsServers.includes(server as tls.Server)
      const guarded = this.options.authFile !== undefined || (secure && requiresClientCertificates(this.options.tls))
      const warning = exposureWarning(bound.address, guarded)
      if (warning) this.log.warn({ host: bound.address, tls: secure }, warning)
    }
    this.emit('listening', addr)
    return addr
  }

  /** The (first) bound TCP address, once listening; null before, and with a Unix socket. */
  address(): net.AddressInfo | null {
    const addr = this.server.address()
    return typeof addr === 'string' ? null : addr
  }

  /** The (first) bound UDP address, once listening; null without `udpPort`. */
  udpAddress(): net.AddressInfo | null {
    const addr = this.udpListeners[0]?.address()
    return addr === undefined || addr === null ? null : { address: addr.address, family: addr.family, port: addr.port }
  }

  /**
   * Every bound TCP listener (`listen` order) and UDP socket: what memcached writes to its
   * `MEMCACHED_PORT_FILENAME` file. Empty before `listen()` and for a Unix socket.
   */
  addresses(): ListenerAddresses {
    const tcp = this.listenServers.map((s) => s.address()).filter((a): a is net.AddressInfo => a !== null && typeof a !== 'string')
    const udp = this.udpListeners.flatMap((u) => {
      const a = u.address()
      return a === null ? [] : [{ address: a.address, family: a.family, port: a.port }]
    })
    return { tcp, udp }
  }

  /** Where the metrics port listens (`null` without `metricsPort` or before `listen()`). */
  metricsAddress(): net.AddressInfo | null {
    return this.metrics?.address() ?? null
  }

  /**
   * The `[name, value]` pairs `stats` (`family` omitted) or `stats <family>` prints, read
   * without a connection and without counting a request: what `/metrics` and the status
   * page show. Throws if the cache is closed.
   */
  statsPairs(family: StatsFamily = ''): Array<[string, string]> {
    return this.info.statsPairs(this.native, family) ?? []
  }

  /** Connections open right now. */
  get connectionCount(): number {
    return this.connections.size
  }

  private sweepStalled(): void {
    for (const c of this.connections) {
      if (!c.stalled()) continue
      this.log.debug('no request finished within the idle timeout, closing')
      c.closeIdle()
    }
  }

  private followVerbosity(): void {
    const v = this.info.verbosity
    if (v === this.verbosity) return
    this.verbosity = v
    this.log.level = levelForVerbosity(v)
    this.log.info({ verbosity: v }, 'verbosity changed')
  }

  private reportSettings(port: number): void {
    const o = this.options
    const settings = settingsReport({
      memoryLimit: o.memoryLimit,
      connLimit: o.connLimit,
      port,
      // memcached's udpport is -U (port 0 here: the port picked)
      udpPort: this.options.udpPort === 0 ? (this.udpAddress()?.port ?? 0) : (this.options.udpPort ?? 0),
      // memcached prints its -l text; a Unix socket only: NULL
      host: o.unixSocket ? 'NULL' : o.inter,
      verbosity: o.verbosity,
      evictions: o.evictions,
      enableShutdown: o.enableShutdown,
      growthFactor: o.growthFactor,
      slabMinSize: o.slabMinSize,
      maxItemSize: o.maxItemSize,
      slabChunkMax: o.slabChunkMax,
      idleTimeout: Math.ceil(o.idleTimeout / 1000),
      authFile: o.authFile,
      tls: o.tls === undefined ? undefined : { ...o.tls, verifyMode: verifyModeOf(o.tls) },
      unixSocket: o.unixSocket,
      backlog: o.backlog,
      switches: o.switches,
      prefixDelimiter: o.prefixDelimiter,
      hashPowerInit: o.hashPowerInit,
      slabAutomoveWindow: o.slabAutomoveWindow,
    })
    for (const [name, value] of o.settingsShown) {
      const line = settings.find(([k]) => k === name)
      if (line !== undefined) line[1] = value
    }
    this.info.setSettings(settings)
  }

  private loadUsers(file: string): void {
    try {
      const users = this.info.setUsers(readUserFile(file))
      this.log.info({ authFile: file, users }, 'authentication on')
    } catch (err) {
      throw new TypeError(`authFile ${file}: ${(err as Error).message}`)
    }
  }

  /** A TLS connection dropped at the limit before its handshake (net's maxConnections). */
  private refusedEarly(): void {
    this.info.connRejected()
    this.log.warn({ limit: this.options.connLimit }, 'too many open connections, refusing one')
  }

  /** A TLS handshake failed: counted (ssl_handshake_errors), logged at -v. */
  private handshakeFailed(err: Error, socket: tls.TLSSocket): void {
    this.info.tlsHandshakeFailed()
    this.log.debug({ remote: `${socket.remoteAddress}:${socket.remotePort}`, err: err.message.trim() }, 'TLS handshake failed')
  }

  /**
   * memcached's `refresh_certs`: rereads the certificate files for new handshakes.
   * `OK` (nothing with noreply), or memcached's error line, which noreply does not hide.
   */
  private refreshCerts(line: string): string {
    const current = this.tlsOptions
    if (current === undefined) return 'Error TLS not enabled\r\n'
    try {
      this.tlsOptions = refreshTls(this.tlsServers, current)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'refresh_certs failed; the certificates in use stay')
      return `${(err as Error).message}\r\n`
    }
    this.info.tlsCertsLoaded()
    this.log.info('refresh_certs: certificates reloaded')
    return line.trim().split(/ +/).at(-1) === 'noreply' ? '' : 'OK\r\n'
  }

  private accept(socket: net.Socket, listener: net.Server): void {
    if (this.closing) {
      socket.destroy()
      return
    }
    if (this.connections.size >= this.options.connLimit) {
      this.info.connRejected()
      this.log.warn({ limit: this.options.connLimit }, 'too many open connections, refusing one')
      socket.on('error', () => {})
      socket.resume() // paused on connect: read (and drop) so the client's close is seen
      socket.end(TOO_MANY_CONNECTIONS)
      // A client that never reads must not pin the socket open.
      socket.setTimeout(1000, () => socket.destroy())
      return
    }
    let session
    try {
      const listenAddr = this.listenAddrs.get(listener) ?? ''
      // a Unix socket's peers have no address: the socket's path stands for them
      const remote = this.options.unixSocket ? listenAddr : connAddr(socket.remoteFamily, socket.remoteAddress, socket.remotePort)
      // the descriptor, for `watch` lines (cfd=)
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd
      session = new native.NativeSession(this.native, this.info, remote, listenAddr, fd ?? -1)
    } catch (err) {
      // The cache was closed under us: nothing can be served.
      this.log.error({ err: (err as Error).message }, 'cannot open a session')
      socket.destroy()
      return
    }
    const conn: Connection = new Connection(socket, session, {
      idleTimeoutMs: this.options.idleTimeout,
      // plain sockets (also notls: listeners and -s with TLS on) take the direct path
      direct: !(socket instanceof tls.TLSSocket),
      maxPendingReplyBytes: this.options.maxPendingReplyBytes,
      logger: this.log,
      logReadBytes: this.options.authFile === undefined,
      onSnapshot: (): Promise<string> => this.adminReply(conn.socket),
      onShutdown: () => this.shutdownCommand(),
      onClose: (c) => {
        this.connections.delete(c)
        this.watchers.delete(c)
        if (this.watchers.size === 0) {
          clearInterval(this.watchPoll)
          this.watchPoll = undefined
        }
        this.flushWatchers()
        this.whenIdle?.()
      },
      onWatcher: (c) => {
        this.watchers.add(c)
        this.watchPoll ??= setInterval(() => this.flushWatchers(), WATCH_POLL_MS).unref()
      },
      onWatchData: () => this.flushWatchers(),
    })
    this.connections.add(conn)
    this.flushWatchers()
  }

  /** A client sent `shutdown` (only reachable with `enableShutdown`). */
  private shutdownCommand(): void {
    this.log.info('shutdown command received')
    this.emit('shutdown')
    void this.close()
  }

  /** The UDP socket of one address; its datagrams share its sessions (see udp.ts). */
  private createUdp(host: string, port: number): UdpListener {
    return new UdpListener({
      host,
      port,
      openSession: (addr) => new native.NativeSession(this.native, this.info, addr, addr, -1),
      maxReplyBytes: this.options.maxPendingReplyBytes,
      logger: this.log,
      onShutdown: () => this.shutdownCommand(),
      // `snapshot` works; replication needs a connection (psync streams on it)
      onAdmin: () => {
        const line = this.info.takeAdminRequest()
        if (line === null) return this.snapshotReply()
        if (isRefreshCerts(line)) return Promise.resolve(this.refreshCerts(line))
        return Promise.resolve(this.options.replicationCommands ? 'SERVER_ERROR replication commands need a TCP connection\r\n' : 'ERROR\r\n')
      },
      onWatchData: () => this.flushWatchers(),
    })
  }

  /** Writes the log lines waiting for each `watch` watcher (none: nothing to do). */
  private flushWatchers(): void {
    for (const w of this.watchers) w.flushWatch()
  }

  /** The lines appended to `stats`: persistence's, then replication's. */
  private updateExtraStats(): void {
    this.info.setExtraStats([...this.persistenceStats, ...this.replication.statsLines()])
  }

  /**
   * A session stopped for `snapshot`, `refresh_certs`, or a replication command (`replicaof`,
   * `psync`): the one place replication commands are gated. `replicationCommands: false` answers
   * memcached's unknown-command `ERROR`; `-X` (no dumps) refuses `psync`, a full dump.
   */
  private adminReply(socket: net.Socket): Promise<string> {
    const line = this.info.takeAdminRequest()
    if (line === null) return this.snapshotReply()
    if (isRefreshCerts(line)) return Promise.resolve(this.refreshCerts(line))
    if (!this.options.replicationCommands) return Promise.resolve('ERROR\r\n')
    if (!this.options.switches.dump && line.trim().startsWith('psync')) return Promise.resolve('CLIENT_ERROR psync not allowed\r\n')
    const identified = this.options.authFile !== undefined || (socket instanceof tls.TLSSocket && socket.authorized)
    return this.replication.command(line, socket, identified)
  }

  /** Runs a snapshot for the `snapshot` command: `OK` once durable, else the error. */
  private async snapshotReply(): Promise<string> {
    try {
      await this.cache.snapshot()
      return 'OK\r\n'
    } catch (err) {
      return `SERVER_ERROR ${(err as Error).message.replace(/[\r\n]+/g, ' ')}\r\n`
    }
  }

  /**
   * Stops accepting, lets every connection flush the replies already produced, then
   * closes them. Connections still open after `timeoutMs` are destroyed. Closes the
   * cache if the server created it.
   */
  close(timeoutMs = 5_000): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.log.info({ connections: this.connections.size }, 'closing')
      clearInterval(this.verbosityTimer)
      clearInterval(this.idleSweep)
      clearInterval(this.watchPoll)
      for (const udp of this.udpListeners) void udp.close()
      void this.metrics?.close()
      this.replication.close()
      let listenerClosed = false
      const timer = setTimeout(() => {
        for (const c of this.connections) c.destroy()
      }, timeoutMs)
      timer.unref()
      this.whenIdle = () => {
        if (!listenerClosed || this.connections.size > 0) return
        this.whenIdle = undefined
        clearTimeout(timer)
        if (this.ownsCache) this.cache.close()
        this.log.info('closed')
        this.emit('close')
        resolve()
      }
      let open = this.listenServers.length
      for (const server of this.listenServers) {
        server.close(() => {
          if (--open > 0) return
          listenerClosed = true
          this.whenIdle?.()
        })
      }
      for (const c of this.connections) c.finish(CLOSE_SHUTDOWN)
    })
    return this.closing
  }

  /** `close()`, for `await using server = createServer(…)` (as `net.Server` has it). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }
}

/** The admin line the session stopped for is `refresh_certs` (else `replicaof`/`psync`). */
function isRefreshCerts(line: string): boolean {
  return /^ *refresh_certs( |$)/.test(line)
}

/** memcached unlinks a socket file left by an earlier run before binding; nothing else. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path)
  } catch {
    // absent: nothing to remove
  }
}

/** An address as memcached's `stats conns` prints it: `tcp:1.2.3.4:5`, `tcp6:[::1]:5`. */
function connAddr(family: string | undefined, address: string | undefined, port: number | undefined): string {
  return family === 'IPv6' ? `tcp6:[${address}]:${port}` : `tcp:${address}:${port}`
}

/** Creates a server (not yet listening): `await createServer({ port: 11211 }).listen()`. */
export function createServer<E extends Encoding = 'buffer'>(options: ServerOptions<E> = {}): FerrocacheServer<E> {
  return new FerrocacheServer(options)
}
