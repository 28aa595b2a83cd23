// The logger type of the public API, kept apart from pino: pino's own .d.ts needs
// esModuleInterop (it default-imports thread-stream), so naming its types in ours would
// break consumers compiled without it and with skipLibCheck off. pino stays the
// implementation (logger.ts); a pino Logger fits this interface, as do other loggers with
// its call shapes.

/** One level's method: `(fields, message)` or `(message)`. */
export interface LogFn {
  (fields: object, message?: string): void
  (message: string): void
}

/**
 * What ferrocache logs through (`logger` of `createServer()` and of persistence): a pino
 * `Logger` fits, e.g. `pino()`.
 */
export interface Logger {
  /** The least severe level written ('trace' … 'fatal', 'silent'); `verbosity` sets it. */
  level: string
  /** Whether a line at `level` would be written (hot paths check before building it). */
  isLevelEnabled(level: string): boolean
  /** A logger adding these fields to every line (one per connection). */
  child(bindings: Record<string, unknown>): Logger
  /** Start failures the process exits on. */
  fatal: LogFn
  /** Failures ferrocache goes on after (a snapshot not written, a server error). */
  error: LogFn
  /** Something that needs attention (a torn log tail cut off, a socket error). */
  warn: LogFn
  /** Start, stop, snapshots, replication links (`ferrocached`'s default level). */
  info: LogFn
  /** Connections opened and closed (`-v`). */
  debug: LogFn
  /** Every request and reply (`-vv`). */
  trace: LogFn
}
