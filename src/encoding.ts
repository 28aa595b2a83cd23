// Values in and out: bytes and text pass through untouched, `json` goes through JSON.

import { types } from 'node:util'

import { argError } from './arg-error'
import type { Encoding, RawValue } from './types'

const { isUint8Array } = types

const ENCODINGS: ReadonlySet<string> = new Set(['buffer', 'utf8', 'json'])

export function isEncoding(value: string): value is Encoding {
  return ENCODINGS.has(value)
}

export function checkEncoding(value: unknown, name = 'encoding'): Encoding {
  if (typeof value !== 'string' || !ENCODINGS.has(value)) {
    throw argError(TypeError, `${name} must be 'buffer', 'utf8' or 'json', got ${JSON.stringify(value) ?? typeof value}`)
  }
  return value as Encoding
}

/** Bytes or text as given; anything else is a TypeError naming `name`. A Uint8Array of
 * another realm (a `vm` context, such as jest's test environment) fails `instanceof`, so
 * that case asks V8 for the type instead. */
export function checkRaw(value: unknown, name = 'value'): RawValue {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array || isUint8Array(value)) {
    // an empty view may be one of a detached ArrayBuffer (transferred to a worker or by
    // structuredClone): its bytes are gone, and the Client's write of it threw V8's own
    // TypeError with the request already queued (the engine refuses it alike)
    if (value.byteLength === 0 && isDetached(value)) {
      throw argError(TypeError, `${name} is a view of a detached ArrayBuffer (transferred away): it has no bytes to store`, 'FERROCACHE_BAD_VALUE')
    }
    return value
  }
  throw argError(TypeError, `${name} must be a string, Buffer or Uint8Array, got ${describe(value)}`, 'FERROCACHE_BAD_VALUE')
}

/** Whether an empty view's ArrayBuffer was detached (Node 20 has no `ArrayBuffer#detached`:
 * a view over a detached buffer cannot be made). */
function isDetached(view: Uint8Array): boolean {
  try {
    new Uint8Array(view.buffer, 0, 0)
    return false
  } catch {
    return true
  }
}

/** What to store for `value` under `encoding`. */
export function encodeValue(value: unknown, encoding: Encoding, name = 'value'): RawValue {
  if (encoding !== 'json') return checkRaw(value, name)
  // JSON.stringify makes '{}' of a Promise: a missing await would store that silently
  if (value instanceof Promise) throw argError(TypeError, `${name} cannot be encoded as JSON (${describe(value)})`, 'FERROCACHE_BAD_VALUE')
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    // a BigInt or a cycle: V8's message names neither the value nor its key (an error of
    // the value's own toJSON other than a TypeError is the caller's, passed on as it is)
    if (!(err instanceof TypeError)) throw err
    throw argError(TypeError, `${name} cannot be encoded as JSON: ${err.message}`, 'FERROCACHE_BAD_VALUE', { cause: err })
  }
  if (text === undefined) throw argError(TypeError, `${name} cannot be encoded as JSON (${describe(value)})`, 'FERROCACHE_BAD_VALUE')
  return text
}

/** Turns what the engine returned (a Buffer for `buffer`, text otherwise) into the value. */
export function decodeValue(raw: Buffer | string, encoding: Encoding): unknown {
  return encoding === 'json' ? parseJson(raw as string) : raw
}

/** A stored value read as JSON. Text stored otherwise (by a memcached client, or with
 * another encoding) got JSON.parse's bare SyntaxError, with no code and no way out named. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    const e = new SyntaxError(`the stored value is not JSON (${(err as Error).message}); read it with { encoding: 'utf8' } or 'buffer'`, { cause: err })
    throw Object.assign(e, { code: 'FERROCACHE_BAD_JSON' })
  }
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  // the usual way to pass one: a call missing its `await`; say so (as the native checks do)
  if (value instanceof Promise) return 'Promise (is an await missing?)'
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object'
  return typeof value
}
