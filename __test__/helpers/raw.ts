// A raw TCP client for protocol tests: send bytes, then collect what the server answers
// until it has been quiet for a while (or closed the connection).
import net from 'node:net'

/** A connected socket to 127.0.0.1:`port` (Nagle off), or a rejection after `ms`. */
export function connectLocal(port: number, ms = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setNoDelay(true)
    let connected = false
    // Node runs due timers before it reads sockets: after the loop was held (a busy
    // machine, a long synchronous run) the timer fires first though the connection is up.
    // The verdict waits for the I/O ready by then (setImmediate runs after the poll).
    const timer = setTimeout(
      () =>
        setImmediate(() => {
          if (connected) return
          s.destroy()
          reject(new Error(`connect to ${port} timed out`))
        }),
      ms,
    )
    s.once('connect', () => {
      connected = true
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

/**
 * A connection to the Unix socket at `path`, tried again every 20 ms while it is refused or
 * missing (at most `ms`). A server makes the file when it binds, a moment before it listens:
 * a connect in between is refused (2 in 100 starts of ferrocached under load), so the file
 * alone does not say the server takes connections.
 */
export async function connectUnix(path: string, ms = 10_000): Promise<net.Socket> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(path)
        s.once('error', reject)
        s.once('connect', () => {
          s.off('error', reject)
          resolve(s)
        })
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 20))
    }
  }
}

/** Bytes held untaken up to which every arrival wakes a waiting read at once (see `tick`). */
const WAKE_BELOW = 64 * 1024

export class RawConn {
  private chunks: Buffer[] = []
  private held = 0
  private lastData = Date.now()
  private wake: (() => void) | undefined
  closed = false
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d)
      this.held += d.length
      this.lastData = Date.now()
      if (this.held < WAKE_BELOW) this.notify()
    })
    socket.on('close', () => {
      this.closed = true
      this.lastData = Date.now()
      this.notify()
    })
    socket.on('error', () => {})
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /**
   * Resolves when data arrives or the connection closes, or after 5 ms: the waits below check
   * their condition after each. A reply in a request/reply loop is seen as it arrives, not at
   * the next 5 ms poll (thousands of round trips took that many polls); past WAKE_BELOW
   * untaken bytes a big transfer is looked at every 5 ms only, not once per chunk.
   */
  private tick(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (this.wake === done) this.wake = undefined
        resolve()
      }, 5)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
  }

  static async open(port: number, ms = 5_000): Promise<RawConn> {
    return new RawConn(await connectLocal(port, ms))
  }

  send(data: Buffer | string): void {
    if (!this.closed) this.socket.write(data)
  }

  /** Takes what arrived so far. */
  take(): Buffer {
    const b = Buffer.concat(this.chunks)
    this.chunks = []
    this.held = 0
    return b
  }

  /**
   * Waits until nothing arrived for `quietMs` (at most `maxMs`), then takes it all. With
   * `firstMs`, the quiet wait starts only once something arrived (or `firstMs` passed): for
   * a reply known to come, however late a busy machine delivers it.
   */
  async settle(quietMs = 40, maxMs = 3_000, firstMs = 0): Promise<Buffer> {
    const start = Date.now()
    while (firstMs > 0 && !this.closed && this.chunks.length === 0 && Date.now() - start < firstMs) await this.tick()
    this.lastData = Math.max(this.lastData, start)
    while (!this.closed && Date.now() - this.lastData < quietMs && Date.now() - start < maxMs + firstMs) {
      await new Promise((r) => setTimeout(r, 5))
    }
    return this.take()
  }

  /** Waits until the received bytes end with `suffix` (or `ms` passes); takes them. */
  async until(suffix: string | RegExp, ms = 5_000): Promise<string> {
    const deadline = Date.now() + ms
    for (;;) {
      const text = Buffer.concat(this.chunks).toString('latin1')
      const done = typeof suffix === 'string' ? text.endsWith(suffix) : suffix.test(text)
      if (done || this.closed || Date.now() > deadline) {
        this.chunks = []
        this.held = 0
        return text
      }
      await this.tick()
    }
  }

  /** Sends a text `stats` (or `stats <sub>`) and returns its `STAT name value` lines by name. */
  async stats(sub = ''): Promise<Map<string, string>> {
    this.send(sub ? `stats ${sub}\r\n` : 'stats\r\n')
    const text = await this.until('END\r\n')
    return new Map([...text.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((m) => [m[1] as string, m[2] as string]))
  }

  /** Waits until at least `n` bytes arrived (or the connection closed, or `ms` passed); takes them. */
  async atLeast(n: number, ms = 10_000): Promise<Buffer> {
    const deadline = Date.now() + ms
    while (!this.closed && this.held < n && Date.now() < deadline) await this.tick()
    return this.take()
  }

  /** Waits until some bytes arrived (at most `ms`); whether they did. They stay to take. */
  async arrived(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (this.chunks.length === 0 && !this.closed && Date.now() < deadline) await this.tick()
    return this.chunks.length > 0
  }

  /** Waits until the connection is closed (at most `ms`); whether it was. Data stays to take. */
  async waitClosed(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!this.closed && Date.now() < deadline) await this.tick()
    return this.closed
  }

  close(): void {
    this.socket.destroy()
  }
}

/** What a server answered to one write, and whether it hung up. */
export interface Answer {
  reply: string
  closed: boolean
}

/** Sends `request` in one write on a new connection to `port`; what came back once quiet. */
export async function askOnce(port: number, request: Buffer): Promise<Answer> {
  const conn = await RawConn.open(port)
  conn.send(request)
  const reply = await conn.settle(150, 5_000, 1_000)
  const closed = conn.closed
  conn.close()
  return { reply: reply.toString('latin1'), closed }
}

/**
 * Sends `request` in one write to each of two servers (a reference and the one compared
 * with it) on new connections; what each answered once quiet (`quietMs`), and whether it
 * hung up. While the two differ both are read on, up to `catchUpMs`: a busy machine can
 * hold one server's reply past a quiet window, and the comparison would see a difference
 * that is only timing. The same answers cost nothing more; a real difference costs the
 * wait once.
 */
export async function askAlike(reference: number, subject: number, request: Buffer | string, quietMs = 150, catchUpMs = 5_000): Promise<[Answer, Answer]> {
  const opened = await Promise.allSettled([RawConn.open(reference), RawConn.open(subject)])
  const conns = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
  try {
    for (const o of opened) if (o.status === 'rejected') throw o.reason
    for (const c of conns) c.send(request)
    const got = ['', '']
    const read = async (): Promise<void> => {
      const parts = await Promise.all(conns.map((c) => c.settle(quietMs, 3_000)))
      parts.forEach((p, i) => (got[i] += p.toString('latin1')))
    }
    const alike = (): boolean => got[0] === got[1] && conns[0]!.closed === conns[1]!.closed
    await read()
    for (const deadline = Date.now() + catchUpMs; !alike() && Date.now() < deadline; ) await read()
    return [
      { reply: got[0]!, closed: conns[0]!.closed },
      { reply: got[1]!, closed: conns[1]!.closed },
    ]
  } finally {
    for (const c of conns) c.close()
  }
}
