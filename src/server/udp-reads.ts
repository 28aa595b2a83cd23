// Which UDP datagrams only read: past the reply limit their run can stop without losing a
// write (udp.ts). The framing of replies into messages is the session's (messageEnds).

const REQUEST_MAGIC = 0x80
const BINARY_HEADER = 24

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
