// One client connection: every socket read goes to the native protocol session in one
// call, and whatever it answers goes back in one write. Partial requests stay buffered in
// Rust. When the client stops reading its replies we stop reading its requests.
import type { Socket } from 'node:net'
import type { Logger } from './logger'

const EMPTY = Buffer.alloc(0)

/** The first bytes of a read or reply, printable, for -vv logs. */
function preview(b: Buffer): string {
  return b.subarray(0, 80).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '.'))
}

/** Bits of [[ProtocolSession.state]]. */
export const STATE_CLOSE = 1
export const STATE_SHUTDOWN = 2
export const STATE_PENDING = 4
export const STATE_SNAPSHOT = 8

/** The per-connection protocol state machine (ferrocache-node's `NativeSession`). */
export interface ProtocolSession {
  /** Executes every complete request in `input`; returns the replies, or null if none. */
  feed(input: Buffer): Buffer | null
  /**
   * After a feed: STATE_CLOSE (close once the replies are out), STATE_SHUTDOWN (and stop
   * the server), STATE_PENDING (input held back because the replies reached the budget:
   * feed again once they are written), STATE_SNAPSHOT (a `snapshot` command: write the
   * replies, then its reply, then feed an empty buffer). 0 = keep reading.
   */
  readonly state: number
  /** Releases the session and counts the connection as closed. Idempotent. */
  close(): void
}

export interface ConnectionOptions {
  /** Close the connection after this long without traffic; 0 = never. */
  idleTimeoutMs: number
  /** Replies queued for a client that does not read them, beyond which it is dropped. */
  maxPendingReplyBytes: number
  logger: Logger
  /** The client sent `shutdown` (only reachable when the server enables it). */
  onShutdown: () => void
  /** The client sent `snapshot` (only with persistence): resolves with the reply line. */
  onSnapshot?: () => Promise<string>
  onClose: (conn: Connection) => void
}

export class Connection {
  private closing = false
  /** The client half-closed: close once held-back input has been answered. */
  private clientDone = false
  /** Reading is paused for backpressure or held-back input. */
  private paused = false
  private readonly log: Logger
  /** Per-read logging costs an object per call: decided once. */
  private readonly trace: boolean

  constructor(
    readonly socket: Socket,
    private readonly session: ProtocolSession,
    private readonly opts: ConnectionOptions,
  ) {
    this.log = opts.logger.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` })
    this.trace = this.log.isLevelEnabled('trace')
    socket.setNoDelay(true)
    if (opts.idleTimeoutMs > 0) socket.setTimeout(opts.idleTimeoutMs)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => this.continueReading())
    socket.on('timeout', () => {
      this.log.debug('idle timeout, closing')
      socket.destroy()
    })
    socket.on('end', () => {
      // The client sent all it will send: answer what is held back first, then close.
      this.clientDone = true
      if (!(this.session.state & (STATE_PENDING | STATE_SNAPSHOT))) this.finish()
    })
    socket.on('error', (err: Error) => this.log.debug({ err: err.message }, 'socket error'))
    socket.on('close', () => {
      this.session.close()
      opts.onClose(this)
      this.log.debug('connection closed')
    })
    this.log.debug('connection opened')
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return
    // -vv: what the client sent (the start of it), like memcached's command echo.
    if (this.trace) this.log.trace({ bytes: chunk.length, head: preview(chunk) }, 'read')
    const out = this.session.feed(chunk)
    let blocked = false
    if (out !== null) {
      if (this.trace) this.log.trace({ bytes: out.length, head: preview(out) }, 'reply')
      // write() copies nothing; it queues `out` until the kernel takes it.
      blocked = !this.socket.write(out)
      if (blocked && this.socket.writableLength > this.opts.maxPendingReplyBytes) {
        this.log.warn({ pending: this.socket.writableLength }, 'client does not read its replies, closing')
        this.socket.destroy()
        return
      }
    }
    const state = this.session.state
    if (state & STATE_CLOSE) {
      this.finish()
      if (state & STATE_SHUTDOWN) this.opts.onShutdown()
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
        this.onData(EMPTY)
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

  /** After the replies went out: run held-back input, or read again. */
  private continueReading(): void {
    if (this.closing || this.socket.destroyed) return
    if (this.session.state & STATE_PENDING) this.onData(EMPTY)
    else if (this.clientDone) this.finish()
    else this.resume()
  }

  private pause(): void {
    this.paused = true
    this.socket.pause()
  }

  private resume(): void {
    this.paused = false
    this.socket.resume()
  }

  /** Stops reading, sends what is queued, then closes (graceful shutdown, quit). */
  finish(): void {
    if (this.closing) return
    this.closing = true
    this.pause()
    this.socket.end()
  }

  /** Closes at once, dropping queued replies. */
  destroy(): void {
    this.socket.destroy()
  }
}
