// memcached's UDP protocol (-U): each datagram starts with an 8-byte frame header (request
// id, sequence number, datagram count, reserved) and carries whole requests. Its payload
// goes to a protocol session in one native call, as a TCP read does; the replies go back
// split into datagrams of at most 1400 bytes, each with the header, one message per
// response object as memcached frames them (the session says where each ends). A
// datagram stands alone: a request it cuts off is dropped, not continued by the next
// datagram, and its first byte says its protocol (0x80: binary), whatever earlier
// datagrams spoke.
import * as dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import {
  preview,
  sessionFeed,
  STATE_CLOSE,
  STATE_PENDING,
  STATE_SHUTDOWN,
  STATE_SNAPSHOT,
  STATE_WATCH_DATA,
  STATE_WATCHER,
  type ProtocolSession,
} from './connection'
import type { Logger } from './log'
import { onlyReads } from './udp-reads'

/** The frame header before every request and reply datagram. */
export const UDP_HEADER_SIZE = 8
/** memcached's UDP_MAX_PAYLOAD_SIZE: a reply datagram, header included, is at most this long. */
export const UDP_MAX_PAYLOAD_SIZE = 1400
/** Reply bytes per datagram (memcached's UDP_DATA_SIZE). */
const UDP_DATA_SIZE = UDP_MAX_PAYLOAD_SIZE - UDP_HEADER_SIZE
/** The datagram count is 16 bits; memcached caps it there. */
const MAX_DATAGRAMS = 0xffff
/**
 * Datagrams kept while an earlier one waits (for its `snapshot` reply, or for the socket
 * to send its replies); later ones are dropped, as a full socket buffer would drop them.
 */
const MAX_QUEUED = 256
/**
 * Reply bytes handed to the socket and not yet sent: past this, a datagram whose replies
 * come in pieces waits for the socket before its session makes the next piece (Node's
 * dgram queues every send in memory; memcached waits for the socket to be writable).
 */
export const MAX_SEND_QUEUE_BYTES = 4 << 20
/** Reply pieces made in one go before the event loop gets a turn (other clients' work). */
const PIECES_PER_TURN = 4

const EMPTY = Buffer.alloc(0)

/** Drops are logged at the 1st, 2nd, 4th, 8th… (a flood logs a few lines, not one each). */
const isPowerOfTwo = (n: number): boolean => (n & (n - 1)) === 0

/** A datagram that starts with a text `quit`. */
const QUIT = /^quit(\r?\n| )/

/** A session that records where each reply message ends (the native `NativeSession`). */
export interface UdpSession extends ProtocolSession {
  /** Starts recording message ends (once, when the session opens). */
  frameMessages(): void
  /**
   * The end offsets of each reply message in what the last feed returned (an end equal to
   * the one before it, or a first end of 0: an empty message, a bare header). memcached sends each response object as its own
   * message, skips `noreply` and quiet meta ones, and sends an empty one (a get's miss
   * before its last key, a quiet binary request) only first in a write-out.
   */
  messageEnds(): number[]
}

export interface UdpListenerOptions {
  /** Where to bind: the interface and its port (0 picks a free one). */
  host: string
  port: number
  /** A session for the datagrams of this socket; `addr` is its `udp:host:port`. */
  openSession: (addr: string) => UdpSession
  /** The replies to one datagram beyond which the rest are dropped. */
  maxReplyBytes: number
  logger: Logger
  /** A datagram sent `shutdown` (only reachable when the server enables it). */
  onShutdown: () => void
  /** A session stopped for `snapshot` or a replication command: resolves with the reply line. */
  onAdmin: () => Promise<string>
  /** Some `watch` watcher has log lines waiting. */
  onWatchData: () => void
}

/** The session a datagram goes to: by its protocol (a session keeps the first it sees). */
const TEXT = 0
const BINARY = 1
type Kind = typeof TEXT | typeof BINARY

/** The first byte of every binary request. */
const BINARY_MAGIC = 0x80

/** One received datagram, kept while an earlier one waits for its `snapshot` reply. */
interface Datagram {
  msg: Buffer
  port: number
  address: string
}

/** A datagram whose requests are being run: what `continue` needs to go on with it. */
interface Job {
  kind: Kind
  session: UdpSession
  d: Datagram
  requestId: number
  /** Reply bytes of this datagram sent so far (past `maxReplyBytes` the rest are dropped). */
  sent: number
  /** It changes nothing: past `maxReplyBytes` its run stops (else it runs on, replies dropped). */
  readOnly: boolean
}

/** What the listener dropped: datagrams (queue full) and replies (over the limit). */
export interface UdpDrops {
  /** Request datagrams dropped because `MAX_QUEUED` were already waiting. */
  requests: number
  /** Datagrams of reads only (`onlyReads`) cut off once their replies passed `maxReplyBytes`: the rest not run. */
  cutOff: number
  /** Reply bytes not sent: other datagrams' replies past `maxReplyBytes` (their requests still run). */
  replyBytes: number
  /** Datagrams from the listener's own port, not run (they would loop: see `receive`). */
  ownPort: number
}

/**
 * One UDP socket (one per `-l` address) and the sessions all its datagrams share, one per
 * protocol. A session is replaced only when a datagram leaves it unusable for the next
 * one: a request cut off at the datagram's end, `quit`, or `watch`.
 */
export class UdpListener {
  private readonly socket: dgram.Socket
  private readonly log: Logger
  /** -vv: each datagram and reply logged (checked per datagram: `verbosity` changes it). */
  private trace = false
  /** By Kind; the binary one opened at the first binary datagram. */
  private readonly sessions: Array<UdpSession | undefined> = [undefined, undefined]
  private addr = ''
  /** The bound port: datagrams from it are dropped (see receive). */
  private port = -1
  /** A datagram waits (for a `snapshot` reply or for the socket): later ones wait in `queue`. */
  private busy = false
  private readonly queue: Datagram[] = []
  private closed = false
  /** Reply bytes given to socket.send whose callback has not run yet. */
  private sendQueueBytes = 0
  /** The datagram waiting for the socket to send its replies, if any. */
  private waiting: Job | null = null
  /** `resume` is scheduled (setImmediate). */
  private resuming = false
  /** What was dropped so far (a warning is logged when a run of drops starts). */
  readonly drops: UdpDrops = { requests: 0, cutOff: 0, replyBytes: 0, ownPort: 0 }
  /** Request datagrams received (with a frame header and a payload). */
  datagrams = 0
  /** Most reply bytes the socket held at once (for tests and diagnostics). */
  peakSendQueueBytes = 0

  constructor(private readonly opts: UdpListenerOptions) {
    this.log = opts.logger
    this.socket = dgram.createSocket({ type: isIPv6(opts.host) ? 'udp6' : 'udp4' })
    this.socket.on('message', (msg, rinfo) => this.receive({ msg, port: rinfo.port, address: rinfo.address }))
    // (a bind error is bind()'s to report)
    this.socket.on('error', (err) => {
      if (this.addr !== '') this.log.warn({ err: err.message, udp: this.addr }, 'udp socket error')
    })
  }

  /** Binds; resolves with the bound address (rejects if it cannot bind). */
  bind(): Promise<{ address: string; port: number; family: string }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err)
      this.socket.once('error', onError)
      this.socket.bind({ port: this.opts.port, address: this.opts.host, exclusive: true }, () => {
        this.socket.off('error', onError)
        const bound = this.socket.address()
        this.addr = bound.family === 'IPv6' ? `udp6:[${bound.address}]:${bound.port}` : `udp:${bound.address}:${bound.port}`
        this.port = bound.port
        this.replaceSession(TEXT)
        this.log.info({ host: bound.address, port: bound.port }, 'listening (udp)')
        resolve(bound)
      })
    })
  }

  /** The bound address, once bound. */
  address(): { address: string; port: number; family: string } | null {
    try {
      return this.socket.address()
    } catch {
      return null
    }
  }

  /** No datagram is being run or waiting. */
  get idle(): boolean {
    return !this.busy && this.queue.length === 0
  }

  /** Closes the socket and releases the sessions. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.closed = true
    this.queue.length = 0
    this.waiting = null
    for (const kind of [TEXT, BINARY] as const) this.replaceSession(kind)
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve())
      } catch {
        resolve() // never bound
      }
    })
  }

  private receive(d: Datagram): void {
    // memcached 1.6.18 (try_read_udp): a datagram of the header alone or less, or one that
    // says it is part of a larger request (count other than 1), gets no reply at all
    if (this.closed || d.msg.length <= UDP_HEADER_SIZE) return
    // From our own port: a reply of this server (a request forged with its address as the
    // source) or of a peer on the same port (one forged as from the other). Answering
    // starts an endless ping-pong of `ERROR` lines, one forged datagram enough (memcached
    // 1.6.18 loops so, measured); clients send from ports of their own.
    if (d.port === this.port) {
      if (isPowerOfTwo(++this.drops.ownPort)) this.dropWarning('udp datagrams from the server port dropped (a reflection loop)')
      return
    }
    this.datagrams++
    if (d.msg[4] !== 0 || d.msg[5] !== 1) {
      this.log.debug({ udp: `${d.address}:${d.port}`, count: d.msg.readUInt16BE(4) }, 'multi-datagram request, dropped')
      return
    }
    if (this.busy) {
      if (this.queue.length < MAX_QUEUED) this.queue.push(d)
      else if (isPowerOfTwo(++this.drops.requests)) this.dropWarning('udp request queue full, datagrams dropped')
      return
    }
    this.run(d)
  }

  /** Runs one datagram's requests and sends their replies. */
  private run(d: Datagram): void {
    const kind = d.msg[UDP_HEADER_SIZE] === BINARY_MAGIC ? BINARY : TEXT
    if (this.sessions[kind] === undefined) this.replaceSession(kind)
    const session = this.sessions[kind]
    if (session === undefined) return
    const requestId = d.msg.readUInt16BE(0)
    const length = d.msg.length - UDP_HEADER_SIZE
    this.trace = this.log.isLevelEnabled('trace')
    if (this.trace) this.log.trace({ udp: `${d.address}:${d.port}`, requestId, bytes: length, head: preview(d.msg.subarray(UDP_HEADER_SIZE)) }, 'read')
    const payload = d.msg.subarray(UDP_HEADER_SIZE)
    this.continue({ kind, session, d, requestId, sent: 0, readOnly: onlyReads(payload) }, payload, length)
  }

  /**
   * Feeds `input` (then what the session held back) and sends each piece of replies,
   * one message per response object as the session marks them; parks the job
   * (`waiting`) while the socket is behind or after PIECES_PER_TURN pieces.
   */
  private continue(job: Job, input: Buffer, length: number): void {
    const { kind, session, d, requestId } = job
    let pieces = 0
    for (let feedInput = input, feedLength = length; ; feedInput = EMPTY, feedLength = 0) {
      const out = sessionFeed(session.slot, feedInput, feedLength, -1)
      const state = typeof out === 'number' ? out : session.state
      if (state & STATE_WATCHER) {
        // a watcher needs a connection to stream to; memcached sends nothing back either
        this.replaceSession(kind)
        return this.next()
      }
      const reply = typeof out === 'number' ? EMPTY : out
      if (job.sent >= this.opts.maxReplyBytes) {
        const before = this.drops.replyBytes
        this.drops.replyBytes += reply.length
        if (Math.clz32(before) !== Math.clz32(this.drops.replyBytes)) this.dropWarning('udp replies over the limit, dropped')
      } else {
        job.sent += reply.length
        // a quiet binary request alone still gets a bare header: ends with no bytes
        let start = 0
        for (const end of session.messageEnds()) {
          this.sendMessage(reply.subarray(start, end), requestId, d)
          start = end
        }
      }
      if (state & STATE_WATCH_DATA) this.opts.onWatchData()
      if (state & STATE_CLOSE) {
        // the rest of the datagram is skipped; a `quit` first gets a bare header (0
        // datagrams follow) from memcached, a line too long or a bad request nothing
        if (typeof out === 'number' && session.messageEnds().length === 0 && QUIT.test(input.subarray(0, 6).toString('latin1'))) this.sendMessage(EMPTY, requestId, d)
        this.replaceSession(kind)
        if (state & STATE_SHUTDOWN) this.opts.onShutdown()
        return this.next()
      }
      if (state & STATE_SNAPSHOT) {
        this.busy = true
        void this.opts.onAdmin().then((line) => {
          if (this.closed || this.sessions[kind] !== session) return
          this.sendMessage(Buffer.from(line, 'latin1'), requestId, d)
          this.busy = false
          job.sent += line.length
          this.continue(job, EMPTY, 0)
        })
        return
      }
      if (!(state & STATE_PENDING)) break
      if (job.sent >= this.opts.maxReplyBytes && job.readOnly) {
        // reads only: the rest is not run, its replies would be built only to be dropped
        // (other datagrams run to their end, replies dropped: a write in them must not be lost)
        if (isPowerOfTwo(++this.drops.cutOff)) this.dropWarning('udp replies over the limit, the rest of the datagram dropped')
        this.replaceSession(kind)
        return this.next()
      }
      // more replies to come: not before the socket has taken most of the earlier ones
      // (else they pile up in memory), and not without letting the event loop run
      if (this.sendQueueBytes >= MAX_SEND_QUEUE_BYTES || ++pieces >= PIECES_PER_TURN) {
        this.busy = true
        this.waiting = job
        if (this.sendQueueBytes < MAX_SEND_QUEUE_BYTES) this.resumeLater()
        return
      }
    }
    // the datagram ended inside a request: it is dropped, the next datagram starts afresh
    if (session.buffered > 0) this.replaceSession(kind)
    this.next()
  }

  /** Goes on with the datagram that waited for the socket (once, whoever calls first). */
  private resume(): void {
    const job = this.waiting
    if (job === null) return
    this.waiting = null
    this.busy = false
    if (this.closed || this.sessions[job.kind] !== job.session) return
    this.continue(job, EMPTY, 0)
  }

  /** Runs the datagrams that arrived while an earlier one waited. */
  private next(): void {
    while (!this.busy && this.queue.length > 0) this.run(this.queue.shift()!)
  }

  private dropWarning(what: string): void {
    this.log.warn({ udp: this.addr, queued: MAX_QUEUED, maxReplyBytes: this.opts.maxReplyBytes, ...this.drops }, what)
  }

  /**
   * A send completed (or failed): a waiting datagram goes on once half the queue is out,
   * in a later turn of the event loop (send callbacks run as next-tick callbacks: going
   * on from here would keep the loop from ever reaching timers or other sockets).
   */
  private readonly onSent = (bytes: number): void => {
    this.sendQueueBytes -= bytes
    if (this.waiting !== null && !this.resuming && this.sendQueueBytes < MAX_SEND_QUEUE_BYTES / 2) this.resumeLater()
  }

  private resumeLater(): void {
    this.resuming = true
    setImmediate(() => {
      this.resuming = false
      this.resume()
    })
  }

  /** A fresh session of `kind` for the next datagram (none once closed, or if the cache is closed). */
  private replaceSession(kind: Kind): void {
    this.sessions[kind]?.close(0)
    this.sessions[kind] = undefined
    if (this.closed) return
    try {
      const session = this.opts.openSession(this.addr)
      session.frameMessages()
      this.sessions[kind] = session
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'cannot open a session, udp datagrams dropped')
    }
  }

  /**
   * Sends `reply` as one message: datagrams of at most UDP_DATA_SIZE reply bytes, each
   * after the header (request id echoed, sequence number, datagram count, 0). An empty
   * reply is a bare header with a count of 0, as memcached sends for `quit`.
   */
  private sendMessage(reply: Buffer, requestId: number, d: Datagram): void {
    if (this.trace) this.log.trace({ udp: `${d.address}:${d.port}`, requestId, bytes: reply.length, head: preview(reply) }, 'reply')
    // A source port of 0 (spoofed: no socket sends from it) cannot be answered, and
    // dgram.send throws for it, which ended the process. memcached's sendmsg fails there
    // and it goes on: the requests ran, the replies are lost.
    if (d.port === 0) return
    const total = Math.min(Math.ceil(reply.length / UDP_DATA_SIZE), MAX_DATAGRAMS)
    let seq = 0
    let at = 0
    do {
      const header = Buffer.allocUnsafe(UDP_HEADER_SIZE)
      header.writeUInt16BE(requestId, 0)
      header.writeUInt16BE(seq & 0xffff, 2)
      header.writeUInt16BE(total, 4)
      header.writeUInt16BE(0, 6)
      const chunk = reply.subarray(at, at + UDP_DATA_SIZE)
      const bytes = UDP_HEADER_SIZE + chunk.length
      this.sendQueueBytes += bytes
      if (this.sendQueueBytes > this.peakSendQueueBytes) this.peakSendQueueBytes = this.sendQueueBytes
      this.socket.send(chunk.length > 0 ? [header, chunk] : header, d.port, d.address, () => this.onSent(bytes))
      at += UDP_DATA_SIZE
      seq++
    } while (at < reply.length)
  }
}
