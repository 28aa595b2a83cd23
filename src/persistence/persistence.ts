// Persistence of one cache: loading at start, Redis-style scheduled saves, on-demand saves,
// retries with backoff after a failure, logs and the rdb_* stat lines. The snapshot itself
// runs in Rust on a worker thread (crates/ferrocache-node/src/persist.rs), so the event
// loop keeps serving while it is written.
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../server/log'
import type { NativeCache, NativeDataDirLock, NativeSnapshotProgress } from '../../native/index'
import { native } from '../native'
import { loadReport, saveReport, SnapshotError, type LoadReport, type LogWriteFailure, type SaveReport } from './errors'
import { DEFAULT_SAVE, dueRule, formatSaveRules, parseSaveRules, type SaveRule } from './rules'
import { segmentAfterLoad, unreplayedLogFile } from './unreplayed'

export interface PersistenceOptions {
  /** Directory of the snapshot files (created if missing). */
  dataDir: string
  /** Save rules, `"<seconds> <changes> ..."` as Redis's `save` (default `"900 1 300 100 60 10000"`); `""` = none. */
  save?: string
  /** Snapshots kept (default 2, at least 1). */
  keepSnapshots?: number
  /** Append-only log fsync policy; absent = no log. */
  appendfsync?: AppendFsync
  logger?: Logger
}

/** `--appendfsync`: when the append-only log is fsynced. */
export type AppendFsync = 'always' | 'everysec' | 'no'

/** `FERROCACHE_LOG_NOT_REPLAYED`: a start without appendfsync over a log holding what `lacking` says. */
function logNotReplayed(file: string, lacking: string): SnapshotError {
  return new SnapshotError(
    `${file} holds writes an earlier run logged with appendfsync that ${lacking}: without appendfsync they would not be loaded, and a later start with it would replay them over newer data. Start with appendfsync (--appendfsync) to load them (a stop then saves a snapshot that holds them), or delete the appendonly* files to drop them`,
    'FERROCACHE_LOG_NOT_REPLAYED',
    file,
  )
}

/** How often the rules are checked. */
const TICK_MS = 1_000
/** The errno of a log write refused because `appendonly.aof` was deleted (its directory removed). */
const LOG_FILE_DELETED = 2
/** After a failed scheduled save the next one waits 5 s, doubling up to 5 min. */
const RETRY_FIRST_MS = 5_000
const RETRY_MAX_MS = 300_000

/**
 * A cache's persistence (`cache.persistence`, with `dataDir`): loads at start, writes
 * snapshots by the `save` rules, on `cache.snapshot()` and on close, keeps the append-only
 * log with `appendfsync`, and produces the `rdb_*` / `aof_*` lines of `stats`.
 */
export class Persistence {
  /** Where snapshots (and the append-only log) are kept. */
  readonly dataDir: string
  /** The `save` rules in force: a snapshot after `seconds` if at least `changes` writes happened. */
  readonly rules: readonly SaveRule[]
  /** How many snapshot files are kept (older ones are deleted after a save). */
  readonly keepSnapshots: number
  /** The append-only log's fsync policy; `undefined` when there is no log. */
  readonly appendfsync: AppendFsync | undefined
  readonly #native: NativeCache
  readonly #log: Logger | undefined
  #timer: NodeJS.Timeout | undefined
  /** Changes not yet in a snapshot, and the raw change count they were last taken from. */
  #changes = 0
  #lastRaw = 0
  /** When the last successful save finished (or persistence started). */
  #lastSaveMs = Date.now()
  #lastStatus: 'ok' | 'err' = 'ok'
  #lastDurationMs = -1
  #lastSave: SaveReport | undefined
  #lastLoad: LoadReport | undefined
  /** Items of the log replayed at start the store refused (over its item size limit). */
  #aofNotStored = 0
  /** The generation of the snapshot `loadSync` loaded: the log is replayed from there. */
  #loadedGeneration: number | undefined
  #saves = 0
  #failures = 0
  /** Consecutive failures, and when the rules may try again. */
  #failStreak = 0
  #retryAt = 0
  #saving: Promise<SaveReport> | undefined
  #savingSince = 0
  #progress: NativeSnapshotProgress | undefined
  /** A save requested while one runs: it starts when that one ends (callers share it). */
  #queued: Promise<SaveReport> | undefined
  /** Receives the stat lines each second and after every save (the server's `stats`). */
  #statsSink: ((lines: Array<[string, string]>) => void) | undefined
  #statsTimer: NodeJS.Timeout | undefined
  /** Set while an asynchronous load runs. */
  #loading: Promise<void> | undefined
  /** Why saves are held (`hold`): the store holds part of a data set; `undefined`: not held. */
  #held: string | undefined
  /** A rule came due while held (logged once per hold). */
  #deferred = false
  /** The data directory's lock (`DIR/LOCK`): one cache per directory, released by `close`. */
  readonly #lock: NativeDataDirLock

  /** @internal `Cache` creates it; use `new Cache({ dataDir })`. */
  constructor(cache: NativeCache, options: PersistenceOptions) {
    if (typeof options.dataDir !== 'string' || options.dataDir === '') {
      throw new TypeError('dataDir must be a non-empty string (a directory path)')
    }
    const keep = options.keepSnapshots ?? 2
    if (!Number.isInteger(keep) || keep < 1 || keep > 1000) {
      throw new RangeError(`keepSnapshots must be an integer from 1 to 1000, got ${keep}`)
    }
    this.dataDir = options.dataDir
    this.rules = parseSaveRules(options.save ?? DEFAULT_SAVE)
    this.keepSnapshots = keep
    this.appendfsync = options.appendfsync
    this.#native = cache
    this.#log = options.logger
    this.#lastRaw = native.snapshotChangeCount(cache)
    if (statSync(options.dataDir, { throwIfNoEntry: false })?.isDirectory() === false) {
      // the engine's words would be "cannot create the data directory …: File exists"
      throw new SnapshotError(`the data directory ${options.dataDir} is not a directory`, 'FERROCACHE_SNAPSHOT_IO', options.dataDir, undefined, 20)
    }
    this.#lock = new native.NativeDataDirLock()
    const refused = this.#lock.acquire(options.dataDir)
    if (refused !== null && refused !== undefined) throw SnapshotError.fromNative(refused)
    const unreplayed = this.appendfsync === undefined ? unreplayedLogFile(options.dataDir) : undefined
    if (unreplayed !== undefined) {
      this.#lock.release() // the cache is not created
      throw logNotReplayed(unreplayed, 'no snapshot has')
    }
    this.#warnIfReadOnly()
  }

  /** A directory this process cannot write to still loads (a read-only mount), but every
   * save would fail, seen only at the first rule or at stop (exit 1): said at start. */
  #warnIfReadOnly(): void {
    try {
      accessSync(this.dataDir, constants.W_OK | constants.X_OK)
    } catch (err) {
      this.#log?.warn(
        { dataDir: this.dataDir, err: (err as Error).message },
        'the data directory is not writable by this process: every snapshot will fail (what loads is served, nothing is saved)',
      )
    }
  }

  /**
   * Replays the append-only log over what `loadSync` loaded and logs every later change
   * (with `appendfsync`; otherwise nothing). A torn tail is cut off with a warning.
   */
  openAof(): void {
    if (this.appendfsync === undefined) return
    const r = native.aofOpen(this.#native, this.dataDir, this.appendfsync, this.#loadedGeneration)
    if (r.error !== undefined && r.error !== null) {
      const err = new SnapshotError(r.error, 'FERROCACHE_SNAPSHOT_IO', this.dataDir)
      this.#log?.fatal({ err: r.error, dataDir: this.dataDir }, 'cannot open the append-only log')
      this.#lock.release() // the cache is not created
      throw err
    }
    for (const t of r.truncated) this.#log?.warn({ detail: t }, 'append-only log: torn tail cut off')
    if (typeof r.syncDropped === 'string') {
      this.#log?.warn({ detail: r.syncDropped }, "append-only log: started from the state before a replica's full sync")
    }
    this.#aofNotStored = r.notStored
    if (r.notStored > 0) {
      this.#log?.warn({ notStored: r.notStored }, 'append-only log: items not stored (larger than the item size limit, or no memory), left deleted')
    }
    this.#log?.info({ records: r.records, notStored: r.notStored, appendfsync: this.appendfsync }, 'append-only log replayed')
    // the replayed records are in no snapshot (else the log would not have replayed them):
    // they count as changes, so the rules, the save at exit and close() fold them into one
    // and a start without appendfsync opens the directory again. Counted as 0 they let a
    // process that opened with the log and exited write nothing: refused again
    this.#lastRaw = native.snapshotChangeCount(this.#native)
    this.#changes = r.records
  }

  /** Loads the newest valid snapshot now (before serving). With `strict` a damaged one throws. */
  loadSync(strict = false): LoadReport {
    // a large snapshot takes seconds: say so before the event loop stops for it
    this.#log?.info({ dataDir: this.dataDir }, 'loading the snapshot')
    try {
      return this.#loaded(native.snapshotLoadSync(this.#native, this.dataDir, strict))
    } catch (err) {
      this.#lock.release() // the cache is not created
      throw err
    }
  }

  /**
   * Loads on a worker thread; the cache serves meanwhile (keys not loaded yet miss). Saves
   * wait for it: a snapshot of a half-loaded cache must not replace the full one.
   */
  load(strict = false): Promise<LoadReport> {
    const loading = native.snapshotLoad(this.#native, this.dataDir, strict).then((res) => this.#loaded(res))
    this.#loading = loading.then(
      () => undefined,
      () => undefined,
    )
    void this.#loading.then(() => {
      this.#loading = undefined
    })
    return loading
  }

  #loaded(res: { report?: Parameters<typeof loadReport>[0]; error?: Parameters<typeof SnapshotError.fromNative>[0] }): LoadReport {
    if (res.error !== undefined || res.report === undefined) {
      const err = SnapshotError.fromNative(res.error!)
      this.#log?.fatal({ err: err.message, code: err.code, file: err.path, offset: err.offset }, 'snapshot load failed')
      throw err
    }
    const report = loadReport(res.report)
    this.#loadedGeneration = res.report.generation ?? undefined
    for (const r of report.rejected) {
      this.#log?.error(
        { err: r.error.message, code: r.error.code, file: r.path, offset: r.error.offset, movedTo: r.movedTo },
        'snapshot rejected, trying an older one',
      )
    }
    const missed = this.appendfsync === undefined ? segmentAfterLoad(this.dataDir, this.#loadedGeneration ?? -1) : undefined
    if (missed !== undefined) {
      // the newest snapshot failed its check and an older one (or none) loaded: the log
      // has what lay between them. Saves are held: one would make that segment look covered
      const err = logNotReplayed(missed, `the snapshot that loaded (${report.path ?? 'none'}) lacks`)
      this.#held = 'the append-only log holds writes the snapshot that loaded lacks'
      this.#log?.fatal({ err: err.message, code: err.code, file: err.path }, 'snapshot load failed')
      throw err
    }
    if (report.path === undefined) {
      this.#log?.info({ dataDir: this.dataDir }, 'no snapshot to load, starting empty')
    } else {
      if (report.notStored > 0) {
        // a snapshot written under a larger item size limit (-I), or no memory under -M
        this.#log?.warn({ file: report.path, notStored: report.notStored }, 'snapshot: items not stored (larger than the item size limit, or no memory)')
      }
      this.#log?.info(
        { file: report.path, items: report.items, expired: report.expired, notStored: report.notStored, bytes: report.fileBytes, durationMs: Math.round(report.durationMs) },
        'snapshot loaded',
      )
    }
    // what was loaded is saved already: count changes from here
    this.#lastRaw = native.snapshotChangeCount(this.#native)
    this.#changes = 0
    this.#lastLoad = report
    return report
  }

  /** Calls `sink` with the `stats` lines now, every second, and after each save. */
  onStats(sink: (lines: Array<[string, string]>) => void): void {
    this.#statsSink = sink
    this.#pushStats()
    clearInterval(this.#statsTimer)
    this.#statsTimer = setInterval(() => this.#pushStats(), TICK_MS)
    this.#statsTimer.unref()
  }

  #pushStats(): void {
    this.#statsSink?.(this.stats())
  }

  /**
   * Starts checking the save rules every second (with a log also without rules: a deleted
   * log file needs a snapshot).
   */
  start(): void {
    if (this.#timer !== undefined || (this.rules.length === 0 && this.appendfsync === undefined)) return
    this.#log?.info({ dataDir: this.dataDir, save: formatSaveRules(this.rules), keep: this.keepSnapshots }, 'persistence on')
    this.#timer = setInterval(() => this.#tick(), TICK_MS)
    this.#timer.unref()
  }

  /** Stops the scheduled saves (a save already running finishes). */
  stop(): void {
    clearInterval(this.#timer)
    clearInterval(this.#statsTimer)
    this.#timer = undefined
    this.#statsTimer = undefined
  }

  /**
   * Holds every save while the store holds only part of a data set (a replica inside its
   * full sync): the rules wait (a rule due then runs once released, if still due),
   * `snapshot()` rejects with `FERROCACHE_SNAPSHOT_HELD`, the save at close is skipped. Such
   * a snapshot would become the newest and a node started from it alone would come up
   * short; the older, complete one stays. `hold(undefined)` releases. Returns, when holding,
   * a promise that settles once a save already being written is done (else `undefined`).
   */
  hold(reason: string | undefined): Promise<void> | undefined {
    if (reason !== this.#held) {
      this.#held = reason
      if (reason === undefined && this.#deferred) this.#log?.info('saves released: a deferred scheduled snapshot runs if still due')
      this.#deferred = false
    }
    if (reason === undefined || this.#saving === undefined) return undefined
    return this.#saving.then(
      () => undefined,
      () => undefined,
    )
  }

  /** Why saves are held, or `undefined` (see `hold`). */
  get heldReason(): string | undefined {
    return this.#held
  }

  #heldError(): SnapshotError {
    return new SnapshotError(`cannot snapshot: ${this.#held}`, 'FERROCACHE_SNAPSHOT_HELD', this.dataDir)
  }

  /** Whether a save is being written. */
  get saving(): boolean {
    return this.#saving !== undefined
  }

  /** Changes made since the last successful save began. */
  get changesSinceSave(): number {
    this.#refresh()
    return this.#changes
  }

  /**
   * Writes a snapshot; resolves when it is durable. One that starts after this call: if a
   * save is running, another follows it (concurrent callers share that one).
   */
  snapshot(): Promise<SaveReport> {
    if (this.#loading !== undefined) return this.#loading.then(() => this.snapshot())
    if (this.#held !== undefined) return Promise.reject(this.#heldError())
    if (this.#saving === undefined) return this.#run()
    this.#queued ??= this.#saving
      .catch(() => undefined)
      .then(() => {
        this.#queued = undefined
        // held meanwhile (a full sync began while the running save was written)
        if (this.#held !== undefined) throw this.#heldError()
        return this.#run()
      })
    return this.#queued
  }

  /**
   * Writes a snapshot on this thread, blocking it until the file is durable (a last save
   * at close or shutdown). Waits for a save running on a worker thread to finish first.
   */
  snapshotSync(): SaveReport {
    if (this.#loading !== undefined) {
      throw new SnapshotError('cannot snapshot while a snapshot is still loading', 'FERROCACHE_SNAPSHOT_IO', this.dataDir)
    }
    if (this.#held !== undefined) throw this.#heldError()
    this.#refresh()
    const counted = this.#changes
    const started = Date.now()
    let report: SaveReport
    try {
      const res = native.snapshotSaveSync(this.#native, this.dataDir, this.keepSnapshots)
      if (res.error !== undefined || res.report === undefined) throw SnapshotError.fromNative(res.error!)
      report = saveReport(res.report)
    } catch (err) {
      throw this.#failed(err, started)
    }
    return this.#succeeded(report, counted)
  }

  /**
   * Why the last snapshot at close failed (the error was logged); `undefined` before
   * `close`, when it succeeded, or when none was written. ferrocached exits 1 when it is set.
   */
  get closeSaveError(): SnapshotError | undefined {
    return this.#closeSaveError
  }

  #closeSaveError: SnapshotError | undefined
  /** `exitSave` wrote a snapshot: a `close()` after it (a later 'exit' listener) saves only what changed since. */
  #savedAtExit = false

  /**
   * The save at the process's exit (`saveOnExit`), if anything changed since the last
   * save: as `close(true)`, but the cache stays open, so 'exit' listeners that run after
   * this one can still use it (what they write is not saved unless they close it). Returns
   * the error of a failed save, also written to stderr when there is no logger (the
   * process is ending: `closeSaveError` has no reader).
   * @internal `Cache` calls it from its 'exit' listener (`saveOnExit`).
   */
  exitSave(): SnapshotError | undefined {
    // with the log, also when it holds records no change counted (a delete, touch or incr
    // that missed logs the key's absence): else a start without appendfsync is refused
    if (this.changesSinceSave === 0 && (this.appendfsync === undefined || unreplayedLogFile(this.dataDir) === undefined)) return undefined
    this.stop()
    if (this.#loading !== undefined || this.#held !== undefined) {
      // as close(): nothing saved, the previous snapshot kept
      this.#log?.warn({ reason: this.#held ?? 'a snapshot is loading' }, 'exiting with saves held: no snapshot saved, the previous one is kept')
      return undefined
    }
    try {
      this.snapshotSync()
      this.#savedAtExit = true
      return undefined
    } catch (err) {
      // logged by snapshotSync when there is a logger
      const e = err instanceof SnapshotError ? err : new SnapshotError(`cannot snapshot: ${(err as Error).message}`, 'FERROCACHE_SNAPSHOT_IO', this.dataDir)
      this.#closeSaveError = e
      if (this.#log === undefined) {
        process.stderr.write(`ferrocache: the snapshot at exit failed, the changes since the last save are lost: ${e.message}\n`)
      }
      return e
    }
  }

  /** Stops the rules; with `save`, writes a last snapshot synchronously (errors logged, kept in `closeSaveError`); releases the data directory. */
  close(save: boolean): SaveReport | undefined {
    this.stop()
    try {
      if (!save || (this.#savedAtExit && this.changesSinceSave === 0)) return undefined
      if (this.#loading !== undefined) {
        this.#log?.warn('closing while a snapshot is loading: no snapshot saved')
        return undefined
      }
      if (this.#held !== undefined) {
        this.#log?.warn({ reason: this.#held }, 'closing with saves held: no snapshot saved, the previous one is kept')
        return undefined
      }
      return this.snapshotSync()
    } catch (err) {
      // logged by snapshotSync
      this.#closeSaveError =
        err instanceof SnapshotError ? err : new SnapshotError(`cannot snapshot: ${(err as Error).message}`, 'FERROCACHE_SNAPSHOT_IO', this.dataDir)
      return undefined
    } finally {
      this.#lock.release()
    }
  }

  #refresh(): void {
    let raw: number
    try {
      raw = native.snapshotChangeCount(this.#native)
    } catch {
      return // closed
    }
    if (raw > this.#lastRaw) this.#changes += raw - this.#lastRaw
    this.#lastRaw = raw
  }

  #tick(): void {
    if (this.#saving !== undefined || this.#loading !== undefined) return
    this.#refresh()
    const now = Date.now()
    if (now < this.#retryAt) return
    if (this.#held === undefined && this.logWriteError?.errno === LOG_FILE_DELETED) {
      // writes are refused until a snapshot starts a new log (docs/persistence.md)
      this.#log?.warn({ dataDir: this.dataDir }, 'append-only log file deleted: snapshot to start a new log')
      this.snapshot().catch(() => undefined) // logged by #run
      return
    }
    const rule = dueRule(this.rules, (now - this.#lastSaveMs) / 1000, this.#changes)
    if (rule === undefined) return
    if (this.#held !== undefined) {
      // the changes stay counted: the rule is checked again once released
      if (!this.#deferred) this.#log?.info({ reason: this.#held, rule: `${rule.seconds} ${rule.changes}` }, 'scheduled snapshot deferred')
      this.#deferred = true
      return
    }
    this.#log?.info({ changes: this.#changes, rule: `${rule.seconds} ${rule.changes}` }, 'scheduled snapshot')
    this.snapshot().catch(() => undefined) // logged by #run
  }

  #run(): Promise<SaveReport> {
    this.#refresh()
    const counted = this.#changes
    const started = Date.now()
    const progress = new native.NativeSnapshotProgress()
    let pending: Promise<SaveReport>
    try {
      pending = native.snapshotSave(this.#native, this.dataDir, this.keepSnapshots, progress).then((res) => {
        if (res.error !== undefined || res.report === undefined) throw SnapshotError.fromNative(res.error!)
        return saveReport(res.report)
      })
    } catch (err) {
      pending = Promise.reject(new SnapshotError(`cannot snapshot: ${(err as Error).message}`, 'FERROCACHE_SNAPSHOT_CLOSED', this.dataDir))
    }
    const done = pending.then(
      (report) => this.#succeeded(report, counted),
      (err: unknown) => {
        throw this.#failed(err, started)
      },
    )
    this.#saving = done
    this.#savingSince = started
    this.#progress = progress
    this.#pushStats()
    return done
  }

  #succeeded(report: SaveReport, counted: number): SaveReport {
    this.#relock()
    this.#saving = undefined
    this.#progress = undefined
    this.#saves++
    this.#failStreak = 0
    this.#retryAt = 0
    this.#lastStatus = 'ok'
    this.#lastSaveMs = Date.now()
    this.#lastDurationMs = report.durationMs
    this.#lastSave = report
    // changes made while it was written may be missing from it: they stay counted
    this.#changes = Math.max(0, this.#changes - counted)
    this.#log?.info(
      { file: report.path, items: report.items, bytes: report.fileBytes, durationMs: Math.round(report.durationMs), syncMs: Math.round(report.syncMs) },
      'snapshot saved',
    )
    this.#pushStats()
    return report
  }

  /**
   * After a save into a data directory that was removed (or emptied) meanwhile: the lock is
   * on a deleted file, so it is taken again on the new `LOCK` (else a second cache could
   * start on the directory).
   */
  #relock(): void {
    if (existsSync(join(this.dataDir, 'LOCK'))) return
    this.#lock.release()
    const refused = this.#lock.acquire(this.dataDir)
    if (refused !== null && refused !== undefined) {
      this.#log?.error({ err: refused.message, dataDir: this.dataDir }, 'cannot lock the data directory again after it was removed')
    } else {
      this.#log?.warn({ dataDir: this.dataDir }, 'data directory was removed: locked again')
    }
  }

  #failed(err: unknown, started: number): SnapshotError {
    this.#saving = undefined
    this.#progress = undefined
    this.#failures++
    this.#failStreak++
    this.#lastStatus = 'err'
    this.#lastDurationMs = Date.now() - started
    const wait = Math.min(RETRY_FIRST_MS * 2 ** (this.#failStreak - 1), RETRY_MAX_MS)
    this.#retryAt = Date.now() + wait
    const e =
      err instanceof SnapshotError ? err : new SnapshotError(`cannot snapshot: ${(err as Error).message}`, 'FERROCACHE_SNAPSHOT_CLOSED', this.dataDir)
    this.#log?.error(
      { err: e.message, code: e.code, file: e.path, errno: e.errno, retryInSec: wait / 1000 },
      'snapshot failed; the previous snapshot is kept',
    )
    this.#pushStats()
    return e
  }

  /** The `stats` lines, named as Redis's INFO persistence section. */
  stats(): Array<[string, string]> {
    this.#refresh()
    const now = Date.now()
    const secs = (ms: number): string => (ms < 0 ? '-1' : String(Math.round(ms / 1000)))
    return [
      ['rdb_changes_since_last_save', String(this.#changes)],
      ['rdb_bgsave_in_progress', this.#saving ? '1' : '0'],
      ['rdb_last_save_time', String(Math.floor(this.#lastSaveMs / 1000))],
      ['rdb_last_bgsave_status', this.#lastStatus],
      ['rdb_last_bgsave_time_sec', secs(this.#lastDurationMs)],
      ['rdb_current_bgsave_time_sec', this.#saving ? secs(now - this.#savingSince) : '-1'],
      ['rdb_current_save_keys_processed', String(this.#progress?.items ?? 0)],
      ['rdb_current_save_bytes', String(this.#progress?.bytes ?? 0)],
      ['rdb_saves', String(this.#saves)],
      ['rdb_save_failures', String(this.#failures)],
      ['rdb_last_save_keys', String(this.#lastSave?.items ?? 0)],
      ['rdb_last_save_bytes', String(this.#lastSave?.fileBytes ?? 0)],
      ['rdb_last_load_keys_loaded', String(this.#lastLoad?.items ?? 0)],
      ['rdb_last_load_keys_expired', String(this.#lastLoad?.expired ?? 0)],
      ['rdb_last_load_keys_not_stored', String(this.#lastLoad?.notStored ?? 0)],
      ...this.#aofStats(),
    ]
  }

  /**
   * Why the append-only log cannot write (the last write or fsync failed and was not
   * retried successfully yet); `undefined` while it can, and without a log. Meanwhile
   * every write throws a `LogWriteError` (`aof_last_write_status` is `err`).
   */
  get logWriteError(): LogWriteFailure | undefined {
    const st = this.appendfsync === undefined || this.#native.closed ? null : native.aofStatus(this.#native)
    if (st === null || st === undefined || st.ok || typeof st.error !== 'string') return undefined
    return { message: st.error, path: st.errorPath ?? this.dataDir, errno: st.errno ?? undefined }
  }

  #aofStats(): Array<[string, string]> {
    const st = this.appendfsync === undefined || this.#native.closed ? null : native.aofStatus(this.#native)
    if (st === null || st === undefined) return [['aof_enabled', '0']]
    return [
      ['aof_enabled', '1'],
      ['aof_current_size', String(st.size)],
      ['aof_last_write_status', st.ok ? 'ok' : 'err'],
      ['aof_last_load_keys_not_stored', String(this.#aofNotStored)],
    ]
  }
}
