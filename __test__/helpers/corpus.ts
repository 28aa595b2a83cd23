// The differential corpus: raw protocol sessions written as small text files in
// __test__/fixtures/differential/, replayed against memcached and ferrocached.
//
// One directive per line:
//   # comment
//   > TEXT       append TEXT, send it, wait for the replies (a step whose replies are compared)
//   + TEXT       append TEXT and send it as its own TCP write without waiting (split requests)
//   & TEXT       append TEXT to the next write (pipelining several requests in one write)
//   >bin OP k=v  (also +bin, &bin) a binary-protocol request, see binaryPacket()
//   >hex 80 00…  (also +hex, &hex) raw bytes
//   sleep MS     wait (expiry tests)
//   conn N       the lines after it go to connection N (opened on first use; a session starts
//                on 1): a binary read and a meta read of one item, say
// `$CAS` in a request is replaced by the last CAS value the server sent on the connection.
// A step before one that quotes `$CAS` or that culls (a text get with a key over 250 bytes,
// see `culls`) waits for its reply, however late, not just for 40 ms of quiet.
// TEXT uses C escapes (\r \n \t \\ \0 \xNN) and {c*N} for N copies of the character c.

export type Step =
  | { kind: 'send'; build: (cas: string) => Buffer; wait: 'reply' | 'none' | 'batch'; usesCas: boolean; culls: boolean }
  | { kind: 'sleep'; ms: number }
  | { kind: 'conn'; id: number }

export function unescape(text: string): Buffer {
  const expanded = text.replace(/\{(.)\*(\d+)\}/g, (_, c: string, n: string) => c.repeat(Number(n)))
  // Runs without a backslash are encoded at once: a {c*N} of a megabyte went byte by byte
  // through a number[] in seconds, holding up every replay sharing the process.
  const parts: Buffer[] = []
  let from = 0
  for (let i = expanded.indexOf('\\'); i >= 0; i = expanded.indexOf('\\', from)) {
    if (i > from) parts.push(Buffer.from(expanded.slice(from, i), 'utf8'))
    const next = expanded[i + 1]
    from = i + 2
    if (next === 'r') parts.push(Buffer.of(13))
    else if (next === 'n') parts.push(Buffer.of(10))
    else if (next === 't') parts.push(Buffer.of(9))
    else if (next === '0') parts.push(Buffer.of(0))
    else if (next === '\\') parts.push(Buffer.of(92))
    else if (next === 'x') {
      parts.push(Buffer.of(parseInt(expanded.slice(i + 2, i + 4), 16)))
      from = i + 4
    } else throw new Error(`bad escape \\${next} in ${text}`)
  }
  if (from < expanded.length) parts.push(Buffer.from(expanded.slice(from), 'utf8'))
  return Buffer.concat(parts)
}

const OPCODES: Record<string, number> = {
  get: 0x00, set: 0x01, add: 0x02, replace: 0x03, delete: 0x04, increment: 0x05,
  decrement: 0x06, quit: 0x07, flush: 0x08, getq: 0x09, noop: 0x0a, version: 0x0b,
  getk: 0x0c, getkq: 0x0d, append: 0x0e, prepend: 0x0f, stat: 0x10, setq: 0x11,
  addq: 0x12, replaceq: 0x13, deleteq: 0x14, incrementq: 0x15, decrementq: 0x16,
  quitq: 0x17, flushq: 0x18, appendq: 0x19, prependq: 0x1a, touch: 0x1c, gat: 0x1d,
  gatq: 0x1e, gatk: 0x23, gatkq: 0x24,
}

/**
 * `OP key=TEXT value=TEXT extras=HEX cas=N opaque=N magic=N bodylen=N keylen=N`: a binary
 * request. Omitted fields are empty/zero; bodylen/keylen override the computed lengths
 * (malformed packets). OP is a name from OPCODES or a hex number (0x..).
 */
export function binaryPacket(spec: string): Buffer {
  const [op, ...fields] = spec.trim().split(/\s+/)
  const opcode = op!.startsWith('0x') ? parseInt(op!, 16) : OPCODES[op!]
  if (opcode === undefined) throw new Error(`unknown binary opcode ${op}`)
  const f = new Map(fields.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  const key = unescape(f.get('key') ?? '')
  const value = unescape(f.get('value') ?? '')
  const extras = Buffer.from((f.get('extras') ?? '').replace(/[^0-9a-f]/gi, ''), 'hex')
  const header = Buffer.alloc(24)
  header[0] = Number(f.get('magic') ?? 0x80)
  header[1] = opcode
  header.writeUInt16BE(Number(f.get('keylen') ?? key.length), 2)
  header[4] = Number(f.get('extlen') ?? extras.length)
  header[5] = Number(f.get('datatype') ?? 0)
  header.writeUInt16BE(Number(f.get('vbucket') ?? 0), 6)
  header.writeUInt32BE(Number(f.get('bodylen') ?? extras.length + key.length + value.length), 8)
  header.writeUInt32BE(Number(f.get('opaque') ?? 0), 12)
  header.writeBigUInt64BE(BigInt(f.get('cas') ?? 0), 16)
  return Buffer.concat([header, extras, key, value])
}

export function parseSession(source: string): Step[] {
  const steps: Step[] = []
  for (const [n, raw] of source.split('\n').entries()) {
    const line = raw.replace(/\r$/, '')
    if (line.trim() === '' || line.startsWith('#')) continue
    const sleep = /^sleep (\d+)$/.exec(line)
    if (sleep) {
      steps.push({ kind: 'sleep', ms: Number(sleep[1]) })
      continue
    }
    const conn = /^conn (\d+)$/.exec(line)
    if (conn) {
      steps.push({ kind: 'conn', id: Number(conn[1]) })
      continue
    }
    const m = /^([>+&])(bin|hex)? (.*)$/.exec(line)
    if (!m) throw new Error(`line ${n + 1}: cannot parse "${line}"`)
    const [, mark, form, body] = m as unknown as [string, string, string | undefined, string]
    const build = (cas: string): Buffer => {
      const b = body.replaceAll('$CAS', cas)
      if (form === 'bin') return binaryPacket(b)
      return form === 'hex' ? Buffer.from(b.replace(/\s+/g, ''), 'hex') : unescape(b)
    }
    const bytes = build('0') // fail on a malformed line when the file is read, not halfway through a replay
    const wait = mark === '>' ? 'reply' : mark === '+' ? 'none' : 'batch'
    steps.push({ kind: 'send', build, wait, usesCas: body.includes('$CAS'), culls: form !== 'bin' && culls(bytes) })
  }
  return steps
}

/**
 * Whether `bytes` hold a text get/gets/gat/gats with a key over 250 bytes: memcached (and
 * ferrocached alike) then culls the replies it has not written out yet, those of the
 * requests before it in the same read too (docs/protocol.md). Whether the step before it
 * shares that read is timing (a server held up on a busy machine reads both at once), so
 * the replay sends it only once that step's reply came.
 */
export function culls(bytes: Buffer): boolean {
  return bytes
    .toString('latin1')
    .split('\n')
    .some((line) => {
      const [command, ...args] = line.replace(/\r$/, '').split(' ').filter((w) => w !== '')
      return /^(get|gets|gat|gats|bget)$/.test(command ?? '') && args.some((w) => w.length > 250)
    })
}

/** Makes replies comparable: CAS values, stat values and the version string vary by server. */
export function normalise(reply: Buffer): string {
  if (reply.length > 0 && reply[0] === 0x81) return normaliseBinary(reply)
  return reply
    .toString('latin1')
    .split('\r\n')
    .map((line) => {
      // stats conns names carry a file descriptor (memcached) or connection id (ours).
      if (line.startsWith('STAT ')) {
        return line
          .replace(/^STAT \d+:(addr|listen_addr|state|secs_since_last_cmd) /, 'STAT <id>:$1 ')
          .replace(/^(STAT \S+) .*$/, '$1 <n>')
      }
      if (line.startsWith('VERSION ')) return 'VERSION <v>'
      if (line.startsWith('VALUE ')) return line.replace(/^(VALUE \S+ \d+ \d+) \d+$/, '$1 <cas>')
      if (/^(VA|HD|EN|NF|NS|EX|MN) ?/.test(line)) return line.replace(/ c\d+/g, ' c<cas>')
      // me: the CAS value and seconds since last access vary; the rest must match.
      if (line.startsWith('ME ')) return line.replace(/ cas=\d+/, ' cas=<cas>').replace(/ la=\d+/, ' la=<s>')
      return line
    })
    .join('\r\n')
}

/** One line per binary response packet: header fields, CAS zeroed, stat/version bodies elided. */
function normaliseBinary(reply: Buffer): string {
  const out: string[] = []
  let at = 0
  while (at + 24 <= reply.length && reply[at] === 0x81) {
    const opcode = reply[at + 1]!
    const keyLen = reply.readUInt16BE(at + 2)
    const extrasLen = reply[at + 4]!
    const status = reply.readUInt16BE(at + 6)
    const bodyLen = reply.readUInt32BE(at + 8)
    const opaque = reply.readUInt32BE(at + 12)
    const cas = reply.readBigUInt64BE(at + 16)
    const body = reply.subarray(at + 24, at + 24 + bodyLen)
    const extras = body.subarray(0, extrasLen).toString('hex')
    const key = body.subarray(extrasLen, extrasLen + keyLen).toString('latin1')
    let value = body.subarray(extrasLen + keyLen).toString('latin1')
    if (opcode === 0x10 && keyLen > 0) value = '<n>'
    if (opcode === 0x0b) value = '<v>'
    const len = opcode === 0x10 || opcode === 0x0b ? '<n>' : String(bodyLen)
    out.push(
      `op=${opcode.toString(16)} status=${status} extras=${extras} key=${JSON.stringify(key)} ` +
        `value=${JSON.stringify(value)} bodylen=${len} opaque=${opaque} cas=${cas === 0n ? '0' : '<cas>'}`,
    )
    at += 24 + bodyLen
  }
  if (at < reply.length) out.push(`trailing=${JSON.stringify(reply.subarray(at).toString('latin1'))}`)
  return out.join('\n')
}

/** The last CAS value in a reply (text `gets`, meta `c`, binary header), if any. */
export function lastCas(reply: Buffer): string | undefined {
  if (reply.length > 0 && reply[0] === 0x81) {
    let found: string | undefined
    for (let at = 0; at + 24 <= reply.length; at += 24 + reply.readUInt32BE(at + 8)) {
      const cas = reply.readBigUInt64BE(at + 16)
      if (cas !== 0n) found = cas.toString()
    }
    return found
  }
  const text = reply.toString('latin1')
  const all = [...text.matchAll(/^VALUE \S+ \d+ \d+ (\d+)\r$|^(?:VA|HD|EX|NS|NF).* c(\d+)/gm)]
  const m = all.at(-1)
  return m ? (m[1] ?? m[2]) : undefined
}
