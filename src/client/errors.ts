// Errors of the remote client: the same classes and `code`s as the embedded cache where
// the failure is the same (bad key, too large, non-numeric), plus the network's own.

/** `code` values the client adds to the embedded cache's. */
export type ClientErrorCode =
  | 'FERROCACHE_CONNECTION' // the connection failed or closed under the request
  | 'FERROCACHE_TIMEOUT' // no reply within `timeout` (or no connection within `connectTimeout`)
  | 'FERROCACHE_SERVER_FAILING' // failed recently; not retried until `retry` ms have passed
  | 'FERROCACHE_SERVER_DEAD' // marked dead after `removeAfter` failures (and `remove` is off)
  | 'FERROCACHE_NO_SERVERS' // every server is dead or removed
  | 'FERROCACHE_SERVER_ERROR' // the server answered ERROR / CLIENT_ERROR / SERVER_ERROR
  | 'FERROCACHE_AUTH' // the server refused the login (`username`/`password`)
  | 'FERROCACHE_TLS' // the TLS handshake failed (certificate refused, not a TLS server…) or a TLS alert (`tls`)
  | 'FERROCACHE_NOT_FORWARDED' // protocol 'twemproxy': the proxy does not forward this command
  | 'FERROCACHE_QUEUE_FULL' // `maxPending` requests already wait for the server's replies
  | 'FERROCACHE_CLOSED'

type ErrorClass = ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor

/** An error of a cache operation, with a machine-readable `code`. */
export interface CacheError extends Error {
  /** `FERROCACHE_TIMEOUT`, `FERROCACHE_CONNECTION`, `FERROCACHE_TOO_LARGE`… (see `ClientErrorCode`). */
  code: string
  /** `host:port` of the server involved, when there is one. */
  server?: string
}

export function cacheError(kind: ErrorClass, code: string, message: string, server?: string): CacheError {
  const err = new kind(message) as CacheError
  err.code = code
  if (server !== undefined) err.server = server
  return err
}

/** The error for a server's error line, mapped to the embedded cache's codes. */
export function serverError(line: string, server: string): CacheError {
  if (line.startsWith('SERVER_ERROR object too large')) {
    return cacheError(RangeError, 'FERROCACHE_TOO_LARGE', `value is too large for ${server}: ${line}`, server)
  }
  // memcached's words: "out of memory storing object", and for an item it chunks
  // (over slab_chunk_max) "Out of memory during read"
  if (/^SERVER_ERROR out of memory/i.test(line)) {
    return cacheError(Error, 'FERROCACHE_OUT_OF_MEMORY', `${server}: ${line}`, server)
  }
  if (line.includes('non-numeric value')) {
    return cacheError(TypeError, 'FERROCACHE_NON_NUMERIC', 'cannot increment or decrement non-numeric value', server)
  }
  return cacheError(Error, 'FERROCACHE_SERVER_ERROR', `${server} answered: ${line}`, server)
}
