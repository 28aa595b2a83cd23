// The memcached_exporter metrics (its names, label sets and meanings), computed from one
// stats snapshot, so dashboards and alerts written for memcached work unchanged. Each
// table row: metric name, type, stat it comes from, HELP text. docs/metrics.md lists them.
import type { Exposition, MetricType } from './exposition'
import type { StatsSnapshot } from './stats-snapshot'

type Row = readonly [metric: string, type: MetricType, stat: string, help: string]

/** From the general `stats`. */
const GENERAL: readonly Row[] = [
  ['memcached_uptime_seconds', 'counter', 'uptime', 'Number of seconds since the server started.'],
  ['memcached_time_seconds', 'gauge', 'time', 'current UNIX time according to the server.'],
  ['memcached_process_user_cpu_seconds_total', 'counter', 'rusage_user', 'Accumulated user time for this process.'],
  ['memcached_process_system_cpu_seconds_total', 'counter', 'rusage_system', 'Accumulated system time for this process.'],
  ['memcached_current_bytes', 'gauge', 'bytes', 'Current number of bytes used to store items.'],
  ['memcached_limit_bytes', 'gauge', 'limit_maxbytes', 'Number of bytes this server is allowed to use for storage.'],
  ['memcached_current_items', 'gauge', 'curr_items', 'Current number of items stored by this instance.'],
  ['memcached_items_total', 'counter', 'total_items', 'Total number of items stored during the life of this instance.'],
  ['memcached_read_bytes_total', 'counter', 'bytes_read', 'Total number of bytes read by this server from network.'],
  ['memcached_written_bytes_total', 'counter', 'bytes_written', 'Total number of bytes sent by this server to network.'],
  ['memcached_current_connections', 'gauge', 'curr_connections', 'Current number of open connections.'],
  ['memcached_connections_total', 'counter', 'total_connections', 'Total number of connections opened since the server started running.'],
  ['memcached_connections_rejected_total', 'counter', 'rejected_connections', "Total number of connections rejected due to hitting the server's -c limit."],
  ['memcached_connections_yielded_total', 'counter', 'conn_yields', "Total number of connections yielded running due to hitting the memcached's -R limit."],
  ['memcached_connections_listener_disabled_total', 'counter', 'listen_disabled_num', 'Number of times that the server has hit its connections limit and disabled its listener.'],
  ['memcached_items_evicted_total', 'counter', 'evictions', 'Total number of valid items removed from cache to free memory for new items.'],
  ['memcached_items_reclaimed_total', 'counter', 'reclaimed', 'Total number of times an entry was stored using memory from an expired entry.'],
  ['memcached_item_too_large_total', 'counter', 'store_too_large', 'The number of times an item exceeded the max-item-size when being stored.'],
  ['memcached_item_no_memory_total', 'counter', 'store_no_memory', 'The number of times an item could not be stored due to no more memory.'],
  ['memcached_lru_crawler_starts_total', 'counter', 'lru_crawler_starts', 'Times an LRU crawler was started.'],
  ['memcached_direct_reclaims_total', 'counter', 'direct_reclaims', 'Times worker threads had to directly reclaim or evict items.'],
  ['memcached_lru_crawler_items_checked_total', 'counter', 'crawler_items_checked', 'Total items examined by LRU Crawler.'],
  ['memcached_lru_crawler_reclaimed_total', 'counter', 'crawler_reclaimed', 'Total items freed by LRU Crawler.'],
  ['memcached_lru_crawler_moves_to_cold_total', 'counter', 'moves_to_cold', "Total number of items moved from HOT/WARM to COLD LRU's."],
  ['memcached_lru_crawler_moves_to_warm_total', 'counter', 'moves_to_warm', 'Total number of items moved from COLD to WARM LRU.'],
  ['memcached_lru_crawler_moves_within_lru_total', 'counter', 'moves_within_lru', "Total number of items reshuffled within HOT or WARM LRU's."],
  ['memcached_accepting_connections', 'gauge', 'accepting_conns', 'The server is currently accepting new connections.'],
]

/** From `stats settings`; the LRU crawler ones only when `lru_crawler` is `yes`. */
const SETTINGS: readonly Row[] = [['memcached_max_connections', 'gauge', 'maxconns', 'Maximum number of clients allowed.']]
const CRAWLER_SETTINGS: readonly Row[] = [
  ['memcached_lru_crawler_enabled', 'gauge', 'lru_crawler', 'Whether the LRU crawler is enabled.'],
  ['memcached_lru_crawler_sleep', 'gauge', 'lru_crawler_sleep', 'Microseconds to sleep between LRU crawls.'],
  ['memcached_lru_crawler_to_crawl', 'gauge', 'lru_crawler_tocrawl', 'Max items to crawl per slab per run.'],
  ['memcached_lru_crawler_maintainer_thread', 'gauge', 'lru_maintainer_thread', 'Split LRU mode and background threads.'],
  ['memcached_lru_crawler_hot_percent', 'gauge', 'hot_lru_pct', 'Percent of slab memory reserved for HOT LRU.'],
  ['memcached_lru_crawler_warm_percent', 'gauge', 'warm_lru_pct', 'Percent of slab memory reserved for WARM LRU.'],
  ['memcached_lru_crawler_hot_max_factor', 'gauge', 'hot_max_factor', 'Set idle age of HOT LRU to COLD age * this'],
  ['memcached_lru_crawler_warm_max_factor', 'gauge', 'warm_max_factor', 'Set idle age of WARM LRU to COLD age * this'],
]

/** From `stats items`, per slab class (label `slab`). */
const ITEMS: readonly Row[] = [
  ['memcached_slab_current_items', 'gauge', 'number', 'Number of items currently stored in this slab class.'],
  ['memcached_slab_items_age_seconds', 'gauge', 'age', 'Number of seconds the oldest item has been in the slab class.'],
  ['memcached_slab_items_crawler_reclaimed_total', 'counter', 'crawler_reclaimed', 'Number of items freed by the LRU Crawler.'],
  ['memcached_slab_items_evicted_total', 'counter', 'evicted', 'Total number of times an item had to be evicted from the LRU before it expired.'],
  ['memcached_slab_items_evicted_nonzero_total', 'counter', 'evicted_nonzero', 'Total number of times an item which had an explicit expire time set had to be evicted from the LRU before it expired.'],
  ['memcached_slab_items_evicted_time_seconds', 'gauge', 'evicted_time', 'Seconds since the last access for the most recent item evicted from this class.'],
  ['memcached_slab_items_evicted_unfetched_total', 'counter', 'evicted_unfetched', 'Total number of items evicted and never fetched.'],
  ['memcached_slab_items_expired_unfetched_total', 'counter', 'expired_unfetched', 'Total number of valid items evicted from the LRU which were never touched after being set.'],
  ['memcached_slab_items_outofmemory_total', 'counter', 'outofmemory', 'Total number of items for this slab class that have triggered an out of memory error.'],
  ['memcached_slab_items_reclaimed_total', 'counter', 'reclaimed', 'Total number of items reclaimed.'],
  ['memcached_slab_items_tailrepairs_total', 'counter', 'tailrepairs', 'Total number of times the entries for a particular ID need repairing.'],
  ['memcached_slab_mem_requested_bytes', 'gauge', 'mem_requested', 'Number of bytes of memory actual items take up within a slab.'],
  ['memcached_slab_items_moves_to_cold', 'counter', 'moves_to_cold', 'Number of items moved from HOT or WARM into COLD.'],
  ['memcached_slab_items_moves_to_warm', 'counter', 'moves_to_warm', 'Number of items moves from COLD into WARM.'],
  ['memcached_slab_items_moves_within_lru', 'counter', 'moves_within_lru', 'Number of times active items were bumped within HOT or WARM.'],
  ['memcached_slab_hot_items', 'gauge', 'number_hot', 'Number of items presently stored in the HOT LRU.'],
  ['memcached_slab_warm_items', 'gauge', 'number_warm', 'Number of items presently stored in the WARM LRU.'],
  ['memcached_slab_cold_items', 'gauge', 'number_cold', 'Number of items presently stored in the COLD LRU.'],
  ['memcached_slab_temporary_items', 'gauge', 'number_temp', 'Number of items presently stored in the TEMPORARY LRU.'],
  ['memcached_slab_hot_age_seconds', 'gauge', 'age_hot', 'Age of the oldest item in HOT LRU.'],
  ['memcached_slab_warm_age_seconds', 'gauge', 'age_warm', 'Age of the oldest item in WARM LRU.'],
]

/** `stats items` LRU hit counters → `memcached_slab_lru_hits_total{slab,lru}`. */
const LRU_HITS: readonly (readonly [stat: string, lru: string])[] = [
  ['hits_to_hot', 'hot'],
  ['hits_to_warm', 'warm'],
  ['hits_to_cold', 'cold'],
  ['hits_to_temp', 'temporary'],
]

/** From `stats slabs`, per slab class (label `slab`). */
const SLABS: readonly Row[] = [
  ['memcached_slab_chunk_size_bytes', 'gauge', 'chunk_size', 'Number of bytes allocated to each chunk within this slab class.'],
  ['memcached_slab_chunks_per_page', 'gauge', 'chunks_per_page', 'Number of chunks within a single page for this slab class.'],
  ['memcached_slab_current_pages', 'gauge', 'total_pages', 'Number of pages allocated to this slab class.'],
  ['memcached_slab_current_chunks', 'gauge', 'total_chunks', 'Number of chunks allocated to this slab class.'],
  ['memcached_slab_chunks_used', 'gauge', 'used_chunks', 'Number of chunks allocated to an item.'],
  ['memcached_slab_chunks_free', 'gauge', 'free_chunks', 'Number of chunks not yet allocated items.'],
  ['memcached_slab_chunks_free_end', 'gauge', 'free_chunks_end', 'Number of free chunks at the end of the last allocated page.'],
  ['memcached_slab_mem_requested_bytes', 'gauge', 'mem_requested', 'Number of bytes of memory actual items take up within a slab.'],
]

/** Commands counted as `<command>_hits` / `<command>_misses`. */
const HIT_MISS_COMMANDS = ['get', 'delete', 'incr', 'decr', 'cas', 'touch'] as const

const COMMANDS_HELP = 'Total number of all requests broken down by command (get, set, etc.) and status.'
const SLAB_COMMANDS_HELP = 'Total number of all requests broken down by command (get, set, etc.) and status per slab.'

/** A stat as a number: integers, decimals (`rusage_user` is `0.123456`), `yes`/`no`. */
export function statNumber(value: string | undefined): number {
  if (value === undefined) return NaN
  if (value === 'yes') return 1
  if (value === 'no') return 0
  return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
}

function addRows(out: Exposition, rows: readonly Row[], stats: Map<string, string>, labels: Record<string, string> = {}): void {
  for (const [metric, type, stat, help] of rows) {
    if (stats.has(stat)) out.add(metric, type, help, statNumber(stats.get(stat)), labels)
  }
}

/** Adds the memcached_exporter metrics of `s` (not `memcached_up`: the caller knows). */
export function addMemcachedMetrics(out: Exposition, s: StatsSnapshot): void {
  const g = s.general
  const num = (name: string): number => statNumber(g.get(name))
  out.add('memcached_version', 'gauge', 'The version of this memcached server.', 1, { version: g.get('version') ?? '' })
  addRows(out, GENERAL, g)
  const command = (cmd: string, status: string, value: number): void =>
    out.add('memcached_commands_total', 'counter', COMMANDS_HELP, value, { command: cmd, status })
  for (const cmd of HIT_MISS_COMMANDS) {
    command(cmd, 'hit', num(`${cmd}_hits`))
    command(cmd, 'miss', num(`${cmd}_misses`))
  }
  command('cas', 'badval', num('cas_badval'))
  command('flush', 'hit', num('cmd_flush'))
  // cmd_set counts cas commands too: the exporter reports sets without them
  command('set', 'hit', num('cmd_set') - num('cas_misses') - num('cas_hits') - num('cas_badval'))
  out.add('memcached_malloced_bytes', 'gauge', 'Number of bytes of memory allocated to slab pages.', statNumber(s.slabTotals.get('total_malloced')))

  addRows(out, SETTINGS, s.settings)
  if (s.settings.get('lru_crawler') === 'yes') addRows(out, CRAWLER_SETTINGS, s.settings)

  for (const [id, stats] of s.items) {
    const slab = String(id)
    addRows(out, ITEMS, stats, { slab })
    for (const [stat, lru] of LRU_HITS) {
      if (stats.has(stat)) out.add('memcached_slab_lru_hits_total', 'counter', 'Number of get_hits to the LRU.', statNumber(stats.get(stat)), { slab, lru })
    }
  }
  for (const [id, stats] of s.slabs) {
    const slab = String(id)
    const n = (name: string): number => statNumber(stats.get(name))
    const slabCommand = (cmd: string, status: string, value: number): void =>
      out.add('memcached_slab_commands_total', 'counter', SLAB_COMMANDS_HELP, value, { slab, command: cmd, status })
    for (const cmd of HIT_MISS_COMMANDS) slabCommand(cmd, 'hit', n(`${cmd}_hits`))
    slabCommand('cas', 'badval', n('cas_badval'))
    // a class's cmd_set counts stores of values of its size, its cas_hits / cas_badval cas
    // requests on items of its size (memcached's rule): a cas whose new value changes class
    // can take the difference below 0, which a counter must not be
    slabCommand('set', 'hit', Math.max(0, n('cmd_set') - n('cas_hits') - n('cas_badval')))
    // mem_requested is in `stats items` (memcached >= 1.6): only one source per class
    addRows(out, s.items.get(id)?.has('mem_requested') ? SLABS.filter((r) => r[2] !== 'mem_requested') : SLABS, stats, { slab })
  }
}
