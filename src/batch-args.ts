// The batch calls' arguments (getMany, setMany, deleteMany), checked the same way for the
// embedded Cache and the remote Client: one copy, so both refuse the same inputs with the
// same errors. Keys themselves are checked after this, by the engine (Cache) or by
// client/keys.ts (Client), with the same rules and messages.

import { types } from 'node:util'

import { argError } from './arg-error'
import { describe, encodeValue } from './encoding'
import type { Encoding, RawValue } from './types'

const { isProxy } = types

/** `items` as an array; `what` names its elements for the error of a string (iterable,
 * but one key per character would be read: `deleteMany('user:1')` deleting 'u', 's'...). */
function toArray<T>(items: Iterable<T>, name: string, what: string, objectHint = ''): T[] {
  if (Array.isArray(items)) return items
  if (typeof items === 'string') throw argError(TypeError, `${name} must be an iterable of ${what}, not a string`)
  if (items == null || typeof (items as Iterable<T>)[Symbol.iterator] !== 'function') {
    const plain = typeof items === 'object' && items !== null && Object.getPrototypeOf(items) === Object.prototype
    throw argError(TypeError, `${name} must be an iterable of ${what}, got ${describe(items)}${plain ? objectHint : ''}`)
  }
  return Array.from(items)
}

/** The keys of `getMany`/`deleteMany` as a plain array, not yet checked one by one (a Proxy
 * of one, such as a Vue `reactive` or MobX observable array, is copied; napi reads only
 * real arrays). Holes of a sparse array stay: they are refused as keys that are not strings. */
export function keyArray(keys: Iterable<string>): string[] {
  const list = toArray(keys, 'keys', 'keys')
  return isProxy(list) ? Array.from(list) : list
}

/** The name of the key of `setMany`'s entry `i` in errors (the Rust side: `KeyName::Entry`). */
export const entryKeyName = (i: number): string => `entries[${i}] key`

/** `setMany`'s entries split into keys (not yet checked) and encoded values: every entry's
 * shape and value is checked first, in order, then the caller checks the keys. */
export function splitEntries(entries: Iterable<readonly [string, unknown]>, encoding: Encoding): { keys: string[]; values: RawValue[] } {
  const keys: string[] = []
  const values: RawValue[] = []
  for (const entry of toArray(entries, 'entries', '[key, value] pairs', ' (an object: Object.entries(object))')) {
    if (!Array.isArray(entry)) {
      // Keyv's setMany takes { key, value } objects
      const keyv = typeof entry === 'object' && entry !== null && 'key' in entry && 'value' in entry ? ' ({ key, value } objects as Keyv takes them: [key, value] here)' : ''
      throw argError(TypeError, `entries must hold [key, value] pairs, got ${describe(entry)}${keyv}`)
    }
    keys.push(entry[0] as string)
    values.push(encodeValue(entry[1], encoding, `value of '${String(entry[0])}'`))
  }
  return { keys, values }
}
