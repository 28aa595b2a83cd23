// The soak's processes: ferrocached started from bin/ (needs `npm run build`), stopped by
// its own PID; its resident memory sampled from /proc; stats read over a raw socket.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { freePort } from './tools'

const ROOT = join(__dirname, '..')
const BIN = join(ROOT, 'bin', 'ferrocached.js')

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export { freePort } from './tools'

export interface Server {
  name: string
  port: number
  child: ChildProcess
  /** The last 64 KiB of stderr (JSON logs). */
  stderr(): string
  /** Exit code or signal once it has exited, else null. */
  exited(): string | null
  /** SIGTERM (graceful: snapshot on stop), SIGKILL after `graceMs`; the exit code. */
  stop(graceMs?: number): Promise<string>
}

/** Starts ferrocached with `args` on a free port; rejects if it exits or does not listen in 15 s. */
export async function startServer(name: string, args: string[]): Promise<Server> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/cli/main.js is missing: run "npm run build" first')
  }
  const port = await freePort()
  const child = spawn(process.execPath, [BIN, '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-65536)
  })
  let exit: string | null = null
  const exitedP = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = signal ? `signal ${signal}` : `code ${code}`
      resolve(exit)
    }),
  )
  const server: Server = {
    name,
    port,
    child,
    stderr: () => err,
    exited: () => exit,
    stop: async (graceMs = 20_000) => {
      if (exit !== null) return exit
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      child.kill('SIGTERM')
      const how = await exitedP
      clearTimeout(timer)
      return how
    },
  }
  const deadline = Date.now() + 15_000
  for (;;) {
    if (exit !== null) throw new Error(`${name} exited (${exit}) before listening:\n${err.slice(-2000)}`)
    if (await canConnect(port)) return server
    if (Date.now() > deadline) {
      await server.stop(1000)
      throw new Error(`${name} does not listen on ${port} after 15 s`)
    }
    await sleep(50)
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** Resident set size of a process in bytes (VmRSS), or undefined once it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** One RSS sample: seconds since the start, bytes. */
export type RssSample = [number, number]

/** Samples a process's RSS every `everyMs` until stopped. */
export class RssSampler {
  readonly samples: RssSample[] = []
  #timer: NodeJS.Timeout
  constructor(pid: number, everyMs = 1000, started = Date.now()) {
    const take = (): void => {
      const rss = rssBytes(pid)
      if (rss !== undefined) this.samples.push([Math.round((Date.now() - started) / 100) / 10, rss])
    }
    take()
    this.#timer = setInterval(take, everyMs)
  }
  stop(): void {
    clearInterval(this.#timer)
  }
  max(): number {
    return this.samples.reduce((m, [, b]) => Math.max(m, b), 0)
  }
}

/** Sends one text command and collects the reply up to `END\r\n` (or one line for others). */
export function rawCommand(port: number, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    let got = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no reply to ${JSON.stringify(command)} in ${timeoutMs} ms`))
    }, timeoutMs)
    const multiline = command.startsWith('stats')
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      const done = multiline ? got.endsWith('END\r\n') || /ERROR[^\n]*\r\n$/.test(got) : got.endsWith('\r\n')
      if (done) {
        clearTimeout(timer)
        s.end()
        resolve(got)
      }
    })
    s.on('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
    s.write(command)
  })
}

/** `stats <family>` as name -> value. */
export async function stats(port: number, family = ''): Promise<Map<string, string>> {
  const reply = await rawCommand(port, family ? `stats ${family}\r\n` : 'stats\r\n')
  const out = new Map<string, string>()
  for (const line of reply.split('\r\n')) {
    const m = /^STAT (\S+) (.*)$/.exec(line)
    if (m) out.set(m[1]!, m[2]!)
  }
  return out
}

export function statNumber(s: Map<string, string>, name: string): number {
  return Number(s.get(name) ?? 0)
}
