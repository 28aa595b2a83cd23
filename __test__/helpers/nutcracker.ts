// twemproxy (Debian's nutcracker) in front of test backends, and a tiny text-protocol
// connection to talk through it. Every process is ours, killed by PID; waits are bounded.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, spawnOwned, stopChild, waitForPort, type Running } from './servers'

export const NUTCRACKER = '/usr/sbin/nutcracker'

export interface Backend {
  port: number
  weight: number
  /** twemproxy's optional server name, hashed instead of `host:port`. */
  name?: string
}

/** nutcracker with one `hash: md5, distribution: ketama` pool over 127.0.0.1 backends. */
export async function startNutcracker(backends: readonly Backend[]): Promise<Running & { log(): string }> {
  if (!existsSync(NUTCRACKER)) throw new Error(`${NUTCRACKER} is missing: apt-get install nutcracker (CI's .ci/run does)`)
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-nutcracker-'))
  const port = await freePort()
  const statsPort = await freePort()
  const servers = backends.map((b) => `   - 127.0.0.1:${b.port}:${b.weight}${b.name ? ` ${b.name}` : ''}`)
  const conf = [
    'pool:',
    `  listen: 127.0.0.1:${port}`,
    '  hash: md5',
    '  distribution: ketama',
    '  timeout: 2000',
    '  auto_eject_hosts: false',
    '  servers:',
    ...servers,
    '',
  ].join('\n')
  writeFileSync(join(dir, 'conf.yml'), conf)
  const logFile = join(dir, 'nutcracker.log')
  const child = spawnOwned(
    NUTCRACKER,
    ['-c', join(dir, 'conf.yml'), '-s', String(statsPort), '-a', '127.0.0.1', '-o', logFile, '-p', join(dir, 'pid')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let err = ''
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
  try {
    await waitForPort(port, 10_000, child)
  } catch (e) {
    throw new Error(`nutcracker did not start: ${(e as Error).message}\n${err}\n${log()}`)
  }
  return {
    port,
    child,
    stderr: () => err,
    log,
    stop: async () => {
      await stopChild(child)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** One text-protocol connection: `call` sends bytes and resolves with the replies once
 * `complete(text)` says they are all in (or rejects after `ms`). */
export class TextConn {
  #buf = ''
  #wake: (() => void) | undefined
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      this.#buf += d
      this.#wake?.()
    })
    socket.on('error', () => {})
  }

  static open(port: number, ms = 10_000): Promise<TextConn> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1')
      const timer = setTimeout(() => {
        s.destroy()
        reject(new Error(`connect to ${port} timed out after ${ms} ms`))
      }, ms)
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(new TextConn(s))
      })
      s.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
    })
  }

  async call(data: string | Buffer, complete: (text: string) => boolean, ms = 5_000): Promise<string> {
    this.socket.write(data)
    const deadline = Date.now() + ms
    while (!complete(this.#buf)) {
      if (Date.now() > deadline) throw new Error(`no complete reply after ${ms} ms; got ${JSON.stringify(this.#buf.slice(0, 300))}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50)
        this.#wake = () => {
          clearTimeout(t)
          r()
        }
      })
    }
    const out = this.#buf
    this.#buf = ''
    return out
  }

  /** One request whose reply is a single line. */
  line(request: string): Promise<string> {
    return this.call(request, (t) => t.endsWith('\r\n'))
  }

  /** A retrieval (`get`/`gets`): resolves at the final END. */
  retrieve(request: string): Promise<string> {
    return this.call(request, (t) => t.endsWith('END\r\n') || /^(CLIENT_|SERVER_)?ERROR.*\r\n$/.test(t))
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Which of `keys` each backend holds, asked directly with batched `get`s. */
export async function keysHeldBy(port: number, keys: readonly string[]): Promise<Set<string>> {
  const conn = await TextConn.open(port)
  const held = new Set<string>()
  try {
    for (let i = 0; i < keys.length; i += 100) {
      const reply = await conn.retrieve(`get ${keys.slice(i, i + 100).join(' ')}\r\n`)
      for (const m of reply.matchAll(/^VALUE (\S+) /gm)) held.add(m[1]!)
    }
  } finally {
    conn.close()
  }
  return held
}

/** Stores every key through `port` (pipelined, 200 per write); values are the keys. */
export async function setAll(port: number, keys: readonly string[]): Promise<void> {
  const conn = await TextConn.open(port)
  try {
    for (let i = 0; i < keys.length; i += 200) {
      const batch = keys.slice(i, i + 200)
      const req = batch.map((k) => `set ${k} 0 0 ${Buffer.byteLength(k, 'latin1')}\r\n${k}\r\n`).join('')
      const reply = await conn.call(Buffer.from(req, 'latin1'), (t) => (t.match(/\r\n/g) ?? []).length >= batch.length)
      if (reply !== 'STORED\r\n'.repeat(batch.length)) throw new Error(`set through ${port} failed: ${reply.slice(0, 200)}`)
    }
  } finally {
    conn.close()
  }
}
