// The embedded benchmark: throughput (embedded-ops.ts), memory per item and full-GC time
// (embedded-memory.ts, one child process per measurement), checked against the targets
// of issue 2 and written to the "Embedded" section of docs/benchmarks.md.
//
//   npm run bench -- embedded                        full run (about 3 minutes)
//   BENCH_EMBEDDED_QUICK=1 npm run bench -- embedded smoke run: short cases, 10x fewer items
//   BENCH_WRITE_DOCS=0 ...                           print only, leave docs/ alone
//   BENCH_EMBEDDED_FROM=bench/results/embedded-….json  re-render a saved run (after editing the text)
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runOps, KEYS, type OpsResult } from './embedded-ops'
import { measureInChild, type Impl, type MemoryResult } from './embedded-memory'
import { fmtOps, machineLine, writeSection } from './markdown'

const ROOT = join(__dirname, '..')
const QUICK = process.env.BENCH_EMBEDDED_QUICK === '1'
const LOAD = existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : 'unknown'
const MAX_TIME = QUICK ? 0.3 : 2
const SMALL = QUICK ? 100_000 : 1_000_000
const LARGE = QUICK ? 500_000 : 5_000_000

// Issue 2's targets, with the figures it measured for memcached and lru-cache.
const MEMCACHED_BYTES_PER_ITEM = 198
const GC_LIMIT_MS = 10
const GET_RATIO = 1 / 3

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const count = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1e3}k`)

// From profiling (perf with a symbol build, and per-step micro-benchmarks) on 2026-11-25;
// static text, so re-check it when the crossing or the engine changes.
const WHERE_THE_TIME_GOES = [
  '### Where a `getSync` spends its time (profiled 2026-11-25 18:35 UTC)',
  '',
  '- **One hot key** (nothing misses the CPU cache), about 250 ns in a tight loop: the call into',
  '  Rust ~30 ns (a napi callback registered by hand; napi-rs’s generated functions cost ~70 ns',
  '  more, its class methods ~400 ns more because of a process-wide borrow table), reading the',
  '  key ~40 ns, the engine’s lookup, LRU flags, stats and clock read ~80 ns, and making the',
  '  returned `Buffer`. Making it in native code (`napi_create_buffer_copy`) costs ~1 µs; a',
  '  `Buffer` read now comes back as a view of a 64 KiB read pool that the native side copies',
  '  the value into (src/scratch.ts), ~55 ns, where copying it out of a scratch buffer into',
  '  `Buffer.allocUnsafe` took ~95 ns (micro-benchmarks of the two, same run).',
  '- **100k keys in random order**, about 0.7-1 µs: `perf record -g` on a symbol build puts',
  '  25% of the samples in `Shard::lookup`, split evenly between two loads that miss the CPU',
  '  cache and depend on each other: the hash-table slot, then the item’s header and key. The',
  '  table keeps 32 bits of each key’s hash in the slot, so no other item is touched, and a hit',
  '  only sets LRU flags (no relinking on the read path), so those two misses are the floor of',
  '  this layout. Another ~18% is `napi_get_value_string_utf8` touching the key string for the',
  '  first time (lru-cache pays that miss too, reading the string’s hash), ~3% copying the value',
  '  (its lines mostly arrive with the header’s), the rest the crossing and the JS side.',
  '- Wall-clock figures on this shared 2-core machine swing by tens of percent (other work',
  '  deschedules the process). In CPU time (`node -r tsx/cjs bench/embedded-ratio.ts`: alternating',
  '  150 ms slices, a tight loop rather than benny’s, 18:46-18:47 UTC, load 3.3-4.5), getSync ran',
  '  at 1.22-1.42M/s and lru-cache at 3.0-6.1M/s; medians of 15 rounds in six runs: 0.33, 0.42,',
  '  0.39, 0.33, 0.32, 0.23. So the ratio sits around the 1/3 line, not clearly above it.',
  '- Tried and not kept: 2 MB pages for slab memory (`MADV_HUGEPAGE` on 2 MB-aligned pages,',
  '  30 MiB of the slab in huge pages, checked in smaps): 1.42M vs 1.37M getSync/s in CPU time,',
  '  medians of 3 alternating runs, within the noise, so TLB misses are not what is left.',
  '- What would close the gap: fewer dependent misses per lookup (e.g. the value or a copy of',
  '  short values beside the slot, or a JS-side index so the hit path does not leave the JS heap',
  '  at all), which is a change of the engine’s layout rather than of the binding.',
]

interface Check {
  target: string
  measured: string
  pass: boolean
}

function report(
  ops: OpsResult[],
  getRatios: number[],
  mem: MemoryResult[],
  machine: string,
  load: string,
): { markdown: string; checks: Check[] } {
  const scenarios = [...new Set(ops.map((o) => o.scenario))]
  const names = [...new Set(ops.map((o) => o.name))]
  const cell = (s: string, n: string) => {
    const r = ops.find((o) => o.scenario === s && o.name === n)
    return r ? `${fmtOps(r.ops)} ±${r.margin.toFixed(1)}%` : '–'
  }
  const opsOf = (s: string, n: string) => ops.find((o) => o.scenario === s && o.name === n)?.ops ?? 0
  const memOf = (impl: Impl, items: number) => mem.find((m) => m.impl === impl && m.items === items)
  const small = (impl: Impl) => memOf(impl, SMALL)
  const gcCell = (m?: MemoryResult) => (m ? `${median(m.gcMs)} ms (max ${Math.max(...m.gcMs)})` : '–')
  const emptyGc = median(mem.flatMap((m) => m.gcEmptyMs))

  const checks: Check[] = []
  const cacheBytes = small('cache')?.bytesPerItem ?? Infinity
  const lruBytes = small('lru-cache')?.bytesPerItem ?? 0
  checks.push({
    target: `bytes per item at ${count(SMALL)} ≤ ${MEMCACHED_BYTES_PER_ITEM} B (memcached)`,
    measured: `${cacheBytes} B`,
    pass: cacheBytes <= MEMCACHED_BYTES_PER_ITEM,
  })
  checks.push({
    target: 'bytes per item under half of lru-cache’s',
    measured: `${cacheBytes} B vs ${lruBytes} B (half: ${Math.round(lruBytes / 2)} B)`,
    pass: cacheBytes < lruBytes / 2,
  })
  const gcLarge = memOf('cache', LARGE)
  const gcMedian = gcLarge ? median(gcLarge.gcMs) : Infinity
  checks.push({
    target: `full GC with ${count(LARGE)} items held < ${GC_LIMIT_MS} ms`,
    measured: `${gcMedian} ms (median of ${gcLarge?.gcMs.length ?? 0})`,
    pass: gcMedian < GC_LIMIT_MS,
  })
  const getScenario = scenarios[0]
  const sync = opsOf(getScenario, 'Cache getSync/setSync')
  const lru = opsOf(getScenario, 'lru-cache')
  // the verdict: the median of the extra alternating rounds when the run has them
  const ratio = getRatios.length ? median(getRatios) : sync / lru
  const rounds = getRatios.length
    ? `; ${getRatios.length} more rounds of the pair alternating: ${getRatios.map((r) => r.toFixed(2)).join(', ')}, median ${ratio.toFixed(2)}`
    : ''
  checks.push({
    target: 'getSync ≥ 1/3 of lru-cache’s get ops/s',
    measured: `table: ${fmtOps(sync)} vs ${fmtOps(lru)} ops/s (ratio ${(sync / lru).toFixed(2)})${rounds}`,
    pass: ratio >= GET_RATIO,
  })

  const lines = [
    `Measured ${machine}. Command: \`npm run bench -- embedded\`` +
      (QUICK ? ' with `BENCH_EMBEDDED_QUICK=1` (a smoke run: fewer items, short cases)' : '') +
      `. Load average at the start: ${load} (other work shared this machine: expect noise of ` +
      'tens of percent between runs; the ± column is benny’s margin of error).',
    '',
    `### Throughput (ops/s, benny, ${count(KEYS)} keys of 16 bytes, 100-byte values)`,
    '',
    `| | ${scenarios.join(' | ')} |`,
    `|---|${scenarios.map(() => '---:').join('|')}|`,
    ...names.map((n) => `| ${n} | ${scenarios.map((s) => cell(s, n)).join(' | ')} |`),
    '',
    'One operation per call, keys in a fixed pseudo-random order. `Cache` returns a fresh `Buffer`',
    'copy of the value on every get; lru-cache and `Map` return the stored object itself. The async',
    'case awaits each Promise. "One hot key" repeats a single key, so nothing misses the CPU cache:',
    'the gap between it and the 100k-key column is time spent waiting for memory.',
    '',
    `### Memory after inserting ${count(SMALL)} items (16-byte keys, 100-byte values)`,
    '',
    'Each container in a fresh process; RSS growth from before the container was created to',
    'after the inserts and two full GCs. Values are distinct flat strings (the most compact',
    'JS representation, so the most favourable to lru-cache and `Map`).',
    '',
    '| | bytes per item | RSS before → after | JS heap used | insert time |',
    '|---|---:|---:|---:|---:|',
    ...(['cache', 'lru-cache', 'map'] as Impl[]).map((impl) => {
      const m = small(impl)
      return m
        ? `| ${impl} | ${m.bytesPerItem} | ${m.rssBeforeMiB} → ${m.rssAfterMiB} MiB | ${m.heapUsedMiB} MiB | ${m.insertMs} ms |`
        : `| ${impl} | – | – | – | – |`
    }),
    '',
    '### Full GC duration with the items held (`gc()` with `--expose-gc`, median of 7)',
    '',
    `The same child processes before creating the container: ${emptyGc} ms (median), the floor`,
    'any container adds to. The engine keeps its items outside the JS heap, so the GC does not see them.',
    '',
    `| | ${count(SMALL)} items | ${count(LARGE)} items |`,
    '|---|---:|---:|',
    ...(['cache', 'lru-cache'] as Impl[]).map((impl) => `| ${impl} | ${gcCell(memOf(impl, SMALL))} | ${gcCell(memOf(impl, LARGE))} |`),
    '',
    '### Targets (issue 2)',
    '',
    '| target | measured | result |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.target} | ${c.measured} | ${c.pass ? 'pass' : '**MISS**'} |`),
    '',
    ...WHERE_THE_TIME_GOES,
  ]
  return { markdown: lines.join('\n'), checks }
}

interface Saved {
  machine: string
  load: string
  quick: boolean
  ops: OpsResult[]
  /** Absent in runs saved before the extra rounds existed. */
  getRatios?: number[]
  mem: MemoryResult[]
}

/** Measures everything (or, with BENCH_EMBEDDED_FROM=<results json>, re-renders a saved run). */
async function measure(): Promise<Saved> {
  const from = process.env.BENCH_EMBEDDED_FROM
  if (from) {
    const saved = JSON.parse(readFileSync(from, 'utf8')) as Saved
    if (saved.quick !== QUICK) throw new Error(`${from} was a ${saved.quick ? 'quick' : 'full'} run: set BENCH_EMBEDDED_QUICK to match`)
    return saved
  }
  const machine = machineLine()
  console.log(`embedded benchmark${QUICK ? ' (quick)' : ''}: throughput`)
  const { ops, getRatios } = await runOps(MAX_TIME)
  const mem: MemoryResult[] = []
  const runs: Array<[Impl, number]> = [
    ['cache', SMALL],
    ['lru-cache', SMALL],
    ['map', SMALL],
    ['cache', LARGE],
    ['lru-cache', LARGE],
  ]
  for (const [impl, items] of runs) {
    console.log(`memory and GC: ${impl} with ${count(items)} items`)
    const m = measureInChild(impl, items)
    console.log(`  ${m.bytesPerItem} B/item, gc ${m.gcMs.join(' ')} ms, insert ${m.insertMs} ms`)
    mem.push(m)
  }
  const saved = { machine, load: LOAD, quick: QUICK, ops, getRatios, mem }
  const dir = join(ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `embedded-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, JSON.stringify(saved, null, 2))
  console.log(`raw results: ${file}`)
  return saved
}

export async function runEmbeddedBench(): Promise<void> {
  const { machine, load, ops, getRatios, mem } = await measure()
  const { markdown } = report(ops, getRatios ?? [], mem, machine, load)
  console.log('\n' + markdown)
  if (process.env.BENCH_WRITE_DOCS !== '0') {
    writeSection(join(ROOT, 'docs', 'benchmarks.md'), 'Embedded', markdown)
    console.log('updated the "Embedded" section of docs/benchmarks.md')
  }
}

if (require.main === module) {
  runEmbeddedBench().catch((e: Error) => {
    console.error(e.stack ?? e.message)
    process.exit(1)
  })
}
