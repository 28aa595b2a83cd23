// ferrocache's own metrics: the snapshot and append-only-log lines persistence adds to
// `stats` (rdb_*, aof_*), and whatever replication lines `stats` has. Known lines get
// names and types of their own; any other line of those groups is exported generically
// (numbers as gauges, words as an info sample), so new stat lines show up without a change here.
import { metricName, type Exposition, type MetricType } from './exposition'
import { statNumber } from './memcached-metrics'
import { isPersistenceStat, isReplicationStat, type StatsSnapshot } from './stats-snapshot'

type Known = readonly [metric: string, type: MetricType, help: string]

/** Persistence lines (see src/persistence/persistence.ts) → metrics. */
const PERSISTENCE: Readonly<Record<string, Known>> = {
  rdb_changes_since_last_save: ['ferrocache_snapshot_changes_since_last_save', 'gauge', 'Writes since the last snapshot.'],
  rdb_bgsave_in_progress: ['ferrocache_snapshot_in_progress', 'gauge', '1 while a snapshot is being written.'],
  rdb_last_save_time: ['ferrocache_snapshot_last_save_time_seconds', 'gauge', 'Unix time of the last successful snapshot (before the first: when persistence started).'],
  rdb_last_bgsave_time_sec: ['ferrocache_snapshot_last_duration_seconds', 'gauge', 'How long the last snapshot took (-1: none yet).'],
  rdb_current_bgsave_time_sec: ['ferrocache_snapshot_current_duration_seconds', 'gauge', 'How long the running snapshot has taken so far (-1: none running).'],
  rdb_current_save_keys_processed: ['ferrocache_snapshot_current_items', 'gauge', 'Items the running snapshot has written so far.'],
  rdb_current_save_bytes: ['ferrocache_snapshot_current_bytes', 'gauge', 'Bytes the running snapshot has written so far.'],
  rdb_saves: ['ferrocache_snapshot_saves_total', 'counter', 'Snapshots written.'],
  rdb_save_failures: ['ferrocache_snapshot_failures_total', 'counter', 'Snapshots that failed.'],
  rdb_last_save_keys: ['ferrocache_snapshot_last_items', 'gauge', 'Items in the last snapshot.'],
  rdb_last_save_bytes: ['ferrocache_snapshot_last_size_bytes', 'gauge', 'Size of the last snapshot file.'],
  rdb_last_load_keys_loaded: ['ferrocache_snapshot_loaded_items', 'gauge', 'Items loaded from the snapshot at start.'],
  rdb_last_load_keys_expired: ['ferrocache_snapshot_load_expired_items', 'gauge', 'Items of the snapshot loaded at start that had expired meanwhile.'],
  rdb_last_load_keys_not_stored: ['ferrocache_snapshot_load_not_stored_items', 'gauge', 'Items of the snapshot loaded at start this store refused (larger than its item size limit, or no memory under -M).'],
  aof_last_load_keys_not_stored: ['ferrocache_aof_load_not_stored_items', 'gauge', 'Items of the append-only log replayed at start this store refused and left deleted (larger than its item size limit, or no memory under -M).'],
  aof_enabled: ['ferrocache_aof_enabled', 'gauge', '1 when the append-only log is on.'],
  aof_current_size: ['ferrocache_aof_size_bytes', 'gauge', 'Size of the append-only log.'],
}

/** Status words → a 1/0 gauge saying whether the last attempt went well. */
const STATUS: Readonly<Record<string, Known>> = {
  rdb_last_bgsave_status: ['ferrocache_snapshot_last_ok', 'gauge', '1 if the last snapshot succeeded, 0 if it failed.'],
  aof_last_write_status: ['ferrocache_aof_last_write_ok', 'gauge', '1 if the last append-only log write succeeded, 0 if it failed.'],
}

/** Replication lines (Redis's INFO replication words, see docs/replication.md) → metrics. */
const REPLICATION: Readonly<Record<string, Known>> = {
  connected_slaves: ['ferrocache_replication_connected_replicas', 'gauge', 'Replicas connected to this server.'],
  connected_replicas: ['ferrocache_replication_connected_replicas', 'gauge', 'Replicas connected to this server.'],
  master_repl_offset: ['ferrocache_replication_offset_bytes', 'gauge', "This server's offset in the replication stream."],
  slave_repl_offset: ['ferrocache_replication_applied_offset_bytes', 'gauge', 'Offset of the stream this replica has applied.'],
  repl_sync_full: ['ferrocache_replication_full_syncs_total', 'counter', 'Full synchronisations served to replicas.'],
  repl_sync_partial_ok: ['ferrocache_replication_partial_syncs_total', 'counter', 'Partial resynchronisations served from the backlog.'],
  repl_sync_partial_err: ['ferrocache_replication_partial_sync_refusals_total', 'counter', 'Partial resynchronisations refused (offset outside the backlog).'],
  master_last_io_seconds_ago: ['ferrocache_replication_last_io_age_seconds', 'gauge', 'Seconds since the replica last heard from its primary (-1: never).'],
  slave_full_syncs: ['ferrocache_replication_replica_full_syncs_total', 'counter', 'Full synchronisations this replica went through.'],
  slave_partial_syncs: ['ferrocache_replication_replica_partial_syncs_total', 'counter', 'Partial resynchronisations this replica went through.'],
  repl_not_stored: ['ferrocache_replication_not_stored_total', 'counter', "Items from the primary this replica refused (larger than its -I, or no memory under -M): it lacks them. Starts again at 0 on a replicaof."],
  slave_read_only: ['ferrocache_replication_read_only', 'gauge', '1 when this replica refuses writes.'],
  master_sync_in_progress: ['ferrocache_replication_sync_in_progress', 'gauge', '1 while this replica receives a full synchronisation.'],
  repl_replica_timeouts: ['ferrocache_replication_replica_timeouts_total', 'counter', 'Replica links dropped for being silent for the link timeout.'],
  repl_replica_overruns: ['ferrocache_replication_replica_overruns_total', 'counter', 'Replica links dropped because the backlog no longer held their next byte.'],
}

/** Replication lines whose values are words or ids (even all-digit ones): info samples. */
const REPLICATION_TEXT = new Set(['master_replid', 'master_replid2', 'master_host', 'master_port'])

/** Adds the persistence and replication metrics of `s`; nothing when it has no such lines. */
export function addFerrocacheMetrics(out: Exposition, s: StatsSnapshot): void {
  for (const [name, value] of s.general) {
    if (isPersistenceStat(name)) addPersistence(out, name, value)
    else if (isReplicationStat(name)) addReplication(out, name, value)
  }
}

function addReplication(out: Exposition, name: string, value: string): void {
  const known = REPLICATION[name]
  if (known !== undefined) return out.add(known[0], known[1], known[2], statNumber(value))
  if (name === 'role') return out.add('ferrocache_replication_role', 'gauge', "This server's role (label), always 1.", 1, { role: value })
  if (name === 'repl_lag_ms') {
    // -1 (no heartbeat yet) stays -1, as master_last_io_seconds_ago's does, not -0.001
    const ms = statNumber(value)
    return out.add('ferrocache_replication_lag_seconds', 'gauge', 'How far this replica is behind its primary, in seconds (-1: no heartbeat yet).', ms < 0 ? -1 : ms / 1000)
  }
  if (REPLICATION_TEXT.has(name)) return addText(out, 'ferrocache_replication', name, value)
  if (name === 'master_link_status') {
    return out.add('ferrocache_replication_link_up', 'gauge', "1 while a replica's link to its primary is up.", value === 'up' ? 1 : 0)
  }
  // `slave<n>`: addr=…,state=…,offset=…,lag_bytes=… for one connected replica
  if (/^(slave|replica)\d+$/.test(name)) {
    const f = Object.fromEntries(value.split(',').map((kv) => kv.split('=', 2) as [string, string]))
    const labels = { replica: f.addr ?? name, state: f.state ?? '' }
    out.add('ferrocache_replication_replica_offset_bytes', 'gauge', 'Stream offset sent to each connected replica.', statNumber(f.offset), labels)
    out.add('ferrocache_replication_replica_lag_bytes', 'gauge', 'How far each connected replica is behind, in stream bytes.', statNumber(f.lag_bytes), labels)
    // from the replica's acknowledgements (REPLCONF ACK); absent until it sent one (older replicas never do)
    if (statNumber(f.ack_offset) >= 0) {
      out.add('ferrocache_replication_replica_acked_offset_bytes', 'gauge', 'Stream offset each connected replica acknowledged applying.', statNumber(f.ack_offset), labels)
      out.add('ferrocache_replication_replica_ack_lag_bytes', 'gauge', 'Stream bytes each connected replica has not acknowledged applying.', statNumber(f.ack_lag_bytes), labels)
    }
    return
  }
  addGeneric(out, 'ferrocache_replication', name.replace(/^(repl|replication)_/, ''), name, value)
}

function addPersistence(out: Exposition, name: string, value: string): void {
  const known = PERSISTENCE[name]
  if (known !== undefined) return out.add(known[0], known[1], known[2], statNumber(value))
  const status = STATUS[name]
  if (status !== undefined) return out.add(status[0], status[1], status[2], value === 'ok' ? 1 : 0)
  const [group, rest] = name.startsWith('rdb_') ? ['ferrocache_snapshot', name.slice(4)] : ['ferrocache_aof', name.slice(4)]
  addGeneric(out, group, rest, name, value)
}

/**
 * A line without a mapping: a number becomes `<group>_<rest>` (a gauge); a word becomes
 * `<group>_info{stat="<name>",value="<word>"} 1`.
 */
function addGeneric(out: Exposition, group: string, rest: string, stat: string, value: string): void {
  const n = statNumber(value)
  if (Number.isFinite(n)) out.add(`${group}_${metricName(rest)}`, 'gauge', `The ${stat} line of stats.`, n)
  else addText(out, group, stat, value)
}

/** `<group>_info{stat="<name>",value="<word>"} 1`. */
function addText(out: Exposition, group: string, stat: string, value: string): void {
  out.add(`${group}_info`, 'gauge', `Stat lines with a word for a value (${group.replace('ferrocache_', '')}).`, 1, { stat, value })
}
