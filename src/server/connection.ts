// One client connection: every socket read goes to the native protocol session in one
// call, and whatever it answers goes back in one write. Partial requests stay buffered in
// Rust. When the client stops reading its replies we stop reading its requests.
import type { Socket } from 'node:net'
import type { Logger } from './logger'

/** What the native session asks the connection to do after a feed. */
const EMPTY = Buffer.alloc(0)

export type SessionControl = 'continue' | 'close' | 'shutdown'

/** The per-connection protocol state machine (ferrocache-node's `NativeSession`). */
export interface ProtocolSession {
  /** Executes every complete request in `input`; returns the replies, or null if none. */
  feed(input: Buffer): Buffer | null
  /** What the last feed asked for. */
  readonly control: SessionControl
  /** Input held back because the last feed's replies reached the budget: feed again. */
  readonly hasPending: boolean
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
  onClose: (conn: Connection) => void
}

export class Connection {
  private closing = false
  private readonly log: Logger

  constructor(
    readonly socket: Socket,
    private readonly session: ProtocolSession,
    private readonly opts: ConnectionOptions,
  ) {
    this.log = opts.logger.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` })
    socket.setNoDelay(true)
    if (opts.idleTimeoutMs > 0) socket.setTimeout(opts.idleTimeoutMs)
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('drain', () => {
      if (this.closing) return
      if (this.session.hasPending) this.onData(EMPTY)
      else socket.resume()
    })
    socket.on('timeout', () => {
      this.log.debug('idle timeout, closing')
      socket.destroy()
    })
    socket.on('end', () => this.finish())
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
    this.log.trace({ bytes: chunk.length }, 'read')
    const out = this.session.feed(chunk)
    let blocked = false
    if (out !== null && out.length > 0) {
      this.log.trace({ bytes: out.length }, 'reply')
      // write() copies nothing; it queues `out` until the kernel takes it.
      blocked = !this.socket.write(out)
      if (this.socket.writableLength > this.opts.maxPendingReplyBytes) {
        this.log.warn({ pending: this.socket.writableLength }, 'client does not read its replies, closing')
        this.socket.destroy()
        return
      }
    }
    if (blocked || this.session.hasPending) {
      // Read no more until the replies are out; 'drain' (or the next turn) continues.
      this.socket.pause()
      if (!blocked) setImmediate(() => this.continuePending())
    }
    const control = this.session.control
    if (control === 'close') this.finish()
    else if (control === 'shutdown') {
      this.finish()
      this.opts.onShutdown()
    }
  }

  private continuePending(): void {
    if (this.closing || this.socket.destroyed) return
    if (this.session.hasPending) this.onData(EMPTY)
    else this.socket.resume()
  }

  /** Stops reading, sends what is queued, then closes (graceful shutdown, quit). */
  finish(): void {
    if (this.closing) return
    this.closing = true
    this.socket.pause()
    this.socket.end()
  }

  /** Closes at once, dropping queued replies. */
  destroy(): void {
    this.socket.destroy()
  }
}
