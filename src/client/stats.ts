// A server's `stats` + `stats slabs` + `stats items` as the embedded cache's CacheStats
// (the same memcached names), and the sum over a pool.
import type { CacheStats, SlabClassStats } from '../types'

const SLAB_FIELDS = [
  'chunk_size', 'chunks_per_page', 'total_pages', 'total_chunks', 'used_chunks', 'free_chunks',
  'mem_requested', 'get_hits', 'cmd_set', 'delete_hits', 'incr_hits', 'decr_hits', 'cas_hits',
  'cas_badval', 'touch_hits', 'number', 'number_hot', 'number_warm', 'number_cold', 'age_hot',
  'age_warm', 'age', 'evicted', 'evicted_nonzero', 'evicted_time', 'outofmemory', 'reclaimed',
  'expired_unfetched', 'evicted_unfetched', 'crawler_reclaimed', 'crawler_items_checked',
  'moves_to_cold', 'moves_to_warm', 'moves_within_lru',
] as const satisfies ReadonlyArray<keyof SlabClassStats>

const TOP_FIELDS = [
  'time', 'curr_items', 'total_items', 'bytes', 'limit_maxbytes', 'total_malloced', 'hash_bytes',
  'hash_power_level', 'cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'get_hits', 'get_misses',
  'get_expired', 'get_flushed', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses',
  'decr_hits', 'decr_misses', 'cas_hits', 'cas_misses', 'cas_badval', 'touch_hits', 'touch_misses',
  'evictions', 'reclaimed', 'expired_unfetched', 'evicted_unfetched', 'crawler_reclaimed',
  'crawler_items_checked', 'lru_crawler_starts', 'slab_reassign_count', 'slab_reassign_rescues',
  'slab_reassign_evictions_nomem', 'slabs_moved', 'slab_global_page_pool', 'lru_maintainer_juggles',
] as const satisfies ReadonlyArray<keyof CacheStats>

/** Fields that describe a class or a clock rather than count: not summed across servers. */
const NOT_SUMMED = new Set(['time', 'hash_power_level', 'chunk_size', 'chunks_per_page'])

type Numbers<T> = { -readonly [K in keyof T as T[K] extends number ? K : never]: number }

function num(raw: string | undefined): number {
  const n = raw === undefined ? 0 : Number(raw)
  return Number.isFinite(n) ? n : 0
}

/** Builds CacheStats from the STAT lines of the three sections (absent names are 0). */
export function toCacheStats(raw: Map<string, string>): CacheStats {
  const top = {} as Numbers<CacheStats>
  for (const f of TOP_FIELDS) top[f] = num(raw.get(f))
  const ids = new Set<number>()
  for (const name of raw.keys()) {
    const m = /^(?:items:)?(\d+):/.exec(name)
    if (m) ids.add(Number(m[1]))
  }
  const slabs: SlabClassStats[] = [...ids].sort((a, b) => a - b).map((id) => {
    const s = { id } as SlabClassStats
    for (const f of SLAB_FIELDS) s[f] = num(raw.get(`${id}:${f}`) ?? raw.get(`items:${id}:${f}`))
    return s
  })
  return { ...top, hash_is_expanding: raw.get('hash_is_expanding') === '1', slabs }
}

/** The pool's stats: counters summed, the clock and hash power the largest. */
export function sumStats(all: readonly CacheStats[]): CacheStats {
  const [first, ...rest] = all
  if (first === undefined) throw new Error('sumStats needs at least one server')
  const out: CacheStats = { ...first, slabs: first.slabs.map((s) => ({ ...s })) }
  const total = out as unknown as Record<string, number>
  for (const s of rest) {
    const add = s as unknown as Record<string, number>
    for (const f of TOP_FIELDS) {
      total[f] = NOT_SUMMED.has(f) ? Math.max(total[f]!, add[f]!) : total[f]! + add[f]!
    }
    out.hash_is_expanding ||= s.hash_is_expanding
    for (const slab of s.slabs) {
      const mine = out.slabs.find((x) => x.id === slab.id)
      if (mine === undefined) {
        out.slabs.push({ ...slab })
        continue
      }
      const a = mine as unknown as Record<string, number>
      const b = slab as unknown as Record<string, number>
      for (const f of SLAB_FIELDS) if (!NOT_SUMMED.has(f)) a[f] = a[f]! + b[f]!
    }
  }
  out.slabs.sort((a, b) => a.id - b.id)
  return out
}
