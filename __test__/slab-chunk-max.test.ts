// memcached's slab_chunk_max (its largest slab class) applied, beside memcached 1.6.18: the
// command lines it refuses with -I and its page (message, exit code), the classes `stats
// slabs` lists and `me` reports (under -o slab_chunk_max, no_modern, no_chunked_items),
// what incr/decr take, the sizes stored; `lru mode`/`lru temp_ttl` without its LRU
// maintainer; and the embedded Cache's `slabChunkMax` option.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src/cache'
import { parseCommandLine } from '../src/cli/options'
import './helpers/guard'
import { askAlike } from './helpers/raw'
import { askUntil, statLines } from './helpers/slabs'
import { type Running, startAll, startFerrocached, startMemcached } from './helpers/servers'
import { ferrocachedVerdict, memcachedVerdict } from './helpers/verdicts'

/** `me` of each key, its ` cls=N size=N` part (the rest differs by time and CAS). */
async function classes(port: number, keys: string[]): Promise<string[]> {
  const me = await askUntil(port, keys.map((k) => `me ${k}\r\n`).join('') + 'mn\r\n', 'MN\r\n')
  return me.split('\r\n').filter((l) => l.startsWith('ME ')).map((l) => / cls=\d+ size=\d+/.exec(l)?.[0] ?? l)
}

async function both(flags: string[], fn: (mc: Running, fc: Running) => Promise<void>): Promise<void> {
  const servers = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  try {
    await fn(servers[0]!, servers[1]!)
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
}

/** The longest value of a 3-byte key within memcached's 1 MiB (a 4-byte key: one byte over). */
const LARGEST = 1_048_576 - 62

const set = (key: string, length: number, fill = 'v'): string => `set ${key} 0 0 ${length}\r\n${fill.repeat(length)}\r\n`

test('-I, slab_chunk_max and the page: started or refused as memcached, with its message and exit code', async () => {
  const cases: string[][] = [
    ['-I', '256k'],
    ['-I', '1000k'],
    ['-I', '256k', '-o', 'slab_sizes=100-200'],
    ['-o', 'slab_chunk_max=300'],
    ['-o', 'slab_chunk_max=-5'],
    ['-o', 'slab_chunk_max=2147483648'],
    ['-I', '2m', '-o', 'slab_chunk_max=2097152'],
    ['-I', '512k', '-o', 'no_modern'],
    ['-I', '256k', '-o', 'slab_chunk_max=262144,no_chunked_items'],
    ['-o', 'slab_chunk_max=16384,slab_sizes=100-20000'],
    // started
    ['-I', '512k'],
    ['-I', '3m'],
    ['-I', '256k', '-o', 'slab_chunk_max=262144'],
    ['-I', '512k', '-o', 'no_modern,slab_chunk_max=262144'],
    ['-I', '1536k', '-o', 'no_chunked_items'],
    ['-I', '2m', '-o', 'slab_chunk_max=1048576,no_chunked_items'],
    ['-o', 'slab_chunk_max=16384,slab_sizes=100-2000'],
    ['-o', 'slab_chunk_max= 4096'],
  ]
  const results = await Promise.all(cases.map(async (argv) => ({ argv: argv.join(' '), ours: ferrocachedVerdict(argv), theirs: await memcachedVerdict(argv) })))
  for (const r of results) {
    assert.is(r.ours.code, r.theirs.code, `${r.argv}: ${r.ours.message} / memcached: ${r.theirs.message}`)
    if (r.theirs.code !== null) assert.ok(r.ours.message.includes(r.theirs.message), `${r.argv}: "${r.ours.message}" lacks "${r.theirs.message}"`)
  }
  // what memcached reads as 0 and divides by (SIGFPE), or starts with and crashes on
  for (const value of ['x', '0', '4294967296', '-1', '32']) assert.is(ferrocachedVerdict(['-o', `slab_chunk_max=${value}`]).code, 1, value)
  // the value the engine gets
  const c = parseCommandLine(['-I', '2m', '-o', 'no_chunked_items,slab_chunk_max=16384'])
  if (c.kind !== 'run') throw new Error(c.kind)
  assert.is(c.settings.slabChunkMax, 16384)
})

test('-o slab_chunk_max=16384: stats slabs, me, stats settings, incr and the largest item as memcached', async () => {
  await both(['-o', 'slab_chunk_max=16384'], async (mc, fc) => {
    // value lengths in the same class in both (ferrocache's item header is 20 bytes smaller)
    const small = [20, 600, 5000, 12000]
    const sets = small.map((n, i) => set(`k${i}`, n)).join('') + 'mn\r\n'
    const read = async (port: number): Promise<{ slabs: string[]; settings: string[]; me: string[] }> => {
      await askUntil(port, sets, 'MN\r\n')
      const slabs = statLines(await askUntil(port, 'stats slabs\r\n'), /^\d+:(chunk_size|chunks_per_page|used_chunks)$/)
      const settings = statLines(await askUntil(port, 'stats settings\r\n'), /^(slab_chunk_max|item_size_max)$/)
      // past slab_chunk_max: memcached chunks them and `me` reports its last class
      await askUntil(port, set('big', 100_000) + set('max', LARGEST) + 'mn\r\n', 'MN\r\n')
      return { slabs, settings, me: await classes(port, [...small.map((_, i) => `k${i}`), 'big', 'max']) }
    }
    const [m, f] = await Promise.all([read(mc.port), read(fc.port)])
    assert.ok(m.slabs.includes('23:chunk_size 16384') && m.slabs.includes('23:chunks_per_page 64'), m.slabs.join(','))
    assert.equal(f.slabs, m.slabs)
    assert.equal(m.settings, ['item_size_max 1048576', 'slab_chunk_max 16384'])
    assert.equal(f.settings, m.settings)
    assert.equal(m.me.slice(4), [' cls=23 size=100062', ' cls=23 size=1048576'])
    assert.equal(f.me, m.me)
    // one byte past -I; incr/decr refuse an item memcached chunks (one byte less is a number)
    const value = (n: number): string => '5' + ' '.repeat(n - 1)
    const fits = 16384 - 60
    const request =
      set('over', LARGEST) +
      `set c 0 0 ${fits}\r\n${value(fits)}\r\nincr c 1\r\nset c 0 0 ${fits + 1}\r\n${value(fits + 1)}\r\nincr c 1\r\ndecr c 1\r\n`
    const [a, b] = await askAlike(mc.port, fc.port, request)
    assert.ok(a.reply.startsWith('SERVER_ERROR object too large for cache\r\n') && a.reply.includes('non-numeric'), a.reply)
    assert.is(b.reply, a.reply)
  })
})

test('no_modern: me at the item-size limit, stats slabs; lru mode/temp_ttl answer ERROR without the maintainer', async () => {
  const lru = 'lru mode flat\r\nlru mode segmented\r\nlru temp_ttl 10\r\nlru mode x\r\nlru tune 10 20 0.1 1.5\r\nlru mode flat noreply\r\nlru temp_ttl 5 noreply\r\nmn\r\n'
  await both(['-o', 'no_modern'], async (mc, fc) => {
    const read = async (port: number): Promise<{ slabs: string[]; me: string[] }> => {
      // the largest item memcached takes (1 MiB in all), and one of its 771184-byte class
      await askUntil(port, set('max', LARGEST) + set('mid', 700_000) + 'mn\r\n', 'MN\r\n')
      const slabs = statLines(await askUntil(port, 'stats slabs\r\n'), /^\d+:(chunk_size|chunks_per_page|used_chunks)$/)
      return { slabs, me: await classes(port, ['max', 'mid']) }
    }
    const [m, f] = await Promise.all([read(mc.port), read(fc.port)])
    assert.equal(m.me, [' cls=42 size=1048576', ' cls=41 size=700062'])
    assert.equal(f.me, m.me)
    assert.equal(f.slabs, m.slabs)
    const [a, b] = await askAlike(mc.port, fc.port, lru)
    assert.is(a.reply, 'ERROR\r\nERROR\r\nERROR\r\nERROR\r\nOK\r\nMN\r\n')
    assert.is(b.reply, a.reply)
  })
  // the maintainer alone; and back on after it (memcached: OK again)
  await both(['-o', 'no_lru_maintainer'], async (mc, fc) => {
    const [a, b] = await askAlike(mc.port, fc.port, lru)
    assert.is(a.reply, 'ERROR\r\nERROR\r\nERROR\r\nERROR\r\nOK\r\nMN\r\n')
    assert.is(b.reply, a.reply)
  })
  await both(['-o', 'no_modern,lru_maintainer'], async (mc, fc) => {
    const [a, b] = await askAlike(mc.port, fc.port, lru)
    assert.is(a.reply, 'OK\r\nOK\r\nOK\r\nERROR\r\nOK\r\nMN\r\n')
    assert.is(b.reply, a.reply)
  })
})

test('no_chunked_items with slab_sizes: the 1 MiB page follows the sizes (no 512 KiB class), as memcached', async () => {
  await both(['-o', 'no_chunked_items,slab_sizes=100-200'], async (mc, fc) => {
    const read = async (port: number): Promise<{ slabs: string[]; me: string[] }> => {
      await askUntil(port, set('a', 300_000) + set('b', 700_000) + 'mn\r\n', 'MN\r\n')
      return { slabs: statLines(await askUntil(port, 'stats slabs\r\n'), /^\d+:(chunk_size|used_chunks)$/), me: await classes(port, ['a', 'b']) }
    }
    const [m, f] = await Promise.all([read(mc.port), read(fc.port)])
    assert.equal(m.slabs, ['3:chunk_size 1048576', '3:used_chunks 2'])
    assert.equal(f.slabs, m.slabs)
    assert.equal(f.me, m.me)
  })
})

test('Cache slabChunkMax: memcached classes up to it, larger items whole past it, RangeErrors', () => {
  const cache = new Cache({ slabChunkMax: '16kb' })
  try {
    cache.setSync('a', 'x'.repeat(12_000)) // memcached's last class, 16384
    cache.setSync('b', 'x'.repeat(100_000)) // memcached chunks it; a class of its own here
    const sizes = cache.statsSync().slabs.map((s) => [s.id, s.chunk_size, s.chunks_per_page])
    assert.equal(sizes[0], [23, 16384, 64])
    assert.ok(sizes[1]![1]! > 100_000 && sizes[1]![2]! >= 2, String(sizes[1]))
  } finally {
    cache.close()
  }
  const refused = (options: object, why: RegExp): void =>
    assert.throws(() => new Cache(options as never), (e: Error) => e instanceof RangeError && why.test(e.message), JSON.stringify(options))
  refused({ slabChunkMax: 32 }, /slabChunkMax must be a multiple of 8 from 64 to maxItemSize \(1048576\), got 32/)
  refused({ slabChunkMax: 1001 }, /multiple of 8/)
  refused({ slabChunkMax: '2mb' }, /got 2097152/)
})

test.run()
