// Structured logs: one JSON object per line on stderr (pino), so stdout stays free and
// log shippers need no parsing rules. memcached's -v/-vv map onto log levels.
import pino from 'pino'
import type { Logger } from './log'

export type { Logger, LogFn } from './log'

/** 0 → info (start, stop, warnings), 1 (-v) → debug (connections), 2+ (-vv) → trace (reads). */
export function levelForVerbosity(verbosity: number): 'info' | 'debug' | 'trace' {
  if (verbosity >= 2) return 'trace'
  if (verbosity === 1) return 'debug'
  return 'info'
}

/** A logger writing synchronously to fd 2, so nothing is lost when the process exits. */
export function createLogger(verbosity = 0): Logger {
  return pino(
    { name: 'ferrocached', level: levelForVerbosity(verbosity), base: { pid: process.pid } },
    pino.destination({ fd: 2, sync: true }),
  )
}

/** A logger that drops everything: the default for servers embedded in an application. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
