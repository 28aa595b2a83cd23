// Reads come back through a per-thread scratch buffer the native side fills (see
// crates/ferrocache-node/src/cache/scratch.rs): a native call returns only the length,
// and the value is copied out here into a pooled Buffer or decoded to a string, which is
// ten times cheaper than making the Buffer in native code.

import { markAsUntransferable } from 'node:worker_threads'

import { decodeValue, parseJson } from './encoding'
import { native } from './native'
import type { Encoding } from './types'

/** Where values start; bytes 0..8 hold the CAS and 8..12 the flags of the last `gets`,
 * 12..16 a pooled read's offset and 16..20 a single read's length. */
const DATA = 24

const scratch: Buffer = native.scratchBuffer()

/** Single Buffer reads land here (see crates/ferrocache-node/src/cache/scratch.rs) and come
 * back as views of it, one copy fewer; like Node's own Buffer pool, a returned value keeps
 * its pool alive. */
const POOL_SIZE = 64 * 1024
/** Scratch byte where a pooled read leaves the value's offset in the pool (-1: not pooled);
 * the single read's length (-1: a miss) follows it. */
const POOL_AT = 12

/** The current read pool of this thread's native binding. */
interface ReadPool {
  current: ArrayBuffer
}
/**
 * Shared by every copy of this module in the thread (a cleared `require.cache`,
 * `jest.resetModules()`): the native side writes into the pool registered last, so all of
 * them must read that one. Kept on the binding, as a reloaded `.node` (a napi env of its
 * own) has its own scratch buffer and pool.
 */
const SHARED = Symbol.for('ferrocache.readPool')
const holder = native as unknown as { [SHARED]?: ReadPool }
const reads: ReadPool = holder[SHARED] ?? (holder[SHARED] = { current: newPool() })

/** A fresh read pool, registered with the native side. Untransferable (as Node's own pool),
 * so posting a returned Buffer's `.buffer` cannot detach memory the native side writes to. */
function newPool(): ArrayBuffer {
  const fresh = Buffer.allocUnsafeSlow(POOL_SIZE).buffer // not zero-filled: views cover written bytes only
  markAsUntransferable(fresh)
  native.readPool(fresh)
  return fresh
}
/** Scratch bytes 12..20 as numbers (cheaper than `readInt32LE`'s checks on every read): [0]
 * the pooled offset, [1] the length of a single read, -1 for a miss. */
const single = new Int32Array(scratch.buffer, scratch.byteOffset + POOL_AT, 2)
/**
 * Node's own Buffer class (`FastBuffer`, which `Buffer.from` and `Buffer.allocUnsafe` construct),
 * reached through the public `Buffer[Symbol.species]`: `new` of it over the read pool is a
 * plain Buffer, without `Buffer.from(arrayBuffer, offset, length)`'s argument checks (two
 * native calls) on every read.
 */
const NodeBuffer = (Buffer as unknown as { [Symbol.species]: unknown })[Symbol.species] as new (
  pool: ArrayBuffer,
  offset: number,
  length: number,
) => Buffer
/** A Buffer over `length` bytes of `pool` at `offset` (Buffer.from where a runtime's species
 * is not Node's Buffer class). */
const poolView: (pool: ArrayBuffer, offset: number, length: number) => Buffer =
  typeof NodeBuffer === 'function' && Object.getPrototypeOf(new NodeBuffer(new ArrayBuffer(8), 0, 8)) === Buffer.prototype
    ? (pool, offset, length) => new NodeBuffer(pool, offset, length)
    : (pool, offset, length) => Buffer.from(pool, offset, length)
const bytes = new Uint8Array(scratch.buffer, scratch.byteOffset + DATA, scratch.length - DATA)
const text = scratch.subarray(DATA)

/** What a `getMany` entry is: -1 (miss), a length in the scratch buffer, or the value itself. */
export type NativeHit = number | Buffer | string

/** What a single read (`cacheGet`/`cacheGets`/`cacheGat`) returns: the value itself when it
 * was too large for the scratch buffer, else nothing, its length (-1 for a miss) left in the
 * scratch buffer (no JS number made in native code on every read). */
export type NativeRead = Buffer | string | undefined

/** Whether the single read that returned `read` found nothing. Must run before the next
 * native read. */
export function missed(read: NativeRead): boolean {
  return read === undefined && single[1] < 0
}

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
  return encoding === 'json' ? parseJson(s) : s
}

/**
 * The value of a single read (`cacheGet`/`cacheGets`/`cacheGat`), `undefined` for a miss.
 * Must run before the next native read.
 */
export function takeRead(read: NativeRead, encoding: Encoding): unknown {
  if (read !== undefined) return decodeValue(read, encoding)
  const length = single[1]
  if (length < 0) return undefined
  if (encoding !== 'buffer') return takeHit(length, 0, encoding)
  const at = single[0]
  if (at >= 0) return poolView(reads.current, at, length)
  const out = takeHit(length, 0, encoding) // the pool was full, or the value larger than a pool
  if (length <= POOL_SIZE) reads.current = newPool() // a larger one would not fit a fresh pool either
  return out
}

/** CAS of the item the last `gets` read. */
export function lastCas(): bigint {
  return scratch.readBigUInt64LE(0)
}

/** Flags of the item the last `gets` read. */
export function lastFlags(): number {
  return scratch.readUInt32LE(8)
}
