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
  for (const [name, bytes] of [...sessions(), ...corpusCases()]) {
    if (bytes.length === 0 || bytes.length > MAX_SEED) continue
    // the binary target adds the leading 0x80 itself
    if (bytes[0] === 0x80) writeFileSync(join(binary, name), bytes.subarray(1))
    else writeFileSync(join(text, name), bytes)
    written++
  }
  console.log(`${written} protocol seeds in ${seeds}`)
}

main()
