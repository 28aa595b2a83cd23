// Writes the protocol seed corpora of the fuzz targets (fuzz/seeds/session_text/ and
// fuzz/seeds/session_binary/): the client->server bytes of every differential session
// (__test__/fixtures/differential/*.session, format in __test__/helpers/corpus.ts) and of
// every case of the codec corpus (crates/ferrocache-protocol/tests/corpus/corpus.txt).
// Snapshot and append-only-log seeds are written by the Rust replay test
// (FUZZ_WRITE_SEEDS=1, see crates/ferrocache-protocol/tests/fuzz_replay.rs).
//
//   npx tsx fuzz/make-seeds.ts

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { binaryRequest } from '../__test__/helpers/binary'
import { parseSession } from '../__test__/helpers/corpus'

const root = join(__dirname, '..')
const seeds = join(__dirname, 'seeds')

/** corpus.txt escapes: \r \n \\ \xNN and {{c*n}} for n copies of c. */
function unescapeCorpus(text: string): Buffer {
  const bytes: number[] = []
  for (let i = 0; i < text.length; ) {
    if (text.startsWith('{{', i)) {
      const end = text.indexOf('}}', i)
      const [c, n] = text.slice(i + 2, end).split('*') as [string, string]
      for (let k = 0; k < Number(n); k++) bytes.push(c.charCodeAt(0))
      i = end + 2
    } else if (text[i] === '\\') {
      const next = text[i + 1]
      if (next === 'r') bytes.push(13)
      else if (next === 'n') bytes.push(10)
      else if (next === '\\') bytes.push(92)
      else if (next === 'x') {
        bytes.push(parseInt(text.slice(i + 2, i + 4), 16))
        i += 2
      } else throw new Error(`bad escape \\${next}`)
      i += 2
    } else {
      bytes.push(...Buffer.from(text[i]!, 'utf8'))
      i += 1
    }
  }
  return Buffer.from(bytes)
}

function sessions(): Array<[string, Buffer]> {
  const dir = join(root, '__test__/fixtures/differential')
  return readdirSync(dir)
    .filter((f) => f.endsWith('.session'))
    .sort()
    .map((f) => {
      const steps = parseSession(readFileSync(join(dir, f), 'utf8'))
      const parts = steps.flatMap((s) => (s.kind === 'send' ? [s.build('1')] : []))
      return [`diff-${f.replace(/\.session$/, '')}`, Buffer.concat(parts)]
    })
}

function corpusCases(): Array<[string, Buffer]> {
  const text = readFileSync(join(root, 'crates/ferrocache-protocol/tests/corpus/corpus.txt'), 'utf8')
  const cases: Array<[string, Buffer]> = []
  let name = ''
  for (const line of text.split('\n')) {
    if (line.startsWith('### ')) name = line.slice(4).split(' ')[0]!
    else if (line.startsWith('IN ')) cases.push([`corpus-${name}`, unescapeCorpus(line.slice(3))])
  }
  return cases
}

/**
 * How the session harness runs an input (`Variant::of` in fuzz/src/lib.rs): bits of the
 * input's FNV-1a hash (made odd) pick the server mode (bits 8-10: 6 logins, 7 read-only
 * replica), `-M` (bits 16-17 zero) and a UDP run (bit 20 zero). A binary input is hashed
 * with its leading 0x80.
 */
function variantOf(bytes: Uint8Array): string {
  let h = 0xcbf29ce484222325n
  for (const b of bytes) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn
  h |= 1n
  const m = Number((h >> 8n) % 8n)
  const mode = m === 6 ? 'auth' : m === 7 ? 'readonly' : 'open'
  return [mode, (h >> 16n) % 4n === 0n ? 'noevict' : 'evict', (h >> 20n) % 2n === 0n ? 'udp' : 'tcp'].join('.')
}

/** A binary request (value before extras, as the seeds read); the opaque the seeds were
 * written with. */
function packet(opcode: number, key: string, value = '', extras: Buffer = Buffer.alloc(0)): Buffer {
  return binaryRequest(opcode, key, extras, value, { opaque: 0xf00d })
}

const setExtras = (flags: number, exptime: number): Buffer => {
  const e = Buffer.alloc(8)
  e.writeUInt32BE(flags, 0)
  e.writeUInt32BE(exptime, 4)
  return e
}

const LOGIN = 'set auth 0 0 9\r\nfuzz pass\r\n'

/** Text and meta requests of the code that changed lately: every meta flag of each command. */
const META_ALL_FLAGS = [
  'ms foo 3 T60 F7 I O1 k c s\r\nbar\r\n',
  'ms foo 3 MA q\r\nbaz\r\n',
  'ms foo 3 MP N30 O2\r\nxyz\r\n',
  'ms Zm9v 3 b MS\r\nnew\r\n',
  'ms foo 1 C999 I\r\nx\r\n',
  'ms nk 1 MR\r\nx\r\n',
  'ms nk 1 ME N10\r\ny\r\n',
  'ms foo 2 MZ\r\nzz\r\n',
  'mg foo s v t f c k l h O2 q N5 R10 T30 E99 u\r\n',
  'mg Zm9v b v k\r\n',
  'mg miss v q\r\n',
  'mg miss v N30 s t\r\n',
  'mg miss2 v R5 N3 c\r\n',
  'ma cnt N0 J13 D2 MI v t c\r\n',
  'ma cnt MD D100 q\r\n',
  'ma cnt E5 C1 v N0\r\n',
  'ma cnt MI D18446744073709551615 v\r\n',
  'md foo C1 q\r\n',
  'md foo I T30 O3 k\r\n',
  'mg foo v c\r\n',
  'md foo x\r\n',
  'md Zm9v b q\r\n',
  'me foo\r\n',
  'mn\r\n',
].join('')

/** Four value sizes: four slab classes over the fuzz store's three pages (a class left without one). */
const FILL_CLASSES = [1, 150, 400, 900]
  .map((n, i) => `set c${i} 0 0 ${n}\r\n${'v'.repeat(n)}\r\n`)
  .join('')

/**
 * A delayed flush, then a cancel: an absolute time before the server started (memcached's
 * process_started, 62 s before the fuzz clock's start; a later past time flushes at once),
 * what 48b6a6d replays.
 */
const FLUSH_CANCEL =
  'set a 0 0 1\r\nA\r\nflush_all 2\r\nset b 0 0 1\r\nB\r\nflush_all 1600000000\r\nset c 0 0 1\r\nC\r\nget a b c\r\n'

/** Binary SASL (opcodes 0x20 list, 0x21 auth, 0x22 step): refusals, the login, then requests. */
function saslSession(): Buffer {
  return Buffer.concat([
    packet(0x20, ''),
    packet(0x21, 'PLAIN', '\0fuzz\0nope'),
    packet(0x21, 'CRAM-MD5', 'x'),
    packet(0x21, 'PLAIN', ''),
    packet(0x22, 'PLAIN', '\0fuzz\0pass'),
    packet(0x01, 'k', 'v', setExtras(1, 0)),
    packet(0x0c, 'k'),
    // any SASL request logs the connection out, and it cannot log in again
    packet(0x20, 'junk', 'x'),
    packet(0x21, 'PLAIN', '\0fuzz\0pass'),
    packet(0x0a, ''),
  ])
}

/** A request before any login: refused (`-Y`: Auth failure, then the hang-up). */
const SASL_FIRST = (): Buffer => Buffer.concat([packet(0x01, 'before', 'x', setExtras(0, 0)), saslSession()])

/**
 * Seeds for the code that changed lately, each in the variants it needs: meta commands
 * with every flag, `-M` refusals, a delayed flush cancelled, binary SASL. A seed reaches its
 * variant by filler appended (`mn` lines, binary noops) until its hash picks it; the name
 * ends in the variant, which fuzz_replay.rs checks.
 */
function targeted(): Array<[string, Buffer]> {
  const text = (s: string): Buffer => Buffer.from(s, 'latin1')
  const want: Array<[string, Buffer, string[]]> = [
    ['meta-all-flags', text(META_ALL_FLAGS), ['open.evict.udp', 'open.noevict.tcp', 'readonly.evict.udp', 'auth.evict.tcp']],
    ['meta-all-flags-login', text(LOGIN + META_ALL_FLAGS), ['auth.evict.udp', 'auth.noevict.tcp']],
    ['fill-classes', text(FILL_CLASSES + 'get c0 c1 c2 c3\r\ndelete c0\r\ndelete c1\r\n' + FILL_CLASSES + 'ms c4 2 MA\r\nxx\r\nmg c3 s v\r\n'), ['open.noevict.tcp', 'open.noevict.udp', 'open.evict.tcp']],
    ['flush-cancel', text(FLUSH_CANCEL), ['open.evict.tcp', 'open.noevict.udp']],
    ['sasl', saslSession(), ['auth.evict.tcp', 'auth.evict.udp', 'auth.noevict.tcp', 'open.evict.tcp']],
    ['sasl-unauthenticated', SASL_FIRST(), ['auth.evict.tcp']],
  ]
  const out: Array<[string, Buffer]> = []
  for (const [name, bytes, variants] of want) {
    const filler = bytes[0] === 0x80 ? packet(0x0a, '') : text('mn\r\n')
    for (const variant of variants) {
      let b = bytes
      for (let i = 0; variantOf(b) !== variant; i++) {
        if (i === 2000) throw new Error(`${name}: no filler reaches ${variant}`)
        b = Buffer.concat([b, filler])
      }
      out.push([`targeted-${name}.${variant}`, b])
    }
  }
  return out
}

/** libFuzzer's default -max_len is 4096; keep seeds to what the fuzzer will use. */
const MAX_SEED = 64 << 10

function main(): void {
  const text = join(seeds, 'session_text')
  const binary = join(seeds, 'session_binary')
  for (const dir of [text, binary]) {
    rmSync(dir, { recursive: true, force: true })
    mkdirSync(dir, { recursive: true })
  }
  let written = 0
  for (const [name, bytes] of [...sessions(), ...corpusCases(), ...targeted()]) {
    if (bytes.length === 0 || bytes.length > MAX_SEED) continue
    // the binary target adds the leading 0x80 itself
    if (bytes[0] === 0x80) writeFileSync(join(binary, name), bytes.subarray(1))
    else writeFileSync(join(text, name), bytes)
    written++
  }
  console.log(`${written} protocol seeds in ${seeds}`)
}

main()
