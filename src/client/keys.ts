// Key checks done before a request leaves: the embedded cache's rules and messages
// (1-250 UTF-8 bytes, no spaces or control characters, no lone surrogates), so both fail
// the same way and a bad key can never break the text protocol's framing.
import { describe } from '../encoding'
import { cacheError } from './errors'

const MAX_KEY_LEN = 250

function bad(name: string, what: string): Error {
  return cacheError(TypeError, 'FERROCACHE_BAD_KEY', `${name} ${what}`)
}

/** Throws a TypeError naming `name` unless `key` is a valid memcached key. */
export function checkKey(key: unknown, name = 'key'): string {
  if (typeof key !== 'string') throw bad(name, `must be a string, got ${key instanceof Promise ? describe(key) : key === null ? 'null' : typeof key}`)
  if (key.length === 0) throw bad(name, 'must not be empty')
  let ascii = true
  let control = -1
  let lone = -1
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    if (c > 0x7f) {
      ascii = false
      if (c >= 0xd800 && c <= 0xdfff && lone === -1) {
        // a pair is a high surrogate then a low one; anything else is lone
        const next = key.charCodeAt(i + 1)
        if (c < 0xdc00 && next >= 0xdc00 && next <= 0xdfff) i++
        else lone = i
      }
    } else if ((c <= 0x20 || c === 0x7f) && control === -1) control = i
  }
  const bytes = ascii ? key.length : Buffer.byteLength(key)
  if (bytes > MAX_KEY_LEN) throw bad(name, `is ${bytes} bytes long; memcached keys are at most ${MAX_KEY_LEN} bytes`)
  if (control !== -1) {
    const c = key.charCodeAt(control).toString(16).padStart(2, '0')
    const at = ascii ? control : Buffer.byteLength(key.slice(0, control))
    throw bad(name, `must not contain spaces or control characters (byte 0x${c} at offset ${at})`)
  }
  // UTF-8 writes a lone surrogate as U+FFFD: keys that differ only there would be one key
  // on the server (the embedded Cache refuses them the same way)
  if (lone !== -1) {
    const u = key.charCodeAt(lone).toString(16).padStart(4, '0')
    throw bad(name, `must be well-formed Unicode: a lone surrogate (0x${u}) at index ${lone}`)
  }
  return key
}
