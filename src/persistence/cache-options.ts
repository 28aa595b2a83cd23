// The persistence part of `new Cache(options)`: checked here so the Cache only wires it up.
import type { Logger } from '../server/log'
import type { AppendFsync, PersistenceOptions } from './persistence'

/** Options of `new Cache()` / `Cache.open()` that turn persistence on. */
export interface CachePersistenceOptions {
  /** Directory of snapshot files; setting it turns persistence on (loaded at construction). */
  dataDir?: string | undefined
  /** Save rules as Redis's `save`: `"900 1 300 100 60 10000"` (the default), `""` = none. */
  save?: string | undefined
  /** Snapshots kept in `dataDir` (default 2). */
  keepSnapshots?: number | undefined
  /** Throw instead of falling back when the newest snapshot is damaged (default false). */
  strictLoad?: boolean | undefined
  /** `close()` writes a last snapshot, blocking until it is durable (default true). */
  saveOnClose?: boolean | undefined
  /**
   * A cache still open when the process exits (its event loop ran dry, or `process.exit()`)
   * writes the snapshot `close()` would, if anything changed since the last save (default
   * true; with `saveOnClose`). A signal that kills the process runs nothing: handle it.
   */
  saveOnExit?: boolean | undefined
  /** Load on a worker thread and serve meanwhile (`cache.loaded` resolves when done). */
  loadAsync?: boolean | undefined
  /**
   * Append-only log (`appendonly.aof` in `dataDir`): every change is logged and replayed
   * after the snapshot at start. `'always'` fsyncs before each write returns, `'everysec'`
   * once a second, `'no'` leaves it to the OS. Default: off. Not with `loadAsync`. While
   * the log cannot write (a full disk), writes throw a `LogWriteError` and reads are served.
   */
  appendfsync?: AppendFsync | undefined
  /** Logger for load, save and failure messages, e.g. `pino()` (default: none). */
  logger?: Logger | undefined
}

export const PERSISTENCE_OPTION_NAMES = ['dataDir', 'save', 'keepSnapshots', 'strictLoad', 'saveOnClose', 'saveOnExit', 'loadAsync', 'appendfsync', 'logger'] as const

export interface ResolvedPersistence extends PersistenceOptions {
  strictLoad: boolean
  saveOnClose: boolean
  saveOnExit: boolean
  loadAsync: boolean
}

function bool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt
  if (typeof v !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof v}`)
  return v
}

/** `undefined` without `dataDir`; otherwise the checked settings. */
export function resolvePersistence(o: CachePersistenceOptions | undefined): ResolvedPersistence | undefined {
  if (o === undefined || o.dataDir === undefined) {
    for (const name of PERSISTENCE_OPTION_NAMES) {
      if (name !== 'logger' && o?.[name] !== undefined) throw new TypeError(`${name} needs dataDir`)
    }
    return undefined
  }
  if (typeof o.dataDir !== 'string' || o.dataDir === '') throw new TypeError('dataDir must be a non-empty string')
  if (o.save !== undefined && typeof o.save !== 'string') throw new TypeError(`save must be a string, got ${typeof o.save}`)
  if (o.keepSnapshots !== undefined && typeof o.keepSnapshots !== 'number') {
    throw new TypeError(`keepSnapshots must be a number, got ${typeof o.keepSnapshots}`)
  }
  if (o.appendfsync !== undefined && !['always', 'everysec', 'no'].includes(o.appendfsync)) {
    throw new TypeError(`appendfsync must be 'always', 'everysec' or 'no', got ${String(o.appendfsync)}`)
  }
  if (o.appendfsync !== undefined && o.loadAsync === true) {
    throw new TypeError('appendfsync cannot be used with loadAsync: the log is replayed before serving')
  }
  return {
    dataDir: o.dataDir,
    appendfsync: o.appendfsync,
    save: o.save,
    keepSnapshots: o.keepSnapshots,
    logger: o.logger,
    strictLoad: bool('strictLoad', o.strictLoad, false),
    saveOnClose: bool('saveOnClose', o.saveOnClose, true),
    saveOnExit: bool('saveOnExit', o.saveOnExit, true),
    loadAsync: bool('loadAsync', o.loadAsync, false),
  }
}
