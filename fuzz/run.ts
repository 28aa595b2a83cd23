// npm run fuzz [-- --seconds N] [--targets a,b] : runs each cargo-fuzz target (libFuzzer,
// nightly toolchain, `cargo install cargo-fuzz`) for a bounded time, one after the other,
// at low priority, and prints what each did: executions, coverage, corpus, crashes.
//
// Corpus: fuzz/corpus/<target>/ (grows, not committed) plus the committed seeds in
// fuzz/seeds/<target>/. A crash leaves its input in fuzz/artifacts/<target>/; copy it to
// fuzz/regressions/<target>/ so `cargo test` replays it (crates/ferrocache-protocol/tests/
// fuzz_replay.rs), then fix the bug. The figures go to fuzz/artifacts/last-run.json.

import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const fuzzDir = __dirname

const TARGETS: Record<string, string> = {
  session_text: 'text.dict',
  session_binary: 'binary.dict',
  snapshot: 'snapshot.dict',
  aof: 'aof.dict',
  replication: 'replication.dict',
}

interface Options {
  seconds: number
  targets: string[]
  maxLen: number
}

interface TargetRun {
  target: string
  seconds: number
  executions: number
  execsPerSecond: number
  coverage: number
  features: number
  corpus: number
  newUnits: number
  peakRssMb: number
  crashed: boolean
  artifact?: string
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { seconds: 60, targets: Object.keys(TARGETS), maxLen: 4096 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = argv[i + 1]
    if (arg === '--seconds' && value !== undefined) {
      opts.seconds = Number(value)
      i++
    } else if (arg === '--targets' && value !== undefined) {
      opts.targets = value.split(',').filter(Boolean)
      i++
    } else if (arg === '--max-len' && value !== undefined) {
      opts.maxLen = Number(value)
      i++
    } else {
      throw new Error(`usage: fuzz/run.ts [--seconds N] [--targets ${Object.keys(TARGETS).join(',')}] [--max-len BYTES]`)
    }
  }
  if (!Number.isInteger(opts.seconds) || opts.seconds < 1) throw new Error('--seconds must be a positive integer')
  for (const t of opts.targets) if (!(t in TARGETS)) throw new Error(`unknown target ${t}`)
  return opts
}

function statNumber(log: string, name: string): number {
  const m = new RegExp(`stat::${name}:\\s+(\\d+)`).exec(log)
  return m ? Number(m[1]) : 0
}

/** The last libFuzzer status line: `#N <what> cov: C ft: F corp: K/...`. */
function lastStatus(log: string): { coverage: number; features: number; corpus: number } {
  const lines = [...log.matchAll(/^#\d+\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\d+)/gm)]
  const m = lines.at(-1)
  return m ? { coverage: Number(m[1]), features: Number(m[2]), corpus: Number(m[3]) } : { coverage: 0, features: 0, corpus: 0 }
}

function runTarget(target: string, opts: Options): Promise<TargetRun> {
  const corpus = join(fuzzDir, 'corpus', target)
  mkdirSync(corpus, { recursive: true })
  const args = [
    '-n', '15', 'cargo', '+nightly', 'fuzz', 'run', target, corpus, join(fuzzDir, 'seeds', target), '--',
    `-max_total_time=${opts.seconds}`, `-max_len=${opts.maxLen}`, `-dict=${join(fuzzDir, 'dict', TARGETS[target]!)}`,
    '-print_final_stats=1', '-timeout=20', '-rss_limit_mb=2048',
  ]
  return new Promise((resolve, reject) => {
    const child = spawn('nice', args, { cwd: fuzzDir, stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    const keep = (chunk: Buffer): void => {
      log += chunk.toString('latin1')
      if (log.length > 4_000_000) log = log.slice(-2_000_000)
    }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', reject)
    child.on('close', (code) => {
      const artifact = /Test unit written to (\S+)/.exec(log)?.[1]
      const crashed = code !== 0 || artifact !== undefined
      if (crashed) process.stderr.write(log.slice(-6000))
      if (code !== 0 && artifact === undefined && !log.includes('stat::number_of_executed_units')) {
        reject(new Error(`cargo fuzz run ${target} failed (exit ${code}); is cargo-fuzz installed and the nightly toolchain present?\n${log.slice(-3000)}`))
        return
      }
      const executions = statNumber(log, 'number_of_executed_units')
      resolve({
        target,
        seconds: opts.seconds,
        executions,
        execsPerSecond: statNumber(log, 'average_exec_per_sec'),
        ...lastStatus(log),
        newUnits: statNumber(log, 'new_units_added'),
        peakRssMb: statNumber(log, 'peak_rss_mb'),
        crashed,
        ...(artifact === undefined ? {} : { artifact }),
      })
    })
  })
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2))
  const runs: TargetRun[] = []
  for (const target of opts.targets) {
    console.log(`fuzzing ${target} for ${opts.seconds} s`)
    const run = await runTarget(target, opts)
    runs.push(run)
    console.log(
      `  ${run.executions} executions (${run.execsPerSecond}/s), cov ${run.coverage}, ft ${run.features}, ` +
        `corpus ${run.corpus}, peak RSS ${run.peakRssMb} MB${run.crashed ? `, CRASH: ${run.artifact ?? 'see log'}` : ''}`,
    )
  }
  mkdirSync(join(fuzzDir, 'artifacts'), { recursive: true })
  writeFileSync(join(fuzzDir, 'artifacts', 'last-run.json'), JSON.stringify({ at: new Date().toISOString(), runs }, null, 2))
  console.log('\n| target | seconds | executions | exec/s | coverage (edges) | features | corpus | crashes |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const r of runs) {
    console.log(`| ${r.target} | ${r.seconds} | ${r.executions} | ${r.execsPerSecond} | ${r.coverage} | ${r.features} | ${r.corpus} | ${r.crashed ? 1 : 0} |`)
  }
  if (runs.some((r) => r.crashed)) process.exitCode = 1
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e)
  process.exitCode = 1
})
