// Runs a generated request stream (diffgen.ts) on a server and makes its replies comparable:
// each write is followed by an end marker (text `mn`, binary noop with opaque 0xfeedface) and
// the next write waits for its reply, so the order across connections is fixed without
// sleeping. Compared is each connection's whole reply stream, with CAS values numbered by
// first appearance and remaining TTLs / access ages coarsened (they tick during a run), and
// then the command counters of `stats` (reset on a control connection before the stream; a
// binary one where the servers answer only the binary protocol, `-B binary`).
import { createHash } from 'node:crypto'
import net from 'node:net'
import { binaryPacket } from './corpus'
import { connectLocal } from './raw'
import type { Render, Request } from './diffgen'

const MARK_OPAQUE = 0xfeedface
const BIN_MARK = binaryPacket(`noop opaque=${MARK_OPAQUE}`)

/** One client connection: what it received, and a way to wait for more. */
class Conn {
  /** Holds what arrived in its first `length` bytes; grown by doubling (a reply of tens of MB in 64 KiB reads). */
  private store: Buffer = Buffer.alloc(0)
  private length = 0
  closed = false
  private wake: (() => void) | null = null
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      if (this.length + d.length > this.store.length) {
        const grown = Buffer.allocUnsafe(Math.max(2 * this.store.length, this.length + d.length, 4096))
        this.store.copy(grown, 0, 0, this.length)
        this.store = grown
      }
      d.copy(this.store, this.length)
      this.length += d.length
      this.wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.wake?.()
    })
    socket.on('error', () => {})
  }

  /** What arrived so far. */
  get received(): Buffer {
    return this.store.subarray(0, this.length)
  }

  static async open(port: number): Promise<Conn> {
    return new Conn(await connectLocal(port))
  }

  /** Resolves once `done()` holds, the connection closed, or `ms` passed. */
  async waitFor(done: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (!done() && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
        this.wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.wake = null
    }
  }
}

/** Counts `MN` reply lines (values never hold upper case). */
const countMn = (b: Buffer): number => (b.toString('latin1').match(/(?<=^|\n)MN\r\n/g) ?? []).length

/** Whether a binary stream holds the marker noop's reply. */
function hasBinaryMark(b: Buffer): boolean {
  for (let at = 0; at + 24 <= b.length; at += 24 + b.readUInt32BE(at + 8)) {
    if (b[at] !== 0x81) return false
    if (b[at + 1] === 0x0a && b.readUInt32BE(at + 12) === MARK_OPAQUE) return true
  }
  return false
}

/** The last non-zero CAS value in a reply, as sent. */
function lastCasIn(b: Buffer, binary: boolean): string | undefined {
  let found: string | undefined
  if (binary) {
    for (let at = 0; at + 24 <= b.length && b[at] === 0x81; at += 24 + b.readUInt32BE(at + 8)) {
      const cas = b.readBigUInt64BE(at + 16)
      if (cas !== 0n) found = cas.toString()
    }
    return found
  }
  // (a key may hold a tab: memcached splits a line on spaces only)
  for (const m of b.toString('latin1').matchAll(/^VALUE [^ ]+ \S+ \S+ (\d+)\r$|^(?:VA|HD|EX|NS|NF|EN)\b.*? c(\d+)/gm)) {
    found = m[1] ?? m[2]
  }
  return found
}

/** Groups requests into writes: consecutive ones on one connection joined by `batch`. */
export function writesOf(requests: readonly Request[]): Request[][] {
  const writes: Request[][] = []
  let current: Request[] = []
  for (const req of requests) {
    if (current.length > 0 && (current.at(-1)!.conn !== req.conn || !current.at(-1)!.batch)) {
      writes.push(current)
      current = []
    }
    current.push(req)
  }
  if (current.length > 0) writes.push(current)
  return writes
}

/**
 * The `stats` counters compared after a stream: those docs/protocol.md says count as
 * memcached's do. Not `curr_items`, `total_items`, `get_flushed`, `expired_unfetched` or
 * byte and LRU figures (the engine's own, or memcached's crawler timing), nor
 * `get_expired`: memcached keeps an item stored already expired until a lookup counts it
 * (docs/protocol.md, known differences).
 */
const COUNTERS = [
  'cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses',
  'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses', 'decr_hits', 'cas_misses',
  'cas_hits', 'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large', 'store_no_memory', 'auth_cmds',
  'auth_errors',
] as const

/** Sends a text command on `conn` and waits (bounded) for a reply line ending in `last`. */
async function ask(conn: Conn, command: string, last: string): Promise<string> {
  const before = conn.received.length
  conn.socket.write(command)
  const done = (): boolean => conn.received.subarray(before).toString('latin1').endsWith(last)
  await conn.waitFor(done, 3_000)
  return conn.received.subarray(before).toString('latin1')
}

/** The control connection's binary requests' opaque: tells its replies from a stream's. */
const CONTROL_OPAQUE = 0xc0de

/**
 * Sends binary `stat` (`key` `reset`, or none for the general stats) on `conn` and waits
 * (bounded) for its last packet, the one with an empty key; the reply as text `stats`
 * words it (`STAT name value` lines, then `END`), so both kinds of control connection
 * compare alike. A server that refuses (an error status) answers with that one packet:
 * no `STAT` line then.
 */
async function askBinaryStat(conn: Conn, key: string): Promise<string> {
  const before = conn.received.length
  conn.socket.write(binaryPacket(`stat ${key === '' ? '' : `key=${key} `}opaque=${CONTROL_OPAQUE}`))
  const lines: string[] = []
  let at = before
  const done = (): boolean => {
    const b = conn.received
    while (at + 24 <= b.length && at + 24 + b.readUInt32BE(at + 8) <= b.length) {
      const [keyLen, end] = [b.readUInt16BE(at + 2), at + 24 + b.readUInt32BE(at + 8)]
      const body = b.subarray(at + 24 + b[at + 4]!, end)
      at = end
      if (keyLen === 0) return true
      lines.push(`STAT ${body.subarray(0, keyLen).toString('latin1')} ${body.subarray(keyLen).toString('latin1')}\r\n`)
    }
    return false
  }
  await conn.waitFor(done, 3_000)
  return `${lines.join('')}END\r\n`
}

/** The `COUNTERS` lines of a `stats` reply, in order (a missing one reads `<none>`). */
function countersOf(stats: string): string {
  const values = new Map([...stats.matchAll(/^STAT (\S+) (\S+)\r$/gm)].map((m) => [m[1]!, m[2]!]))
  return COUNTERS.map((name) => `${name} ${values.get(name) ?? '<none>'}`).join(' ')
}

export interface RunResult {
  /** Per connection, normalised: what is compared. */
  stream: string
}

/** How the runner speaks to the servers beside the stream. */
export interface Control {
  /**
   * The servers answer the binary protocol only (`-B binary`): `stats reset` and `stats`
   * go as binary `stat` requests on a binary control connection (text ones would wait
   * there for a 24-byte header that never comes).
   */
  binaryOnly?: boolean
  /**
   * Servers that want a login (memcached `-S`, ferrocached `-Y`): every binary connection,
   * the control one too, first sends SASL PLAIN `auth` and waits for its reply, which is
   * compared with the stream's.
   */
  login?: { user: string; password: string }
  /**
   * A connection the server closed is opened again for the stream's later writes on it
   * (a campaign's `DIFF_RECONNECT=1`): binary streams, which a malformed packet closes,
   * run to their end. Each connection is its own `[conn N]` section. Without it the
   * later writes are skipped.
   */
  reconnect?: boolean
}

/** Opens a connection; a binary one logs in first if `how` says so (its reply stays in `received`). */
async function openConn(port: number, binary: boolean, how: Control): Promise<Conn> {
  const conn = await Conn.open(port)
  if (binary && how.login) {
    const { user, password } = how.login
    conn.socket.write(binaryPacket(`0x21 key=PLAIN value=\\0${user}\\0${password} opaque=${CONTROL_OPAQUE}`))
    const done = (): boolean => conn.received.length >= 24 && conn.received.length >= 24 + conn.received.readUInt32BE(8)
    await conn.waitFor(done, 3_000)
  }
  return conn
}

/** Sends `requests` to the server on `port` with keys under `prefix`. */
export async function runStream(port: number, requests: readonly Request[], prefix: string, how: Control = {}): Promise<RunResult> {
  /** Each connection id's connections, in order (more than one only with `reconnect`). */
  const conns = new Map<number, Conn[]>()
  /** Connections whose end marker a risky write left unanswered. */
  const stuck = new Set<number>()
  let cas = '0'
  // the control connection: counters from zero (no other stream runs on the server now)
  const control = await openConn(port, how.binaryOnly === true, how)
  let counters = ''
  try {
    if (how.binaryOnly) await askBinaryStat(control, 'reset')
    else await ask(control, 'stats reset\r\n', 'RESET\r\n')
    for (const write of writesOf(requests)) {
      const id = write[0]!.conn
      let conn = conns.get(id)?.at(-1)
      if (!conn || (conn.closed && how.reconnect)) {
        conn = await openConn(port, id === 3, how)
        conns.set(id, [...(conns.get(id) ?? []), conn])
        stuck.delete(id)
      }
      if (conn.closed) continue
      const binary = id === 3
      const render: Render = { prefix, cas, now: Math.floor(Date.now() / 1000) }
      const risky = write.some((r) => r.risky)
      const parts = write.map((r) => r.build(render))
      const before = conn.received.length
      const userMn = write.filter((r) => /^mn( [^\r\n]*)?\r?\n$/.test(r.show)).length
      parts.push(binary ? BIN_MARK : Buffer.from(risky ? 'mn\r\nmn\r\n' : 'mn\r\n'))
      const bytes = Buffer.concat(parts)
      const split = write[0]!.split
      if (split === undefined) conn.socket.write(bytes)
      else {
        // pieces a few milliseconds apart, so each is a read of its own
        // (a negative fraction: cut between the \r and \n of the first lines instead)
        const crlf = [...bytes.entries()].filter(([i, b]) => b === 0x0d && bytes[i + 1] === 0x0a).map(([i]) => i + 1)
        const cuts = split[0]! < 0 ? crlf.slice(0, 6) : [...new Set(split.map((f) => Math.floor(f * bytes.length)))].filter((n) => n > 0)
        let from = 0
        for (const cut of [...cuts, bytes.length]) {
          if (cut <= from) continue
          conn.socket.write(bytes.subarray(from, cut))
          from = cut
          if (cut < bytes.length) await new Promise<void>((resolve) => setTimeout(resolve, 3))
        }
      }
      const c = conn
      // counts the MN lines of this write's replies, each complete line once (a value of a
      // megabyte arrives in many pieces)
      let scanned = before
      let mn = 0
      const marked = binary
        ? () => hasBinaryMark(c.received.subarray(before))
        : () => {
            const end = c.received.lastIndexOf(0x0a) + 1
            if (end > scanned) {
              mn += countMn(c.received.subarray(scanned, end))
              scanned = end
            }
            return mn > userMn
          }
      // a wrong length can eat the marker: then wait less, the replies are compared anyway
      // (also on later writes: the connection may wait for bytes that never come)
      // (and on while the reply still arrives: a gets naming a 2 MB item ten times is 20 MB,
      // more than a busy machine delivers in 3 s)
      const deadline = Date.now() + 60_000
      for (let got = -1; got !== conn.received.length && !marked() && Date.now() < deadline; ) {
        got = conn.received.length
        await conn.waitFor(marked, risky || stuck.has(id) ? 300 : 3_000)
      }
      if (risky && !marked()) stuck.add(id)
      cas = lastCasIn(conn.received.subarray(before), binary) ?? cas
    }
    // late replies, and whether the server hung up
    await Promise.all([...conns.values()].map((c) => c.at(-1)!.waitFor(() => false, 30)))
    counters = countersOf(how.binaryOnly ? await askBinaryStat(control, '') : await ask(control, 'stats\r\n', 'END\r\n'))
  } finally {
    for (const c of [...conns.values()].flat()) c.socket.destroy()
    control.socket.destroy()
  }
  const casIds = new Map<string, string>()
  const ids = [...conns.keys()].sort()
  const stream = ids
    .flatMap((id) =>
      conns.get(id)!.map((c) => {
        const body = id === 3 ? normaliseBinary(c.received, casIds) : normaliseText(c.received, casIds)
        return `[conn ${id}]\n${body}\n[${c.closed ? 'closed by server' : 'open'}]`
      }),
    )
    .join('\n')
  return { stream: `${stream}\n[stats] ${counters}` }
}

function casName(value: string, casIds: Map<string, string>): string {
  if (value === '0') return '0'
  let name = casIds.get(value)
  if (name === undefined) {
    name = `#${casIds.size + 1}`
    casIds.set(value, name)
  }
  return name
}

/**
 * TTLs left (and `me`'s exp, negative) tick during a run: compared in tens of seconds, small
 * ones exactly; past 30 days (an absolute exptime, or a 32-bit wrap) and already past ones
 * (memcached prints those relative to its own clock, uptime + 60) only as such.
 */
function ttl(n: string): string {
  const v = Number(n)
  if (v >= 2 ** 31) return '<past>'
  if (Math.abs(v) > 2_592_000) return '<far>'
  return Math.abs(v) < 10 ? n : `~${Math.round(v / 10)}0`
}

/** A line of over 1000 bytes (a limit-sized value) as its start, length and digest. */
function shorten(line: string): string {
  if (line.length <= 1000) return line
  const digest = createHash('sha1').update(line, 'latin1').digest('hex').slice(0, 12)
  return `${line.slice(0, 20)}…<${line.length} bytes, sha1 ${digest}>`
}

function normaliseText(b: Buffer, casIds: Map<string, string>): string {
  return b
    .toString('latin1')
    .split('\r\n')
    .map(shorten)
    .map((line) => {
      // (a key may hold a tab: its CAS was left raw, so servers whose counters differ differed)
      const value = /^(VALUE [^ ]+ \S+ \S+) (\d+)$/.exec(line)
      if (value) return `${value[1]} ${casName(value[2]!, casIds)}`
      if (/^(VA|HD|EN|NF|NS|EX) /.test(line)) {
        return line
          .split(' ')
          .map((tok, i) => {
            if (i === 0) return tok
            const m = /^([ctl])(-?\d+)$/.exec(tok)
            if (!m) return tok
            if (m[1] === 'c') return `c${casName(m[2]!, casIds)}`
            if (m[1] === 't') return `t${ttl(m[2]!)}`
            return 'l<s>'
          })
          .join(' ')
      }
      if (line.startsWith('ME ')) {
        return line
          .replace(/ cas=(\d+)/, (_, v: string) => ` cas=${casName(v, casIds)}`)
          .replace(/ la=\d+/, ' la=<s>')
          .replace(/ exp=(-?\d+)/, (_, v: string) => ` exp=${ttl(v)}`)
      }
      return line
    })
    .join('\r\n')
}

function normaliseBinary(b: Buffer, casIds: Map<string, string>): string {
  const out: string[] = []
  let at = 0
  while (at + 24 <= b.length && b[at] === 0x81) {
    const keyLen = b.readUInt16BE(at + 2)
    const extrasLen = b[at + 4]!
    const bodyLen = b.readUInt32BE(at + 8)
    const body = b.subarray(at + 24, at + 24 + bodyLen)
    out.push(
      `op=${b[at + 1]!.toString(16)} status=${b.readUInt16BE(at + 6)} extras=${body.subarray(0, extrasLen).toString('hex')} ` +
        `key=${JSON.stringify(body.subarray(extrasLen, extrasLen + keyLen).toString('latin1'))} ` +
        `value=${JSON.stringify(shorten(body.subarray(extrasLen + keyLen).toString('latin1')))} bodylen=${bodyLen} ` +
        `opaque=${b.readUInt32BE(at + 12)} cas=${casName(b.readBigUInt64BE(at + 16).toString(), casIds)}`,
    )
    at += 24 + bodyLen
  }
  if (at < b.length) out.push(`trailing=${JSON.stringify(b.subarray(at).toString('latin1'))}`)
  return out.join('\n')
}

/** memcached's reply to an incr/decr/ma on a value it does not read as a number. */
const NON_NUMERIC = 'CLIENT_ERROR cannot increment or decrement non-numeric value'

/**
 * Whether two streams first differ where memcached answers an increment as non-numeric and
 * ferrocached does not (text, meta, binary; a quiet binary success has no reply). For a
 * value of 2^63 or more, memcached 1.6.18's `safe_strtoull` looks for a `-` with `strchr`,
 * reading on past the value into whatever its slab memory holds up to a NUL: what earlier
 * items left in the chunk, the next chunk's header (docs/protocol.md, known differences).
 */
export function memcachedReadPastValue(expected: string, actual: string): boolean {
  // each connection's replies in turn: the refusal may be on the binary connection while a
  // text connection printed before it already reads the value it left (session 18, seed
  // 390134: a quiet binary decrement of 18446744073709551615 refused by memcached only, then
  // a text get of that key, the first differing line)
  const [es, as] = [sections(expected), sections(actual)]
  return es.length === as.length && es.some((e, i) => e !== as[i] && readPastIn(e, as[i]!))
}

/** A normalised stream cut before each `[conn N]` header (one piece if it has none). */
const sections = (stream: string): string[] => stream.split(/(?=^\[conn \d+\]$)/m)

function readPastIn(expected: string, actual: string): boolean {
  // (CAS values are numbered in the order printed: a connection printed first that reads
  // the diverged item renumbers those of replies sent before the refusal; seed 390134 again)
  const e = expected.replace(/#\d+/g, '#').split('\n')
  const a = actual.replace(/#\d+/g, '#').split('\n')
  const at = e.findIndex((line, i) => line !== a[i])
  if (at < 0) return false
  if (e[at] === `${NON_NUMERIC}\r`) return !(a[at] ?? '').startsWith('CLIENT_ERROR')
  const bin = /^op=(5|6|15|16) status=6 /.exec(e[at]!)
  return bin !== null && !(a[at] ?? '').startsWith(`op=${bin[1]} status=6 `)
}

/** Whether `padded` is `exact` with one run of spaces after a digit in it (an increment's padding). */
function paddedAfterDigits(exact: string, padded: string): boolean {
  for (let at = padded.indexOf(' '); at > 0; at = padded.indexOf(' ', at + 1)) {
    if (!/\d/.test(padded[at - 1]!)) continue
    const run = /^ +/.exec(padded.slice(at))![0].length
    if (padded.slice(0, at) + padded.slice(at + run) === exact) return true
  }
  return false
}

/**
 * Whether two streams first differ where memcached holds an increment's result as a new item
 * and ferrocached wrote it in place: memcached's value is ferrocached's without the spaces
 * padding the shorter number (the length in the VALUE/VA line or binary body shorter by as
 * many), or memcached's item lacks the fetched mark (`me` `fetch=no`, `mg … h` `h0`) that
 * ferrocached's kept. memcached 1.6.18 makes that new item whenever the item is referenced
 * elsewhere: a reply not written yet, or the LRU maintainer's asynchronous bump of a COLD item
 * read a second time, held until the maintainer thread wakes (docs/protocol.md, known
 * differences; timing, so a seed may show it on every run of a fresh server).
 */
export function memcachedNewItem(expected: string, actual: string): boolean {
  const e = expected.split('\n')
  const a = actual.split('\n')
  const at = e.findIndex((line, i) => line !== a[i])
  if (at < 0) return false
  const [el, al] = [e[at]!, a[at] ?? '']
  // ME: fetch=no against fetch=yes (size may be the new item's, smaller)
  const me = (line: string): string => line.replace(/ fetch=\S+/, '').replace(/ size=\d+/, '')
  if (el.startsWith('ME ') && el.includes(' fetch=no') && al.includes(' fetch=yes')) return me(el) === me(al)
  // mg's h: the new item was never fetched
  if (/^(VA|HD) /.test(el) && / h0\b/.test(el) && / h1\b/.test(al) && el === al.replace(/ h1\b/, ' h0')) return true
  // binary: the value padded, the body longer by the padding
  const bin = /^(op=\S+ status=0 extras=\S* key="[^"]*") value=(".*") bodylen=(\d+)( .*)$/
  const [eb, ab] = [bin.exec(el), bin.exec(al)]
  if (eb && ab) {
    const [ev, av] = [JSON.parse(eb[2]!) as string, JSON.parse(ab[2]!) as string]
    return eb[1] === ab[1] && eb[4] === ab[4] && Number(ab[3]) - Number(eb[3]) === av.length - ev.length && paddedAfterDigits(ev, av)
  }
  // text and meta: the header's length shorter by the padding, then the value line
  const header = /^(VALUE \S+ \S+ |VA )(\d+)(.*)$/s
  const [eh, ah] = [header.exec(el), header.exec(al)]
  if (!eh || !ah || eh[1] !== ah[1] || eh[3] !== ah[3]) return false
  const [ev, av] = [(e[at + 1] ?? '').replace(/\r$/, ''), (a[at + 1] ?? '').replace(/\r$/, '')]
  return Number(ah[2]) - Number(eh[2]) === av.length - ev.length && paddedAfterDigits(ev, av)
}

/**
 * Whether two streams first differ where memcached's replies on a connection stop and
 * ferrocached's go on: a storage command still waiting for its value (a length a mutated
 * request made too long) holds memcached's replies of the requests before it in that read
 * until the value is complete, and ferrocached sends them at once (docs/protocol.md, known
 * differences). Campaigns with `DIFF_MUTATE` meet it.
 */
export function memcachedHeldReplies(expected: string, actual: string): boolean {
  const e = expected.split('\n')
  const a = actual.split('\n')
  const at = e.findIndex((line, i) => line !== a[i])
  return at >= 0 && e[at] === '' && /^\[(open|closed by server)\]$/.test(e[at + 1] ?? '') && !(a[at] ?? '').startsWith('[')
}

/** Ports of a memcached and a ferrocached to compare (started with the same flags). */
export interface Pair extends Control {
  memcached: number
  ferrocached: number
}

let runs = 0

/** Runs `requests` on both servers at once (own key prefix); both normalised streams. */
export async function runBoth(pair: Pair, requests: readonly Request[]): Promise<{ expected: string; actual: string }> {
  const prefix = `r${++runs}:`
  const [expected, actual] = await Promise.all([runStream(pair.memcached, requests, prefix, pair), runStream(pair.ferrocached, requests, prefix, pair)])
  return { expected: expected.stream, actual: actual.stream }
}

/**
 * Shrinks a stream that makes the servers differ (ddmin over requests) within `budget` runs;
 * a smaller stream is kept only if it still differs.
 */
export async function minimise(pair: Pair, requests: readonly Request[], budget = 150): Promise<Request[]> {
  let current = [...requests]
  let tries = 0
  const differs = async (candidate: Request[]): Promise<boolean> => {
    tries++
    const { expected, actual } = await runBoth(pair, candidate)
    return expected !== actual
  }
  let parts = 2
  while (current.length >= 2 && tries < budget) {
    const size = Math.ceil(current.length / parts)
    let shrunk = false
    for (let start = 0; start < current.length && tries < budget; start += size) {
      const candidate = [...current.slice(0, start), ...current.slice(start + size)]
      if (candidate.length > 0 && (await differs(candidate))) {
        current = candidate
        parts = Math.max(parts - 1, 2)
        shrunk = true
        break
      }
    }
    if (!shrunk) {
      if (size === 1) break
      parts = Math.min(current.length, parts * 2)
    }
  }
  return current
}

/** The first line where two reply streams differ, with its neighbours. */
export function firstDifference(expected: string, actual: string): string {
  const e = expected.split('\n')
  const a = actual.split('\n')
  const at = e.findIndex((line, i) => line !== a[i])
  const around = (lines: string[]): string => lines.slice(Math.max(0, at - 2), at + 2).join('\n')
  return `memcached:\n${around(e)}\nferrocached:\n${around(a)}`
}

/** A stream as it reads: one request per line, `|` joining those sent in one write. */
export function showStream(requests: readonly Request[]): string {
  return writesOf(requests)
    .map((write) => `conn ${write[0]!.conn}: ${write.map((r) => JSON.stringify(r.show)).join(' | ')}`)
    .join('\n')
}
