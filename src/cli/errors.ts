// A usage mistake on ferrocached's command line, with the exit code it ends with.

/**
 * The message is printed and the process exits with `exitCode`: 2 for ferrocached's own
 * checks (its options, values memcached would take but ferrocache cannot honour), and
 * memcached 1.6.18's code for mistakes memcached refuses too (see [[memcachedError]]).
 */
export class UsageError extends Error {
  override name = 'UsageError'
  constructor(message: string, readonly exitCode = 2) {
    super(message)
  }
}

/**
 * A mistake memcached refuses as well, with its exit code: 1 (EXIT_FAILURE) for unknown
 * options and most bad values; 64 (EX_USAGE) for a bad `-B`, hot + warm LRU over 80% or an
 * item size over half the memory; 67 (EX_NOUSER) for an unknown `-u` user.
 */
export function memcachedError(message: string, exitCode = 1): UsageError {
  return new UsageError(message, exitCode)
}

/** memcached's exit code when a listener cannot be bound (EX_OSERR; measured: a port in use). */
export const LISTEN_FAILED_EXIT = 71
