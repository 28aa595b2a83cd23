// memcached's `-o slab_sizes` (explicit slab class chunk sizes) applied, beside memcached
// 1.6.18: the class table `stats slabs` lists, where items land (`stats items`, `me`), what
// `stats settings` shows, evictions in a listed class under a small -m; and the embedded
// Cache's `slabSizes` option with its checks.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src/cache'
import './helpers/guard'
import { RawConn } from './helpers/raw'
import { askUntil, statLines } from './helpers/slabs'
import { type Running, startAll, startFerrocached, startMemcached } from './helpers/servers'

const SIZES = ['-o', 'slab_sizes=100-200-300-1000']

async function both(flags: string[], fn: (s: Running[]) => Promise<void>): Promise<void> {
  const servers = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  try {
    await fn(servers)
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
}

test('-o slab_sizes: stats slabs, stats items, me and stats settings as memcached', async () => {
  await both(SIZES, async (servers) => {
    // value lengths that are in the same class in both (ferrocache's header is 20 bytes smaller)
    const values = [20, 120, 200, 600, 5000]
    const sets = values.map((n, i) => `set k${i} 0 0 ${n}\r\n${'v'.repeat(n)}\r\n`).join('')
    const answers = await Promise.all(
      servers.map(async (s) => {
        await askUntil(s.port, sets + 'mn\r\n', 'MN\r\n')
        const slabs = await askUntil(s.port, 'stats slabs\r\n')
        const items = await askUntil(s.port, 'stats items\r\n')
        const settings = await askUntil(s.port, 'stats settings\r\n')
        // larger than slab_chunk_max: memcached chunks it, `me` reports its last class
        await askUntil(s.port, `set big 0 0 600000\r\n${'b'.repeat(600_000)}\r\nmn\r\n`, 'MN\r\n')
        const me = await askUntil(s.port, [...values.map((_, i) => `me k${i}\r\n`), 'me big\r\n', 'mn\r\n'].join(''), 'MN\r\n')
        return {
          slabs: statLines(slabs, /^\d+:(chunk_size|chunks_per_page|used_chunks)$/),
          items: statLines(items, /^items:\d+:number$/),
          settings: statLines(settings, /^(slab_sizes|slab_chunk_max|chunk_size|growth_factor|item_size_max)$/),
          me: me.split('\r\n').filter((l) => l.startsWith('ME ')).map((l) => / cls=\d+/.exec(l)?.[0]),
        }
      }),
    )
    const [mc, fc] = answers as [(typeof answers)[0], (typeof answers)[0]]
    assert.equal(mc.slabs.filter((l) => l.includes('chunk_size')), ['1:chunk_size 104', '2:chunk_size 200', '3:chunk_size 304', '4:chunk_size 1000', '5:chunk_size 524288'])
    assert.equal(fc.slabs, mc.slabs)
    assert.equal(fc.items, mc.items)
    assert.equal(fc.settings, mc.settings)
    assert.equal(mc.me, [' cls=1', ' cls=2', ' cls=3', ' cls=4', ' cls=5', ' cls=5'])
    assert.equal(fc.me, mc.me)
  })
  // no_chunked_items: memcached's last class is the page, sizes past 512 KiB are taken
  await both(['-o', 'no_chunked_items,slab_sizes=100-600000'], async (servers) => {
    const sets = `set a 0 0 300000\r\n${'a'.repeat(300_000)}\r\nset b 0 0 700000\r\n${'b'.repeat(700_000)}\r\nmn\r\n`
    const [mc, fc] = await Promise.all(
      servers.map(async (s) => {
        await askUntil(s.port, sets, 'MN\r\n')
        return statLines(await askUntil(s.port, 'stats slabs\r\n'), /^\d+:(chunk_size|used_chunks)$/)
      }),
    )
    assert.equal(mc, ['2:chunk_size 600000', '2:used_chunks 1', '3:chunk_size 1048576', '3:used_chunks 1'])
    assert.equal(fc, mc)
  })
})

test('-o slab_sizes with a small -m: a listed class fills its pages and evicts, as memcached', async () => {
  await both(['-m', '4', ...SIZES], async (servers) => {
    // 30,000 items of a 200-byte chunk: 6 MB into 4 MB
    const batch = (from: number): string =>
      Array.from({ length: 1000 }, (_, i) => `set e${from + i} 0 0 100 noreply\r\n${'e'.repeat(100)}\r\n`).join('')
    const result = await Promise.all(
      servers.map(async (s) => {
        const c = await RawConn.open(s.port)
        try {
          for (let b = 0; b < 30; b++) {
            c.send(batch(b * 1000) + 'mn\r\n')
            await c.until('MN\r\n', 10_000)
          }
        } finally {
          c.close()
        }
        const slabs = await askUntil(s.port, 'stats slabs\r\n')
        const items = await askUntil(s.port, 'stats items\r\n')
        return {
          chunk: statLines(slabs, /^2:chunk_size$/),
          classes: statLines(slabs, /^\d+:chunk_size$/).length,
          number: Number(statLines(items, /^items:2:number$/)[0]?.split(' ')[1]),
          evicted: Number(statLines(items, /^items:2:evicted$/)[0]?.split(' ')[1]),
        }
      }),
    )
    const [mc, fc] = result as [(typeof result)[0], (typeof result)[0]]
    assert.equal(fc.chunk, ['2:chunk_size 200'])
    assert.equal(mc.chunk, fc.chunk)
    assert.is(fc.classes, mc.classes, 'one class used')
    assert.ok(mc.evicted > 0 && fc.evicted > 0, `evicted: memcached ${mc.evicted}, ferrocached ${fc.evicted}`)
    // 4 MiB of 200-byte chunks at most: 4 pages × 5,242
    assert.ok(fc.number <= 4 * 5242 && fc.number + fc.evicted === 30_000, `ferrocached ${fc.number} + ${fc.evicted}`)
    assert.ok(Math.abs(fc.number - mc.number) <= 5242, `held: memcached ${mc.number}, ferrocached ${fc.number}`)
  })
})

test('Cache slabSizes: the classes memcached builds from them, RangeErrors that say why', () => {
  const cache = new Cache({ slabSizes: [100, 200, 300] })
  try {
    cache.setSync('a', 'x'.repeat(100)) // 36 + 1 + 100: the 200-byte class
    cache.setSync('b', 'x'.repeat(1000)) // above 304: memcached's 512 KiB class
    const sizes = cache.statsSync().slabs.map((s) => [s.id, s.chunk_size, s.chunks_per_page])
    assert.equal(sizes, [[2, 200, 5242], [4, 524288, 2]])
  } finally {
    cache.close()
  }
  const refused = (slabSizes: unknown, why: RegExp, type: new (m?: string) => Error = RangeError): void =>
    assert.throws(() => new Cache({ slabSizes } as never), (e: Error) => e instanceof type && why.test(e.message), String(slabSizes))
  refused([200, 205], /slabSizes: 205 must be more than 8 bytes above the size before it \(200\)/)
  refused([300, 200], /slabSizes: 200 must be more than 8 bytes above/)
  refused([40], /slabSizes: 40 is out of range \(48 to 1048576: slabMinSize to maxItemSize\)/)
  refused([1048577], /out of range \(48 to 1048576/)
  refused([], /slabSizes must list 1 to 62 sizes, got 0/)
  refused(Array.from({ length: 63 }, (_, i) => 100 + 16 * i), /1 to 62 sizes, got 63/)
  refused([100.5], /slabSizes\[0\] must be an integer/)
  refused('100-200', /slabSizes must be an array/, TypeError)
  refused(['100'], /slabSizes\[0\] must be a number/, TypeError)
  // the bounds follow slabMinSize and maxItemSize, as memcached's follow -n and -I
  assert.not.throws(() => new Cache({ slabMinSize: 20, slabSizes: [20] }).close())
  assert.throws(() => new Cache({ maxItemSize: 2048, slabSizes: [1100, 4000] }), /slabSizes: 4000 is out of range \(48 to 2048/)
})

test.run()
