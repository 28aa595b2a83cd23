// The soak's misbehaving clients, each a loop until the deadline on raw sockets: garbage,
// commands cut short then a hang-up, absurd declared lengths, clients that never read
// their replies, hang-ups in the middle of a value, bursts of short connections, and a
// crowd of idle connections held open for the whole run. Their keys (`x:`) are never
// checked; what is checked is that the server survives them and keeps serving the rest.
import net from 'node:net'
import { rng } from './soak-load'
import { sleep } from './soak-proc'

export class HostileCounters {
  /** Requests sent that are junk, cut short or over a limit. */
  malformed = 0
  garbageLines = 0
  truncated = 0
  hugeLengths = 0
  midValueHangups = 0
  nonReaders = 0
  /** Bytes of replies the non-readers asked for and never read. */
  unreadReplyBytes = 0
  shortConnections = 0
  connectionsOpened = 0
  /** Connections held open for the whole run, and how many still answered at the end. */
  held = 0
  heldAnswering = 0
  /** Connections refused or reset where a reply was expected (the server hung up: allowed). */
  hungUp = 0
}

function open(port: number, c: HostileCounters): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      c.connectionsOpened++
      s.removeListener('error', reject)
      s.on('error', () => undefined)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Writes `data`, then waits up to `ms` for a reply or the server's hang-up. */
function exchange(s: net.Socket, data: Buffer | string, ms: number): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const done = (): void => {
      clearTimeout(timer)
      s.removeListener('data', onData)
      resolve(got)
    }
    const onData = (d: Buffer): void => {
      got += d.toString('latin1')
      if (got.endsWith('\r\n')) done()
    }
    const timer = setTimeout(done, ms)
    s.on('data', onData)
    s.once('close', done)
    s.write(data)
  })
}

function garbage(next: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256)
  return b
}

/** Random bytes (sometimes as a binary connection), in lines; the reply is not checked. */
async function garbageClient(port: number, c: HostileCounters, next: () => number): Promise<void> {
  const s = await open(port, c)
  const binary = next() < 0.3
  for (let i = 0; i < 5 && !s.destroyed; i++) {
    const line = Buffer.concat([binary && i === 0 ? Buffer.from([0x80]) : Buffer.alloc(0), garbage(next, 1 + Math.floor(next() * 300)), Buffer.from('\r\n')])
    c.garbageLines++
    c.malformed++
    await exchange(s, line, 200)
  }
  s.destroy()
}

/** A storage command whose value never comes: the hang-up must free what it holds. */
async function truncatedClient(port: number, c: HostileCounters, next: () => number): Promise<void> {
  const s = await open(port, c)
  const size = 1 + Math.floor(next() * 100_000)
  s.write(`set x:trunc:${Math.floor(next() * 100)} 0 0 ${size}\r\n`)
  s.write(garbage(next, Math.floor(next() * Math.min(size, 1000))))
  c.truncated++
  c.malformed++
  await sleep(20)
  s.destroy()
}

const HUGE = [
  'set x:huge 0 0 4294967295\r\n',
  'set x:huge 0 0 18446744073709551615\r\n',
  'set x:huge 0 0 9223372036854775808\r\n',
  'ms x:huge 4294967296 T0\r\n',
  `get ${'k'.repeat(300)}\r\n`,
  `${'a'.repeat(5000)}\r\n`,
]

/** Lengths no server can honour: text and binary (body length 2^32-1). */
async function hugeLengthClient(port: number, c: HostileCounters, next: () => number): Promise<void> {
  const s = await open(port, c)
  if (next() < 0.3) {
    const h = Buffer.alloc(24)
    h[0] = 0x80
    h[1] = 0x01 // set
    h.writeUInt16BE(3, 2)
    h[4] = 8
    h.writeUInt32BE(0xffffffff, 8)
    await exchange(s, Buffer.concat([h, Buffer.alloc(8), Buffer.from('key')]), 300)
  } else {
    const reply = await exchange(s, HUGE[Math.floor(next() * HUGE.length)]!, 300)
    if (reply === '' && s.destroyed) c.hungUp++
  }
  c.hugeLengths++
  c.malformed++
  s.destroy()
}

/** Starts a large value and hangs up in the middle of it. */
async function midValueClient(port: number, c: HostileCounters, next: () => number): Promise<void> {
  const s = await open(port, c)
  const size = 100_000 + Math.floor(next() * 900_000)
  s.write(`set x:mid:${Math.floor(next() * 100)} 0 0 ${size}\r\n`)
  s.write(garbage(next, Math.floor(size * next())))
  c.midValueHangups++
  c.malformed++
  await sleep(10)
  s.destroy()
}

/** Asks for megabytes of replies (multigets of the durable keys) and never reads them. */
async function nonReader(port: number, c: HostileCounters, keys: string[], holdMs: number): Promise<void> {
  const s = await open(port, c)
  s.pause()
  const line = `get ${keys.join(' ')}\r\n`
  let asked = 0
  for (let i = 0; i < 200; i++) {
    if (!s.write(line)) break
    asked += keys.length * 3000
  }
  c.nonReaders++
  c.unreadReplyBytes += asked
  await sleep(holdMs)
  s.destroy()
}

/** connect, version, close. */
async function shortClient(port: number, c: HostileCounters): Promise<void> {
  const s = await open(port, c)
  await exchange(s, 'version\r\n', 1000)
  s.end()
  c.shortConnections++
}

export interface HostileOptions {
  port: number
  deadline: number
  /** Idle connections to hold open for the whole run. */
  hold: number
  /** Durable keys the non-readers ask for. */
  durableKeys: string[]
}

/** Opens the held connections; returns them (checked and closed by `releaseHeld`). */
export async function holdConnections(port: number, n: number, c: HostileCounters): Promise<net.Socket[]> {
  const out: net.Socket[] = []
  for (let i = 0; i < n; i++) out.push(await open(port, c))
  c.held = out.length
  return out
}

/** Each held connection must still answer `version`; then they close. */
export async function releaseHeld(held: net.Socket[], c: HostileCounters): Promise<void> {
  const replies = await Promise.all(held.map((s) => (s.destroyed ? Promise.resolve('') : exchange(s, 'version\r\n', 5000))))
  c.heldAnswering = replies.filter((r) => r.startsWith('VERSION ')).length
  for (const s of held) s.destroy()
}

/** Misbehaving clients at a time (so at most this many non-readers at once). */
export const HOSTILE_LANES = 3

/** Runs every kind of misbehaviour, HOSTILE_LANES at a time, until the deadline. */
export async function runHostile(o: HostileOptions, c: HostileCounters): Promise<void> {
  const next = rng(777)
  const kinds: Array<() => Promise<void>> = [
    () => garbageClient(o.port, c, next),
    () => truncatedClient(o.port, c, next),
    () => hugeLengthClient(o.port, c, next),
    () => midValueClient(o.port, c, next),
    () => shortClient(o.port, c),
    () => shortClient(o.port, c),
    () => nonReader(o.port, c, o.durableKeys.slice(0, 200), 2000),
  ]
  const lane = async (): Promise<void> => {
    while (Date.now() < o.deadline) {
      const kind = kinds[Math.floor(next() * kinds.length)]!
      try {
        await kind()
      } catch {
        c.hungUp++
      }
      await sleep(5)
    }
  }
  await Promise.all(Array.from({ length: HOSTILE_LANES }, lane))
}
