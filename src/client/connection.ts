// One TCP connection to one server. Requests are pipelined: each is written as soon as it
// is made (writes of one tick are joined into one socket write) and replies are matched
// to requests in order, as the text protocol answers them. One timer per connection
// watches the oldest request's deadline; a request that times out closes the connection
// (its reply could still come and be taken for the next request's) and fails everything
// queued behind it; so does a reply that is not the protocol (one that fits no request,
// a value header with a bad byte count, a line that never ends), and the server's FIN.
// With `tls` the socket is a TLS one; requests made during the handshake wait in it.
// With `binary` (memcached's binary protocol) replies are packets framed by their
// 24-byte headers instead of lines, and the login is SASL PLAIN.
import * as net from 'node:net'
import { hostPort } from './address'
import { HEADER_BYTES, RESPONSE_MAGIC } from './binary-replies'
import { saslLogin } from './binary'
import { cacheError, type CacheError } from './errors'
import { announcedBytes, MALFORMED, MAX_LINE_BYTES, NO_VALUE } from './framing'
import { LoginReply, loginRequest, type Login } from './login'
import { connectTls, type TlsSettings } from './tls'

/** A request's share of the reply stream. */
export interface Pending {
  /** Epoch ms after which the request times out. */
  deadline: number
  /** One reply line; for a `VA` or `VALUE` reply the value is `buf[start, end)`. Binary: one
   * response packet, `buf[start, end)` (header included), and `head` empty. Returns true when
   * this request has all its replies. Must not throw. */
  reply(head: string, buf: Buffer, start: number, end: number): boolean
  fail(err: Error): void
  /** Set by `reply` when the reply fits no request: the connection is closed. */
  broken?: boolean
  /** Why, when `reply` knows better than "out of step" (a refused login). `| undefined`:
   * the login replies hold it as such, and a consumer's `exactOptionalPropertyTypes`
   * checks the shipped .d.ts against this. */
  failure?: CacheError | undefined
}

export interface ConnectionOptions {
  host: string
  port: number
  connectTimeout: number
  timeout: number
  /** Sent first, before any request: memcached's text login (binary: SASL PLAIN). */
  login?: Login
  /** Speak memcached's binary protocol: requests are packets, replies framed by headers. */
  binary: boolean
  /** Connect with TLS (the `tls` option). */
  tls?: TlsSettings
  /** The connection ended on its own (not through `close`). `failed` is false when an
   * idle, established connection was closed by the server (an idle timeout, say);
   * `byPeer` is true when a connection that had answered was closed by the server (its
   * FIN, or a reset: a close with requests unread; no timeout or reply out of step). */
  onFailure(conn: Connection, err: CacheError, failed: boolean, byPeer: boolean): void
  /** The server answered: its first reply on this connection (with `login`: the login
   * accepted). A TCP connection alone proves nothing: the kernel accepts for a hung or
   * stopped server too. */
  onAnswer(conn: Connection): void
  /** Every request queued was answered: none is in flight. */
  onIdle?(conn: Connection): void
}

/** The largest binary response body taken: memcached's largest item (`-I` 1 GiB) and
 * its header fields. A larger length is not the protocol. */
const MAX_PACKET_BODY = 1024 * 1024 * 1024 + 64 * 1024

const OUT_MIN = 16 * 1024
/** Written buffers up to this size are kept for the next ticks' requests. */
const OUT_KEEP_MAX = 4 * 1024 * 1024
/** What an idle connection keeps: larger buffers (grown by a burst of large values) are let
 * go IDLE_SHRINK_MS after it went idle, if no request is in flight then; else every
 * connection that ever wrote such a burst held ~4-5 MB for good. Not at once: a busy
 * connection goes idle between ticks all the time, and growing its buffers again each
 * time cost ~2 us of CPU per 2.4 KB set under 256 in flight. */
const IDLE_KEEP = 64 * 1024
const IDLE_SHRINK_MS = 500

const EMPTY = Buffer.alloc(0)
/** The longest delay setTimeout takes (2^31 - 1 ms, ~24.8 days). */
const MAX_DELAY = 2 ** 31 - 1

export class Connection {
  /** Its place in its server's pool (set by the pool). */
  poolIndex = 0
  readonly #options: ConnectionOptions
  readonly #socket: net.Socket
  readonly #label: string
  #queue: Array<Pending | undefined> = []
  #head = 0
  /** How many requests each queue entry stands for (a batch: one per key), and their sum:
   * what `ServerNode` bounds with `maxPending`. */
  #weights: number[] = []
  #requests = 0
  /** Unparsed bytes: a partial reply, in chunks until `#need` bytes are there (a large
   * value is joined once, not once per chunk). */
  #in: Buffer[] = []
  #inLen = 0
  #need = 0
  /** This tick's requests, encoded straight into one buffer (one copy, one write). */
  #out: Buffer = Buffer.allocUnsafe(OUT_MIN)
  #outLen = 0
  /** Written buffers the socket has let go of, reused for the next ticks' requests: a
   * fresh one per tick (hundreds of KB with large values) kept the GC busy. */
  #spare: Buffer[] = []
  #flushQueued = false
  #timer: NodeJS.Timeout | undefined
  /** The request at the head of the queue when `#timer` was armed for its deadline. */
  #timerFor: Pending | undefined
  /** `#timer` was armed short of that deadline (past setTimeout's longest delay). */
  #timerShort = false
  #connectTimer: NodeJS.Timeout | undefined
  /** Lets an idle connection's grown buffers go (`#idleShrink`). */
  #shrinkTimer: NodeJS.Timeout | undefined
  #closed = false
  #closing = false
  #connected = false
  /** A reply came: the server at the other end speaks the protocol. */
  #answered = false
  /** TCP is up and the TLS handshake has not finished (with `tls`). */
  #handshaking = false
  #referenced = true
  /** Requests queued so far, and how many of them were answered or failed (`settled`). */
  #queuedCount = 0
  #settledCount = 0
  /** Called once no request is in flight (`whenIdle`). */
  #idle: Array<() => void> = []
  readonly #closedPromise: Promise<void>

  constructor(o: ConnectionOptions) {
    this.#options = o
    this.#label = hostPort(o.host, o.port)
    const socket = o.tls === undefined ? net.connect({ host: o.host, port: o.port, noDelay: true }) : connectTls(o.host, o.port, o.tls)
    this.#socket = socket
    this.#closedPromise = new Promise((resolve) => socket.once('close', () => resolve()))
    this.#connectTimer = setTimeout(
      () =>
        afterPendingIo(() => {
          if (this.#connected) return
          const what = this.#handshaking ? `the TLS handshake with ${this.#label} (is it a TLS server?)` : `connecting to ${this.#label}`
          this.#fail(cacheError(Error, 'FERROCACHE_TIMEOUT', `${what} timed out after ${o.connectTimeout} ms`, this.#label))
        }),
      o.connectTimeout,
    )
    // connectTimeout covers the TLS handshake too: the connection is ready after it.
    if (o.tls !== undefined) socket.once('connect', () => (this.#handshaking = true))
    socket.once(o.tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(this.#connectTimer)
      this.#connectTimer = undefined
      this.#handshaking = false
      this.#connected = true
    })
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    // A reset is the peer's close too: one with a request of ours unread in its socket (how
    // nutcracker's close behind an error reply can come) arrives as RST, not FIN.
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(this.#socketError(err), err.code === 'ECONNRESET'))
    // The server's FIN: nothing more will be read, so the connection is gone now, not at
    // 'close' (a request sent in between would be written to a half-closed socket).
    socket.on('end', () => {
      // during the handshake: a TLS failure (Node reports it as an 'error' too, after this)
      if (this.#handshaking) this.#fail(cacheError(Error, 'FERROCACHE_TLS', `TLS handshake with ${this.#label} failed: the server closed the connection`, this.#label))
      else this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `connection to ${this.#label} closed`, this.#label), true)
    })
    // After 'error' or a timeout the connection has failed already: this is the server's own close.
    socket.on('close', () => {
      this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `connection to ${this.#label} closed`, this.#label), true)
    })
    this.#setRef(false)
    if (o.login !== undefined) {
      // First in the queue and in the first write; requests made meanwhile follow it.
      const deadline = Date.now() + o.connectTimeout + o.timeout
      const loggedIn = () => o.onAnswer(this)
      if (o.binary) {
        const { reply, requests } = saslLogin(o.login, deadline, this.#label, loggedIn)
        this.send(reply, requests[0]!)
        for (const r of requests.slice(1)) this.sendMore(r)
      } else {
        const [text, value] = loginRequest(o.login)
        this.send(new LoginReply(deadline, o.login.username, this.#label, loggedIn), text, value)
      }
    }
  }

  /** Requests written and not yet answered. */
  get pending(): number {
    return this.#queue.length - this.#head
  }

  get closed(): boolean {
    return this.#closed || this.#closing
  }

  /** Requests (a batch's keys each) written and not yet answered or failed. */
  get requests(): number {
    return this.#requests
  }

  /** How many requests were queued on this connection so far: the number of the latest. */
  get queued(): number {
    return this.#queuedCount
  }

  /** Numbers this connection's requests on from `n` (the `queued` of the connection whose
   * place in the pool it takes): the numbers its predecessor gave out stay answered. Only
   * before any request of it was noted by number. */
  numberFrom(n: number): void {
    this.#queuedCount += n
    this.#settledCount += n
  }

  /** Whether the request numbered `n` (`queued` just after it went in, its low 24 bits)
   * has been answered, or failed: requests are answered in order. */
  settled(n: number): boolean {
    // modulo 2^24: fewer than 2^23 requests are ever in flight on a connection
    return ((this.#settledCount - n) & 0xffffff) < 0x800000
  }

  /** Queues `p` and writes its request: `text` alone, or with a value, a store:
   * `text`, the value's length in bytes, `tail`, CRLF, the value, CRLF. Binary: `text` is
   * a packet, the value follows it (its bytes added to the packet's body length).
   * `requests`: how many requests `p` reads the replies of (a batch's keys). */
  send(p: Pending, text: string | Uint8Array, value?: string | Uint8Array, tail = '', requests = 1): void {
    if (this.#closed || this.#closing) {
      p.fail(cacheError(Error, 'FERROCACHE_CONNECTION', `connection to ${this.#label} is closed`, this.#label))
      return
    }
    if (this.pending === 0) this.#setRef(true)
    this.#queue.push(p)
    this.#weights.push(requests)
    this.#requests += requests
    this.#queuedCount++
    this.sendMore(text, value, tail)
    if (this.#timer === undefined) this.#arm(p.deadline - Date.now())
  }

  /** More requests answered as part of the one just queued by `send` (a batch). */
  sendMore(text: string | Uint8Array, value?: string | Uint8Array, tail = ''): void {
    if (this.#closed) return
    if (typeof text !== 'string') this.#packet(text, value)
    else if (value === undefined) {
      // UTF-8 takes at most 3 bytes per UTF-16 unit.
      this.#reserve(text.length * 3)
      this.#outLen += this.#out.write(text, this.#outLen)
    } else if (typeof value === 'string') {
      // Encode the value first, past room for the header, so it is scanned once (no
      // separate byteLength pass); then the header, and the value moved up behind it.
      const headRoom = (text.length + tail.length) * 3 + 12
      this.#reserve(headRoom + value.length * 3 + 2)
      const out = this.#out
      const valueAt = this.#outLen + headRoom
      const n = out.write(value, valueAt)
      let at = this.#outLen + out.write(`${text}${n}${tail}\r\n`, this.#outLen)
      out.copyWithin(at, valueAt, valueAt + n)
      at += n
      out[at++] = 13
      out[at++] = 10
      this.#outLen = at
    } else {
      this.#reserve((text.length + tail.length) * 3 + 12 + value.length + 2)
      const out = this.#out
      let at = this.#outLen + out.write(`${text}${value.length}${tail}\r\n`, this.#outLen)
      out.set(value, at)
      at += value.length
      out[at++] = 13
      out[at++] = 10
      this.#outLen = at
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true
      process.nextTick(() => this.#flush())
    }
  }

  /** A binary request: the packet, then the value, whose byte length is added to the
   * body length in the packet's header (offset 8). */
  #packet(packet: Uint8Array, value: string | Uint8Array | undefined): void {
    const size = value === undefined ? 0 : typeof value === 'string' ? value.length * 3 : value.length
    this.#reserve(packet.length + size)
    const out = this.#out
    const at = this.#outLen
    out.set(packet, at)
    let end = at + packet.length
    if (value !== undefined) {
      const n = typeof value === 'string' ? out.write(value, end) : (out.set(value, end), value.length)
      out.writeUInt32BE(out.readUInt32BE(at + 8) + n, at + 8)
      end += n
    }
    this.#outLen = end
  }

  /** Calls `then` once no request is in flight: at once if none is, else when the last
   * is answered, or fails with the connection. */
  whenIdle(then: () => void): void {
    if (this.pending === 0) then()
    else this.#idle.push(then)
  }

  #becameIdle(): void {
    for (const then of this.#idle.splice(0)) then()
  }

  /** Closes once every queued request is answered (or failed); resolves when closed. */
  close(): Promise<void> {
    this.#closing = true
    if (this.pending === 0) this.#socket.destroy()
    return this.#closedPromise
  }

  /** Closes now, failing what is queued with FERROCACHE_CLOSED; resolves when closed. */
  destroy(): Promise<void> {
    this.#closing = true
    this.#fail(cacheError(Error, 'FERROCACHE_CLOSED', 'the client is closed', this.#label))
    return this.#closedPromise
  }

  #flush(): void {
    this.#flushQueued = false
    if (this.#closed || this.#outLen === 0) return
    const used = this.#outLen
    const written = this.#out
    // The socket may hold the bytes until the kernel takes them: the buffer comes back
    // for reuse once the write is done.
    this.#socket.write(written.subarray(0, used), (err) => {
      if (err === undefined || err === null) this.#recycle(written)
    })
    // The next one sized like this tick's, so a busy connection does not grow it again;
    // at most OUT_KEEP_MAX, or one large value would leave an idle connection holding
    // a buffer of its size.
    const size = Math.max(OUT_MIN, Math.min(used, OUT_KEEP_MAX))
    const spare = this.#spare.pop()
    this.#out = spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafe(size)
    this.#outLen = 0
  }

  #recycle(buf: Buffer): void {
    if (buf.length <= OUT_KEEP_MAX && this.#spare.length < 2 && !this.#closed) this.#spare.push(buf)
  }

  /** No request in flight: IDLE_SHRINK_MS later, if none is then, the buffers a busy spell
   * grew go (see IDLE_KEEP). */
  #idleShrink(): void {
    if (this.#shrinkTimer !== undefined || (this.#out.length <= IDLE_KEEP && !this.#spare.some((b) => b.length > IDLE_KEEP))) return
    this.#shrinkTimer = setTimeout(() => {
      this.#shrinkTimer = undefined
      if (this.pending > 0 || this.#outLen > 0) return // busy again: its next idle spell re-arms
      if (this.#out.length > IDLE_KEEP) this.#out = Buffer.allocUnsafe(OUT_MIN)
      this.#spare = this.#spare.filter((b) => b.length <= IDLE_KEEP)
    }, IDLE_SHRINK_MS)
    this.#shrinkTimer.unref()
  }

  #reserve(bytes: number): void {
    if (this.#outLen + bytes <= this.#out.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.#out.length * 2, this.#outLen + bytes))
    this.#out.copy(bigger, 0, 0, this.#outLen)
    this.#out = bigger
  }

  #arm(ms: number): void {
    this.#timerFor = this.#queue[this.#head]
    // setTimeout's longest delay: a longer one fires after 1 ms (with a warning), and a
    // login's or probe's deadline is connectTimeout + timeout away, each up to that long
    this.#timerShort = ms > MAX_DELAY
    this.#timer = setTimeout(() => afterPendingIo(() => this.#onTimer()), Math.min(MAX_DELAY, Math.max(1, ms)))
    this.#timer.unref()
  }

  #onTimer(): void {
    this.#timer = undefined
    const head = this.#queue[this.#head]
    if (head === undefined || this.#closed) return
    // The timer was armed for the head's deadline: if that request is still waiting, its
    // time is up by the timer's clock, whatever `Date.now` says. A frozen `Date.now` (a
    // mocked date) left `left` at its full value and re-armed forever: no timeout ever.
    const left = head.deadline - Date.now()
    if (left > 0 && (head !== this.#timerFor || this.#timerShort)) return this.#arm(left)
    this.#fail(cacheError(Error, 'FERROCACHE_TIMEOUT', `request to ${this.#label} timed out after ${this.#options.timeout} ms`, this.#label))
  }

  #setRef(on: boolean): void {
    // An idle client must not keep the process alive; one waiting for replies must.
    if (on === this.#referenced) return
    this.#referenced = on
    if (on) this.#socket.ref()
    else this.#socket.unref()
  }

  #onData(chunk: Buffer): void {
    let buf = chunk
    if (this.#inLen > 0) {
      this.#in.push(chunk)
      this.#inLen += chunk.length
      if (this.#inLen < this.#need) return
      buf = Buffer.concat(this.#in, this.#inLen)
      this.#in = []
      this.#inLen = 0
    }
    this.#need = 0
    const pos = this.#options.binary ? this.#readPackets(buf) : this.#readLines(buf)
    if (pos >= 0 && pos < buf.length) {
      this.#in = [buf.subarray(pos)]
      this.#inLen = buf.length - pos
    }
  }

  /** Reads the reply lines (and values) in `buf`: where the unread rest starts, or -1 when
   * the connection failed. */
  #readLines(buf: Buffer): number {
    let pos = 0
    while (pos < buf.length) {
      const p = this.#queue[this.#head]
      if (p === undefined) {
        // A reply nobody asked for: the stream can no longer be trusted.
        this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} sent an unexpected reply`, this.#label))
        return -1
      }
      const nl = buf.indexOf(10, pos)
      if (nl === -1) {
        if (buf.length - pos <= MAX_LINE_BYTES) break
        const line = buf.toString('latin1', pos, pos + 100)
        this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} sent a line of over ${MAX_LINE_BYTES} bytes: ${line}`, this.#label))
        return -1
      }
      let start = 0
      let end = 0
      let next = nl + 1
      const size = announcedBytes(buf, pos, nl)
      if (size === MALFORMED) {
        const line = buf.toString('latin1', pos, Math.min(nl, pos + 100))
        this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} sent a malformed value header: ${line}`, this.#label))
        return -1
      }
      if (size !== NO_VALUE) {
        if (next + size + 2 > buf.length) {
          this.#need = next + size + 2 - pos // the value is still coming
          break
        }
        start = next
        end = next + size
        next = end + 2
      }
      const head = buf.toString('latin1', pos, buf[nl - 1] === 13 ? nl - 1 : nl)
      pos = next
      if (!this.#deliver(p, head, buf, start, end)) return -1
    }
    return pos
  }

  /** Reads the binary response packets in `buf`, each whole to the request at the head of
   * the queue: where the unread rest starts, or -1 when the connection failed. */
  #readPackets(buf: Buffer): number {
    let pos = 0
    while (pos < buf.length) {
      // known from the first byte: a text reply (`ERROR`, memcached -Y's `CLIENT_ERROR
      // unauthenticated`) fails now, not when the request times out waiting for 24 bytes
      if (buf[pos] !== RESPONSE_MAGIC) {
        this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} ${notBinary(buf, pos)}`, this.#label))
        return -1
      }
      if (buf.length - pos < HEADER_BYTES) break
      const p = this.#queue[this.#head]
      const body = buf.readUInt32BE(pos + 8)
      // extras and key are inside the body: one that cannot hold them is not a packet
      // (its value would start past its end, a GETS' flags be read from the next one)
      const extrasAndKey = buf[pos + 4]! + buf.readUInt16BE(pos + 2)
      if (body > MAX_PACKET_BODY || extrasAndKey > body || p === undefined) {
        const what = p === undefined ? 'an unexpected reply' : `a malformed packet header (magic 0x81, body ${body} bytes, extras and key ${extrasAndKey})`
        this.#fail(cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} sent ${what}`, this.#label))
        return -1
      }
      const end = pos + HEADER_BYTES + body
      if (end > buf.length) {
        this.#need = end - pos // the body is still coming
        break
      }
      const at = pos
      pos = end
      if (!this.#deliver(p, '', buf, at, end)) return -1
    }
    return pos
  }

  /** Gives `p` a reply; dequeues it when it has all of them. False when the reply broke
   * the connection (it fit no request, or a login was refused). */
  #deliver(p: Pending, head: string, buf: Buffer, start: number, end: number): boolean {
    const first = !this.#answered
    this.#answered = true
    const done = p.reply(head, buf, start, end)
    if (p.broken === true) {
      this.#fail(p.failure ?? cacheError(Error, 'FERROCACHE_CONNECTION', `${this.#label} sent a reply out of step; connection closed`, this.#label))
      return false
    }
    // with a login, its reply says whether the server let us in (`loggedIn`)
    if (first && this.#options.login === undefined) this.#options.onAnswer(this)
    if (done) {
      this.#requests -= this.#weights[this.#head]!
      this.#queue[this.#head++] = undefined
      this.#settledCount++
      if (this.#head === this.#queue.length) {
        this.#queue = []
        this.#weights = []
        this.#head = 0
        // the request the timer was armed for is answered: holding it would keep it (and a
        // batch's keys and values with it) until the timer is armed again
        this.#timerFor = undefined
        this.#idleShrink()
        this.#setRef(false)
        if (this.#closing) this.#socket.destroy()
        if (this.#idle.length > 0) this.#becameIdle()
        this.#options.onIdle?.(this)
      }
    }
    return true
  }

  /** A certificate refused, a handshake cut off, a TLS alert: FERROCACHE_TLS with OpenSSL's
   * words; anything else (refused, reset) FERROCACHE_CONNECTION. */
  #socketError(err: NodeJS.ErrnoException): CacheError {
    const tlsFailure = this.#options.tls !== undefined && (this.#handshaking || err.code?.startsWith('ERR_SSL_') === true)
    if (!tlsFailure) {
      return cacheError(Error, 'FERROCACHE_CONNECTION', `connection to ${this.#label} failed: ${err.code ?? err.message}`, this.#label)
    }
    const what = this.#connected ? 'TLS connection to' : 'TLS handshake with'
    return cacheError(Error, 'FERROCACHE_TLS', `${what} ${this.#label} failed: ${tlsReason(err)}`, this.#label)
  }

  #fail(err: CacheError, byPeer = false): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#connectTimer)
    clearTimeout(this.#timer)
    clearTimeout(this.#shrinkTimer)
    this.#socket.destroy()
    // nothing is written any more: the pool may keep this object until its place is taken
    this.#out = EMPTY
    this.#outLen = 0
    this.#spare = []
    const queue = this.#queue
    const from = this.#head
    this.#queue = []
    this.#weights = []
    this.#requests = 0
    this.#head = 0
    this.#settledCount = this.#queuedCount
    for (let i = from; i < queue.length; i++) queue[i]!.fail(err)
    if (!this.#closing) this.#options.onFailure(this, err, !this.#connected || queue.length > from, byPeer && this.#answered)
    this.#becameIdle()
  }
}

/**
 * Runs `verdict` after the I/O that is ready now. Node runs due timers before it reads
 * sockets: after the event loop was held (a long synchronous run, a busy machine) a timer
 * would time out a connect that was up or a request whose reply was in the socket.
 * Referenced: only a referenced immediate keeps the poll from blocking; an unreferenced
 * one waited there for I/O or another timer, so a silent server's request never timed out.
 */
function afterPendingIo(verdict: () => void): void {
  setImmediate(verdict)
}

/** What a reply that does not start with the binary response magic is: a text line (a
 * server that does not take binary requests answering in text), else a bad header. */
function notBinary(buf: Buffer, pos: number): string {
  const line = buf.toString('latin1', pos, Math.min(buf.length, pos + 100)).split(/\r?\n/)[0]!
  if (/^[\x20-\x7e]+$/.test(line)) return `answered in text, not the binary protocol: ${line}`
  return `sent a malformed packet header (magic 0x${buf[pos]!.toString(16)})`
}

/** OpenSSL's words for a TLS failure, and Node's code: `unable to verify the first
 * certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`, not the library's whole error stack. */
function tlsReason(err: NodeJS.ErrnoException): string {
  // `write EPROTO 80…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…`
  const reason = /error:[0-9A-F]+:[^:]*:[^:]*:([^:\n]+)/.exec(err.message)?.[1] ?? err.message
  const code = err.code === undefined || reason.includes(err.code) ? '' : ` (${err.code})`
  // what a TLS client reads when the server answers in plain text
  const hint = reason === 'wrong version number' ? ': is it a TLS server?' : ''
  return `${reason}${code}${hint}`
}
