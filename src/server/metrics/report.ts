// What the metrics port serves, from one stats snapshot: the Prometheus text for
// `/metrics` and the JSON behind the status page (`/stats.json`).
import { addFerrocacheMetrics } from './ferrocache-metrics'
import { Exposition } from './exposition'
import { addMemcachedMetrics } from './memcached-metrics'
import { isPersistenceStat, isReplicationStat, readStats, type StatsSource } from './stats-snapshot'

/** The `/metrics` text. If the stats cannot be read (cache closed), only `memcached_up 0`. */
export function metricsText(source: StatsSource): string {
  const out = new Exposition()
  const up = (v: number): void => out.add('memcached_up', 'gauge', 'Could the memcached server be reached.', v)
  let stats
  try {
    stats = readStats(source)
  } catch {
    up(0)
    return out.render()
  }
  up(1)
  addMemcachedMetrics(out, stats)
  addFerrocacheMetrics(out, stats)
  return out.render()
}

/** One slab class: its `stats slabs` lines and its `stats items` lines, by name. */
export interface SlabClassStatus {
  /** The slab class id. */
  id: number
  /** Its `stats slabs` lines (`chunk_size`, `total_pages`, `used_chunks`…). */
  slabs: Record<string, string>
  /** Its `stats items` lines (`number`, `evicted`, `mem_requested`…); empty without items. */
  items: Record<string, string>
}

/** The body of `/stats.json`: stat values as `stats` prints them (strings). */
export interface StatusReport {
  /** When it was read, in ms since the epoch. */
  readAt: number
  /** The general `stats`, ferrocache's own lines included. */
  stats: Record<string, string>
  /** `stats settings`. */
  settings: Record<string, string>
  /** Every class that has pages or items, by id. */
  slabClasses: SlabClassStatus[]
  /** `stats slabs` totals (`active_slabs`, `total_malloced`). */
  slabTotals: Record<string, string>
  /** The `rdb_*` / `aof_*` lines; `null` without persistence. */
  persistence: Record<string, string> | null
  /** The replication lines; `null` when `stats` has none. */
  replication: Record<string, string> | null
}

/** Reads the stats for the status page; throws when the cache is closed. */
export function statusReport(source: StatsSource): StatusReport {
  const s = readStats(source)
  const ids = [...new Set([...s.slabs.keys(), ...s.items.keys()])].sort((a, b) => a - b)
  const pick = (test: (name: string) => boolean): Record<string, string> | null => {
    const lines = [...s.general].filter(([name]) => test(name))
    return lines.length === 0 ? null : Object.fromEntries(lines)
  }
  return {
    readAt: Date.now(),
    stats: Object.fromEntries(s.general),
    settings: Object.fromEntries(s.settings),
    slabClasses: ids.map((id) => ({
      id,
      slabs: Object.fromEntries(s.slabs.get(id) ?? []),
      items: Object.fromEntries(s.items.get(id) ?? []),
    })),
    slabTotals: Object.fromEntries(s.slabTotals),
    persistence: pick(isPersistenceStat),
    replication: pick(isReplicationStat),
  }
}
