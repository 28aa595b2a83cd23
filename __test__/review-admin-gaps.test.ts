// Admin figures and start-up options against memcached 1.6.18, differentially:
// curr_connections / total_connections / connection_structures with one or two listeners,
// a Unix socket and UDP (memcached counts each listening socket, and each UDP connection,
// as a connection; refused ones not at all), `stats conns` listing every listener, and how
// `-o` numbers are read (atoi, atof, safe_strtoul: garbage as 0, a leading number) and shown
// (`ext_wbuf_size`, `ext_max_sleep`). Every server is stopped by its PID; every wait is bounded.
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { connectUnix } from './helpers/raw'
import {
  BIN,
  freePort,
  MEMCACHED,
  run,
  runCli,
  sleep,
  spawnOwned,
  startFerrocached,
  startMemcached,
  stopChild,
  waitFor,
  type Running,
} from './helpers/servers'

const running: Running[] = []
const dir = mkdtempSync(join(tmpdir(), 'ferro-admin-gaps-'))
// memcached drops to nobody before it binds its socket
chmodSync(dir, 0o777)

tearDown(test, async () => {
  await Promise.all(running.map((r) => stopChild(r.child)))
  rmSync(dir, { recursive: true, force: true })
})

async function track(r: Promise<Running>): Promise<Running> {
  const started = await r
  running.push(started)
  return started
}

/** A client on a TCP port or a Unix socket that asks one command at a time. */
class Client {
  private buf = ''
  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => (this.buf += d))
    socket.on('error', () => {})
  }

  static async open(where: number | string): Promise<Client> {
    if (typeof where === 'string') return new Client(await connectUnix(where))
    return new Promise((resolve, reject) => {
      const s = net.connect(where, '127.0.0.1')
      const timer = setTimeout(() => {
        s.destroy()
        reject(new Error(`connect to ${where} timed out`))
      }, 5_000)
      s.once('connect', () => {
        clearTimeout(timer)
        resolve(new Client(s))
      })
      s.once('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
    })
  }

  async ask(command: string, end = 'END\r\n'): Promise<string> {
    this.buf = ''
    this.socket.write(command)
    const ok = await waitFor(() => this.buf.endsWith(end), 5_000)
    assert.ok(ok, `no reply to ${command.trim()}: ${JSON.stringify(this.buf)}`)
    return this.buf
  }

  close(): void {
    this.socket.destroy()
  }
}

const COUNTS = ['curr_connections', 'total_connections', 'connection_structures']

function pick(text: string, names: readonly string[]): string {
  return names.map((n) => `${n} ${new RegExp(`STAT ${n} (\\S+)\r\n`).exec(text)?.[1] ?? '-'}`).join(', ')
}

/** Waits (at most 5 s) until `stats conns` lists `n` client connections: each close reaches the server in its own time. */
async function clientsAre(admin: Client, n: number): Promise<void> {
  for (const deadline = Date.now() + 5_000; Date.now() < deadline; await sleep(20)) {
    if ((await admin.ask('stats conns\r\n')).match(/:listen_addr /g)?.length === n) return
  }
}

/**
 * The counts at each step: 3 clients open (each answered once, so the server took it),
 * after they closed, after `stats reset`; with the listeners `stats conns` lists.
 */
async function countsOf(where: number | string): Promise<string[]> {
  const admin = await Client.open(where)
  // the start-up probe's close reaches the server first (late on a busy machine: waited for)
  await clientsAre(admin, 1)
  const clients: Client[] = []
  for (let i = 0; i < 3; i++) {
    const c = await Client.open(where)
    await c.ask('version\r\n', '\r\n')
    clients.push(c)
  }
  const steps = [pick(await admin.ask('stats\r\n'), COUNTS)]
  for (const c of clients) c.close()
  await clientsAre(admin, 1)
  steps.push(pick(await admin.ask('stats\r\n'), COUNTS))
  await admin.ask('stats reset\r\n', 'RESET\r\n')
  steps.push(pick(await admin.ask('stats\r\n'), COUNTS))
  const conns = await admin.ask('stats conns\r\n')
  const ids = [...conns.matchAll(/STAT (\d+):addr /g)].map((m) => m[1])
  assert.is(new Set(ids).size, ids.length, `stats conns numbers each connection once: ${conns}`)
  const listening = [...conns.matchAll(/STAT (\d+):state conn_listening\r\n/g)].map((m) => new RegExp(`STAT ${m[1]}:addr (\\S+)`).exec(conns)?.[1])
  // (memcached cuts a socket path in `stats conns` at 32 characters: paths are not compared)
  steps.push(`listening ${listening.map((a) => a?.replace(/^unix:.*/, 'unix:PATH')).join(' ')}`)
  admin.close()
  return steps
}

async function compareCounts(memcachedArgs: string[], ferroArgs: string[], unixPath?: (server: string) => string): Promise<void> {
  let memcached: Running
  let ferro: Running
  if (unixPath === undefined) {
    memcached = await track(startMemcached(memcachedArgs))
    ferro = await track(startFerrocached(ferroArgs))
  } else {
    // a Unix socket only: no TCP port to wait on
    const start = async (cmd: string, args: string[], path: string): Promise<Running> => {
      const child = spawnOwned(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'] })
      const r: Running = { port: 0, child, stderr: () => '', stop: () => stopChild(child) }
      running.push(r)
      assert.ok(await waitFor(() => existsSync(path), 10_000), `${cmd} made no socket at ${path}`)
      return r
    }
    memcached = await start(MEMCACHED, ['-u', 'nobody', '-t', '1', ...memcachedArgs, '-s', unixPath('m')], unixPath('m'))
    ferro = await start(process.execPath, [BIN, ...ferroArgs, '-s', unixPath('f')], unixPath('f'))
  }
  const [m, f] = await Promise.all([
    countsOf(unixPath === undefined ? memcached.port : unixPath('m')),
    countsOf(unixPath === undefined ? ferro.port : unixPath('f')),
  ])
  // the listeners' addresses name each server's own port or path
  const same = (steps: string[], port: number | string): string[] => steps.map((s) => s.split(String(port)).join('PORT'))
  assert.equal(
    same(f, unixPath === undefined ? ferro.port : unixPath('f')),
    same(m, unixPath === undefined ? memcached.port : unixPath('m')),
  )
}

test('connection counts with one listener, as memcached\'s', async () => {
  await compareCounts([], [])
})

test('connection counts with two -l addresses: each listener counts, stats conns lists both', async () => {
  await compareCounts(['-l', '127.0.0.2'], ['-l', '127.0.0.1,127.0.0.2'])
})

test('connection counts with UDP on (memcached -t 1: one UDP connection)', async () => {
  const [mUdp, fUdp] = [await freePort(), await freePort()]
  await compareCounts(['-U', String(mUdp)], ['-U', String(fUdp)])
})

test('connection counts on a Unix socket', async () => {
  await compareCounts([], [], (who) => join(dir, `${who}.sock`))
})

/** `stats settings` values of `names`, or the exit code when the server does not start. */
async function settingsOf(start: () => Promise<Running>, names: readonly string[]): Promise<string> {
  const r = await track(start())
  const c = await Client.open(r.port)
  const text = await c.ask('stats settings\r\n')
  c.close()
  return pick(text, names)
}

const READ_AS_MEMCACHED = [
  ['idle_timeout=abc,temporary_ttl=x,hot_lru_pct=12abc,hot_max_factor=0x10,warm_max_factor=1e2,slab_automove=abc',
    'lru_crawler_sleep=12abc,lru_crawler_tocrawl= 5,hashpower=13abc,ext_wbuf_size=8,ext_max_sleep=5000,ext_item_size=+1024'].join(','),
  'idle_timeout=-5,temporary_ttl=4294967297,warm_lru_pct= 7,slab_automove=2x,lru_crawler_tocrawl=4294967297,ext_wbuf_size=4096,ext_max_sleep=7 ',
]
const SHOWN = [
  'idle_timeout', 'temp_lru', 'temporary_ttl', 'hot_lru_pct', 'warm_lru_pct', 'hot_max_factor', 'warm_max_factor', 'slab_automove',
  'lru_crawler_sleep', 'lru_crawler_tocrawl', 'hashpower_init', 'ext_wbuf_size', 'ext_max_sleep', 'ext_item_size',
]

test('-o numbers are read as memcached reads them (atoi, atof, safe_strtoul) and shown as it shows them', async () => {
  for (const list of READ_AS_MEMCACHED) {
    const [m, f] = await Promise.all([
      settingsOf(() => startMemcached(['-o', list]), SHOWN),
      settingsOf(() => startFerrocached(['-o', list]), SHOWN),
    ])
    assert.is(f, m, list)
  }
})

test('-o values memcached refuses stop ferrocached with its exit code', async () => {
  const cases = ['tail_repair_time=0', 'slab_automove=12abc', 'ext_max_sleep=-1', 'lru_crawler_tocrawl=0x10', 'hot_max_factor=abc', 'lru_crawler_sleep=-1']
  const results = await Promise.all(
    cases.map(async (o) => {
      const memcached = await run(MEMCACHED, ['-u', 'nobody', '-p', '0', '-U', '0', '-o', o], { ms: 10_000 })
      const ours = await runCli(['-p', '0', '-o', o])
      return { o, memcached: memcached.code, ours: ours.code, stderr: ours.stderr }
    }),
  )
  for (const r of results) assert.is(r.ours, r.memcached, `${r.o}: ${r.stderr}`)
})

test('flush_all 1 acts at once and hides what is stored in the rest of its second, as memcached\'s', async () => {
  const [m, f] = await Promise.all([track(startMemcached()), track(startFerrocached())])
  // memcached's deadline is realtime(delay) - 1 and hides the items of that second: with a
  // delay of 1 that is the current second
  const exchange = async (port: number): Promise<string[]> => {
    const c = await Client.open(port)
    // one write, one second of both clocks (retried if a second turned in between)
    const ask = (): Promise<string> => c.ask('set a 0 0 1\r\nx\r\nflush_all 1\r\nget a\r\nset b 0 0 1\r\ny\r\nget b\r\nmn\r\n', 'MN\r\n')
    const now = (): number => Math.floor(Date.now() / 1000)
    let first = ''
    for (let i = 0; i < 3; i++) {
      const before = now()
      first = await ask()
      if (now() === before) break
      await sleep(300)
    }
    // the next second's items stay
    await sleep(1_100)
    const later = await c.ask('set c 0 0 1\r\nz\r\nget c\r\n')
    c.close()
    return [first, later]
  }
  const [theirs, ours] = await Promise.all([exchange(m.port), exchange(f.port)])
  assert.equal(ours, theirs)
  assert.is(theirs[0], 'STORED\r\nOK\r\nEND\r\nSTORED\r\nEND\r\nMN\r\n')
})

test.run()
