// A data directory whose append-only log holds records no snapshot has (a run with
// appendfsync that was killed, or one whose newest segment is newer than every snapshot),
// opened without appendfsync: those acknowledged writes would not be loaded, and the next
// start with the log would replay them over the snapshots written meanwhile (stale values
// back, deleted keys back). Found here so the cache refuses the directory instead.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** A log file's header (magic and version): a file of just that holds no record. */
const HEADER_BYTES = 12
const SEGMENT = /^appendonly-(\d+)\.aof$/
const SNAPSHOT = /^snapshot-(\d+)\.fcs$/
/** Where an older build kept the records of a snapshot in progress. */
const LEGACY = 'appendonly.aof.1'

/** The log file holding records newer than every snapshot in `dir`, if one does. */
export function unreplayedLogFile(dir: string): string | undefined {
  let names: string[]
  try {
    names = readdirSync(dir)
  } catch {
    return undefined // missing or unreadable: the load says so
  }
  const cur = join(dir, 'appendonly.aof')
  if (holdsRecords(cur)) return cur
  if (names.includes(LEGACY) && holdsRecords(join(dir, LEGACY))) return join(dir, LEGACY)
  let newestSnapshot = -1
  for (const n of names) {
    const m = SNAPSHOT.exec(n)
    if (m) newestSnapshot = Math.max(newestSnapshot, Number(m[1]))
  }
  return segmentAfter(dir, names, newestSnapshot)
}

/**
 * After a load without appendfsync: the log segment holding records the snapshot that
 * loaded (generation `loaded`, -1 for none) lacks, if one does. A newer snapshot that
 * failed its check (moved aside) held them; the one that loaded does not.
 */
export function segmentAfterLoad(dir: string, loaded: number): string | undefined {
  try {
    return segmentAfter(dir, readdirSync(dir), loaded)
  } catch {
    return undefined
  }
}

function segmentAfter(dir: string, names: string[], generation: number): string | undefined {
  // segment G holds records written before snapshot G began: newer than snapshot G-1. One
  // of just its header (a snapshot that failed, or was killed, after the log rotated with
  // nothing logged since the rotation before) lacks nothing
  const segment = names.find((n) => Number(SEGMENT.exec(n)?.[1] ?? -1) > generation && holdsRecords(join(dir, n)))
  return segment === undefined ? undefined : join(dir, segment)
}

/**
 * Whether the log file `path` may hold a record: any byte past its header. A record cut
 * short counts too: whether it is a tail torn by a crash (the replay cuts it off) or a
 * damaged length with whole records behind it (the replay keeps those aside in
 * `.corrupt`) only the replay with appendfsync tells, and says so. A file that cannot be
 * looked at counts (the start with the log reports why).
 */
function holdsRecords(path: string): boolean {
  try {
    return (statSync(path, { throwIfNoEntry: false })?.size ?? 0) > HEADER_BYTES
  } catch {
    return true
  }
}
