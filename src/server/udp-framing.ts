// How memcached 1.6.18 frames the replies to a datagram: each response object goes out as
// its own UDP message, and at each write-out the first object of the batch is sent even
// when empty, as a bare header; later empty ones are not. Done here for the datagrams
// whose objects can be told apart from the requests and the replies alone:
// - text reads: every key of a `get`/`gets`/`gat`/`gats` has its own object (a hit's
//   VALUE block; `END` goes on the last key's), each command is a write-out. Measured:
//   `get a b` is two messages, `get nope a` a bare header then `VALUE a …END`, `get a
//   nope` `VALUE a …` then `END`.
// - binary requests: an object each (a quiet success or get miss: empty); a write-out
//   after each non-quiet request, each quiet one answered with an error, and the 21st,
//   41st… request (`-R`, 20). Measured: `getkq` miss, `getkq` hit, `noop` is a bare
//   header, the hit, the noop; 25 `getkq` misses and a `noop` two bare headers and the noop.

/** The read commands memcached answers with one response object per key. */
const READS = new Set(['get', 'gets', 'gat', 'gats'])

/** `g`: how a datagram of text reads starts. */
const LOWER_G = 0x67

/** memcached's longest key. */
const KEY_MAX = 250

/**
 * The keys of each command of `request`, when it holds only text reads, whole lines, each
 * with at least one key (within memcached's length); else null.
 */
function readKeys(request: Buffer): string[][] | null {
  const text = request.toString('latin1')
  if (!text.endsWith('\n')) return null
  const commands: string[][] = []
  for (const line of text.slice(0, -1).split('\n')) {
    // memcached splits on spaces, runs of them included; a `\r` before the `\n` goes
    const tokens = line.replace(/\r$/, '').split(' ').filter((t) => t !== '')
    const name = tokens[0]
    if (name === undefined || !READS.has(name)) return null
    const keys = tokens.slice(name.startsWith('gat') ? 2 : 1)
    if (keys.length === 0 || keys.some((k) => k.length > KEY_MAX)) return null
    commands.push(keys)
  }
  return commands
}

/**
 * Frames the replies to a datagram of text reads as memcached does, piece by piece: the
 * session hands a datagram's replies over in pieces once they pass its budget (a
 * multiget resumes at a key), and each key's response object must still be its own
 * message. An object cut by a piece's end waits for the next piece (at most one item).
 */
export class ReadReplyFramer {
  /** The command and the key whose response object comes next. */
  private command = 0
  private key = 0
  /** Reply bytes of an object not yet whole at the end of the last piece. */
  private carry: Buffer = Buffer.alloc(0)
  /** A piece that did not parse: the rest goes unframed (one message a piece). */
  private failed = false

  constructor(private readonly commands: string[][]) {}

  /** False once a piece did not parse. */
  get framed(): boolean {
    return !this.failed
  }

  /** The framer for `request`, when it holds only text reads; else null. */
  static of(request: Buffer): ReadReplyFramer | null {
    const commands = readKeys(request)
    return commands === null ? null : new ReadReplyFramer(commands)
  }

  /**
   * The messages of `piece` (with what the last piece left); `last`: no piece follows.
   * Null when the replies are not the reads' VALUE blocks and `END`s: send the piece (and
   * any later one) as one message then.
   */
  push(piece: Buffer, last: boolean): Buffer[] | null {
    if (this.failed) return null
    const reply = this.carry.length === 0 ? piece : Buffer.concat([this.carry, piece])
    const messages: Buffer[] = []
    let at = 0
    while (this.command < this.commands.length) {
      const keys = this.commands[this.command]!
      const end = objectEnd(reply, at, keys[this.key]!, last)
      if (end === undefined) break // cut by the piece's end: waits for the next
      if (end === null) return this.fail(reply.subarray(at), messages)
      let objectEndAt = end
      if (this.key === keys.length - 1) {
        // `END` goes on the last key's object
        if (reply.length - end < 5 && !last && reply.toString('latin1', end) === 'END\r\n'.slice(0, reply.length - end)) break
        if (reply.toString('latin1', end, end + 5) !== 'END\r\n') return this.fail(reply.subarray(at), messages)
        objectEndAt = end + 5
      }
      // a miss (empty object) is sent only first in its command, as a bare header
      if (this.key === 0 || objectEndAt > at) messages.push(reply.subarray(at, objectEndAt))
      at = objectEndAt
      if (++this.key === keys.length) {
        this.key = 0
        this.command++
      }
    }
    this.carry = reply.subarray(at)
    if (this.command === this.commands.length && this.carry.length > 0) return this.fail(this.carry, messages)
    if (last && (this.carry.length > 0 || this.command < this.commands.length)) return this.fail(this.carry, messages)
    // a copy when the rest of a large piece waits: not the whole piece kept for it
    if (this.carry.length > 0 && this.carry.length < reply.length / 2) this.carry = Buffer.from(this.carry)
    return messages
  }

  /** Gives up framing: `rest` goes as one message after those already made. */
  private fail(rest: Buffer, messages: Buffer[]): Buffer[] {
    this.failed = true
    this.carry = Buffer.alloc(0)
    if (rest.length > 0) messages.push(rest)
    return messages
  }
}

/**
 * Where `key`'s response object starting at `at` ends: after its VALUE block, or at `at`
 * for a miss; undefined when the piece ends too soon to tell (unless `last`), null when
 * the bytes are not a VALUE block.
 */
function objectEnd(reply: Buffer, at: number, key: string, last: boolean): number | null | undefined {
  const head = `VALUE ${key} `
  const seen = reply.toString('latin1', at, at + head.length)
  if (seen !== head) {
    // a piece ending inside (or right before) a VALUE line: more may come
    if (!last && seen.length < head.length && head.startsWith(seen)) return undefined
    return at
  }
  const lineEnd = reply.indexOf('\r\n', at)
  if (lineEnd < 0) return last ? null : undefined
  const bytes = Number(reply.toString('latin1', at, lineEnd).split(' ')[3])
  if (!Number.isSafeInteger(bytes) || bytes < 0) return null
  const end = lineEnd + 2 + bytes + 2
  if (end > reply.length) return last ? null : undefined
  return reply.toString('latin1', end - 2, end) === '\r\n' ? end : null
}

/**
 * The UDP messages memcached sends for `reply` to `request`, when `request` holds only
 * text reads and `reply` is their VALUE blocks and `END`s; else null (then the replies go
 * as one message).
 */
export function readReplyMessages(request: Buffer, reply: Buffer): Buffer[] | null {
  const framer = ReadReplyFramer.of(request)
  if (framer === null) return null
  const messages = framer.push(reply, true)
  return messages === null || framer.framed ? messages : null
}

/** Binary opcodes that answer only errors (and a get's hit). */
const QUIET = new Set([0x09, 0x0d, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1e, 0x24])
/** Binary `stat`: one object of several packets, the last with no key and no body. */
const STAT = 0x10
const REQUEST_MAGIC = 0x80
const RESPONSE_MAGIC = 0x81
const BINARY_HEADER = 24

/**
 * The UDP messages memcached sends for `reply` to the binary requests of `request` (with
 * `-R` `reqsPerEvent`), when each response packet belongs to the next request (same
 * opcode and opaque); else null (then the replies go as one message).
 */
export function binaryReplyMessages(request: Buffer, reply: Buffer, reqsPerEvent: number): Buffer[] | null {
  const messages: Buffer[] = []
  let firstOfBatch = true
  let count = 0
  let out = 0
  for (let at = 0; at < request.length; ) {
    if (at + BINARY_HEADER > request.length || request[at] !== REQUEST_MAGIC) return null
    const opcode = request[at + 1]!
    const opaque = request.readUInt32BE(at + 12)
    at += BINARY_HEADER + request.readUInt32BE(at + 8)
    if (at > request.length) return null
    count++
    // its object: the packets answering it
    const start = out
    let status = 0
    while (out + BINARY_HEADER <= reply.length && reply[out] === RESPONSE_MAGIC && reply[out + 1] === opcode && reply.readUInt32BE(out + 12) === opaque) {
      const keyLength = reply.readUInt16BE(out + 2)
      const bodyLength = reply.readUInt32BE(out + 8)
      status = reply.readUInt16BE(out + 6)
      out += BINARY_HEADER + bodyLength
      if (opcode !== STAT || (keyLength === 0 && bodyLength === 0)) break
    }
    const quiet = QUIET.has(opcode)
    if (out > reply.length || (out === start && !quiet)) return null
    if (firstOfBatch || out > start) messages.push(reply.subarray(start, out))
    firstOfBatch = !quiet || status !== 0 || (count > 1 && (count - 1) % reqsPerEvent === 0)
  }
  return out === reply.length ? messages : null
}

/** Binary opcodes that change nothing: get, getq, noop, version, getk, getkq, stat. */
const BINARY_READS = new Set([0x00, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x10])

/**
 * Text commands that change nothing: `get`/`gets` (not `gat`: it touches), `version`,
 * `mn`, `me`, `lru_crawler metadump`, `stats` (not `stats reset`, `stats detail on|off`).
 */
const TEXT_READ = /^(gets? |version\r?$|mn\r?$|me |lru_crawler metadump |stats(\r?$| (?!reset|detail o)))/

/**
 * Whether `request` (a datagram's payload) only reads: TEXT_READ lines, or binary gets,
 * `noop`, `version` and `stat`. Replies past a limit can then stop its run without
 * losing a write.
 */
export function onlyReads(request: Buffer): boolean {
  if (request[0] === REQUEST_MAGIC) {
    for (let at = 0; at < request.length; ) {
      if (at + BINARY_HEADER > request.length || request[at] !== REQUEST_MAGIC || !BINARY_READS.has(request[at + 1]!)) return false
      at += BINARY_HEADER + request.readUInt32BE(at + 8)
    }
    return true
  }
  const text = request.toString('latin1')
  return text.endsWith('\n') && text.slice(0, -1).split('\n').every((line) => TEXT_READ.test(line))
}

/**
 * The UDP messages memcached sends for the replies to one datagram's requests, for a
 * datagram of text reads or of binary requests; null for any other (one message then).
 */
export function replyMessages(request: Buffer, reply: Buffer, reqsPerEvent: number): Buffer[] | null {
  if (request[0] === REQUEST_MAGIC) return binaryReplyMessages(request, reply, reqsPerEvent)
  return request[0] === LOWER_G ? readReplyMessages(request, reply) : null
}
