// One client connection: every socket read goes to the native protocol session in one
// call, and whatever it answers goes back in one write. Partial requests stay buffered in
// Rust. When the client stops reading its replies we stop reading its requests.
import { Socket } from 'node:net'
import { native } from '../native'
import type { Logger } from './log'

const EMPTY = Buffer.alloc(0)

/**
 * The buffer every connection's reads land in (net's `onread`). One is enough: a read is
 * fed to its session at once, which keeps a copy of any partial request, before the
 * event loop can run the next read.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)

/** What adoptSocket and the direct writes use of a socket's libuv handle. */
interface SocketHandle {
  useUserBuffer?: unknown
  reading?: boolean
  /** The descriptor (Unix; -1 on Windows). */
  fd?: number
}

/**
 * The accepted socket, re-created around the same handle with `onread` so reads land in
 * READ_BUFFER and go straight to `onRead`. net.Server cannot pass `onread` to the sockets
 * it accepts, and its default read path (a fresh 64 KiB allocation per read, then
 * `Readable.push` and a `'data'` event) halved unpipelined throughput. The original socket
 * must come from a server with `pauseOnConnect` (it has not read anything); it lets go of
 * the handle and is destroyed, which closes nothing and takes it off net.Server's count.
 * Returns null where the handle is not what this expects (then `'data'` events are used).
 */
function adoptSocket(accepted: Socket, onRead: (n: number) => void): Socket | null {
  const handle = (accepted as unknown as { _handle?: SocketHandle })._handle
  if (!handle || typeof handle.useUserBuffer !== 'function' || handle.reading) return null
  let socket: Socket
  try {
    socket = new Socket({
      handle,
      allowHalfOpen: accepted.allowHalfOpen,
      onread: { buffer: READ_BUFFER, callback: (n: number) => onRead(n) },
    } as ConstructorParameters<typeof Socket>[0])
  } catch {
    return null // the accepted socket still owns its handle
  }
  ;(accepted as unknown as { _handle: null })._handle = null
  accepted.destroy()
  return socket
}

/** The first bytes of a read or reply, printable, for -vv logs. */
export function preview(b: Buffer): string {
  return b.subarray(0, 80).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '.'))
}

/** Bits of [[ProtocolSession.state]]. */
export const STATE_CLOSE = 1
export const STATE_SHUTDOWN = 2
export const STATE_PENDING = 4
export const STATE_SNAPSHOT = 8
/** The connection sent `watch`: it is a log watcher now (see Connection.flushWatch). */
export const STATE_WATCHER = 16
/** Some watcher of the server has log lines waiting. */
export const STATE_WATCH_DATA = 32
/** With STATE_CLOSE: close once the replies are written, with no linger (see finish). */
export const STATE_CLOSE_NOW = 64
/** With STATE_CLOSE_NOW: close with a reset, as memcached over a request it could not read. */
export const STATE_CLOSE_RESET = 128

/** Why a connection closed, as `watch connevents` reports it (`reason=`). */
const CLOSE_NORMAL = 0
const CLOSE_ERROR = 1
const CLOSE_IDLE_TIMEOUT = 2
export const CLOSE_SHUTDOWN = 3

/** How long a closing connection waits for the client's FIN after sending its own. */
const CLOSE_LINGER_MS = 200

/** The per-connection protocol state machine (ferrocache-node's `NativeSession`). */
export interface ProtocolSession {
  /** What `sessionFeed` takes to find this session. */
  readonly slot: number
  /**
   * After a feed: STATE_CLOSE (close once the replies are out), STATE_SHUTDOWN (and stop
   * the server), STATE_PENDING (input held back because the replies reached the budget:
   * feed again once they are written), STATE_SNAPSHOT (a `snapshot` command: write the
   * replies, then its reply, then feed an empty buffer), STATE_WATCHER (the connection
   * is a `watch` watcher), STATE_WATCH_DATA (some watcher has log lines waiting). 0 =
   * keep reading.
   */
  readonly state: number
  /** Bytes of an incomplete request waiting for the rest. */
  readonly buffered: number
  /** Requests handled so far. */
  readonly requests: number
  /**
   * Releases the session and counts the connection as closed. Idempotent. `reason` is
   * what `watch connevents` reports: 0 normal, 1 error, 2 idle timeout, 3 shutdown.
   */
  close(reason?: number): void
  /** A watcher's log lines waiting to be written, or null. */
  watchTake(): Buffer | null
}

/**
 * The native read call (crates/ferrocache-node/src/session.rs, registered by hand, so
 * typed here): runs the first `length` bytes of `input` through the session in `slot`,
 * sends the replies on `fd` (-1: don't), and returns the session's state bits when nothing
 * is left to write, else the replies still to write (then read `session.state`).
 */
export const { sessionFeed, sessionRead, sessionReadBuffer } = native as unknown as {
  sessionFeed(slot: number, input: Uint8Array, length: number, fd: number): number | Buffer
  /** `sessionFeed` over the buffer `sessionReadBuffer` registered (READ_BUFFER) under
   * `token`; null, nothing fed, once a later registration replaced it. */
  sessionRead(slot: number, length: number, fd: number, token: number): number | Buffer | null
  /** Registers the buffer `sessionRead` reads from and keeps it alive; returns its token. */
  sessionReadBuffer(buffer: Uint8Array): number
}

// Every read of the onread path lands in READ_BUFFER: registered once, so a read's native
// call does not look the typed array up again (measured: ~180 instructions of ~5800 per
// unpipelined request). The registration is one per thread: a later copy of this module
// (jest.resetModules, a cleared require.cache, jest's or another vm context, whose realm has
// its own globals) registers its own, and sessionRead then answers null to this copy's
// token: its reads go through sessionFeed from then on.
const READ_TOKEN = sessionReadBuffer(READ_BUFFER)
let readRegistered = true

export interface ConnectionOptions {
  /** Close the connection after this long without traffic; 0 = never. */
  idleTimeoutMs: number
  /**
   * Read into the shared buffer and send replies on the descriptor (plain TCP sockets
   * from a `pauseOnConnect` server). False for TLS sockets: 'data' events and socket.write.
   */
  direct: boolean
  /** Replies queued for a client that does not read them, beyond which it is dropped. */
  maxPendingReplyBytes: number
  logger: Logger
  /**
   * -vv logs the start of each read; false (a server with logins) logs only its length: the
   * read may hold a login's password (memcached's -vv never prints it).
   */
  logReadBytes?: boolean
  /** The client sent `shutdown` (only reachable when the server enables it). */
  onShutdown: () => void
  /** The client sent `snapshot` (only with persistence): resolves with the reply line. */
  onSnapshot?: () => Promise<string>
  onClose: (conn: Connection) => void
  /** The client sent `watch`: from now on the connection receives the log stream. */
  onWatcher?: (conn: Connection) => void
  /** Some watcher has log lines waiting (after the requests that logged them). */
  onWatchData?: () => void
}

/** The connection of each socket, for divertReads. */
const connectionOf = new WeakMap<Socket, Connection>()

/**
 * From now on the bytes `socket`'s client sends go to `onBytes` instead of its protocol
 * session, and reading resumes: the replica link a `psync` turned the connection into
 * reads the replica's acknowledgements (src/replication/primary-link.ts). False when the
 * socket is not a connection's.
 */
export function divertReads(socket: Socket, onBytes: (bytes: Buffer) => void): boolean {
  const conn = connectionOf.get(socket)
  if (conn === undefined) return false
  conn.divert(onBytes)
  return true
}

export class Connection {
  private closing = false
  /** Where reads go instead of the session (see divertReads). */
  private diverted: ((bytes: Buffer) => void) | undefined
  /** The client half-closed: close once held-back input has been answered. */
  private clientDone = false
  /** Reading is paused for backpressure or held-back input. */
  private paused = false
  private readonly log: Logger
  /** Per-read logging costs an object per call: decided once. */
  private readonly trace: boolean
  /**
   * The socket's descriptor for `feed` to send replies on directly, or -1 (node writes
   * them: Windows, the `'data'` fallback, and -vv, which logs each reply).
   */
  private readonly fd: number
  private readonly slot: number
  /** `session.requests` at the last idle sweep (see stalled()). */
  private requestsAtSweep = -1
  /** The client became a `watch` watcher. */
  private watching = false
  /** What `watch connevents` will say when the connection closes. */
  private closeReason = CLOSE_NORMAL

  readonly socket: Socket

  /** `accepted` comes from a net.Server with `pauseOnConnect` (see adoptSocket). */
  constructor(
    accepted: Socket,
    private readonly session: ProtocolSession,
    private readonly opts: ConnectionOptions,
  ) {
    this.log = opts.logger.child({ remote: `${accepted.remoteAddress}:${accepted.remotePort}` })
    this.trace = this.log.isLevelEnabled('trace')
    this.slot = session.slot
    const adopted = opts.direct ? adoptSocket(accepted, (n) => this.onData(READ_BUFFER, n)) : null
    const socket = (this.socket = adopted ?? accepted)
    const fd = (adopted as unknown as { _handle?: SocketHandle } | null)?._handle?.fd
    this.fd = typeof fd === 'number' && fd >= 0 && !this.trace ? fd : -1
    connectionOf.set(socket, this)
    socket.setNoDelay(true)
    if (opts.idleTimeoutMs > 0) socket.setTimeout(opts.idleTimeoutMs)
    if (adopted === null) {
      socket.on('data', (chunk: Buffer) => this.onData(chunk, chunk.length))
      socket.resume()
    }
    socket.on('drain', () => (this.watching ? this.flushWatch() : this.continueReading()))
    socket.on('timeout', () => {
      this.log.debug('idle timeout, closing')
      this.closeIdle()
    })
    socket.on('end', () => {
      // The client sent all it will send: answer what is held back first, then close.
      this.clientDone = true
      if (this.watching || !(this.session.state & (STATE_PENDING | STATE_SNAPSHOT))) this.finish()
    })
    socket.on('error', (err: Error) => {
      this.closeReason = CLOSE_ERROR
      this.log.debug({ err: err.message }, 'socket error')
    })
    socket.on('close', () => {
      this.session.close(this.closeReason)
      opts.onClose(this)
      this.log.debug('connection closed')
    })
    this.log.debug('connection opened')
  }

  /** The first `length` bytes of `input` arrived (length 0: run held-back input). */
  private onData(input: Buffer, length: number): void {
    if (this.closing) return
    if (this.diverted !== undefined) {
      // a copy: `input` may be the shared read buffer
      if (length > 0) this.diverted(Buffer.from(input.subarray(0, length)))
      return
    }
    // -vv: what the client sent (the start of it), like memcached's command echo.
    if (this.trace) {
      this.log.trace({ bytes: length, ...(this.opts.logReadBytes === false ? {} : { head: preview(input.subarray(0, length)) }) }, 'read')
    }
    // Direct sends only while node has nothing queued, so replies stay in order; the
    // descriptor is valid until the socket is destroyed (its handle closes it).
    const direct = this.fd >= 0 && this.socket.writableLength === 0 && !this.socket.destroyed
    const fd = direct ? this.fd : -1
    let out = readRegistered && input === READ_BUFFER ? sessionRead(this.slot, length, fd, READ_TOKEN) : null
    if (out === null) {
      if (input === READ_BUFFER) readRegistered = false
      out = sessionFeed(this.slot, input, length, fd)
    }
    let blocked = false
    let state: number
    if (typeof out === 'number') {
      state = out
    } else {
      if (this.trace) this.log.trace({ bytes: out.length, head: preview(out) }, 'reply')
      // write() copies nothing; it queues `out` until the kernel takes it.
      blocked = !this.socket.write(out)
      if (blocked && this.socket.writableLength > this.opts.maxPendingReplyBytes) {
        this.log.warn({ pending: this.socket.writableLength }, 'client does not read its replies, closing')
        this.socket.destroy()
        return
      }
      state = this.session.state
    }
    if (state & (STATE_WATCHER | STATE_WATCH_DATA)) this.watchState(state)
    if (state & STATE_CLOSE) {
      // the connection that sent `shutdown` closes as the server's others do: `watch
      // connevents` says reason=shutdown (memcached's), and it lingers only briefly for the
      // client's FIN, where an open client used to hold the exit for the 5 s close timeout
      this.finish(state & STATE_SHUTDOWN ? CLOSE_SHUTDOWN : CLOSE_NORMAL, (state & STATE_CLOSE_NOW) !== 0, (state & STATE_CLOSE_RESET) !== 0)
      if (state & STATE_SHUTDOWN) this.opts.onShutdown()
      return
    }
    if (this.watching) {
      // A watcher's input is ignored, but reading goes on, also while replies of its
      // earlier requests are queued: a paused socket would not see the client hang up,
      // leaving the watcher (and its slot) until lines to it fail.
      if (this.paused) this.resume()
      return
    }
    if (state & STATE_SNAPSHOT) {
      // Read nothing more until the snapshot is durable and answered, as memcached-style
      // replies stay in request order; then run what followed it.
      this.pause()
      const reply = this.opts.onSnapshot?.() ?? Promise.resolve('SERVER_ERROR snapshots are not available\r\n')
      void reply.then((line) => {
        if (this.closing || this.socket.destroyed) return
        this.socket.write(line)
        this.onData(EMPTY, 0)
      })
      return
    }
    if (blocked || state & STATE_PENDING) {
      // Read no more until the replies are out; 'drain' (or the next turn) continues.
      this.pause()
      if (!blocked) setImmediate(() => this.continueReading())
      return
    }
    if (this.clientDone) this.finish()
    else if (this.paused) this.resume()
  }

  /** A feed turned the connection into a watcher, or left log lines for watchers. */
  private watchState(state: number): void {
    if (state & STATE_WATCHER && !this.watching) {
      this.watching = true
      // memcached's logger owns a watcher's connection: no idle timeout for it
      this.socket.setTimeout(0)
      this.opts.onWatcher?.(this)
    }
    if (state & STATE_WATCH_DATA) this.opts.onWatchData?.()
  }

  /**
   * For a watcher: writes the log lines waiting for it, unless the client is not reading
   * what was written before ('drain' calls this again); meanwhile its lines wait in the
   * native buffer, which is bounded (lines past it are skipped, then counted in a
   * `skipped=N` line).
   */
  flushWatch(): void {
    const socket = this.socket
    if (!this.watching || socket.destroyed || socket.writableEnded || socket.writableNeedDrain) return
    const lines = this.session.watchTake()
    if (lines !== null) this.socket.write(lines)
  }

  /** After the replies went out: run held-back input, or read again. */
  private continueReading(): void {
    if (this.closing || this.socket.destroyed) return
    if (this.session.state & STATE_PENDING) this.onData(EMPTY, 0)
    else if (this.clientDone) this.finish()
    else this.resume()
  }

  /** See divertReads. */
  divert(onBytes: (bytes: Buffer) => void): void {
    this.diverted = onBytes
    if (this.paused) this.resume()
  }

  private pause(): void {
    this.paused = true
    this.socket.pause()
  }

  private resume(): void {
    this.paused = false
    this.socket.resume()
  }

  /**
   * Sends what is queued, then closes (graceful shutdown, quit, a request that ends the
   * connection). Reading goes on, with whatever arrives dropped (onData ignores it once
   * closing), until the client closes its side: reads paused now would never see its FIN.
   * `now` (a binary request refused with an error): no reads, no linger, the socket
   * closes as soon as the replies are out, as memcached 1.6.18 closes after such a reply;
   * what the client sends after it then meets a reset (memjs fails its pending calls with
   * ECONNRESET), where the linger read and dropped it and left those calls unanswered.
   * `reset` (a binary header over memcached's read buffer): memcached closed with the rest
   * of that request unread, a reset however much of it this server had read already.
   */
  finish(reason = CLOSE_NORMAL, now = false, reset = false): void {
    if (this.closing) return
    this.closeReason = reason
    this.closing = true
    if (now) {
      // no more reads: input still unread stays in the kernel, so the close resets over
      // it as memcached's does (ECONNRESET for a client still writing), or sends the FIN
      this.pause()
      const close = (): void => {
        if (!reset) return void this.socket.destroy()
        try {
          this.socket.resetAndDestroy()
        } catch {
          this.socket.destroy() // TLS or a Unix socket: no reset to send
        }
      }
      if (this.socket.writableLength === 0) close()
      else this.socket.write(EMPTY, close)
      return
    }
    if (this.paused) this.resume()
    this.socket.end()
    // Once the replies are handed to the kernel and the FIN is out, a short linger for the
    // client's FIN, then the socket closes: a client that keeps its side open (a pooled
    // idle connection at a stop, one that sent `quit` and never closed) held its descriptor
    // and a connection slot for good (memcached closes at once). The input is being read
    // and dropped meanwhile, so closing sends no RST over unread data.
    if (!this.clientDone) this.socket.once('finish', () => setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS).unref())
  }

  /**
   * For the idle sweep (memcached's idle_timeout counts from the last request, not the
   * last byte): true when part of a request waits and no request finished since the
   * previous sweep, i.e. a client trickling bytes in to hold the connection (slowloris).
   * Quiet connections are closed by the socket's own inactivity timeout.
   */
  stalled(): boolean {
    const requests = this.session.requests
    const stuck = requests === this.requestsAtSweep && this.session.buffered > 0
    this.requestsAtSweep = requests
    return stuck
  }

  /** Closes at once for the idle timeout (a quiet client, or one the sweep found stalled
   * mid-request): `watch connevents` says reason=idle_timeout, as memcached's. */
  closeIdle(): void {
    this.closeReason = CLOSE_IDLE_TIMEOUT
    this.socket.destroy()
  }

  /** Closes at once, dropping queued replies. */
  destroy(): void {
    this.socket.destroy()
  }
}
