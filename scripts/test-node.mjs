#!/usr/bin/env node
// `npm run test:node`: every __test__/*.test.ts with uvu, split into FERROCACHE_TEST_SHARDS
// uvu processes run at once (default 2). Most of the suite waits on servers and timers, so
// two processes take about half the wall time. Files go to the shard with the least
// expected time so far, longest first, by the times in scripts/test-times.json (a file not
// listed counts as the median). Each shard's output is printed whole, in shard order: the
// first one live, the next as soon as the one before it is done. The run fails if any
// shard fails.
//
//   node scripts/test-node.mjs [pattern]      only the files whose name matches (a regex)
//   node scripts/test-node.mjs --write-times  also store this run's time of each file
//
// One file alone, without this script: npx uvu __test__ 'name\.test\.ts$' -r tsx/cjs
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const TESTS = join(ROOT, '__test__')
const TIMES = join(ROOT, 'scripts', 'test-times.json')
const UVU = join(ROOT, 'node_modules', 'uvu', 'bin.js')

const args = process.argv.slice(2)
const writeTimes = args.includes('--write-times')
const pattern = args.find((a) => !a.startsWith('--'))
const shardCount = Number(process.env.FERROCACHE_TEST_SHARDS ?? 2)
if (!Number.isInteger(shardCount) || shardCount < 1) {
  console.error(`FERROCACHE_TEST_SHARDS must be a whole number >= 1, not ${process.env.FERROCACHE_TEST_SHARDS}`)
  process.exit(2)
}

const filter = pattern === undefined ? null : new RegExp(pattern, 'i')
const files = readdirSync(TESTS)
  .filter((f) => f.endsWith('.test.ts') && (filter === null || filter.test(f)))
  .sort()
if (files.length === 0) {
  console.error(`no __test__/*.test.ts matches ${pattern}`)
  process.exit(1)
}

/** @type {Record<string, number>} */
const times = JSON.parse(readFileSync(TIMES, 'utf8'))
const known = Object.values(times).sort((a, b) => a - b)
const median = known.length > 0 ? known[Math.floor(known.length / 2)] : 1
const expected = (f) => times[f] ?? median

// Longest first, each to the shard expected to finish first.
const shards = Array.from({ length: Math.min(shardCount, files.length) }, () => ({ files: [], expected: 0 }))
for (const f of [...files].sort((a, b) => expected(b) - expected(a) || a.localeCompare(b))) {
  const shard = shards.reduce((best, s) => (s.expected < best.expected ? s : best))
  shard.files.push(f)
  shard.expected += expected(f)
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const started = Date.now()
const seconds = (ms) => (ms / 1000).toFixed(1)
const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, '')

/** Output order: the shard at `live` writes through, the others are kept until their turn. */
let live = 0
const runs = shards.map((shard, i) => {
  const run = { i, shard, buffered: [], done: false, code: null, signal: null, ms: 0, out: '', fileTimes: {} }
  const names = shard.files.map(escape).join('|')
  const child = spawn(process.execPath, [UVU, '__test__', `^(${names})$`, '-r', 'tsx/cjs'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  run.child = child
  // Per-file times: uvu prints a file's name on a line of its own when it starts it.
  let line = ''
  let current = null
  let since = 0
  const endFile = () => {
    if (current !== null) run.fileTimes[current] = (Date.now() - since) / 1000
    current = null
  }
  const emit = (stream, chunk) => {
    if (i === live) stream.write(chunk)
    else run.buffered.push([stream, chunk])
  }
  child.stdout.on('data', (chunk) => {
    emit(process.stdout, chunk)
    const text = stripAnsi(chunk.toString())
    run.out += text
    const lines = (line + text).split('\n')
    line = lines.pop()
    for (const l of lines) {
      if (shard.files.includes(l.trim())) {
        endFile()
        current = l.trim()
        since = Date.now()
      } else if (/^\s*Total:/.test(l)) endFile()
    }
  })
  child.stderr.on('data', (chunk) => emit(process.stderr, chunk))
  child.on('error', (err) => emit(process.stderr, `shard ${i + 1}: ${err.message}\n`))
  child.on('close', (code, signal) => {
    endFile()
    Object.assign(run, { done: true, code, signal, ms: Date.now() - started })
    if (i === live) advance()
  })
  return run
})

function header(run) {
  const { i, shard } = run
  process.stdout.write(
    `\n── shard ${i + 1}/${runs.length}: ${shard.files.length} files, about ${Math.round(shard.expected)} s by scripts/test-times.json ──\n`,
  )
}

header(runs[0])

/** The live shard is done: print the next ones' output so far, and let the first unfinished one write through. */
function advance() {
  while (live < runs.length && runs[live].done) {
    live++
    if (live === runs.length) return finish()
    const next = runs[live]
    header(next)
    for (const [stream, chunk] of next.buffered) stream.write(chunk)
    next.buffered = []
  }
}

function finish() {
  const count = (out, what) => Number(new RegExp(`^\\s*${what}:\\s+(\\d+)`, 'm').exec(out)?.[1] ?? NaN)
  console.log(`\n── ${runs.length} shard(s), ${files.length} files, ${seconds(Date.now() - started)} s ──`)
  let failed = false
  for (const run of runs) {
    const ok = run.code === 0
    failed ||= !ok
    const how = run.signal !== null ? `killed by ${run.signal}` : `exit code ${run.code}`
    console.log(
      `shard ${run.i + 1}: ${ok ? 'passed' : 'FAILED'} (${how}), ${seconds(run.ms)} s, ` +
        `tests ${count(run.out, 'Passed')} passed of ${count(run.out, 'Total')}, ${count(run.out, 'Skipped')} skipped`,
    )
  }
  if (writeTimes) {
    const measured = Object.assign({}, ...runs.map((r) => r.fileTimes))
    const merged = { ...times }
    for (const [f, s] of Object.entries(measured)) merged[f] = Math.round(s * 10) / 10
    const sorted = Object.fromEntries(Object.keys(merged).sort().map((f) => [f, merged[f]]))
    writeFileSync(TIMES, `${JSON.stringify(sorted, null, 2)}\n`)
    console.log(`wrote ${Object.keys(measured).length} file times to scripts/test-times.json`)
  }
  if (stoppedBy === null) process.exitCode = failed ? 1 : 0
}

// Stopped from outside (Ctrl-C, a CI time limit): each uvu process kills what its tests
// started (__test__/helpers/guard.ts) once told.
let stoppedBy = null
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    stoppedBy = signal
    for (const run of runs) if (!run.done) run.child.kill(signal)
    process.exitCode = 128 + (signal === 'SIGINT' ? 2 : 15)
  })
}
