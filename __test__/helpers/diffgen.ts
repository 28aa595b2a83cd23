// Seeded random request streams for the randomized differential test (differential-random.test.ts):
// text, meta and binary requests over a few keys, so that they interact, in writes of one
// or several pipelined requests on up to three connections (two text, one binary).
//
// A request is rendered only when sent (`Render`): its keys carry a prefix unique to the run,
// so runs on one server pair do not see each other's items, `$CAS` stands for the last CAS
// value that server sent, and absolute exptimes are relative to the clock at send time.
//
// Odd forms come now and then: upper-case verbs, trailing spaces, bare `\n` line ends, keys
// with control characters, values holding `\r\n`, missing and extra tokens, binary packets
// whose lengths do not add up or whose magic is wrong, `quit`.
//
// Left out on purpose (they differ by design or by timing, see docs/protocol.md): stats
// other than `stats reset` (the runner compares the command counters after each stream),
// item sizes near the -I cap, values that evict, positive exptimes short enough to pass
// during a run, flush_all with a delay.
import { binaryPacket } from './corpus'
import { rng } from './prng'

/** What a request needs from the run when it is written. */
export interface Render {
  /** Prepended to every key: unique to one run on a server. */
  prefix: string
  /** The last CAS value this server sent in the run ('0' before any). */
  cas: string
  /** Unix seconds now. */
  now: number
}

export interface Request {
  /** Connection 1 and 2 speak text (and meta), 3 binary. */
  conn: 1 | 2 | 3
  /** How the request reads in a report; `Render` parts in $ form. */
  show: string
  build: (r: Render) => Buffer
  /** Sent in the same write as the request after it (pipelined). */
  batch: boolean
  /** Quotes a CAS value of an earlier reply: the replies before it must be in first. */
  usesCas: boolean
  /** May leave the connection mid-value (a wrong length): the end marker is sent twice. */
  risky: boolean
  /** What it does to an item, for the writes the generator keeps apart. */
  does?: 'read' | 'arith' | 'cull'
}


type Rand = () => number

const pick = <T>(rand: Rand, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!
const chance = (rand: Rand, p: number): boolean => rand() < p
const int = (rand: Rand, lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1))

/** Key names; the long ones make a whole key of 250 (allowed) and 251 bytes with the prefix. */
const NAMES = ['a', 'b', 'c', 'd'] as const
const LONG_OK = '<250>'
const LONG_BAD = '<251>'

/** Keys with a control character, a tab (part of a token) or a byte over 0x7f. */
const ODD_NAMES = ['c\x01', 'd\x7f', 'e\tf', 'g\xe9'] as const

function keyOf(name: string, r: Render): string {
  if (name === LONG_OK) return r.prefix + 'L'.repeat(250 - r.prefix.length)
  if (name === LONG_BAD) return r.prefix + 'L'.repeat(251 - r.prefix.length)
  return r.prefix + name
}

function randomName(rand: Rand): string {
  if (chance(rand, 0.03)) return pick(rand, [LONG_OK, LONG_BAD])
  if (chance(rand, 0.02)) return pick(rand, ODD_NAMES)
  return pick(rand, NAMES)
}

/** Values: words, and numbers at the edges of incr/decr (64-bit, signs, spaces, zeros). */
const NUMERIC = [
  '0', '1', '7', '10', '99', '100', '00012', '18446744073709551615', '18446744073709551614',
  '18446744073709551616', '99999999999999999999', '-1', '-0', '+5', ' 5', '5 ', '12abc', '', '4294967296',
  '9223372036854775807', '9223372036854775808',
] as const

/**
 * Values that hold line ends or look like replies (never `MN`: the runner counts those).
 * None of only white space: memcached's incr reads on past such a value into whatever the
 * chunk held before (docs/protocol.md, known differences).
 */
const ODD_VALUES = ['a\r\nb', 'x\r\nEND', 'END', 'ab\r\n\r\ncd', '\r\nz'] as const

function randomValue(rand: Rand): string {
  if (chance(rand, 0.04)) return pick(rand, ODD_VALUES)
  if (chance(rand, 0.45)) return pick(rand, NUMERIC)
  const len = chance(rand, 0.1) ? int(rand, 20, 60) : int(rand, 0, 8)
  let v = ''
  for (let i = 0; i < len; i++) v += String.fromCharCode(97 + int(rand, 0, 25))
  return v
}

/** Exptimes for text and meta: never one that passes during a run, often one already past. */
const EXPTIMES = ['0', '0', '0', '1000', '86400', '-1', '-100', '2592000', '2592001', '$NOW+100000', '$NOW-100', 'abc', '4294967295', '-2147483649'] as const

const FLAGS = ['0', '0', '1', '65535', '4294967295', '4294967296', '-1', 'x', '18446744073709551615'] as const

const DELTAS = ['1', '1', '5', '0', '18446744073709551615', '18446744073709551616', '99999999999999999999999', '-1', 'abc', '007', '9223372036854775808'] as const

/**
 * CAS arguments: quoted from a reply, or values no item reaches (a small literal would match
 * some item once a server's counter passes it, at a different point on each server).
 */
const CAS_ARGS = ['$CAS', '$CAS', '$CAS', '0', '999999999999', '18446744073709551615', 'x', '-1'] as const

/** A key as `binaryPacket` reads it: bytes other than letters, digits, `:` as `\xNN`. */
const binEscape = (key: string): string =>
  [...key].map((ch) => (/[A-Za-z0-9:]/.test(ch) ? ch : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)).join('')

/** Fills `$NOW±N`, `$CAS` and `$KEY(name)` in a request's text at send time. */
function fill(text: string, r: Render, binaryKeys = false): string {
  return text
    .replace(/\$NOW([+-]\d+)/g, (_, d: string) => String(r.now + Number(d)))
    .replaceAll('$CAS', r.cas)
    .replace(/\$KEY\(([^)]*)\)/g, (_, name: string) => (binaryKeys ? binEscape(keyOf(name, r)) : keyOf(name, r)))
    .replace(/\$B64\(([^)]*)\)/g, (_, name: string) => Buffer.from(keyOf(name, r), 'latin1').toString('base64'))
}

function textRequest(conn: 1 | 2, show: string, risky = false): Omit<Request, 'batch'> {
  const verb = show.slice(0, show.search(/[ \r]/))
  const does = /^(get|gets|gat|gats|mg)$/.test(verb) ? (show.includes(`$KEY(${LONG_BAD})`) ? 'cull' : 'read') : /^(incr|decr|ma)$/.test(verb) ? 'arith' : undefined
  return { conn, show, build: (r) => Buffer.from(fill(show, r), 'latin1'), usesCas: show.includes('$CAS'), risky, does }
}

const noreply = (rand: Rand): string => (chance(rand, 0.15) ? ' noreply' : '')

/**
 * Now and then an odd form of a command line (`line` without its `\r\n`): the verb in
 * upper case, a trailing space, a bare `\n`. `upper` is whether the verb was changed (a
 * storage command's value then reads as a command line).
 */
function oddLine(rand: Rand, line: string): { line: string; upper: boolean } {
  if (!chance(rand, 0.06)) return { line: `${line}\r\n`, upper: false }
  switch (int(rand, 0, 3)) {
    case 0: {
      const at = line.indexOf(' ')
      const verb = at < 0 ? line : line.slice(0, at)
      const changed = chance(rand, 0.5) ? verb.toUpperCase() : verb[0]!.toUpperCase() + verb.slice(1)
      return { line: `${changed}${at < 0 ? '' : line.slice(at)}\r\n`, upper: changed !== verb }
    }
    case 1:
      return { line: `${line} \r\n`, upper: false }
    case 2:
      return { line: `${line}  \r\n`, upper: false }
    default:
      return { line: `${line}\n`, upper: false }
  }
}

function storage(rand: Rand, conn: 1 | 2): Omit<Request, 'batch'> {
  const cmd = pick(rand, ['set', 'set', 'add', 'replace', 'append', 'prepend', 'cas'] as const)
  const value = randomValue(rand)
  let len = String(Buffer.byteLength(value))
  let risky = false
  if (chance(rand, 0.06)) {
    len = pick(rand, [String(Number(len) + 1), String(Math.max(0, Number(len) - 1)), '-1', 'x'])
    risky = true
  }
  const end = chance(rand, 0.05) ? pick(rand, ['\n', 'XY', '\r\r\n']) : '\r\n'
  if (end !== '\r\n') risky = true
  const cas = cmd === 'cas' ? ` ${pick(rand, CAS_ARGS)}` : ''
  // a leftover token, or too few
  const shape = chance(rand, 0.03) ? pick(rand, [' extra', '']) : null
  const head =
    shape === ''
      ? `${cmd} $KEY(${randomName(rand)}) ${pick(rand, FLAGS)}`
      : `${cmd} $KEY(${randomName(rand)}) ${pick(rand, FLAGS)} ${pick(rand, EXPTIMES)} ${len}${cas}${shape ?? ''}${noreply(rand)}`
  const odd = oddLine(rand, head)
  return textRequest(conn, `${odd.line}${value}${end}`, risky || shape !== null || odd.upper)
}

function retrieval(rand: Rand, conn: 1 | 2): Omit<Request, 'batch'> {
  const cmd = pick(rand, ['get', 'get', 'gets', 'gat', 'gats'] as const)
  const keys = Array.from({ length: int(rand, chance(rand, 0.05) ? 0 : 1, 4) }, () => `$KEY(${randomName(rand)})`)
  const exptime = cmd.startsWith('gat') ? ` ${pick(rand, EXPTIMES)}` : ''
  return textRequest(conn, oddLine(rand, `${cmd}${exptime}${keys.map((k) => ` ${k}`).join('')}`).line)
}

function otherText(rand: Rand, conn: 1 | 2): Omit<Request, 'batch'> {
  const key = `$KEY(${randomName(rand)})`
  switch (int(rand, 0, 7)) {
    case 0:
      return textRequest(conn, oddLine(rand, `${pick(rand, ['incr', 'decr'])} ${key} ${pick(rand, DELTAS)}${noreply(rand)}${pick(rand, EXTRA)}`).line)
    case 1:
      return textRequest(conn, oddLine(rand, `delete ${key}${pick(rand, ['', '', ' 0', ' 5', ' noreply', ' 0 noreply', ' x', ' 0 noreply x', ' noreply x'])}`).line)
    case 2:
      return textRequest(conn, oddLine(rand, `touch ${key} ${pick(rand, EXPTIMES)}${noreply(rand)}${pick(rand, EXTRA)}`).line)
    case 6:
      return textRequest(conn, oddLine(rand, pick(rand, ['version', 'version x', 'stats reset', 'stats reset x', 'stats detail on', 'stats detail off'])).line)
    case 7:
      // rare: the connection ends here (the runner skips its later writes)
      return textRequest(conn, chance(rand, 0.15) ? pick(rand, ['quit\r\n', 'quit x\r\n']) : 'version\r\n')
    case 3:
      return textRequest(conn, `flush_all${pick(rand, ['', '', ' 0', ' noreply', ' 0 noreply', ' -1'])}\r\n`)
    case 4:
      return textRequest(conn, `verbosity${pick(rand, [' 1', ' 0', ' 1 noreply', '', ' x'])}\r\n`)
    default:
      return textRequest(conn, pick(rand, ['incr\r\n', `touch ${key}\r\n`, `get\r\n`, 'bogus\r\n', `incr ${key}\r\n`]))
  }
}

/** Tokens after a command's own: none mostly, else one it may ignore or refuse. */
const EXTRA = ['', '', '', '', '', '', ' x', ' noreply', ' 1 2'] as const

/** Meta flags that take a token, with the values tried. */
const META_TOKENS: Record<string, readonly string[]> = {
  T: ['0', '1000', '-1', '$NOW+100000', 'x', '2592001'],
  N: ['0', '1000', '-1', 'x'],
  R: ['5', '50000', 'x'],
  O: ['1', 'op123', '', 'x'.repeat(33)],
  C: ['$CAS', '$CAS', '0', '999999999999', 'x'],
  E: ['7000000001', '3', '18446744073709551615', 'x'],
  F: ['0', '7', '4294967295', '4294967296', 'x'],
  D: ['1', '5', '18446744073709551615', '0', 'x', '-1'],
  J: ['0', '10', '18446744073709551615', 'x'],
  M: ['S', 'E', 'A', 'P', 'R', 'I', 'D', '+', '-', 's', 'a', 'X', 'SS'],
}

const META_FLAGS: Record<'mg' | 'ms' | 'md' | 'ma', string> = {
  mg: 'bcfhklOqstuvENRT',
  ms: 'bcCEFIkOqsSTM',
  md: 'bCEIkOqTx',
  // no T: memcached 1.6.18 loses an ma's T when the new value needs a new item (docs/protocol.md)
  ma: 'bcCEDJkMNOqtv',
}

function metaFlags(rand: Rand, cmd: keyof typeof META_FLAGS): string[] {
  const allowed = META_FLAGS[cmd]
  const out: string[] = []
  const n = int(rand, 0, 5)
  for (let i = 0; i < n; i++) {
    // now and then a letter the command does not take, or a repeated one
    const letter = chance(rand, 0.04)
      ? pick(rand, [...'ZyavhlftuNRSIx9', 'Ox'.repeat(20)])
      : allowed[int(rand, 0, allowed.length - 1)]!
    const values = META_TOKENS[letter]
    out.push(values ? letter + pick(rand, values) : letter)
  }
  return out
}

function meta(rand: Rand, conn: 1 | 2): Omit<Request, 'batch'> {
  const cmd = pick(rand, ['mg', 'mg', 'ms', 'ms', 'md', 'ma', 'ma', 'mn', 'me'] as const)
  if (cmd === 'mn') return textRequest(conn, chance(rand, 0.1) ? 'mn x y\r\n' : 'mn\r\n')
  const name = randomName(rand)
  if (chance(rand, 0.03)) {
    // no key, no length, too many flags
    const many = Array.from({ length: 22 }, () => 'v').join(' ')
    return textRequest(conn, pick(rand, [`${cmd}\r\n`, `${cmd} \r\n`, `me\r\n`, `ms $KEY(${name})\r\n`, `mg $KEY(${name}) ${many}\r\n`, `ma $KEY(${name}) ${many}\r\n`]))
  }
  if (cmd === 'me') return textRequest(conn, `me $KEY(${name})${pick(rand, ['', '', '', ' b', ' x'])}\r\n`)
  let flags = metaFlags(rand, cmd)
  // kept apart (docs/protocol.md, known differences): an N whose item a too-long opaque
  // stops memcached counts in no cmd_set, ferrocache in one
  if (cmd === 'mg' && flags.some((f) => f.startsWith('O') && f.length > 32)) flags = flags.filter((f) => !f.startsWith('N'))
  const key = flags.includes('b') ? (chance(rand, 0.1) ? pick(rand, ['!!!!', 'YQ', 'a===']) : `$B64(${name})`) : `$KEY(${name})`
  if (cmd !== 'ms') return textRequest(conn, `${cmd} ${key}${flags.map((f) => ` ${f}`).join('')}\r\n`)
  const value = randomValue(rand)
  let len = String(Buffer.byteLength(value))
  let risky = false
  if (chance(rand, 0.05)) {
    len = pick(rand, [String(Number(len) + 1), 'x', '-1'])
    risky = true
  }
  return textRequest(conn, `ms ${key} ${len}${flags.map((f) => ` ${f}`).join('')}\r\n${value}\r\n`, risky)
}

const BIN_STORE = ['set', 'setq', 'add', 'addq', 'replace', 'replaceq'] as const
const BIN_CAT = ['append', 'appendq', 'prepend', 'prependq'] as const
const BIN_GET = ['get', 'getq', 'getk', 'getkq'] as const
const BIN_ARITH = ['increment', 'incrementq', 'decrement', 'decrementq'] as const
const BIN_EXPTIMES = [0, 0, 0, 1000, 0xffffffff, 2592001, 0x80000000] as const

const hex32 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0')
const hex64 = (n: bigint): string => BigInt.asUintN(64, n).toString(16).padStart(16, '0')
const binValue = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/ /g, '\\x20').replace(/\r/g, '\\r').replace(/\n/g, '\\n').replace(/\t/g, '\\t')

function binary(rand: Rand): Omit<Request, 'batch'> {
  const name = randomName(rand)
  const opaque = chance(rand, 0.5) ? int(rand, 1, 1000) : 0
  const cas = chance(rand, 0.2) ? pick(rand, ['$CAS', '$CAS', '999999999999']) : '0'
  let spec: string
  switch (int(rand, 0, 7)) {
    case 0:
    case 1: {
      const flags = pick(rand, [0, 1, 0xffffffff])
      const extras = chance(rand, 0.03) ? '' : hex32(flags) + hex32(pick(rand, BIN_EXPTIMES))
      spec = `${pick(rand, BIN_STORE)} key=$KEY(${name}) value=${binValue(randomValue(rand))} extras=${extras} cas=${cas}`
      break
    }
    case 2:
      spec = `${pick(rand, BIN_CAT)} key=$KEY(${name}) value=${binValue(randomValue(rand))} cas=${cas}`
      break
    case 3:
      spec = `${pick(rand, BIN_GET)} key=$KEY(${name})`
      break
    case 4: {
      const delta = pick(rand, [1n, 5n, 0n, 2n ** 64n - 1n, 2n ** 63n])
      const initial = pick(rand, [0n, 10n, 2n ** 64n - 1n])
      const extras = chance(rand, 0.03) ? hex64(delta) : hex64(delta) + hex64(initial) + hex32(pick(rand, BIN_EXPTIMES))
      spec = `${pick(rand, BIN_ARITH)} key=$KEY(${name}) extras=${extras} cas=${cas}`
      break
    }
    case 5:
      spec = `${pick(rand, ['delete', 'deleteq'])} key=$KEY(${name}) cas=${cas}`
      break
    case 6:
      if (chance(rand, 0.15)) {
        // malformed: extras or a key where the opcode takes none, a short body
        spec = pick(rand, [
          `get key=$KEY(${name}) keylen=300`,
          `get key=$KEY(${name}) keylen=0 bodylen=1`,
          `set key=$KEY(${name}) value=v extras=0000000000000000 bodylen=4`,
          `increment key=$KEY(${name}) extras=0000000000000001`,
          `stat key=${pick(rand, ['bogus', 'reset', 'detail\\x20on', 'detail\\x20off'])}`,
          'version key=x',
          'version',
          '0x1b extras=00000001',
          '0x20',
          `0x40 key=$KEY(${name})`,
          `0xfe value=abc`,
          'quit',
          'quitq',
          `get key=$KEY(${name}) magic=129`,
          `get key=$KEY(${name}) extras=00000001`,
          `delete key=$KEY(${name}) extras=00000000`,
          'noop key=x',
          'flush extras=0000000000000000',
          `touch key=$KEY(${name})`,
          `getk key=$KEY(${name}) value=v`,
          `append key=$KEY(${name}) value=v extras=00000000`,
        ])
        break
      }
    // falls through
    default: {
      const op = pick(rand, ['noop', 'flush', 'flushq', 'touch', 'gat', 'gatq', 'gatk', 'gatkq', 'version'] as const)
      if (op === 'noop' || op === 'version') spec = op
      else if (op.startsWith('flush')) spec = `${op}${chance(rand, 0.5) ? ' extras=00000000' : ''}`
      else spec = `${op} key=$KEY(${name}) extras=${hex32(pick(rand, BIN_EXPTIMES))} cas=${cas}`
    }
  }
  spec += ` opaque=${opaque}`
  const op = spec.split(' ')[0]!
  return {
    conn: 3,
    show: `bin ${spec}`,
    build: (r) => binaryPacket(fill(spec, r, true)),
    usesCas: spec.includes('$CAS'),
    // lengths that do not add up leave the server waiting for bytes that never come: the
    // end marker may not be answered (wait less; the replies are compared anyway)
    risky: /keylen=|bodylen=/.test(spec),
    // a binary touch's reply holds the item too, as a get's (memcached then writes an
    // increment behind it as a new item)
    does: /^(get|gat|touch)/.test(op) ? 'read' : /^(in|de)crement/.test(op) ? 'arith' : undefined,
  }
}

/** A stream of `count` requests (about), from `seed`. */
export function generate(seed: number, count = 40): Request[] {
  const rand = rng(seed)
  const withBinary = chance(rand, 0.4)
  const withSecondText = chance(rand, 0.3)
  const out: Request[] = []
  let conn: 1 | 2 | 3 = 1
  while (out.length < count) {
    // switch connection now and then; pipeline a few requests into one write
    if (chance(rand, 0.2)) conn = pick<1 | 2 | 3>(rand, [1, ...(withSecondText ? [2 as const] : []), ...(withBinary ? [3 as const] : [])])
    const size = chance(rand, 0.3) ? int(rand, 2, 6) : 1
    const write: Omit<Request, 'batch'>[] = []
    for (let i = 0; i < size; i++) {
      if (conn === 3) write.push(binary(rand))
      else {
        const kind = rand()
        write.push(kind < 0.35 ? storage(rand, conn) : kind < 0.55 ? retrieval(rand, conn) : kind < 0.7 ? otherText(rand, conn) : meta(rand, conn))
      }
    }
    // Kept apart (docs/protocol.md, known differences): an incr/decr behind a read in one
    // write (memcached makes a new, unpadded item while the read's reply holds the old
    // one), and a long-key get behind others (which replies memcached culls).
    write.forEach((req, i) => {
      const next = write[i + 1]
      const apart = next !== undefined && ((next.does === 'arith' && write.slice(0, i + 1).some((r) => r.does === 'read')) || req.does === 'cull' || next.does === 'cull')
      out.push({ ...req, batch: next !== undefined && !apart })
    })
  }
  return out
}
