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
 * The UDP messages memcached sends for `reply` to `request`, when `request` holds only
 * text reads and `reply` is their VALUE blocks and `END`s; else null (then the replies go
 * as one message).
 */
export function readReplyMessages(request: Buffer, reply: Buffer): Buffer[] | null {
  const commands = readKeys(request)
  if (commands === null) return null
  const messages: Buffer[] = []
  let at = 0
  for (const keys of commands) {
    // each key's response object: [start, end) of `reply`
    const objects: Array<[number, number]> = []
    for (const key of keys) {
      const start = at
      const head = `VALUE ${key} `
      if (reply.toString('latin1', at, at + head.length) === head) {
        const lineEnd = reply.indexOf('\r\n', at)
        if (lineEnd < 0) return null
        const bytes = Number(reply.toString('latin1', at, lineEnd).split(' ')[3])
        if (!Number.isSafeInteger(bytes)) return null
        at = lineEnd + 2 + bytes + 2
        if (at > reply.length || reply.toString('latin1', at - 2, at) !== '\r\n') return null
      }
      objects.push([start, at])
    }
    if (reply.toString('latin1', at, at + 5) !== 'END\r\n') return null
    at += 5
    objects[objects.length - 1]![1] = at
    objects.forEach(([start, end], i) => {
      if (i === 0 || end > start) messages.push(reply.subarray(start, end))
    })
  }
  return at === reply.length ? messages : null
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

/**
 * The UDP messages memcached sends for the replies to one datagram's requests, for a
 * datagram of text reads or of binary requests; null for any other (one message then).
 */
export function replyMessages(request: Buffer, reply: Buffer, reqsPerEvent: number): Buffer[] | null {
  if (request[0] === REQUEST_MAGIC) return binaryReplyMessages(request, reply, reqsPerEvent)
  return request[0] === LOWER_G ? readReplyMessages(request, reply) : null
}
