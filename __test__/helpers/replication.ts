// Helpers for the replication tests: a cuttable TCP proxy, full dumps of a server's items,
// `stats` as a map, and a seeded stream of every mutating command.
import net from 'node:net'
import * as assert from 'uvu/assert'
import { fail } from './guard'
import { TextConn } from './nutcracker'
import { freePort, sleep, type Running } from './servers'

/**
 * Forwards a port to a target; `cut()` drops every connection, `stall()` stops forwarding on
 * them (both ways, or only the target's bytes; they stay open, as over a network that drops packets), `down` refuses
 * new ones. With `gapMs`, what the target sends passes one read per `gapMs` (a slow link).
 */
export class CutProxy {
  down = false
  /** `stall()` was called: a slow link's paused reads are not resumed. */
  stalled = false
  private readonly pairs = new Set<[net.Socket, net.Socket]>()
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, gapMs = 0): Promise<CutProxy> {
    const port = await freePort()
    let proxy: CutProxy | undefined
    const server = net.createServer((client) => {
      if (proxy === undefined || proxy.down) {
        client.destroy()
        return
      }
      const upstream = net.connect(targetPort, '127.0.0.1')
      const pair: [net.Socket, net.Socket] = [client, upstream]
      proxy.pairs.add(pair)
      const drop = (): void => {
        client.destroy()
        upstream.destroy()
        proxy?.pairs.delete(pair)
      }
      client.on('error', drop).on('close', drop)
      upstream.on('error', drop).on('close', drop)
      client.pipe(upstream)
      if (gapMs === 0) upstream.pipe(client)
      else
        upstream.on('data', (d: Buffer) => {
          client.write(d)
          upstream.pause()
          setTimeout(() => proxy?.stalled === false && upstream.resume(), gapMs).unref()
        })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', resolve)
    })
    // a later server error (none expected) is reported by guard.ts rather than ending the run
    server.on('error', (err) => fail('CutProxy server error', err))
    proxy = new CutProxy(server, port)
    return proxy
  }

  cut(): void {
    for (const [a, b] of this.pairs) {
      a.destroy()
      b.destroy()
    }
    this.pairs.clear()
  }

  /** `fromTarget`: only what the target sends stops (the client's bytes still pass). */
  stall(only?: 'fromTarget'): void {
    this.stalled = true
    for (const [a, b] of this.pairs) {
      b.unpipe(a)
      b.pause()
      if (only === 'fromTarget') continue
      a.unpipe(b)
      a.pause()
    }
  }

  get connections(): number {
    return this.pairs.size
  }

  close(): Promise<void> {
    this.down = true
    this.cut()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

export interface DumpedItem {
  value: string
  flags: string
  cas: string
  exp: string
}

/** Every live item of the server at `port`: keys from `lru_crawler metadump all`, values, flags and CAS from `gets`. */
export async function dump(port: number): Promise<Map<string, DumpedItem>> {
  const c = await TextConn.open(port)
  try {
    const meta = await c.call('lru_crawler metadump all\r\n', (t) => t.endsWith('END\r\n'))
    const exp = new Map<string, string>()
    for (const line of meta.split(/\r?\n/)) {
      const m = /^key=(\S+) exp=(-?\d+) /.exec(line)
      if (m) exp.set(decodeURIComponent(m[1]!), m[2]!)
    }
    const items = new Map<string, DumpedItem>()
    const keys = [...exp.keys()]
    for (let i = 0; i < keys.length; i += 100) {
      const reply = await c.retrieve(`gets ${keys.slice(i, i + 100).join(' ')}\r\n`)
      let at = 0
      for (;;) {
        const nl = reply.indexOf('\r\n', at)
        const header = reply.slice(at, nl)
        const m = /^VALUE (\S+) (\d+) (\d+) (\d+)$/.exec(header)
        if (!m) break
        const len = Number(m[3])
        const value = reply.slice(nl + 2, nl + 2 + len)
        items.set(m[1]!, { value, flags: m[2]!, cas: m[4]!, exp: exp.get(m[1]!) ?? '?' })
        at = nl + 2 + len + 2
      }
    }
    return items
  } finally {
    c.close()
  }
}

/** Describes how two dumps differ (empty when equal). */
export function dumpDiff(a: Map<string, DumpedItem>, b: Map<string, DumpedItem>): string[] {
  const out: string[] = []
  for (const [k, v] of a) {
    const w = b.get(k)
    if (w === undefined) out.push(`${k}: missing`)
    else if (JSON.stringify(v) !== JSON.stringify(w)) out.push(`${k}: ${JSON.stringify(v)} vs ${JSON.stringify(w)}`)
  }
  for (const k of b.keys()) if (!a.has(k)) out.push(`${k}: extra`)
  return out
}

export async function stats(port: number): Promise<Map<string, string>> {
  const c = await TextConn.open(port)
  try {
    const text = await c.retrieve('stats\r\n')
    const m = new Map<string, string>()
    for (const line of text.split('\r\n')) {
      const parts = /^STAT (\S+) (.*)$/.exec(line)
      if (parts) m.set(parts[1]!, parts[2]!)
    }
    return m
  } finally {
    c.close()
  }
}

/** Stores `n` items of 100 bytes on `port` as `<prefix><i>` (pipelined, noreply, then `mn` to wait). */
export async function fill(port: number, n: number, prefix = 'key'): Promise<void> {
  const c = await TextConn.open(port)
  const value = 'v'.repeat(100)
  let req = ''
  for (let i = 0; i < n; i++) req += `set ${prefix}${i} 0 0 ${value.length} noreply\r\n${value}\r\n`
  try {
    await c.call(`${req}mn\r\n`, (t) => t.includes('MN\r\n'), 20_000)
  } finally {
    c.close()
  }
}

/** Waits (bounded) until `replica`'s link is up, out of its full sync, at `primary`'s offset. */
export async function caughtUp(primary: Running, replica: Running, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  let last = ''
  while (Date.now() < deadline) {
    const [p, r] = await Promise.all([stats(primary.port), stats(replica.port)])
    last = `link ${r.get('master_link_status')}, sync ${r.get('master_sync_in_progress')}, offsets ${p.get('master_repl_offset')}/${r.get('slave_repl_offset')}`
    if (r.get('master_link_status') === 'up' && r.get('master_sync_in_progress') === '0' && p.get('master_repl_offset') === r.get('slave_repl_offset')) return
    await sleep(50)
  }
  assert.unreachable(`replica ${replica.port} did not catch up with ${primary.port} in ${ms} ms (${last})`)
}

export { rng } from './prng'

const ONE_LINE = (t: string): boolean => t.endsWith('\r\n')

/**
 * Runs `count` random mutations on one connection, one at a time: set/add/replace/append/
 * prepend/cas/incr/decr/touch/gat/delete/flush_all and meta ms/md/ma, over a small key space.
 */
export async function randomMutations(c: TextConn, random: () => number, count: number, valueLen = 40): Promise<void> {
  const pick = (n: number): number => Math.floor(random() * n)
  const value = (): string => 'v'.repeat(1 + pick(valueLen)) + String(pick(1000))
  const ttl = (): number => [0, 0, 0, 500, 100_000][pick(5)]!
  for (let i = 0; i < count; i++) {
    const key = `k${pick(150)}`
    const num = `n${pick(20)}`
    const v = value()
    const r = pick(100)
    if (r < 20) await c.call(`set ${key} ${pick(70000)} ${ttl()} ${v.length}\r\n${v}\r\n`, ONE_LINE)
    else if (r < 25) await c.call(`add ${key} 1 ${ttl()} ${v.length}\r\n${v}\r\n`, ONE_LINE)
    else if (r < 30) await c.call(`replace ${key} 2 0 ${v.length}\r\n${v}\r\n`, ONE_LINE)
    else if (r < 35) await c.call(`append ${key} 0 0 3\r\nAPP\r\n`, ONE_LINE)
    else if (r < 40) await c.call(`prepend ${key} 0 0 3\r\nPRE\r\n`, ONE_LINE)
    else if (r < 46) {
      const got = await c.retrieve(`gets ${key}\r\n`)
      const m = /^VALUE \S+ \d+ \d+ (\d+)\r\n/.exec(got)
      const cas = m ? (pick(4) === 0 ? String(Number(m[1]) + 1) : m[1]!) : '1'
      await c.call(`cas ${key} 3 ${ttl()} ${v.length} ${cas}\r\n${v}\r\n`, ONE_LINE)
    } else if (r < 52) {
      const n = String(pick(100_000))
      await c.call(`set ${num} 0 0 ${n.length}\r\n${n}\r\n`, ONE_LINE)
    }
    else if (r < 58) await c.call(`incr ${num} ${1 + pick(50)}\r\n`, ONE_LINE)
    else if (r < 62) await c.call(`decr ${num} ${1 + pick(50)}\r\n`, ONE_LINE)
    else if (r < 66) await c.call(`touch ${key} ${ttl()}\r\n`, ONE_LINE)
    else if (r < 69) await c.retrieve(`gat ${ttl()} ${key}\r\n`)
    else if (r < 77) await c.call(`delete ${key}\r\n`, ONE_LINE)
    else if (r < 84) await c.call(`ms ${key} ${v.length} F${pick(9)} T${ttl()}\r\n${v}\r\n`, ONE_LINE)
    else if (r < 88) await c.call(`ms ${key} 2 MA\r\nMS\r\n`, ONE_LINE)
    else if (r < 92) await c.call(`md ${key}\r\n`, ONE_LINE)
    else if (r < 97) await c.call(`ma ${num} N0 J${pick(9)} D${1 + pick(9)}${pick(2) ? ' MD' : ''}\r\n`, ONE_LINE)
    else if (r < 98 && pick(20) === 0) await c.call('flush_all\r\n', ONE_LINE)
    else await c.call(`set ${key} 0 -1 1\r\nx\r\n`, ONE_LINE)
  }
}
