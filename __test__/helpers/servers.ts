// Starting and stopping the servers under test: Debian's memcached (the reference) and
// ferrocached (bin/ferrocached.js, which runs the built dist/). Every process is killed by
// its own PID when the test is done, and every wait is bounded.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { ownChild } from './guard'

export const ROOT = join(__dirname, '..', '..')
export const BIN = join(ROOT, 'bin', 'ferrocached.js')
export const MEMCACHED = '/usr/bin/memcached'

/** Ports `freePort` handed out in this process: it never hands one out twice. */
const handedOut = new Set<number>()

/**
 * A port nobody listens on right now (the kernel picks it), and not one handed out before
 * in this process: two servers started at once asked twice, and the kernel can offer a
 * port again as soon as the first check closes it, before the first server has bound it.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as net.AddressInfo
        srv.close(() => resolve(port))
      })
    })
    if (!handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('no port the kernel offered in 100 tries was new to this process')
}

/** Throws if something already listens on `port` (a fixed port must be ours). */
export function assertPortFree(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', () => reject(new Error(`port ${port} is already in use; this test needs it free`)))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()))
  })
}

/** Why each child started by `spawnOwned` could not be started or signalled, if it could not. */
const spawnErrors = new WeakMap<ChildProcess, Error>()

/**
 * `spawn`, plus: the child is killed at exit if nobody stopped it (guard.ts), and its 'error'
 * event (it could not be started, or not signalled) is kept for `waitForPort` to report
 * instead of ending the whole run as an unhandled 'error' event.
 */
export function spawnOwned(cmd: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, options)
  ownChild(child, `${cmd} ${args.join(' ')}`.slice(0, 120))
  child.on('error', (err) => spawnErrors.set(child, err))
  return child
}

/** Resolves once something accepts TCP connections on the port; rejects after `ms`. */
export async function waitForPort(port: number, ms = 10_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`process exited with ${child.exitCode} before listening`)
    const spawnError = child && spawnErrors.get(child)
    if (spawnError) throw new Error(`process failed before listening: ${spawnError.message}`)
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
      // a connect that is neither accepted nor refused (a full backlog) counts as not yet
      s.setTimeout(1_000, () => {
        s.destroy()
        resolve(false)
      })
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${ms} ms`)
    await sleep(25)
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface Running {
  port: number
  child: ChildProcess
  /** Everything the process wrote to stderr so far. */
  stderr(): string
  stop(): Promise<void>
}

function track(child: ChildProcess, port: number): Running {
  let err = ''
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  return {
    port,
    child,
    stderr: () => err,
    stop: () => stopChild(child),
  }
}

/**
 * SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. A graceful stop
 * that writes a large snapshot needs more than the default on a busy machine.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill(signal)
  })
}

/** `memcached -V` once per process: checked, since .ci/run installs whatever the Debian release has. */
let memcachedVersion: string | undefined

/** Debian's memcached 1.6.18, one worker thread, TCP only. Fails loudly if it is missing or another release. */
export async function startMemcached(extra: string[] = [], fixedPort?: number): Promise<Running> {
  if (!existsSync(MEMCACHED)) {
    throw new Error(`${MEMCACHED} is missing: the differential tests need Debian's memcached (apt-get install memcached)`)
  }
  memcachedVersion ??= execFileSync(MEMCACHED, ['-V'], { encoding: 'latin1', timeout: 10_000 }).trim()
  if (memcachedVersion !== 'memcached 1.6.18') {
    // another release answers in other bytes: every comparison would fail, none say why
    throw new Error(`${MEMCACHED} is ${memcachedVersion}: the tests compare with memcached 1.6.18 (Debian 12's package)`)
  }
  if (fixedPort !== undefined) await assertPortFree(fixedPort)
  return startOwned(fixedPort, 10_000, (port) => {
    const args = ['-U', '0', '-l', '127.0.0.1', '-p', String(port), '-t', '1', ...extra]
    // memcached refuses to run as root unless told which user to be (`extra` may name one).
    if (process.getuid?.() === 0 && !extra.includes('-u')) args.push('-u', 'root')
    return spawnOwned(MEMCACHED, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  })
}

/** ferrocached from bin/ (needs `npm run build`), on a free port unless `-p` is given. */
export async function startFerrocached(
  extra: string[] = [],
  env: NodeJS.ProcessEnv = {},
  fixedPort?: number,
): Promise<Running> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run "npm run build" before the server tests')
  }
  if (fixedPort !== undefined) await assertPortFree(fixedPort)
  return startOwned(fixedPort, 15_000, (port) =>
    spawnOwned(process.execPath, [BIN, '-p', String(port), ...extra], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    }),
  )
}

/**
 * Starts a server on `fixedPort`, else on a `freePort()`, and waits until it listens. A free
 * port is only free when asked: another process (the other uvu shard, anything on the
 * machine) can bind it before the server does. Then the server exits (address in use) or,
 * worse, `waitForPort` reaches the other process's listener first and the test talks to
 * the wrong server (a ferrocached test got memcached's `ERROR` to `snapshot`). So the
 * listener must be this child's (Linux: /proc), else it starts again on another port (at
 * most 3 tries). `nextPort` is for the test of this.
 */
export async function startOwned(
  fixedPort: number | undefined,
  ms: number,
  spawnOn: (port: number) => ChildProcess,
  nextPort: () => Promise<number> = freePort,
): Promise<Running> {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await nextPort())
    const running = track(spawnOn(port), port)
    let taken = false
    try {
      await waitForPort(port, ms, running.child)
      if (listensOn(running.child.pid, port)) return running
      taken = true
    } catch (err) {
      taken = /EADDRINUSE|Address already in use/.test(running.stderr())
      if (!taken || fixedPort !== undefined || attempt >= 3) throw err
    }
    await stopChild(running.child, 'SIGKILL')
    if (fixedPort !== undefined || attempt >= 3) throw new Error(`port ${port}: another process listens on it, not the server started there`)
  }
}

/**
 * Whether process `pid` holds a socket listening on TCP `port` (any address, IPv4 or 6),
 * by /proc/net/tcp{,6} and /proc/<pid>/fd. True where /proc cannot tell (not Linux).
 */
export function listensOn(pid: number | undefined, port: number): boolean {
  if (pid === undefined) return false
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(table, 'latin1')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // local_address is ADDR:PORT in hex; st 0A is LISTEN; the inode is the tenth field
      if (f.length > 9 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '0A') inodes.add(f[9]!)
    }
  }
  if (inodes.size === 0) return !existsSync('/proc/net/tcp')
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return true // not ours to read (another user): cannot tell
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m && inodes.has(m[1]!)) return true
    } catch {
      // closed meanwhile
    }
  }
  return false
}

/**
 * Starts several servers at once; if one fails, stops those that started and rethrows, so a
 * failed start leaves nothing running (a bare Promise.all would leave them to nobody).
 */
export async function startAll(starts: ReadonlyArray<() => Promise<Running>>): Promise<Running[]> {
  const settled = await Promise.allSettled(starts.map((start) => start()))
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed === undefined) return settled.map((r) => (r as PromiseFulfilledResult<Running>).value)
  await Promise.all(settled.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)))
  throw failed.reason
}

/** Runs the CLI to completion (for --help, bad flags); bounded by `ms`. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  ms = 10_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    ownChild(child, `ferrocached ${args.join(' ')}`)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    const timer = setTimeout(() => child.kill('SIGKILL'), ms)
    afterOutput(child, timer, (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/**
 * Calls `done` once `child` has exited and its stdout and stderr are read to their end.
 * Node's 'exit' can come before the last bytes of the pipes are read (its docs say the
 * stdio streams might still be open): under load a bad command line's message arrived after
 * it, and a test saw the right exit code with an empty stderr (CI of 2026-11-27, `--bogus`
 * and `-j`). A detached copy (`-d`) may keep the pipes open: past a second after the exit,
 * what was read is what there is.
 */
function afterOutput(
  child: ChildProcess,
  timer: NodeJS.Timeout,
  done: (code: number | null, signal: NodeJS.Signals | null) => void,
): void {
  const ends = [child.stdout, child.stderr].map((s) => (s === null ? Promise.resolve() : new Promise<void>((r) => s.once('close', r))))
  child.once('exit', (code, signal) => {
    clearTimeout(timer)
    let called = false
    const finish = (): void => {
      if (called) return
      called = true
      clearTimeout(grace)
      done(code, signal)
    }
    const grace = setTimeout(finish, 1_000)
    void Promise.all(ends).then(finish)
  })
}

/** Resident memory of a process in KiB, from /proc. */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** Runs a program to completion with a time limit; never throws for a non-zero exit. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: string; ms?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!existsSync(cmd)) throw new Error(`${cmd} is missing: CI installs it in .ci/run (apt-get)`)
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env } })
    ownChild(child, `${cmd} ${args.join(' ')}`.slice(0, 120))
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.ms ?? 30_000)
    afterOutput(child, timer, (code) => resolve({ code, stdout, stderr }))
    // A program that exits without reading its input (memccat, memcslap) closes the pipe
    // first; the EPIPE that our write then gets says nothing about the run.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/**
 * `p`, or a rejection naming `what` once `ms` pass first: for awaits on another process or
 * the network that would otherwise hang the run when the awaited thing never happens.
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/** Polls `cond` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function waitFor(cond: () => boolean, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) return false
    await sleep(20)
  }
  return true
}
