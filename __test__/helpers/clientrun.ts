// The clients of clients-differential.test.ts: what each can be asked (helpers/clientgen.ts
// Caps) and how a batch of seeded sequences runs through it against two servers in
// lockstep. Each run returns one message per differing sequence, naming the seed.
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { BAD_KEYS, generate, RESET_KEYS, ITEM_MAX, PLAIN_KEYS, TTLS, UNICODE_KEYS, type Caps, type Op } from './clientgen'
import { levelCas, lockstep, memcachedSide, memjsSide, READ_PAST, reset, UNPADDED } from './clientnode'
import { toolsLockstep } from './clienttools'
import { ownChild } from './guard'
import { startNutcracker } from './nutcracker'
import { within } from './servers'

const PYTHON = '/usr/bin/python3'
const DRIVER = join(__dirname, '..', 'fixtures', 'clients', 'differential_driver.py')

export interface Client {
  name: string
  /** seeds and calls per seed in the kept test */
  seeds: number
  ops: number
  caps: Caps
  /** Runs `seeds` against the two servers; one message per differing seed. */
  run(seeds: number[], ops: number, a: number, b: number): Promise<string[]>
}

/** Whether a sequence's last result is the drivers' mark of a known difference that cut it. */
function stoppedAt(r: unknown): r is [string, number] {
  return Array.isArray(r) && (r[0] === READ_PAST || r[0] === UNPADDED)
}

/** Where two result lists first differ, with the calls before it, as one message. */
export function compare(client: string, seed: number, ops: Op[], a: unknown[], b: unknown[]): string | undefined {
  const n = Math.max(a.length, b.length)
  const last = a.at(-1)
  if (stoppedAt(last)) {
    // a known difference (docs/protocol.md), said so the campaign's count stays honest
    process.stderr.write(`${client} seed ${seed}: ${String(last[0])} at call #${String(last[1])}\n`)
  }
  for (let i = 0; i < n; i++) {
    const [x, y] = [JSON.stringify(a[i]), JSON.stringify(b[i])]
    if (x === y) continue
    const from = process.env.CLIENT_SHOW === undefined ? Math.max(0, i - 6) : 0
    const before = ops.slice(from, i).map((op, j) => `  #${from + j} ${show(op)} -> ${JSON.stringify(a[from + j])}`)
    return [
      `${client} seed ${seed}: call #${i} differs (CLIENT_ONLY=${client} CLIENT_FIRST=${seed} CLIENT_SEEDS=1 replays it)`,
      ...before,
      `  #${i} ${i < ops.length ? show(ops[i]) : '(after the last call: the drivers compare the CAS values each server used)'}`,
      `    memcached:   ${x?.slice(0, 400)}`,
      `    ferrocached: ${y?.slice(0, 400)}`,
    ].join('\n')
  }
  return undefined
}

function show(op: Op | undefined): string {
  return JSON.stringify(op, (k, v: unknown) => (k === 'key' && typeof v === 'string' && v.length > 20 ? `${v.slice(0, 3)}…(${v.length})` : v))
}

/** Runs the Python driver over every seed's sequence (one process, one line each). */
async function python(kind: string, caps: Caps, seeds: number[], count: number, ports: [number, number], resets: [number, number], name = kind): Promise<string[]> {
  const child = spawn(PYTHON, [DRIVER, kind, ...ports.map(String), ...resets.map(String)], { stdio: ['pipe', 'pipe', 'pipe'] })
  ownChild(child, `${kind} driver`)
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  child.stdin.on('error', () => {})
  const sequences = seeds.map((seed) => generate(seed, caps, count))
  child.stdin.end(sequences.map((ops) => JSON.stringify({ ops, reset: RESET_KEYS })).join('\n') + '\n')
  const code = await within(
    new Promise<number | null>((resolve) => child.on('exit', resolve)),
    60_000 + seeds.length * count * 50,
    `${kind} driver`,
  ).catch((e: Error) => {
    child.kill('SIGKILL')
    throw e
  })
  const lines = out.split('\n').filter((l) => l !== '')
  const failures: string[] = []
  lines.forEach((line, i) => {
    const { a, b } = JSON.parse(line) as { a: unknown[]; b: unknown[] }
    const diff = compare(name, seeds[i]!, sequences[i]!, a, b)
    if (diff !== undefined) failures.push(diff)
  })
  if (code !== 0 || lines.length !== seeds.length) {
    failures.push(`${name}: the ${kind} driver exited ${code} after ${lines.length} of ${seeds.length} sequences (seed ${seeds[lines.length]}):\n${err.slice(-2000)}`)
  }
  return failures
}

const ALL_TEXT = ['set', 'add', 'replace', 'append', 'prepend', 'cas', 'get', 'gets', 'getMulti', 'setMulti', 'delete', 'deleteMulti', 'incr', 'decr', 'touch', 'flush', 'stats']

function pythonClient(name: string, seeds: number, ops: number, caps: Caps): Client {
  return { name, seeds, ops, caps, run: (s, n, a, b) => python(name, caps, s, n, [a, b], [a, b]) }
}

type Lockstep = (ops: Op[], a: number, b: number) => Promise<[unknown[], unknown[]]>

/** Runs a client's sequences from this process (npm clients, libmemcached-tools). */
function localClient(name: string, seeds: number, ops: number, caps: Caps, lockstep: Lockstep): Client {
  return {
    name,
    seeds,
    ops,
    caps,
    async run(list, count, a, b) {
      const failures: string[] = []
      for (const seed of list) {
        const sequence = generate(seed, caps, count)
        await reset(a, RESET_KEYS)
        await reset(b, RESET_KEYS)
        const start = Math.max(...(await levelCas(a, b))) + 1
        const [x, y] = await lockstep(sequence, a, b)
        // the CAS values each server used, as the Python driver reports them
        const used = (await levelCas(a, b)).map((n) => ['cas values used', n - start])
        if (!stoppedAt(x.at(-1))) {
          x.push(used[0])
          y.push(used[1])
        }
        const diff = compare(name, seed, sequence, x, y)
        if (diff !== undefined) failures.push(diff)
      }
      return failures
    },
  }
}

/** pymemcache through nutcracker (twemproxy), one in front of each server. */
function throughNutcracker(name: string, seeds: number, ops: number, caps: Caps): Client {
  return {
    name,
    seeds,
    ops,
    caps,
    async run(list, count, a, b) {
      const proxies = await Promise.all([a, b].map((port) => startNutcracker([{ port, weight: 1 }])))
      try {
        return await python('pymemcache', caps, list, count, [proxies[0]!.port, proxies[1]!.port], [a, b], name)
      } finally {
        await Promise.all(proxies.map((p) => p.stop()))
      }
    },
  }
}

/** A client's capabilities: every key kind, values to three times the item limit and every
 * ttl unless it says otherwise. */
function caps(c: Pick<Caps, 'ops' | 'noreply' | 'flushDelay'> & Partial<Caps>): Caps {
  return { keys: [...PLAIN_KEYS, ...BAD_KEYS, ...UNICODE_KEYS], maxValue: 3 * ITEM_MAX, ttls: TTLS, ...c }
}

const TOOL_CAPS = caps({
  ops: ['set', 'add', 'replace', 'get', 'delete', 'touch', 'exist', 'flush', 'stats'],
  // memccp names a key by its file: no empty key
  keys: [...PLAIN_KEYS, ...BAD_KEYS.filter((k) => k !== ''), ...UNICODE_KEYS],
  noreply: false,
  flushDelay: true,
})

export const CLIENTS: Client[] = [
  pythonClient('pymemcache', 2, 120, caps({
    ops: [...ALL_TEXT, 'getsMulti', 'version'],
    noreply: true,
    flushDelay: true,
  })),
  pythonClient('memcache', 2, 120, caps({
    ops: ALL_TEXT,
    noreply: true,
    flushDelay: false,
  })),
  pythonClient('memcache-nocheck', 1, 120, caps({
    ops: ALL_TEXT,
    noreply: true,
    flushDelay: false,
  })),
  pythonClient('pylibmc-text', 1, 120, caps({
    ops: [...ALL_TEXT, 'addMulti', 'incrMulti'],
    // a store the server refuses (a value too large, a key it will not take) trips an
    // assertion in libmemcached 1.0.18's text storage (memcached_send_ascii), against
    // memcached too: it aborts the process
    keys: [...PLAIN_KEYS, ...UNICODE_KEYS],
    maxValue: ITEM_MAX - 400,
    noreply: false,
    flushDelay: true,
  })),
  pythonClient('pylibmc-binary', 1, 120, caps({
    ops: [...ALL_TEXT, 'addMulti', 'incrMulti'],
    noreply: false,
    flushDelay: true,
  })),
  throughNutcracker('pymemcache-nutcracker', 1, 120, caps({
    // twemproxy forwards the key commands only (no flush_all, stats, version)
    ops: ['set', 'add', 'replace', 'append', 'prepend', 'cas', 'get', 'gets', 'getMulti', 'getsMulti', 'setMulti', 'delete', 'deleteMulti', 'incr', 'decr', 'touch'],
    // twemproxy 0.5.0 parses a negative exptime as a bad request and closes the client
    // connection without forwarding it; the noreply calls written after it then fail or
    // not as the close races the client's writes (campaign seeds 319, 614, 626)
    ttls: TTLS.filter((t) => typeof t !== 'number' || t >= 0),
    noreply: true,
    flushDelay: false,
  })),
  localClient('memjs', 2, 120, caps({
    ops: ['set', 'add', 'replace', 'append', 'prepend', 'get', 'delete', 'incr', 'decr', 'touch', 'flush', 'stats'],
    // memjs sends an empty or 251-byte key; both servers answer Invalid arguments and
    // close, but memcached at once (with a value unread: a reset, ECONNRESET) where
    // ferrocached waits up to 200 ms for the client's FIN, and memjs never answers a call
    // made meanwhile (docs/protocol.md)
    keys: [...PLAIN_KEYS, 'sp ace', 'ctl\x01', ...UNICODE_KEYS],
    noreply: false,
    flushDelay: false,
    initial: true,
  }), (ops, a, b) => lockstep(memjsSide, ops, a, b)),
  localClient('memcached-npm', 2, 120, caps({
    ops: ['set', 'add', 'replace', 'append', 'prepend', 'cas', 'get', 'gets', 'getMulti', 'delete', 'incr', 'decr', 'touch', 'flush', 'stats', 'version'],
    noreply: false,
    flushDelay: false,
  }), (ops, a, b) => lockstep(memcachedSide, ops, a, b)),
  ...[false, true].map((binary) =>
    localClient(binary ? 'libmemcached-tools-binary' : 'libmemcached-tools', 1, 12, TOOL_CAPS, (ops, a, b) => toolsLockstep(binary, ops, a, b)),
  ),
]
