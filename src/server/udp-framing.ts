// How memcached 1.6.18 frames the replies to a datagram of text reads. It gives every key
// of a `get`/`gets`/`gat`/`gats` its own response object (a hit's VALUE block; `END` goes
// on the last key's), and each object goes out as its own UDP message. At each write-out
// (after every read command) the first object is sent even when empty, as a bare header;
// later empty ones are not. Measured: `get a b` is two messages, `get nope a` a bare
// header then `VALUE a …END`, `get a nope` `VALUE a …` then `END`.

/** The read commands memcached answers with one response object per key. */
const READS = new Set(['get', 'gets', 'gat', 'gats'])

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
