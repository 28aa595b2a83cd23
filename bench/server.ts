// Server benchmark: ferrocached against memcached -t 1 over loopback, driven by
// bench/loadgen (C, pipelining, every reply verified). One server runs at a time,
// pinned to core 0; the generator is pinned to core 1. Results go to the "Server"
// section of docs/benchmarks.md and, as JSON, to bench/results/.
//
//   npm run bench:server                         full run (10 s per scenario)
//   BENCH_SERVER_SECONDS=2 npm run bench:server  quick run
//   BENCH_SERVER_SCHED=fifo npm run bench:server on a machine shared with other work
//
// Environment:
//   BENCH_SERVER_SECONDS      measured window per scenario (default 10)
//   BENCH_SERVER_WARMUP       unmeasured load before it (default 2)
//   BENCH_SERVER_RSS_ITEMS    items loaded for the RSS-per-item figure (default 1000000)
//   BENCH_SERVER_ROUNDS       rounds, servers alternating; the median round is reported (default 1)
//   BENCH_SERVER_QUIET_WAIT   seconds to wait for both cores to go idle before a scenario (default 30, 0 = don't)
//   BENCH_SERVER_NICE         niceness of server and generator (default -19)
//   BENCH_SERVER_SCHED=fifo   SCHED_FIFO instead of nice (root; see PRIORITY below)
//   BENCH_SERVER_ONLY         memcached | ferrocached
//   BENCH_SERVER_WRITE_DOCS=0 leave docs/benchmarks.md alone
//   MEMCACHED                 memcached binary (default: memcached on PATH)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus, release } from 'node:os'
import { join } from 'node:path'
import { fmtOps, machineLine, writeSection } from './markdown'
import { buildLoadgen, freePort, LOADGEN_BIN } from './tools'

const ROOT = join(__dirname, '..')
const DOCS = join(ROOT, 'docs', 'benchmarks.md')
const PKG_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
const RESULTS_DIR = join(ROOT, 'bench', 'results')

const SECONDS = numberEnv('BENCH_SERVER_SECONDS', 10)
const WARMUP = numberEnv('BENCH_SERVER_WARMUP', 2)
const RSS_ITEMS = numberEnv('BENCH_SERVER_RSS_ITEMS', 1_000_000)
const ROUNDS = Math.round(numberEnv('BENCH_SERVER_ROUNDS', 1))
/**
 * Niceness for the server and the generator: a negative value gives them the larger share
 * of their cores against other work, though not prompt wake-ups (the scheduler lets the
 * running task finish its slice), so a busy neighbour still costs unpipelined throughput.
 * Needs root; otherwise nice warns and runs them unchanged.
 */
const NICE = Number(process.env.BENCH_SERVER_NICE ?? -19)
if (!Number.isInteger(NICE) || NICE < -20 || NICE > 19) throw new RangeError('BENCH_SERVER_NICE must be an integer from -20 to 19')
/**
 * BENCH_SERVER_SCHED=fifo runs both under SCHED_FIFO (chrt -f 1, root only) instead: a
 * woken server then preempts other work at once, which nice cannot promise under EEVDF.
 * Opt-in because it starves everything else on the two cores for the run (the kernel's
 * real-time throttle still leaves them 5%, and pauses the benchmark ~50 ms each second).
 */
const SCHED_FIFO = process.env.BENCH_SERVER_SCHED === 'fifo'
if (process.env.BENCH_SERVER_SCHED && !SCHED_FIFO) throw new RangeError('BENCH_SERVER_SCHED must be "fifo" or unset')
/** The command prefix that sets the scheduling of the server and the generator. */
const PRIORITY = SCHED_FIFO ? ['chrt', '-f', '1'] : ['nice', '-n', String(NICE)]
const QUIET_WAIT = process.env.BENCH_SERVER_QUIET_WAIT === '0' ? 0 : numberEnv('BENCH_SERVER_QUIET_WAIT', 30)
const KEYS = 100_000
const CONNS = 50
const VALUE_SIZE = 100
const GET_RATIO = 0.9
const SERVER_CORE = '0'
const CLIENT_CORE = '1'
/** Other work's share of the server's core above which a run is marked contended. */
const CONTENDED_PCT = 10

type ServerName = 'memcached' | 'ferrocached'

interface Scenario {
  id: string
  label: string
  proto: 'text' | 'meta'
  depth: number
  /** ferrocached ops/s must be at least this times memcached's */
  target: number
}

const SCENARIOS: Scenario[] = [
  { id: 'depth1-text', label: 'no pipelining (get/set)', proto: 'text', depth: 1, target: 0.8 },
  { id: 'depth16-text', label: 'depth 16, get/set', proto: 'text', depth: 16, target: 1.0 },
  { id: 'depth16-meta', label: 'depth 16, mg/ms', proto: 'meta', depth: 16, target: 0.8 },
]
/** ferrocached's p99 may be at most this times memcached's */
const P99_LIMIT = 2

/** The generator's JSON line (see the end of bench/loadgen/loadgen.c). */
interface LoadgenResult {
  ops_per_sec: number
  p50_us: number
  p99_us: number
  p999_us: number
  gets: number
  hits: number
  misses: number
  sets: number
  stored: number
  server_errors: number
  unexpected: number
  wrong_values: number
  unanswered: number
  preload_stored: number
  preload_seconds: number
  client_cpu_pct: number
  /** the server's CPU use over the measured window, in percent of one core (-1 if unknown) */
  server_cpu_pct: number
  /** every core's busy share over the window, whoever used it */
  core_busy_pct: number[]
  stats_check: string
  clean: boolean
}

interface ScenarioRun {
  scenario: string
  result?: LoadgenResult
  problem?: string
}

interface ServerRun {
  server: ServerName
  version: string
  /** every round's results, in order */
  rounds: ScenarioRun[][]
  /** per scenario, the median round */
  scenarios: ScenarioRun[]
  rss?: { items: number; beforeKiB: number; afterKiB: number; bytesPerItem: number; loadSeconds: number }
  problem?: string
}

function numberEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const v = Number(raw)
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got "${raw}"`)
  return v
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolve once the server answers "version", or reject after `timeoutMs`. */
async function waitReady(port: number, child: ChildProcess, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited during start-up (code ${child.exitCode}, signal ${child.signalCode})`)
    const reply = await new Promise<string | null>((resolve) => {
      const sock = connect(port, '127.0.0.1')
      let buf = ''
      const done = (v: string | null): void => {
        sock.destroy()
        resolve(v)
      }
      sock.setTimeout(1000, () => done(null))
      sock.on('error', () => done(null))
      sock.on('connect', () => sock.write('version\r\n'))
      sock.on('data', (d) => {
        buf += d.toString('latin1')
        if (buf.includes('\r\n')) done(buf.trim())
      })
    })
    if (reply?.startsWith('VERSION ')) return reply.slice(8)
    await sleep(100)
  }
  throw new Error(`did not answer "version" within ${timeoutMs} ms`)
}

interface RunningServer {
  child: ChildProcess
  port: number
  version: string
  stderr: () => string
}

async function startServer(name: ServerName): Promise<RunningServer> {
  const port = await freePort()
  let cmd: string
  let args: string[]
  if (name === 'memcached') {
    cmd = process.env.MEMCACHED ?? 'memcached'
    args = ['-t', '1', '-U', '0', '-m', '2048', '-l', '127.0.0.1', '-p', String(port)]
    if (process.getuid?.() === 0) args.push('-u', 'root') // memcached refuses root without -u
  } else {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('ferrocached: dist/ is missing, run `npm run build` first')
    cmd = process.execPath
    args = [join(ROOT, 'bin', 'ferrocached.js'), '-p', String(port), '-m', '2048', '-l', '127.0.0.1']
  }
  // nice and taskset exec the server, so the child's pid is the server's own (for /proc reads)
  const child = spawn(PRIORITY[0], [...PRIORITY.slice(1), 'taskset', '-c', SERVER_CORE, cmd, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000)
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  try {
    const version = await waitReady(port, child, 20_000)
    return { child, port, version, stderr: () => err }
  } catch (e) {
    await stopServer({ child, port, version: '', stderr: () => err })
    throw new Error(`${name}: ${(e as Error).message}${err ? `: ${firstErrorLine(err)}` : ''}`)
  }
}

/** The line of a crashed server's stderr most likely to say why (first "Error", else the last line). */
function firstErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n').map((l) => l.trim()).filter(Boolean)
  return (lines.find((l) => /error/i.test(l)) ?? lines[lines.length - 1] ?? '').slice(0, 300)
}

async function stopServer(s: RunningServer): Promise<void> {
  const { child } = s
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Servers this script started, so an interrupted run does not leave them behind. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL')
})
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`bench:server: ${sig}, stopping the servers it started`)
    process.exit(130) // runs the 'exit' handler above
  })
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Run the generator pinned to the client core; resolves with its JSON line. */
function loadgen(port: number, args: string[], timeoutSec: number): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    const all = ['-c', CLIENT_CORE, LOADGEN_BIN, '-s', `127.0.0.1:${port}`, '--timeout', String(timeoutSec), ...args]
    const child = spawn(PRIORITY[0], [...PRIORITY.slice(1), 'taskset', ...all], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('JSON '))
      if (!line) {
        reject(new Error(`loadgen exited with ${code} and no result: ${(err || out).trim().slice(-500)}`))
        return
      }
      const r = JSON.parse(line.slice(5)) as LoadgenResult
      const first = /  problem: (.*)/.exec(out)
      if (!r.clean && first) (r as LoadgenResult & { first_problem?: string }).first_problem = first[1]
      resolve(r)
    })
  })
}

/** How much of the server's and the generator's cores other processes used during the window. */
function otherLoad(r: LoadgenResult): { server: number; client: number } {
  const other = (core: string, own: number): number => {
    const busy = r.core_busy_pct[Number(core)]
    return busy === undefined || own < 0 ? 0 : Math.max(0, busy - own)
  }
  return { server: other(SERVER_CORE, r.server_cpu_pct), client: other(CLIENT_CORE, r.client_cpu_pct) }
}

/**
 * Whether other work may have changed the result: something besides the server used more
 * than CONTENDED_PCT of the server's core. The generator's core is reported but not judged:
 * the kernel's softirq work for the traffic lands there too (10-30% at high rates), so its
 * "others" figure cannot tell a neighbour from the network stack.
 */
function contended(r: LoadgenResult): boolean {
  return otherLoad(r).server > CONTENDED_PCT
}

/** Busy and total jiffies of each core, from /proc/stat. */
function coreTicks(): { busy: number; total: number }[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1, 9).map(Number)
      const total = v.reduce((a, b) => a + b, 0)
      return { busy: total - v[3] - v[4], total }
    })
}

/**
 * Waits (at most QUIET_WAIT seconds) until other processes leave both benchmark cores
 * nearly idle: on a shared machine a build running next to the server measures the build.
 */
async function waitForQuiet(): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT * 1000
  const cores = [Number(SERVER_CORE), Number(CLIENT_CORE)]
  let busiest = 0
  while (Date.now() < deadline) {
    const a = coreTicks()
    await sleep(500)
    const b = coreTicks()
    busiest = Math.max(...cores.map((c) => ((b[c].busy - a[c].busy) / Math.max(1, b[c].total - a[c].total)) * 100))
    if (busiest <= CONTENDED_PCT) return
  }
  if (QUIET_WAIT > 0) console.log(`    (cores still ${busiest.toFixed(0)}% busy after ${QUIET_WAIT} s; running anyway)`)
}

function summarize(r: LoadgenResult): string {
  const problems = r.server_errors + r.unexpected + r.wrong_values + r.unanswered
  return `${fmtOps(r.ops_per_sec)} ops/s  p50 ${r.p50_us} µs  p99 ${r.p99_us} µs  p99.9 ${r.p999_us} µs  ` +
    `(hits ${r.hits}, misses ${r.misses}, stored ${r.stored}, problems ${problems}, stats ${r.stats_check}, ` +
    `server cpu ${r.server_cpu_pct.toFixed(0)}% + others ${otherLoad(r).server.toFixed(0)}%, ` +
    `client cpu ${r.client_cpu_pct.toFixed(0)}% + others ${otherLoad(r).client.toFixed(0)}%` +
    `${contended(r) ? ', CONTENDED' : ''})`
}

/** One round: a fresh server, preloaded, then every scenario in turn. */
async function benchThroughput(name: ServerName, run: ServerRun): Promise<void> {
  const round: ScenarioRun[] = []
  run.rounds.push(round)
  let srv: RunningServer
  try {
    srv = await startServer(name)
  } catch (e) {
    run.problem = (e as Error).message
    console.log(`  ${name} did not start: ${run.problem}`)
    return
  }
  // ferrocached answers "version" with the memcached version it mimics; name the package's own
  run.version = name === 'ferrocached' ? `${PKG_VERSION} (answers "version" with ${srv.version})` : srv.version
  const pid = srv.child.pid as number
  try {
    const pre = await loadgen(srv.port, ['-L', '-t', '0', '-k', String(KEYS), '-d', '16', '-v', String(VALUE_SIZE)], 300)
    console.log(`  ${name} ${srv.version}: preloaded ${pre.preload_stored} keys in ${pre.preload_seconds.toFixed(2)} s`)
    if (pre.preload_stored !== KEYS) throw new Error(`preload stored only ${pre.preload_stored} of ${KEYS} keys`)
    for (const sc of SCENARIOS) {
      const entry: ScenarioRun = { scenario: sc.id }
      round.push(entry)
      if (srv.child.exitCode !== null || srv.child.signalCode !== null) {
        entry.problem = 'server exited'
        continue
      }
      try {
        await waitForQuiet()
        entry.result = await loadgen(srv.port, [
          '-P', sc.proto, '-d', String(sc.depth), '-c', String(CONNS), '-k', String(KEYS),
          '-v', String(VALUE_SIZE), '-r', String(GET_RATIO), '-t', String(SECONDS), '-w', String(WARMUP),
          '--server-pid', String(pid),
        ], SECONDS + WARMUP + 60)
        if (!entry.result.clean) entry.problem = 'replies not as expected'
        console.log(`    ${sc.label.padEnd(24)} ${summarize(entry.result)}`)
      } catch (e) {
        entry.problem = (e as Error).message
        console.log(`    ${sc.label.padEnd(24)} FAILED: ${entry.problem}`)
      }
    }
  } catch (e) {
    run.problem = (e as Error).message
    console.log(`  ${name}: ${run.problem}`)
  } finally {
    await stopServer(srv)
  }
}

/** Memory: a fresh server, RSS before and after loading RSS_ITEMS distinct items. */
async function benchRss(name: ServerName, run: ServerRun): Promise<void> {
  try {
    const fresh = await startServer(name)
    try {
      const freshPid = fresh.child.pid as number
      await sleep(500)
      const before = rssKiB(freshPid)
      const r = await loadgen(fresh.port, ['-L', '-t', '0', '-k', String(RSS_ITEMS), '-d', '16', '-v', String(VALUE_SIZE)], 600)
      if (r.preload_stored !== RSS_ITEMS) throw new Error(`stored only ${r.preload_stored} of ${RSS_ITEMS} items`)
      await sleep(1000) // let a JS server finish any GC the load triggered before reading RSS
      const after = rssKiB(freshPid)
      run.rss = {
        items: RSS_ITEMS,
        beforeKiB: before,
        afterKiB: after,
        bytesPerItem: ((after - before) * 1024) / RSS_ITEMS,
        loadSeconds: r.preload_seconds,
      }
      console.log(`    RSS ${before} KiB -> ${after} KiB after ${RSS_ITEMS} items: ${run.rss.bytesPerItem.toFixed(1)} B/item`)
    } finally {
      await stopServer(fresh)
    }
  } catch (e) {
    const msg = (e as Error).message
    run.problem = run.problem ? `${run.problem}; RSS: ${msg}` : `RSS: ${msg}`
    console.log(`    RSS measurement failed: ${msg}`)
  }
}

/** Per scenario, the round with the median ops/s (the lower one for an even count). */
function pickMedians(run: ServerRun): void {
  run.scenarios = SCENARIOS.map((sc) => {
    const all = run.rounds.map((r) => r.find((x) => x.scenario === sc.id)).filter((x): x is ScenarioRun => !!x)
    const measured = all.filter((x) => x.result)
    // rounds where other processes took part of the server's core measure the machine, not
    // the server: leave them out when at least one clean round exists
    const quiet = measured.filter((x) => !contended(x.result as LoadgenResult))
    const ok = (quiet.length ? quiet : measured).sort(
      (a, b) => (a.result as LoadgenResult).ops_per_sec - (b.result as LoadgenResult).ops_per_sec,
    )
    if (!ok.length) return all[0] ?? { scenario: sc.id, problem: 'not run' }
    const median = ok[Math.floor((ok.length - 1) / 2)]
    // a failure in any round must stay visible next to the median figure
    const failed = all.find((x) => x.problem)
    return failed && !median.problem ? { ...median, problem: failed.problem } : median
  })
}

function fmtLat(r?: LoadgenResult): string {
  return r ? `${fmtUs(r.p50_us)} / ${fmtUs(r.p99_us)} / ${fmtUs(r.p999_us)}` : '–'
}

function fmtUs(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${Math.round(us)} µs`
}

/** The commit the server was built from, and whether src/ or crates/ had local changes. */
function buildRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'crates'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${rev} plus uncommitted changes` : rev
  } catch {
    return 'unknown revision'
  }
}

function machine(memcachedVersion: string): string {
  return `${machineLine()}; Linux ${release()}; memcached ${memcachedVersion || '?'}`
}

/** Markdown body of the "Server" section, and the same table for the console. */
function report(mc: ServerRun, fc: ServerRun, load: string): { markdown: string; met: string[]; missed: string[] } {
  const met: string[] = []
  const missed: string[] = []
  const verdict = (ok: boolean, what: string): string => {
    ;(ok ? met : missed).push(what)
    return ok ? 'yes' : '**no**'
  }
  const rows: string[] = []
  for (const sc of SCENARIOS) {
    const m = mc.scenarios.find((s) => s.scenario === sc.id)
    const f = fc.scenarios.find((s) => s.scenario === sc.id)
    const mr = m?.result
    const fr = f?.result
    let ratio = '–'
    let p99 = '–'
    let ok = 'not run'
    if (mr && fr) {
      const r = fr.ops_per_sec / mr.ops_per_sec
      const p = fr.p99_us / mr.p99_us
      ratio = `${r.toFixed(2)}×`
      p99 = `${p.toFixed(2)}×`
      ok = `${verdict(r >= sc.target, `${sc.label} ≥ ${sc.target}×`)} / ${verdict(p <= P99_LIMIT, `${sc.label} p99 ≤ ${P99_LIMIT}×`)}`
    } else {
      missed.push(`${sc.label}: not measured`)
    }
    const cell = (run?: ScenarioRun): string =>
      run?.result
        ? `${fmtOps(run.result.ops_per_sec)}${run.result.clean ? '' : ' (errors!)'}`
        : run?.problem ? `failed: ${run.problem.split('\n')[0].slice(0, 60)}` : '–'
    rows.push(
      `| ${sc.label} | ${cell(m)} | ${fmtLat(mr)} | ${cell(f)} | ${fmtLat(fr)} | ${ratio} (≥ ${sc.target}×) | ${p99} (≤ ${P99_LIMIT}×) | ${ok} |`,
    )
  }
  let rssRow = `| RSS growth per item, ${RSS_ITEMS / 1e6}M items | ${mc.rss ? `${mc.rss.bytesPerItem.toFixed(0)} B` : '–'} | | ${fc.rss ? `${fc.rss.bytesPerItem.toFixed(0)} B` : '–'} | | `
  if (mc.rss && fc.rss) {
    const r = fc.rss.bytesPerItem / mc.rss.bytesPerItem
    rssRow += `${r.toFixed(2)}× (≤ 1.0×) | | ${verdict(r <= 1, 'bytes per item ≤ memcached')} |`
  } else {
    missed.push('bytes per item: not measured')
    rssRow += '– (≤ 1.0×) | | not run |'
  }

  const detail = (run: ServerRun): string[] =>
    run.scenarios.map((s) => {
      const sc = SCENARIOS.find((x) => x.id === s.scenario) as Scenario
      if (!s.result) return `- ${run.server}, ${sc.label}: ${s.problem ?? 'not run'}`
      const r = s.result
      return `- ${run.server}, ${sc.label}: ${r.gets} gets (${r.hits} hits, ${r.misses} misses), ${r.sets} sets ` +
        `(${r.stored} stored); server errors ${r.server_errors}, unexpected replies ${r.unexpected}, wrong values ` +
        `${r.wrong_values}, unanswered ${r.unanswered}; server stats cross-check: ${r.stats_check}; ` +
        `in the window, server CPU ${r.server_cpu_pct.toFixed(0)}% (other processes ${otherLoad(r).server.toFixed(0)}% ` +
        `of its core), generator CPU ${r.client_cpu_pct.toFixed(0)}% (others ${otherLoad(r).client.toFixed(0)}% of its core)` +
        `${contended(r) ? ' (**contended**)' : ''}`
    })

  const problems = [mc, fc].filter((r) => r.problem).map((r) => `- ${r.server}: ${r.problem?.split('\n').join(' ')}`)
  const markdown = [
    `Measured by \`npm run bench:server\` (bench/server.ts driving bench/loadgen/loadgen.c): ${machine(mc.version)}; ` +
      `load average ${load} at the start.`,
    '',
    `memcached \`-t 1 -U 0 -m 2048\` and ferrocached \`-m 2048\` (${fc.version || 'version unknown'}, built from ` +
      `${REVISION}) run one at a time, ` +
      `pinned to core ${SERVER_CORE} with \`taskset\`; the generator is pinned to core ${CLIENT_CORE}; both under ` +
      `\`${PRIORITY.join(' ')}\` so other work on the machine disturbs them less` +
      (SCHED_FIFO
        ? ` (the kernel's real-time throttle then stops both for ~50 ms each second, which shows in p99.9 and max)`
        : '') +
      `. Loopback, ` +
      `${CONNS} connections, ${KEYS / 1000}k keys of 16 bytes (all preloaded), ${VALUE_SIZE}-byte values, ` +
      `${GET_RATIO * 100}% get / ${Math.round((1 - GET_RATIO) * 100)}% set chosen uniformly at random; ` +
      `${WARMUP} s warm-up, then ${SECONDS} s measured per scenario` +
      (ROUNDS > 1
        ? `; ${ROUNDS} rounds with the servers alternating, each figure from the round with the median ops/s among ` +
          `the rounds where other work used at most ${CONTENDED_PCT}% of the server's core (all rounds if none did)`
        : '') +
      `. Latency is send → last byte of the reply, ` +
      `per request, so at depth 16 it includes the queueing behind the other 15. Every reply is parsed and matched ` +
      `to its request; the server's \`stats\` counters are cross-checked against the generator's. ` +
      `A server using all of its core in the window (~100%, or 95% under SCHED_FIFO's throttle) was the ` +
      `bottleneck; memcached's absolute figures move with the machine's load, so compare the two servers ` +
      `within one run.`,
    '',
    '| Scenario | memcached ops/s | p50 / p99 / p99.9 | ferrocached ops/s | p50 / p99 / p99.9 | ops ratio (target) | p99 ratio (target) | met (ops / p99) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    rssRow,
    '',
    `Targets met: ${met.length ? met.join('; ') : 'none'}.`,
    `Targets missed: ${missed.length ? missed.join('; ') : 'none'}.`,
    '',
    'Replies:',
    '',
    ...detail(mc),
    ...detail(fc),
    ...(mc.rss ? [`- memcached RSS ${mc.rss.beforeKiB} KiB → ${mc.rss.afterKiB} KiB for ${mc.rss.items} items`] : []),
    ...(fc.rss ? [`- ferrocached RSS ${fc.rss.beforeKiB} KiB → ${fc.rss.afterKiB} KiB for ${fc.rss.items} items`] : []),
    ...(problems.length ? ['', 'Problems:', '', ...problems] : []),
  ].join('\n')
  return { markdown, met, missed }
}

/** Taken when the run starts: the working tree may change while it runs. */
let REVISION = ''

export async function runServerBench(): Promise<void> {
  REVISION = buildRevision()
  if (cpus().length < 2) throw new Error('bench:server needs two cores: one for the server, one for the generator')
  buildLoadgen()
  const only = process.env.BENCH_SERVER_ONLY
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC'
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
  console.log(`server benchmark: ${ROUNDS} round(s), ${SECONDS} s per scenario after ${WARMUP} s warm-up; load average ${load}`)
  const runs: ServerRun[] = (['memcached', 'ferrocached'] as ServerName[]).map((server) => ({
    server, version: '', rounds: [], scenarios: [],
    ...(only && only !== server ? { problem: 'skipped (BENCH_SERVER_ONLY)' } : {}),
  }))
  const active = runs.filter((r) => !r.problem)
  for (let i = 1; i <= ROUNDS; i++) {
    if (ROUNDS > 1) console.log(`round ${i} of ${ROUNDS}`)
    for (const run of active) await benchThroughput(run.server, run)
  }
  for (const run of active) {
    await benchRss(run.server, run)
    pickMedians(run)
  }
  const [mc, fc] = runs
  const { markdown, met, missed } = report(mc, fc, load)
  console.log('')
  console.log(markdown)
  mkdirSync(RESULTS_DIR, { recursive: true })
  const json = join(RESULTS_DIR, `server-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(json, JSON.stringify({ when, seconds: SECONDS, warmup: WARMUP, memcached: mc, ferrocached: fc, met, missed }, null, 2))
  console.log(`\nraw results: ${json}`)
  if (process.env.BENCH_SERVER_WRITE_DOCS !== '0') {
    writeSection(DOCS, 'Server', markdown)
    console.log(`updated the "Server" section of ${DOCS}`)
  }
}

if (require.main === module) {
  runServerBench().catch((e: Error) => {
    console.error(e.stack ?? e.message)
    process.exit(1)
  })
}
