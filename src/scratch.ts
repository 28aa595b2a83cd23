// Reads come back through a per-thread scratch buffer the native side fills (see
// crates/ferrocache-node/src/cache/scratch.rs): a native call returns only the length,
// and the value is copied out here into a pooled Buffer or decoded to a string, which is
// ten times cheaper than making the Buffer in native code.

import { decodeValue } from './encoding'
import { native } from './native'
import type { Encoding } from './types'

/** Where values start; bytes 0..8 hold the CAS and 8..12 the flags of the last `gets`. */
const DATA = 16

const scratch: Buffer = native.scratchBuffer()
const bytes = new Uint8Array(scratch.buffer, scratch.byteOffset + DATA, scratch.length - DATA)
const text = scratch.subarray(DATA)

/** What a read returned: -1 (miss), a length in the scratch buffer, or the value itself. */
export type NativeHit = number | Buffer | string

/**
 * The value of a hit whose bytes start at `offset` of the scratch data (0 for a single
 * read, the running total for `getMany`). Must run before the next native read.
 */
export function takeHit(hit: NativeHit, offset: number, encoding: Encoding): unknown {
  if (typeof hit !== 'number') return decodeValue(hit, encoding)
  if (encoding === 'buffer') {
    const out = Buffer.allocUnsafe(hit)
    out.set(bytes.subarray(offset, offset + hit))
    return out
  }
  const s = text.toString('utf8', offset, offset + hit)
  return encoding === 'json' ? JSON.parse(s) : s
}

/** CAS of the item the last `gets` read. */
export function lastCas(): bigint {
  return scratch.readBigUInt64LE(0)
}

/** Flags of the item the last `gets` read. */
export function lastFlags(): number {
  return scratch.readUInt32LE(8)
}
