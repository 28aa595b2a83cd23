// Milliseconds (the JS ecosystem's unit) to memcached's exptime (seconds on the wire).

import { argError } from './arg-error'

/** memcached's boundary: an exptime up to 30 days is relative, anything larger absolute. */
export const MAX_RELATIVE_EXPTIME = 60 * 60 * 24 * 30

/** The latest exptime memcached keeps (2038-01-19): its text and meta commands read the
 * exptime as a signed 32-bit number, and a larger one (or one past 2^31 - 1 on ferrocached,
 * which matches it) stores an item that is expired at once. Later ends are capped here. */
export const MAX_EXPTIME = 0x7fff_ffff

function checkMs(name: string, ms: unknown): number {
  if (typeof ms !== 'number') throw argError(TypeError, `${name} must be a number of milliseconds, got ${typeof ms}`)
  if (Number.isNaN(ms) || ms < 0) throw argError(RangeError, `${name} must be 0 or more milliseconds, got ${ms}`)
  return ms
}

/** The time in ms that a ttl over 30 days is counted from (the clock of the cache that
 * reads the exptime; `Date.now` for a remote server). */
export type NowMs = () => number

/**
 * memcached exptime for a ttl in ms: 0 (or Infinity) never expires; otherwise whole
 * seconds rounded up, so an item never lives shorter than asked by more than the clock's
 * one-second granularity. Beyond 30 days memcached reads the number as a unix time, so
 * long ttls are sent as an absolute time, counted from `now`, and one ending after
 * 2038-01-19 03:14:07 UTC ends then (`MAX_EXPTIME`).
 */
export function ttlToExptime(ttl: unknown, name = 'ttl', now: NowMs = Date.now): number {
  if (ttl === undefined) return 0
  const ms = checkMs(name, ttl)
  if (ms === 0 || ms === Infinity) return 0
  const seconds = Math.ceil(ms / 1000)
  if (seconds <= MAX_RELATIVE_EXPTIME) return seconds
  return Math.min(Math.ceil((now() + ms) / 1000), MAX_EXPTIME)
}

/**
 * The exptime for `touch`/`gat`, whose ttl is a required argument: leaving it out is a
 * mistake (memcached answers a `touch` without one with ERROR), not "never expires".
 */
export function requiredTtlToExptime(ttl: unknown, now: NowMs = Date.now, method: 'touch' | 'gat' = 'touch'): number {
  if (ttl === undefined || (typeof ttl === 'object' && ttl !== null)) {
    // touch(key) without the ttl, or touch(key, { ttl }) / touch(key, { signal }): options
    // where the ttl goes
    throw argError(TypeError, `ttl must be a number of milliseconds, got ${typeof ttl} (the ttl goes second, options third: ${method}(key, ttl, options))`)
  }
  return ttlToExptime(ttl, 'ttl', now)
}

/** A flush delay in ms as whole seconds (rounded up; 0 = now), at most 30 days. */
export function delayToSeconds(delay: unknown): number {
  if (delay === undefined) return 0
  if (typeof delay === 'object' && delay !== null) {
    throw argError(TypeError, 'delay must be a number of milliseconds, got object (options go second: flush(undefined, options))')
  }
  const seconds = Math.ceil(checkMs('delay', delay) / 1000)
  if (seconds > MAX_RELATIVE_EXPTIME) throw argError(RangeError, `delay must be at most 30 days, got ${delay} ms`)
  return seconds
}
