// `npm run bench -- persistence` (or `node -r tsx/cjs bench/persistence.ts`): ferrocached with 1M items of 100 bytes (16-byte
// keys): time and MB/s of a snapshot (the `snapshot` command, durable on reply), time to
// load it on restart, and get latency (one connection, one request at a time) with and
// without snapshots running. Prints a markdown table; servers are stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs'
import net from 'node:net'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'

const BIN = join(__dirname, '..', 'bin', 'ferrocached.js')
const ITEMS = 1_000_000
const VALUE = 'v'.repeat(100)
const key = (i: number): string => `key:${String(i).padStart(12, '0')}`

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
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

async function startServer(dir: string): Promise<{ child: ChildProcess; port: number; log: () => string; startedMs: number }> {
  const port = await freePort()
  const t = Date.now()
  const child = spawn(process.execPath, [BIN, '-p', String(port), '-m', '512', '--data-dir', dir, '--save', ''], {
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

/** Gets on random keys for `ms`; returns sorted latencies in µs. */
async function getLatencies(c: Conn, ms: number): Promise<number[]> {
  const lat: number[] = []
  const until = Date.now() + ms
  let x = 12345
  while (Date.now() < until) {
    x = (x * 1103515245 + 12345) % 2147483648
    const t = process.hrtime.bigint()
    await c.ask(`get ${key(x % ITEMS)}\r\n`, /END\r\n$/)
    lat.push(Number(process.hrtime.bigint() - t) / 1000)
  }
  return lat.sort((a, b) => a - b)
}

const q = (l: number[], p: number): string => l[Math.min(l.length - 1, Math.floor(l.length * p))]!.toFixed(0)

export async function runPersistenceBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-bench-persist-'))
  const load0 = loadavg().map((x) => x.toFixed(2)).join(' ')
  try {
    const a = await startServer(dir)
    const fill = await Conn.open(a.port)
    for (let at = 0; at < ITEMS; at += 5000) {
      let req = ''
      for (let i = at; i < at + 5000; i++) req += `set ${key(i)} 0 0 100${i === at + 4999 ? '' : ' noreply'}\r\n${VALUE}\r\n`
      await fill.ask(req, /STORED\r\n$/)
    }
    const reader = await Conn.open(a.port)
    const quiet = await getLatencies(reader, 4_000)
    // snapshots back to back on another connection while the reader runs
    const saves: number[] = []
    let snapshotting = true
    const saver = (async () => {
      while (snapshotting) {
        const t = Date.now()
        const r = await fill.ask('snapshot\r\n', /\r\n$/)
        if (r !== 'OK\r\n') throw new Error(`snapshot: ${r}`)
        saves.push(Date.now() - t)
      }
    })()
    const busy = await getLatencies(reader, 4_000)
    snapshotting = false
    await saver
    const file = readdirSync(dir).filter((n) => n.endsWith('.fcs')).sort().pop()!
    const bytes = statSync(join(dir, file)).size
    const dataBytes = ITEMS * (16 + 100)
    reader.close()
    fill.close()
    await stop(a.child)
    for (const l of a.log().split('\n').filter((x) => x.includes('"snapshot saved"'))) {
      const j = JSON.parse(l) as { durationMs: number; syncMs: number }
      console.error(`  saved: ${j.durationMs} ms (fsync + rename ${j.syncMs} ms)`)
    }
    const b = await startServer(dir)
    const loaded = b.log().split('\n').filter((l) => l.includes('"snapshot loaded"')).map((l) => JSON.parse(l) as { durationMs: number; items: number })[0]!
    await stop(b.child)
    const best = Math.min(...saves)
    const median = saves.sort((x, y) => x - y)[Math.floor(saves.length / 2)]!
    console.log(`Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC; load average at the start: ${load0}`)
    console.log('')
    console.log('| figure | value |')
    console.log('|---|---|')
    console.log(`| snapshot of ${ITEMS / 1e6}M items, \`snapshot\` command to durable reply (median of ${saves.length}, best) | ${median} ms, ${best} ms |`)
    console.log(`| item data (keys + values) per second, median / best | ${(dataBytes / 1e6 / (median / 1000)).toFixed(0)} MB/s, ${(dataBytes / 1e6 / (best / 1000)).toFixed(0)} MB/s |`)
    console.log(`| file size | ${(bytes / 1e6).toFixed(1)} MB |`)
    console.log(`| load on restart (${loaded.items} items) | ${loaded.durationMs} ms (port open after ${b.startedMs} ms) |`)
    console.log(`| get latency without a snapshot: p50 / p99 / p99.9 (µs, ${quiet.length} gets) | ${q(quiet, 0.5)} / ${q(quiet, 0.99)} / ${q(quiet, 0.999)} |`)
    console.log(`| get latency during snapshots: p50 / p99 / p99.9 (µs, ${busy.length} gets) | ${q(busy, 0.5)} / ${q(busy, 0.99)} / ${q(busy, 0.999)} |`)
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
