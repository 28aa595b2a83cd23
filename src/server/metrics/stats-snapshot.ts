// One reading of the server's stats families, as the `stats`, `stats settings`,
// `stats items` and `stats slabs` replies print them (same code, no connection), grouped
// for the exporters: general and settings by name, items and slabs by slab class.

/** A stats family `FerrocacheServer.statsPairs` reports (`''` is the general `stats`). */
export type StatsFamily = '' | 'settings' | 'items' | 'slabs' | 'sizes'

/** Where stats come from: a running server (or anything answering the same way). */
export interface StatsSource {
  /** The `[name, value]` pairs `stats <family>` prints; throws when the cache is closed. */
  statsPairs(family: StatsFamily): Array<[string, string]>
}

/** The stats of one moment, by family. Values are the strings `stats` prints. */
export interface StatsSnapshot {
  /** `stats`: memcached's lines, then ferrocache's own (`rdb_*`, `aof_*`, replication). */
  general: Map<string, string>
  /** `stats settings`. */
  settings: Map<string, string>
  /** `stats items`, by slab class id (`items:<id>:<name>`). */
  items: Map<number, Map<string, string>>
  /** `stats slabs`, by slab class id (`<id>:<name>`). */
  slabs: Map<number, Map<string, string>>
  /** The lines of `stats slabs` without a class (`active_slabs`, `total_malloced`). */
  slabTotals: Map<string, string>
}

/** Reads every family once. */
export function readStats(source: StatsSource): StatsSnapshot {
  const slabs = new Map<number, Map<string, string>>()
  const slabTotals = new Map<string, string>()
  for (const [name, value] of source.statsPairs('slabs')) {
    const m = /^(\d+):(.+)$/.exec(name)
    if (m === null) slabTotals.set(name, value)
    else classMap(slabs, Number(m[1])).set(m[2]!, value)
  }
  const items = new Map<number, Map<string, string>>()
  for (const [name, value] of source.statsPairs('items')) {
    const m = /^items:(\d+):(.+)$/.exec(name)
    if (m !== null) classMap(items, Number(m[1])).set(m[2]!, value)
  }
  return {
    general: new Map(source.statsPairs('')),
    settings: new Map(source.statsPairs('settings')),
    items,
    slabs,
    slabTotals,
  }
}

function classMap(by: Map<number, Map<string, string>>, id: number): Map<string, string> {
  let m = by.get(id)
  if (m === undefined) {
    m = new Map()
    by.set(id, m)
  }
  return m
}

/** Stat lines persistence adds to `stats` (snapshots and the append-only log). */
export function isPersistenceStat(name: string): boolean {
  return name.startsWith('rdb_') || name.startsWith('aof_')
}

/**
 * Stat lines replication adds to `stats`: `repl_*`, `replication_*`, `replica_*`,
 * `master_*`, `slave_*`, `slave<n>` (one per connected replica), `role`,
 * `connected_replicas` / `connected_slaves` (Redis's words, which the replication lines follow).
 */
export function isReplicationStat(name: string): boolean {
  return (
    /^(repl|replication|replica|master|slave|primary)_/.test(name) ||
    /^(role|connected_(replicas|slaves)|slave\d+|replica\d+)$/.test(name)
  )
}
