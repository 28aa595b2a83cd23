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
import { GC_GAP_MS, measureInChild, type Impl, type MemoryResult } from './embedded-memory'
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

// From profiling (perf with a symbol build, and A/B runs of each change) on 2026-11-25; static
// text, so re-check it when the crossing or the engine changes. docs/engine.md has the details.
const WHERE_THE_TIME_GOES = [
  '### Where a `getSync` spends its time (profiled 2026-11-25 20:45 UTC)',
  '',
  '- **One hot key** (nothing misses the CPU cache): ~135 ns in a tight loop, spread over the',
  '  napi crossing and argument reads (~30 ns), the key (printable ASCII is read as UTF-16 units',
  '  and checked while narrowed, cheaper than V8’s UTF-8 encoder), the engine (hash, shard lock,',
  '  clock, lookup, stats), the copy into the read pool and the returned view (Node’s own',
  '  `FastBuffer` over the pool, ~20 ns cheaper than `Buffer.from(arrayBuffer, offset, length)`).',
  '- **100k keys in random order**: ~600 ns, of which ~450-550 ns waits for memory: the key string',
  '  (23% of the samples), then the hash-table slot and the item, each dependent on the one',
  '  before (35%), at ~130-160 ns a miss on this VM. lru-cache’s get misses too, but its working',
  '  set is smaller (one shared value Buffer under every key, no per-item copies) and it allocates',
  '  nothing, while each `getSync` returns a fresh Buffer.',
  '- Measured again on 2026-11-27 (session 15, loaded machine): a hot key 132-161 ns, 100k',
  '  distinct string objects of one key (only the JS side’s misses) 283-302 ns, 100k keys',
  '  531-603 ns: ~150 ns for the key’s two misses (the keys array’s element, the string),',
  '  which lru-cache pays too, and ~300 ns for the engine’s slot and item. The ~1,700',
  '  instructions of a call are not what it waits on: leaving out a boolean argument (54 of',
  '  them), the store’s `Arc` clone or, in a test build, the shard lock changed no timing the',
  '  noise let through (docs/engine.md).',
  '- Transparent huge pages for slab memory, measured again on 2026-11-27 (session 16) within',
  '  one process (two caches, one on huge pages, alternating CPU-time slices): `getSync` at',
  '  100k keys 1.065× (median of 25 runs, 0.99-1.21×; two 4 KiB caches 0.88-1.04×, median',
  '  0.977), ~20 ns of each DRAM miss being the page walk on this VM. A few percent, not the',
  '  ~20% the target lacks, and writes into fresh memory pay for it: a ferrocached filled by',
  '  200k sets of ~2.4 KB values took 75-168k sets/s with them, 166-194k without (six',
  '  alternating runs each). So the 2 MiB page pairs are opt-in (`largePages`, ferrocached',
  '  `-L`, as memcached’s large pages are) and these figures are without them.',
  '- The fresh Buffer a `getSync` returns (lru-cache returns the object it stores) measured',
  '  again on 2026-11-27 (session 17, in-process A/B, load 12): ~120-150 ns of a 100k-key get',
  '  against 41 ns on a hot key; in cachegrind with a 32 MiB last-level cache, 1.3-1.5 more',
  '  last-level misses per get in the engine’s and the key’s reads, as the ~200 B of fresh',
  '  memory each get leaves (Buffer object, read pool) streams ~34 MB through the cache between',
  '  scavenges. A smaller young generation did not win it back (docs/engine.md).',
  '- A hit relinks nothing, takes one uncontended shard lock, bumps plain per-shard counters and',
  '  writes its header only when the access second changed: nothing left there to shave.',
  '- Memory per item: the engine holds 152 B of slab chunk (36-byte header + key + value, an',
  '  exact fit in the 152-byte class) plus 8-byte hash slots (11.7 B/item at 1M items, 69% full;',
  '  tables grow by a quarter, 10.7-13.3 B/item); the floor of this layout is ~163 B, and half',
  '  of lru-cache’s figure is below the 116 bytes of key and value themselves. Details and the',
  '  A/B figures: docs/engine.md.',
]

// Why a full GC with 5M items held measured 8.06 ms in the 2026-11-27 08:33 run and 4.9-5.2 ms
// with the same child run alone just after; static text (measured 10:20-10:45 UTC that day with
// throwaway copies of the child), so re-check it when the child changes.
const GC_GAP_EXPLAINED = [
  'The bench’s child and the same command run alone differ only in when they run: the same flags,',
  'a fresh process, the same timing code. Neither the parent nor the child’s own background thread',
  'explains a steady gap: the parent waits in `spawnSync` (its two 100k-item caches, closed since,',
  'took ~19 ms of CPU a second for their background walks, 2% of a core), and the child’s',
  'background thread (its walk of 5M items takes 20-50 ms a second) ran during one of 15 timed',
  'collections or none (schedstat), which a median rides over. The machine does. At load 8-10',
  'from other sessions (2026-11-27 10:40 UTC) a copy of the child that raised its threads to',
  'real-time priority (`chrt -f`, as the child now also does) for the timed collections only',
  'took 5.0 and 5.8 ms with 5M items held, 5.0 and 6.5 ms before they were made, 5.5 and 4.6 ms',
  'after `close()` (medians of 15, two runs, the main thread never waiting for a CPU); the same',
  'copy at normal priority, alternating with it, 33 and 18 ms held, 36 and 26 ms before, 19 and',
  '22 ms after, its main thread 11-31 ms of each in a run queue. So the items add no GC work, a',
  'full collection here takes ~5 ms when it has the cores, and the rest of any figure is what',
  'the other processes on the two cores cost it while the bench ran.',
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
  const gcSamples = memOf('cache', LARGE)?.gcMs.length ?? 0

  const checks: Check[] = []
  // The insert loop's own RSS (runs saved before it was measured have none: net = raw)
  const loopBytes = small('loop')?.bytesPerItem ?? 0
  const net = (m?: MemoryResult) => (m ? m.bytesPerItem - loopBytes : undefined)
  const cacheRaw = small('cache')?.bytesPerItem ?? Infinity
  const cacheBytes = net(small('cache')) ?? Infinity
  const lruBytes = net(small('lru-cache')) ?? 0
  // the figure is the raw RSS growth; the net one is reported beside it, not instead
  checks.push({
    target: `bytes per item at ${count(SMALL)} ≤ ${MEMCACHED_BYTES_PER_ITEM} B (memcached), process RSS growth`,
    measured: `${cacheRaw} B`,
    pass: cacheRaw <= MEMCACHED_BYTES_PER_ITEM,
  })
  if (loopBytes) {
    checks.push({
      target: `the same, net of the insert loop's own RSS`,
      measured: `${cacheBytes} B (the loop alone ${loopBytes} B)`,
      pass: cacheBytes <= MEMCACHED_BYTES_PER_ITEM,
    })
  }
  checks.push({
    target: 'bytes per item under half of lru-cache’s',
    measured:
      `${cacheBytes} B vs ${lruBytes} B (half: ${Math.round(lruBytes / 2)} B)` +
      (loopBytes ? `; raw ${cacheRaw} B vs ${small('lru-cache')?.bytesPerItem ?? 0} B` : ''),
    pass: cacheBytes < lruBytes / 2,
  })
  const gcLarge = memOf('cache', LARGE)
  const gcMedian = gcLarge ? median(gcLarge.gcMs) : Infinity
  // where the pause went (runs saved before schedstat was read have no split)
  const split = (m?: MemoryResult) =>
    m?.gcOnCpuMs?.length && m.gcRunQueueMs?.length
      ? `the main thread on a CPU ${median(m.gcOnCpuMs)} ms of it, waiting in a run queue for one ${median(m.gcRunQueueMs)} ms`
      : undefined
  const dropped = (m?: MemoryResult) => (m?.gcDroppedMs?.length ? `${median(m.gcDroppedMs)} ms` : undefined)
  const realTime = (m?: MemoryResult) => (m?.gcRealTimeMs?.length ? `${median(m.gcRealTimeMs)} ms` : undefined)
  checks.push({
    target: `full GC with ${count(LARGE)} items held < ${GC_LIMIT_MS} ms`,
    measured:
      `${gcMedian} ms (median of ${gcLarge?.gcMs.length ?? 0}` +
      (split(gcLarge) ? `; ${split(gcLarge)}` : '') +
      (dropped(gcLarge) ? `; the same process after \`close()\`: ${dropped(gcLarge)}` : '') +
      (realTime(gcLarge) ? `; at real-time priority: ${realTime(gcLarge)}` : '') +
      ')',
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
    'JS representation, so the most favourable to lru-cache and `Map`). The `loop` row runs the',
    'same insert loop storing nothing: what making 2M short strings costs any process (V8 grows',
    'its young generation from 8 to 32 MiB at this allocation rate and keeps it), so "net of the',
    'loop" is what the container itself holds. memcached’s 198 B has no such loop in it.',
    '',
    '| | bytes per item | net of the loop | RSS before → after | JS heap used | insert time |',
    '|---|---:|---:|---:|---:|---:|',
    ...(['cache', 'lru-cache', 'map', 'loop'] as Impl[]).map((impl) => {
      const m = small(impl)
      const netCell = impl === 'loop' ? '0' : `${net(m) ?? '–'}`
      return m
        ? `| ${impl} | ${m.bytesPerItem} | ${netCell} | ${m.rssBeforeMiB} → ${m.rssAfterMiB} MiB | ${m.heapUsedMiB} MiB | ${m.insertMs} ms |`
        : `| ${impl} | – | – | – | – | – |`
    }),
    '',
    `### Full GC duration with the items held (\`gc()\` with \`--expose-gc\`, median of ${gcSamples})`,
    '',
    `The same child processes before creating the container: ${emptyGc} ms (median), the floor`,
    'any container adds to. The engine keeps its items outside the JS heap, so the GC does not see them.',
    '',
    `| | ${count(SMALL)} items | ${count(LARGE)} items |`,
    '|---|---:|---:|',
    ...(['cache', 'lru-cache'] as Impl[]).map((impl) => `| ${impl} | ${gcCell(memOf(impl, SMALL))} | ${gcCell(memOf(impl, LARGE))} |`),
    '',
    ...(split(gcLarge)
      ? [
          'These are wall times: V8 marks on helper threads beside the main thread, and on this shared',
          '2-core machine whatever else runs lengthens the pause. Linux’s schedstat splits each collection',
          `with the cache’s ${count(LARGE)} items held: ${split(gcLarge)}`,
          '(medians; the rest of the pause the main thread waits for V8’s helper threads).',
          ...(dropped(gcLarge) ? [`The same process once \`close()\` freed the items: ${dropped(gcLarge)}.`] : []),
          ...(realTime(gcLarge)
            ? [
                'With the items held and the child’s threads at real-time priority for the collections',
                `(\`chrt -f\`, so no other process delays them): ${realTime(gcLarge)}.`,
              ]
            : []),
          `Collections are ${GC_GAP_MS} ms apart, so a burst of other work spoils a few, not a run of them.`,
          '',
          ...GC_GAP_EXPLAINED,
          '',
        ]
      : []),
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
    ['loop', SMALL],
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
