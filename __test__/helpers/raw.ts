// A raw TCP client for protocol tests: send bytes, then collect what the server answers
// until it has been quiet for a while (or closed the connection).
import net from 'node:net'

/** A connected socket to 127.0.0.1:`port` (Nagle off), or a rejection after `ms`. */
export function connectLocal(port: number, ms = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.setNoDelay(true)
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`connect to ${port} timed out`))
    }, ms)
    s.once('connect', () => {
      clearTimeout(timer)
      resolve(s)
    })
    s.once('error', (e) => {
      clearTimeout(timer)
      reject(e)
    })
  })
}

export class RawConn {
  private chunks: Buffer[] = []
  private lastData = Date.now()
  closed = false
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d)
      this.lastData = Date.now()
    })
    socket.on('close', () => {
      this.closed = true
      this.lastData = Date.now()
    })
    socket.on('error', () => {})
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
    return b
  }

  /**
   * Waits until nothing arrived for `quietMs` (at most `maxMs`), then takes it all. With
   * `firstMs`, the quiet wait starts only once something arrived (or `firstMs` passed): for
   * a reply known to come, however late a busy machine delivers it.
   */
  async settle(quietMs = 40, maxMs = 3_000, firstMs = 0): Promise<Buffer> {
    const start = Date.now()
    while (firstMs > 0 && !this.closed && this.chunks.length === 0 && Date.now() - start < firstMs) {
      await new Promise((r) => setTimeout(r, 5))
    }
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
        return text
      }
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  /** Waits until at least `n` bytes arrived (or the connection closed, or `ms` passed); takes them. */
  async atLeast(n: number, ms = 10_000): Promise<Buffer> {
    const deadline = Date.now() + ms
    while (!this.closed && this.chunks.reduce((sum, c) => sum + c.length, 0) < n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5))
    }
    return this.take()
  }

  /** Waits until some bytes arrived (at most `ms`); whether they did. They stay to take. */
  async arrived(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (this.chunks.length === 0 && !this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    return this.chunks.length > 0
  }

  /** Waits until the connection is closed (at most `ms`); whether it was. Data stays to take. */
  async waitClosed(ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
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
