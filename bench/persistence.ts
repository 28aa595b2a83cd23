// `npm run bench -- persistence` (or `node -r tsx/cjs bench/persistence.ts`): ferrocached
// with 1M items of 100 bytes (16-byte keys, loaded by bench/loadgen): time and MB/s of a
// snapshot (the `snapshot` command, durable on reply) with no client load, time to load it
// on restart, and the server benchmark's load generator (50 connections, one request in
// flight each, 90% get / 10% set over the 1M keys) without and with snapshots running back
// to back: ops/s, latency percentiles, and how long snapshots take under that load.
// Prints a markdown table; servers are stopped by PID.
//   FERROCACHED_BIN   server script to run (default bin/ferrocached.js), e.g. another build
//   BENCH_PERSIST_SECONDS  measured window of each load run (default 8)
//   BENCH_PERSIST_NICE     niceness of the server and the generator (default -10, needs root;
//                          otherwise nice warns and runs them unchanged): other work on the
//                          machine then disturbs them less. The snapshot threads run 10 nicer
//                          than the server, as always.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import net from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { machineLine } from './markdown'
import { buildLoadgen, freePort, LOADGEN_BIN } from './tools'

const ROOT = join(__dirname, '..')
const BIN = process.env.FERROCACHED_BIN ?? join(ROOT, 'bin', 'ferrocached.js')
const ITEMS = 1_000_000
const KEY_SIZE = 16
const VALUE_SIZE = 100
const DATA_BYTES = ITEMS * (KEY_SIZE + VALUE_SIZE)
const IDLE_SNAPSHOTS = 5
const SECONDS = Number(process.env.BENCH_PERSIST_SECONDS ?? 8)
const NICE = Number(process.env.BENCH_PERSIST_NICE ?? -10)
if (!Number.isInteger(NICE) || NICE < -20 || NICE > 19) throw new RangeError('BENCH_PERSIST_NICE must be an integer from -20 to 19')

/** The fields of the generator's JSON line this bench reads (see bench/loadgen/loadgen.c). */
interface LoadgenResult {
  ops_per_sec: number
  p50_us: number
  p99_us: number
  p999_us: number
  preload_stored: number
  preload_seconds: number
  server_cpu_pct: number
  core_busy_pct: number[]
  clean: boolean
}

function loadgen(port: number, args: string[], timeoutSec: number): Promise<LoadgenResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nice', ['-n', String(NICE), LOADGEN_BIN, '-s', `127.0.0.1:${port}`, '--timeout', String(timeoutSec), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('JSON '))
      if (!line) return reject(new Error(`loadgen exited with ${code}: ${out.trim().slice(-500)}`))
      const r = JSON.parse(line.slice(5)) as LoadgenResult
      if (!r.clean) return reject(new Error(`loadgen saw unexpected replies: ${out.trim().slice(-800)}`))
      resolve(r)
    })
  })
}

/** A connection that sends a request and resolves with the reply ending in `end`. */
class Conn {
  private buf = ''
  private waiting: { end: RegExp; resolve: (s: string) => void } | undefined
  private constructor(private readonly s: net.Socket) {
    s.setEncoding('latin1')
    s.on('data', (d: string) => {
      this.buf += d
      if (this.waiting && this.waiting.end.test(this.buf)) {
        const w = this.waiting
        const out = this.buf
        this.waiting = undefined
        this.buf = ''
        w.resolve(out)
      }
    })
  }
  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Conn(s)))
      s.once('error', reject)
    })
  }
  ask(req: string, end: RegExp): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = { end, resolve }
      this.s.write(req)
    })
  }
  close(): void {
    this.s.destroy()
  }
}

interface Server {
  child: ChildProcess
  port: number
  log: () => string
  startedMs: number
}

async function startServer(dir: string): Promise<Server> {
  const port = await freePort()
  const t = Date.now()
  const child = spawn('nice', ['-n', String(NICE), process.execPath, BIN, '-p', String(port), '-m', '512', '--data-dir', dir, '--save', ''], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let log = ''
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()))
  for (let i = 0; i < 600; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy()
        r(true)
      })
      s.once('error', () => r(false))
    })
    if (ok) return { child, port, log: () => log, startedMs: Date.now() - t }
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new Error(`ferrocached did not start:\n${log}`)
}

function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill(signal)
  })
}

/** One `snapshot` command, timed from request to the `OK` sent once the file is durable. */
async function snapshot(c: Conn): Promise<number> {
  const t = process.hrtime.bigint()
  const r = await c.ask('snapshot\r\n', /\r\n$/)
  if (r !== 'OK\r\n') throw new Error(`snapshot: ${r}`)
  return Number(process.hrtime.bigint() - t) / 1e6
}

/** Median and best of durations in ms, as "median ms, best ms" and as MB/s of item data. */
function figures(ms: number[]): { time: string; rate: string } {
  const s = [...ms].sort((a, b) => a - b)
  const med = s[Math.floor(s.length / 2)]!
  const mbs = (x: number): string => (DATA_BYTES / 1e6 / (x / 1000)).toFixed(0)
  return { time: `${med.toFixed(0)} ms, ${s[0]!.toFixed(0)} ms`, rate: `${mbs(med)}, ${mbs(s[0]!)} MB/s` }
}

const mix = (seconds: number, pid: number): string[] => [
  '-c', '50', '-d', '1', '-k', String(ITEMS), '-K', String(KEY_SIZE), '-v', String(VALUE_SIZE),
  '-r', '0.9', '-t', String(seconds), '-w', '1', '-S', '--server-pid', String(pid),
]

const lat = (r: LoadgenResult): string => `${r.p50_us.toFixed(0)} / ${r.p99_us.toFixed(0)} / ${r.p999_us.toFixed(0)} µs`

export async function runPersistenceBench(): Promise<void> {
  buildLoadgen()
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-bench-persist-'))
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ')
  try {
    const a = await startServer(dir)
    const pid = a.child.pid as number
    const pre = await loadgen(a.port, ['-L', '-t', '0', '-k', String(ITEMS), '-K', String(KEY_SIZE), '-v', String(VALUE_SIZE)], 300)
    if (pre.preload_stored !== ITEMS) throw new Error(`preload stored ${pre.preload_stored} of ${ITEMS}`)
    const admin = await Conn.open(a.port)
    const idle: number[] = []
    for (let i = 0; i < IDLE_SNAPSHOTS; i++) idle.push(await snapshot(admin))
    const loadIdle = loadavg().map((x) => x.toFixed(2)).join(' ')
    const quiet = await loadgen(a.port, mix(SECONDS, pid), SECONDS + 60)
    // snapshots back to back while the generator runs
    const busySaves: number[] = []
    let saving = true
    const saver = (async () => {
      while (saving) busySaves.push(await snapshot(admin))
    })()
    const busy = await loadgen(a.port, mix(SECONDS, pid), SECONDS + 60)
    saving = false
    await saver
    const file = readdirSync(dir).filter((n) => n.endsWith('.fcs')).sort().pop()!
    const bytes = statSync(join(dir, file)).size
    admin.close()
    await stop(a.child)
    const syncMs = a
      .log()
      .split('\n')
      .filter((x) => x.includes('"snapshot saved"'))
      .map((l) => (JSON.parse(l) as { syncMs: number }).syncMs)
    const b = await startServer(dir)
    const loaded = b
      .log()
      .split('\n')
      .filter((l) => l.includes('"snapshot loaded"'))
      .map((l) => JSON.parse(l) as { durationMs: number; items: number })[0]!
    await stop(b.child)
    const fi = figures(idle)
    const fb = busySaves.length ? figures(busySaves) : { time: 'none finished', rate: '-' }
    console.log(`${machineLine()}; server ${BIN} and generator at nice ${NICE}`)
    console.log(`Load average at the start: ${load0}; after the idle snapshots: ${loadIdle}`)
    console.log('')
    console.log('| figure | value |')
    console.log('|---|---|')
    console.log(`| snapshot, no client load: \`snapshot\` → durable \`OK\` (median, best of ${idle.length}) | ${fi.time} |`)
    console.log(`| item data per second, no client load (median, best) | ${fi.rate} |`)
    console.log(`| fsync + rename, part of each save (min–max) | ${Math.min(...syncMs)}–${Math.max(...syncMs)} ms |`)
    console.log(`| file size | ${(bytes / 1e6).toFixed(1)} MB (${(DATA_BYTES / 1e6).toFixed(0)} MB of item data) |`)
    console.log(`| load on restart (${loaded.items} items) | ${loaded.durationMs} ms (port open after ${b.startedMs} ms) |`)
    console.log(`| generator alone: ops/s, p50 / p99 / p99.9 | ${quiet.ops_per_sec.toFixed(0)}, ${lat(quiet)} |`)
    console.log(`| generator during snapshots: ops/s, p50 / p99 / p99.9 | ${busy.ops_per_sec.toFixed(0)}, ${lat(busy)} |`)
    console.log(`| p99 during ÷ without (target < 2×); ops/s during ÷ without | ${(busy.p99_us / quiet.p99_us).toFixed(2)}×; ${(busy.ops_per_sec / quiet.ops_per_sec).toFixed(2)}× |`)
    console.log(`| snapshots under that load: count, median, best | ${busySaves.length}, ${fb.time} (${fb.rate}) |`)
    console.log(`| server CPU (% of one core) without / during; cores busy during | ${quiet.server_cpu_pct.toFixed(0)}% / ${busy.server_cpu_pct.toFixed(0)}%; ${busy.core_busy_pct.map((x) => x.toFixed(0) + '%').join(' ')} |`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (require.main === module) {
  runPersistenceBench().catch((err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
