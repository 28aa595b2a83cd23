// The native cache operations. The batch ones are `#[napi]` functions typed in the
// generated native/index.d.ts; the hot single-key ones are napi callbacks registered by
// hand for speed (crates/ferrocache-node/src/cache/ops.rs), so their types live here.
// Every one takes the engine's id (`NativeCache.id`). A read returns nothing, its length
// (-1 for a miss) left in the scratch buffer and its bytes in the read pool or the scratch
// buffer (see src/scratch.ts `takeRead`), or the value itself when it is too large for the
// scratch buffer (a string when `asString`).

import { native, type NativeBinding } from './native'
import type { NativeRead } from './scratch'

type Value = string | Uint8Array

export interface HotOps {
  /** `asString` left out (not passed at all) for a Buffer read: one napi read fewer. */
  cacheGet(id: number, key: string, asString?: boolean): NativeRead
  /** As cacheGet; the item's CAS and flags go to the scratch buffer too. */
  cacheGets(id: number, key: string, asString?: boolean): NativeRead
  cacheGat(id: number, key: string, exptime: number, asString?: boolean): NativeRead
  cacheHas(id: number, key: string): boolean
  cacheSet(id: number, key: string, value: Value, flags: number, exptime: number): boolean
  cacheAdd(id: number, key: string, value: Value, flags: number, exptime: number): boolean
  cacheReplace(id: number, key: string, value: Value, flags: number, exptime: number): boolean
  cacheAppend(id: number, key: string, value: Value): boolean
  cachePrepend(id: number, key: string, value: Value): boolean
  cacheTouch(id: number, key: string, exptime: number): boolean
  cacheDelete(id: number, key: string): boolean
}

export const ops = native as NativeBinding & HotOps
