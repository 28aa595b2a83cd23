// What a snapshot reports, and the error it throws, in the package's public shapes.
import type { NativeLoadReport, NativeSaveReport, NativeSnapshotError } from '../../native/index'

/** A snapshot written and durable (fsynced, renamed, directory fsynced). */
export interface SaveReport {
  /** The snapshot file. */
  path: string
  /** Items written. */
  items: number
  /** Size of the snapshot file. */
  fileBytes: number
  /** Key and value bytes of the items. */
  dataBytes: number
  /** Unix milliseconds the snapshot was started. */
  createdMs: number
  /** How long the save took, in milliseconds. */
  durationMs: number
  /** Part of `durationMs` spent in fsync and rename. */
  syncMs: number
  /** Older snapshots deleted to keep `keepSnapshots`. */
  removed: string[]
}

/** A damaged snapshot that loading skipped (and moved aside). */
export interface RejectedSnapshot {
  /** The damaged file. */
  path: string
  /** Where it was moved (`*.corrupt`, `*.unsupported`, `*.unreadable`), `undefined` if it could not be moved. */
  movedTo: string | undefined
  /** What is wrong with it (with the byte offset). */
  error: SnapshotError
}

/** What loading at start did. */
export interface LoadReport {
  /** The snapshot loaded, `undefined` if there was none. */
  path: string | undefined
  /** Items loaded into the cache. */
  items: number
  /** Items that expired while the cache was down, not loaded. */
  expired: number
  /** Items the cache refused (item size limit, or full with `evict: false`). */
  notStored: number
  /** Size of the snapshot file. */
  fileBytes: number
  /** How long loading took, in milliseconds. */
  durationMs: number
  /** Newer snapshots that failed their checks, newest first. */
  rejected: RejectedSnapshot[]
}

/**
 * `FERROCACHE_SNAPSHOT_IO`: the file system failed (see `errno`); `_CORRUPT`: a checksum or
 * structure check failed (see `offset`); `_UNSUPPORTED`: a newer format version;
 * `_CLOSED`: the cache was closed; `_HELD`: saves are held (a replica inside its full sync:
 * the store holds part of the data set); `FERROCACHE_DATA_DIR_LOCKED`: another cache (in this
 * process or another) uses the data directory (`path` is its lock file);
 * `FERROCACHE_LOG_NOT_REPLAYED`: opened without `appendfsync`, the directory's append-only log
 * holds writes no snapshot has (`path` is that log file).
 */
export type SnapshotErrorCode =
  | 'FERROCACHE_SNAPSHOT_IO'
  | 'FERROCACHE_SNAPSHOT_CORRUPT'
  | 'FERROCACHE_SNAPSHOT_UNSUPPORTED'
  | 'FERROCACHE_SNAPSHOT_CLOSED'
  | 'FERROCACHE_SNAPSHOT_HELD'
  | 'FERROCACHE_DATA_DIR_LOCKED'
  | 'FERROCACHE_LOG_NOT_REPLAYED'

/** A snapshot could not be written or read; the message names the file (and byte offset). */
export class SnapshotError extends Error {
  /** Always `'SnapshotError'`. */
  override name = 'SnapshotError'
  /** What kind of failure it is. */
  readonly code: SnapshotErrorCode
  /** The file concerned. */
  readonly path: string
  /** Where a damaged file is damaged. */
  readonly offset: number | undefined
  /** The OS error number of an I/O failure (28 = ENOSPC, 13 = EACCES…). */
  readonly errno: number | undefined

  constructor(message: string, code: SnapshotErrorCode, path: string, offset?: number, errno?: number) {
    super(message)
    this.code = code
    this.path = path
    this.offset = offset
    this.errno = errno
  }

  /** @internal */
  static fromNative(e: NativeSnapshotError): SnapshotError {
    const code: SnapshotErrorCode =
      e.kind === 'corrupt'
        ? 'FERROCACHE_SNAPSHOT_CORRUPT'
        : e.kind === 'unsupported'
          ? 'FERROCACHE_SNAPSHOT_UNSUPPORTED'
          : e.kind === 'locked'
            ? 'FERROCACHE_DATA_DIR_LOCKED'
            : 'FERROCACHE_SNAPSHOT_IO'
    return new SnapshotError(e.message, code, e.path, e.offset ?? undefined, e.errno ?? undefined)
  }
}

/**
 * What every write of a cache with `appendfsync` throws (or rejects with) while its
 * append-only log cannot write (a full disk, an I/O error), as ferrocached refuses writes
 * then: `set`, `add`, `replace`, `append`, `prepend`, `cas`, `incr`, `decr`, `touch`,
 * `delete`, `flush`, `setMany`, `deleteMany` and their `…Sync` twins (and `fetch` storing a
 * loaded value). Reads (`get`, `gets`, `getMany`, `has`, `gat`) are served. Each write
 * first retries what the failure left; the first one that gets through goes ahead.
 */
export interface LogWriteError extends Error {
  /** Always `'FERROCACHE_LOG_FAILED'`. */
  readonly code: 'FERROCACHE_LOG_FAILED'
  /** The log file that could not be written (also named in the message). */
  readonly path: string | undefined
  /** The OS error number (28 = ENOSPC, 27 = EFBIG, 5 = EIO), when there is one. */
  readonly errno: number | undefined
  /**
   * `false`: the write was refused and changed nothing. `true`: the change was made in
   * memory (reads see it) but its log record failed, so it is not durable yet; the record
   * is kept and written before the next write that gets through. For `setMany` and
   * `deleteMany`: entries were made (the batch stops after the entry whose record failed,
   * or before the first one refused); later entries were not.
   */
  readonly applied: boolean
}

/** Whether `err` is the error of a write refused because the append-only log cannot write. */
export function isLogWriteError(err: unknown): err is LogWriteError {
  return err instanceof Error && (err as { code?: unknown }).code === 'FERROCACHE_LOG_FAILED'
}

/** Why an append-only log cannot write (see `Persistence.logWriteError`). */
export interface LogWriteFailure {
  /** Names the file and the OS error, e.g. `cannot write /data/appendonly.aof: No space left on device (os error 28)`. */
  message: string
  /** The file (or, for a failed log rotation before a snapshot, the data directory). */
  path: string
  /** The OS error number, when there is one. */
  errno: number | undefined
}

export function saveReport(r: NativeSaveReport): SaveReport {
  return {
    path: r.path,
    items: r.items,
    fileBytes: r.fileBytes,
    dataBytes: r.dataBytes,
    createdMs: r.createdMs,
    durationMs: r.durationMs,
    syncMs: r.syncMs,
    removed: r.removed,
  }
}

export function loadReport(r: NativeLoadReport): LoadReport {
  return {
    path: r.path ?? undefined,
    items: r.items,
    expired: r.expired,
    notStored: r.notStored,
    fileBytes: r.fileBytes,
    durationMs: r.durationMs,
    rejected: r.rejected.map((x) => ({
      path: x.error.path,
      movedTo: x.movedTo ?? undefined,
      error: SnapshotError.fromNative(x.error),
    })),
  }
}
