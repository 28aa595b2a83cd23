// memcached's `-o hashpower=N` and `-o no_hashexpand` (and the embedded cache's `hashPower`
// and `hashExpand`): the hash table starts at 2^N slots, `stats settings` shows
// `hashpower_init N` and `stats` `hash_power_level N` and `hash_bytes` 8·2^N, compared with
// Debian's memcached 1.6.18; a table larger than the machine's memory and swap is refused
// with memcached's "Failed to init hashtable." and exit code 1. Runs dist/ (npm run build).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { Cache } from '../src'
import { parseCommandLine } from '../src/cli/options'
import { RawConn } from './helpers/raw'
import { MEMCACHED, run, runCli, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

/** `stats <family>` as a map. */
async function statsOf(port: number, family = ''): Promise<Map<string, string>> {
  const c = await RawConn.open(port)
  try {
    c.send(`stats${family === '' ? '' : ` ${family}`}\r\n`)
    const reply = await c.until('END\r\n')
    return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ', 2) as [string, string]))
  } finally {
    c.close()
  }
}

/** The hash table's figures both servers report. */
async function hashFigures(port: number): Promise<Record<string, string | undefined>> {
  const [settings, stats] = await Promise.all([statsOf(port, 'settings'), statsOf(port)])
  return {
    hashpower_init: settings.get('hashpower_init'),
    hash_power_level: stats.get('hash_power_level'),
    hash_bytes: stats.get('hash_bytes'),
    hash_is_expanding: stats.get('hash_is_expanding'),
  }
}

/** Stores `n` small items (pipelined, noreply), then waits for a reply behind them. */
async function fill(port: number, n: number): Promise<void> {
  const c = await RawConn.open(port)
  try {
    let batch = ''
    for (let i = 0; i < n; i++) batch += `set key:${i} 0 0 1 noreply\r\nx\r\n`
    c.send(batch + 'mn\r\n')
    await c.until('MN\r\n', 15_000)
  } finally {
    c.close()
  }
}

async function both(flags: string[], run: (m: Running, f: Running) => Promise<void>): Promise<void> {
  const [m, f] = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  try {
    await run(m!, f!)
  } finally {
    await Promise.all([m!.stop(), f!.stop()])
  }
}

test('-o hashpower=N: hashpower_init, hash_power_level and hash_bytes as memcached', async () => {
  for (const flags of [['-o', 'hashpower=20'], ['-o', 'hashpower=13,no_hashexpand'], ['-o', 'hashpower=12']]) {
    await both(flags, async (m, f) => {
      assert.equal(await hashFigures(f.port), await hashFigures(m.port), flags.join(' '))
    })
  }
  // without it both print hashpower_init 0 (the first sizes differ: 2^16 buckets, 8 × 2^12 slots)
  await both([], async (m, f) => {
    assert.is((await hashFigures(f.port)).hashpower_init, (await hashFigures(m.port)).hashpower_init)
  })
})

test('-o no_hashexpand: the table keeps its size where it would have grown', async () => {
  // 6600 items in 2^13 slots (8 shards of 1024): over 3/4 full, under 15/16 in every shard
  const flags = ['-o', 'hashpower=13,no_hashexpand']
  await both(flags, async (m, f) => {
    await Promise.all([fill(m.port, 6600), fill(f.port, 6600)])
    const [mine, theirs] = await Promise.all([hashFigures(f.port), hashFigures(m.port)])
    assert.equal(mine, theirs)
    assert.is(mine.hash_bytes, String(8 << 13))
  })
  // the same items in a table that may grow: it does
  const f = await startFerrocached(['-o', 'hashpower=13'])
  try {
    await fill(f.port, 6600)
    assert.ok(Number((await hashFigures(f.port)).hash_bytes) > 8 << 13, 'the growing table kept its size')
  } finally {
    await f.stop()
  }
})

/** Bytes of RAM and swap (Linux), or undefined. */
function memoryAndSwap(): number | undefined {
  const info = readFileSync('/proc/meminfo', 'utf8')
  const kib = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(info)
    return m ? Number(m[1]) * 1024 : undefined
  }
  const ram = kib('MemTotal')
  const swap = kib('SwapTotal')
  return ram === undefined || swap === undefined ? undefined : ram + swap
}

test('-o hashpower=32: refused as memcached when 32 GiB is more than memory and swap', async () => {
  const room = memoryAndSwap()
  if (room === undefined) return
  const tooBig = room < 32 * 2 ** 30
  // a server that starts is killed after the time limit (code null)
  const ours = await runCli(['-p', '0', '-o', 'hashpower=32'], {}, tooBig ? 10_000 : 3_000)
  if (tooBig) {
    assert.is(ours.code, 1, ours.stderr)
    assert.match(ours.stderr, /Failed to init hashtable\./)
  } else {
    assert.is(ours.code, null, ours.stderr)
  }
  // memcached's one calloc fails at the same size under Linux's default overcommit
  const overcommit = readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim()
  if (overcommit !== '0') return
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const theirs = await run(MEMCACHED, [...root, '-p', '0', '-U', '0', '-o', 'hashpower=32'], { ms: tooBig ? 10_000 : 3_000 })
  assert.is(ours.code, theirs.code, theirs.stderr)
  if (tooBig) assert.match(theirs.stderr, /Failed to init hashtable\./)
})

test('command line and embedded options', () => {
  const c = parseCommandLine(['-o', 'hashpower=20,no_hashexpand'])
  if (c.kind !== 'run') throw new Error(c.kind)
  assert.is(c.settings.hashPower, 20)
  assert.is(c.settings.hashExpand, false)
  assert.not.ok(c.settings.notes?.some((n) => n.includes('ignored')), 'still listed as ignored')
  const cache = new Cache({ hashPower: 20, shards: 4 })
  try {
    const st = cache.statsSync()
    assert.is(st.hash_power_level, 20)
    assert.is(Number(st.hash_bytes), 8 << 20)
  } finally {
    cache.close()
  }
  assert.throws(() => new Cache({ hashPower: 11 }), (e: Error) => e instanceof RangeError && /hashPower must be an integer from 12 to 32/.test(e.message))
  assert.throws(() => new Cache({ hashPower: 20.5 }), RangeError)
  assert.throws(() => new Cache({ hashExpand: 'no' as unknown as boolean }), TypeError)
  const fixed = new Cache({ hashPower: 12, shards: 1, hashExpand: false })
  try {
    for (let i = 0; i < 3800; i++) fixed.setSync(`k${i}`, 'v')
    assert.is(Number(fixed.statsSync().hash_bytes), 8 << 12)
  } finally {
    fixed.close()
  }
})

test.run()
