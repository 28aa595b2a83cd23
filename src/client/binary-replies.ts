// What each request makes of its replies in memcached's binary protocol (protocol: 'binary'):
// 24-byte response headers (magic 0x81, opcode, key length, extras length, status, body
// length, opaque, CAS), then extras, key and value. `Connection` hands every response
// packet whole to the request at the head of its queue: `reply('', buf, at, end)` with
// `buf[at, end)` the packet. Results and errors match the meta path's.
import type { Pending } from './connection'
import { cacheError, type CacheError } from './errors'
import { ARITH, decode, GET, GETS, OK, STORE, unexpected, type Kind, type Settle } from './requests'
import type { Encoding } from '../types'

export const HEADER_BYTES = 24
export const RESPONSE_MAGIC = 0x81

/** Response statuses (memcached's protocol_binary.h). */
export const STATUS = {
  OK: 0x00,
  KEY_ENOENT: 0x01,
  KEY_EEXISTS: 0x02,
  E2BIG: 0x03,
  NOT_STORED: 0x05,
  DELTA_BADVAL: 0x06,
  AUTH_ERROR: 0x20,
  UNKNOWN_COMMAND: 0x81,
  ENOMEM: 0x82,
  NOT_SUPPORTED: 0x83,
} as const

const OPCODE_VERSION = 0x0b
const OPCODE_STAT = 0x10

const status = (buf: Buffer, at: number): number => buf.readUInt16BE(at + 6)
const opaqueOf = (buf: Buffer, at: number): number => buf.readUInt32BE(at + 12)
/** Where the value starts: after the header, the extras and the key. */
const valueAt = (buf: Buffer, at: number): number => at + HEADER_BYTES + buf[at + 4]! + buf.readUInt16BE(at + 2)

/** The packet in words for messages: its value (the server's error text) or its status. */
function said(buf: Buffer, at: number, end: number): string {
  const from = valueAt(buf, at)
  const text = buf.toString('latin1', from, Math.min(end, from + 100)).trim()
  const code = `status 0x${status(buf, at).toString(16).padStart(2, '0')}`
  return text === '' ? code : `${text} (${code})`
}

/** A packet that fits no request: marks `p` broken (the connection closes behind it). */
function outOfStep(buf: Buffer, at: number, server: string, p: Pending): Error {
  return unexpected(`binary opcode 0x${buf[at + 1]!.toString(16)} opaque ${opaqueOf(buf, at)}`, server, p)
}

/** The error for a status that is not an answer: the embedded cache's codes where the
 * failure is the same (too large, out of memory, non-numeric), else FERROCACHE_SERVER_ERROR. */
export function statusError(buf: Buffer, at: number, end: number, server: string): CacheError {
  const words = said(buf, at, end)
  switch (status(buf, at)) {
    case STATUS.E2BIG:
      return cacheError(RangeError, 'FERROCACHE_TOO_LARGE', `value is too large for ${server}: ${words}`, server)
    case STATUS.ENOMEM:
      return cacheError(Error, 'FERROCACHE_OUT_OF_MEMORY', `${server}: ${words}`, server)
    case STATUS.DELTA_BADVAL:
      return cacheError(TypeError, 'FERROCACHE_NON_NUMERIC', 'cannot increment or decrement non-numeric value', server)
    default:
      return cacheError(Error, 'FERROCACHE_SERVER_ERROR', `${server} answered: ${words}`, server)
  }
}

/** What a single request of `kind` reads from its response packet. */
function readResult(kind: Kind, encoding: Encoding, buf: Buffer, at: number, end: number, server: string, p: Pending): unknown {
  const code = status(buf, at)
  if (code === STATUS.OK) {
    switch (kind) {
      case GET:
        return decode(buf, valueAt(buf, at), end, encoding)
      case GETS:
        return {
          value: decode(buf, valueAt(buf, at), end, encoding),
          cas: buf.readBigUInt64BE(at + 16),
          flags: buf[at + 4]! >= 4 ? buf.readUInt32BE(at + HEADER_BYTES) : 0,
        }
      case ARITH:
        if (end - valueAt(buf, at) !== 8) throw outOfStep(buf, at, server, p)
        return buf.readBigUInt64BE(valueAt(buf, at))
      case OK:
        return undefined
      default:
        return true // FOUND, HAS, STORE
    }
  }
  if (code === STATUS.KEY_ENOENT && kind !== OK) return kind === GET || kind === GETS || kind === ARITH ? undefined : false
  if ((code === STATUS.KEY_EEXISTS || code === STATUS.NOT_STORED) && kind === STORE) return false
  throw statusError(buf, at, end, server)
}

/** One request with one response packet, matched by its opaque. */
export class BinaryRequest implements Pending {
  broken = false
  constructor(
    readonly deadline: number,
    private readonly opaque: number,
    private readonly kind: Kind,
    private readonly encoding: Encoding,
    private readonly server: string,
    private readonly resolve: Settle,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(_head: string, buf: Buffer, at: number, end: number): boolean {
    try {
      if (opaqueOf(buf, at) !== this.opaque) throw outOfStep(buf, at, this.server, this)
      this.resolve(readResult(this.kind, this.encoding, buf, at, end, this.server, this))
    } catch (err) {
      this.reject(err as Error)
    }
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/** `count` quiet requests with consecutive opaques from `first`, then a noop (opaque
 * `first + count`) whose answer ends the batch. Gets (`encoding` given: getkq) answer only
 * hits; stores (setq) and deletes (deleteq) only what they could not do (not stored, not
 * found) and errors. The first error rejects the batch at the noop; a second answer to
 * one request (or one for an opaque never sent) is out of step. */
export class BinaryBatch implements Pending {
  broken = false
  readonly #values: unknown[]
  /** Which quiet requests have answered: a second answer to one is out of step. */
  readonly #answered: Uint8Array
  #misses = 0
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    private readonly first: number,
    private readonly count: number,
    private readonly encoding: Encoding | undefined,
    private readonly server: string,
    private readonly resolve: (result: { values: unknown[]; hits: number }) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.#values = new Array<unknown>(count)
    this.#answered = new Uint8Array(count)
  }

  reply(_head: string, buf: Buffer, at: number, end: number): boolean {
    const j = (opaqueOf(buf, at) - this.first) >>> 0
    if (j > this.count || (j < this.count && this.#answered[j]++ !== 0)) {
      this.reject(outOfStep(buf, at, this.server, this))
      return true
    }
    if (j === this.count) {
      // the noop: every quiet request before it has been answered or had nothing to say
      if (this.#error !== undefined) this.reject(this.#error)
      else this.resolve({ values: this.#values, hits: this.count - this.#misses })
      return true
    }
    const code = status(buf, at)
    if (code === STATUS.OK && this.encoding !== undefined) {
      try {
        this.#values[j] = decode(buf, valueAt(buf, at), end, this.encoding)
      } catch (err) {
        this.#error ??= err as Error
      }
    } else if (code === STATUS.KEY_ENOENT || code === STATUS.KEY_EEXISTS || code === STATUS.NOT_STORED) {
      this.#misses++
    } else if (code !== STATUS.OK) {
      this.#error ??= statusError(buf, at, end, this.server)
    }
    return false
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/** `stat`, `stat slabs`, `stat items`: a packet per statistic, each section ended by one
 * with an empty key. */
export class BinaryStats implements Pending {
  broken = false
  readonly #stats = new Map<string, string>()
  #ends = 0
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    private readonly sections: number,
    private readonly server: string,
    private readonly resolve: (stats: Map<string, string>) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(_head: string, buf: Buffer, at: number, end: number): boolean {
    // every stat packet answers a `stat` (opaque 0): anything else, a late quiet reply
    // say, would be taken for a statistic
    if (buf[at + 1] !== OPCODE_STAT || opaqueOf(buf, at) !== 0) {
      this.reject(outOfStep(buf, at, this.server, this))
      return true
    }
    const keyBytes = buf.readUInt16BE(at + 2)
    if (status(buf, at) !== STATUS.OK) this.#error ??= statusError(buf, at, end, this.server)
    else if (keyBytes > 0) {
      const keyAt = at + HEADER_BYTES + buf[at + 4]!
      this.#stats.set(buf.toString('latin1', keyAt, keyAt + keyBytes), buf.toString('latin1', keyAt + keyBytes, end))
      return false
    }
    // an empty key, or an error in its place, ends a section
    if (++this.#ends < this.sections) return false
    if (this.#error !== undefined) this.reject(this.#error)
    else this.resolve(this.#stats)
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/** Whether a probe's response is a version: the server is up (and, with a login, let it in). */
export function isVersionReply(buf: Buffer, at: number): boolean {
  return buf[at] === RESPONSE_MAGIC && buf[at + 1] === OPCODE_VERSION && status(buf, at) === STATUS.OK
}

/** Reads the answers to the SASL login sent first on a connection: `SASL list mechs`,
 * then `SASL auth` PLAIN. Authenticated lets the requests queued behind it go on; a refusal
 * (memcached's 0x20 Auth failure), or a server whose mechanisms lack PLAIN, closes the
 * connection and fails them with FERROCACHE_AUTH. A server without SASL (unknown command to
 * both) lets them go on, as a server without logins takes the text login. */
export class SaslReply implements Pending {
  broken = false
  failure: CacheError | undefined
  #mechanisms: string | undefined
  #noSasl = false

  constructor(
    readonly deadline: number,
    private readonly username: string,
    private readonly server: string,
    private readonly loggedIn: () => void,
  ) {}

  reply(_head: string, buf: Buffer, at: number, end: number): boolean {
    const code = status(buf, at)
    const noSasl = code === STATUS.UNKNOWN_COMMAND || code === STATUS.NOT_SUPPORTED
    if (this.#mechanisms === undefined && !this.#noSasl) {
      // the mechanisms' answer
      if (noSasl) this.#noSasl = true
      else if (code !== STATUS.OK) return this.#refused(said(buf, at, end))
      else {
        this.#mechanisms = buf.toString('latin1', valueAt(buf, at), end)
        if (!/(^|\s)PLAIN(\s|$)/.test(this.#mechanisms)) return this.#refused(`it offers no PLAIN login (mechanisms: ${this.#mechanisms.slice(0, 100)})`)
      }
      return false
    }
    if (code === STATUS.OK || (this.#noSasl && noSasl)) this.loggedIn()
    else this.#refused(said(buf, at, end))
    return true
  }

  #refused(why: string): true {
    this.broken = true
    this.failure = cacheError(Error, 'FERROCACHE_AUTH', `login to ${this.server} as '${this.username}' failed: ${why}`, this.server)
    return true
  }

  fail(): void {
    // The connection failed: the requests queued behind the login get its error.
  }
}
