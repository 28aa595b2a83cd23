// The soak's well-behaved load and its bookkeeping: writers that own disjoint keys (so each
// key's acknowledged history is one connection's order), the last acknowledged state of
// every key, and the checks of what a server holds against it.
//
// Two key sets:
// - durable `d:<i>`: always DURABLE_VALUE bytes, no TTL, all in one slab page with room to
//   spare. No other key's value falls in that class (mixed sizes skip `Tracker.avoid`), a
//   class of one page is never a donor for the page mover, and it never runs out of
//   chunks: nothing may evict them, so every acknowledged durable write must be present.
// - mixed `m:<i>`: 1 byte to 1 MiB, skewed small; some with a TTL, some deleted. More than
//   the item memory, so they are evicted: missing ones are counted against `evictions`.
import { Client } from '../src'

/** Value size of every durable write (2000 of them fit in one 1 MiB page of 480 B chunks). */
export const DURABLE_VALUE = 400
/** Largest value: 1 MB (fits the default 1 MiB item limit with its key and header). */
export const MAX_VALUE = 1_000_000

/** xorshift32 seeded per worker: reproducible choices. */
export function rng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 4294967296
  }
}

// Values are windows of one random pool, placed by a hash of (key, version): a value names
// its version without being stored, and a 1 MiB value costs no allocation.
const POOL = (() => {
  const next = rng(12345)
  const b = Buffer.allocUnsafe(3 * MAX_VALUE)
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(next() * 4294967296), i)
  return b
})()

function hash(s: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

export function valueFor(key: string, version: number, size: number): Buffer {
  const off = hash(`${key}#${version}`) % (POOL.length - size + 1)
  return POOL.subarray(off, off + size)
}

/** 1 B .. 1 MB: 60 % up to 100 B, 30 % up to 8 KiB, 8 % up to 64 KiB, 2 % up to 1 MB;
 * sizes within `avoid` are moved above it. */
export function mixedSize(next: () => number, avoid: [number, number]): number {
  const r = next()
  const logUniform = (lo: number, hi: number): number => Math.floor(Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo))))
  let size: number
  if (r < 0.6) size = 1 + Math.floor(next() * 100)
  else if (r < 0.9) size = logUniform(101, 8192)
  else if (r < 0.98) size = logUniform(8192, 65536)
  else size = logUniform(65536, MAX_VALUE)
  if (size >= avoid[0] && size <= avoid[1]) size = avoid[1] + 1 + (size % 2000)
  return Math.min(size, MAX_VALUE)
}

/** The last acknowledged state of a key. */
export interface KeyState {
  version: number
  size: number
  present: boolean
  /** With a TTL: when it may expire at the earliest / must have expired by (ms). */
  expiresFrom: number
  expiresBy: number
  /** A request on it failed without a clear answer (timeout, out of memory): not checked. */
  uncertain: boolean
}

export class LoadCounters {
  sets = 0
  durableSets = 0
  deletes = 0
  gets = 0
  getHits = 0
  bytesWritten = 0
  failed = 0
  /** A live get returned bytes that are not the last acknowledged value. */
  wrongValues = 0
  /** A live get found a key that was deleted. */
  resurrected = 0
  /** Set sizes by bucket, to show the distribution. */
  sizes = { upTo100: 0, upTo8k: 0, upTo64k: 0, upTo1m: 0 }
  largest = 0
}

export interface LoadShape {
  durableKeys: number
  mixedKeys: number
  writers: number
}

export const durableKey = (i: number): string => `d:${i}`
export const mixedKey = (i: number): string => `m:${i}`

export class Tracker {
  readonly keys = new Map<string, KeyState>()
  readonly counters = new LoadCounters()
  /** Mixed value sizes never used (the durable keys' slab class); set before the load. */
  avoid: [number, number] = [0, 0]

  constructor(readonly shape: LoadShape) {}

  /** Writes every durable key once (before anything else, so their class gets its pages). */
  async fillDurable(client: Client): Promise<void> {
    const keys = Array.from({ length: this.shape.durableKeys }, (_, i) => durableKey(i))
    for (let at = 0; at < keys.length; at += 100) {
      await Promise.all(keys.slice(at, at + 100).map((k) => this.set(client, k, DURABLE_VALUE, 0)))
    }
  }

  async set(client: Client, key: string, size: number, ttlMs: number): Promise<void> {
    const prev = this.keys.get(key)
    const version = (prev?.version ?? 0) + 1
    const sentAt = Date.now()
    const c = this.counters
    try {
      await client.set(key, valueFor(key, version, size), ttlMs ? { ttl: ttlMs } : undefined)
      const ackAt = Date.now()
      this.keys.set(key, {
        version,
        size,
        present: true,
        // the server counts whole seconds: it may expire up to a second early or late
        expiresFrom: ttlMs ? sentAt + ttlMs - 1000 : 0,
        expiresBy: ttlMs ? ackAt + ttlMs + 1000 : 0,
        uncertain: false,
      })
      c.sets++
      c.bytesWritten += size
      if (key.startsWith('d:')) c.durableSets++
      if (size <= 100) c.sizes.upTo100++
      else if (size <= 8192) c.sizes.upTo8k++
      else if (size <= 65536) c.sizes.upTo64k++
      else c.sizes.upTo1m++
      c.largest = Math.max(c.largest, size)
    } catch {
      c.failed++
      this.keys.set(key, { version, size, present: true, expiresFrom: 0, expiresBy: 0, uncertain: true })
    }
  }

  async delete(client: Client, key: string): Promise<void> {
    const prev = this.keys.get(key)
    try {
      await client.delete(key)
      this.keys.set(key, {
        version: prev?.version ?? 0,
        size: 0,
        present: false,
        expiresFrom: 0,
        expiresBy: 0,
        uncertain: false,
      })
      this.counters.deletes++
    } catch {
      this.counters.failed++
      if (prev) prev.uncertain = true
    }
  }

  /** A get whose answer must agree with the key's last acknowledged state. */
  async check(client: Client, key: string): Promise<void> {
    const c = this.counters
    let got: Buffer | undefined
    try {
      got = await client.get(key)
    } catch {
      c.failed++
      return
    }
    c.gets++
    const st = this.keys.get(key)
    if (got === undefined) return
    c.getHits++
    if (!st || st.uncertain) return
    if (!st.present) c.resurrected++
    else if (!got.equals(valueFor(key, st.version, st.size))) c.wrongValues++
  }

  /** One writer until `deadline`: owns keys i with i % writers == w. */
  async writer(client: Client, w: number, deadline: number): Promise<void> {
    const { durableKeys, mixedKeys, writers } = this.shape
    const next = rng(1000 + w)
    const own = (n: number): number => {
      const slots = Math.max(1, Math.floor((n - 1 - w) / writers) + 1)
      return w + writers * Math.floor(next() * slots)
    }
    while (Date.now() < deadline) {
      const r = next()
      if (r < 0.1) await this.set(client, durableKey(own(durableKeys)), DURABLE_VALUE, 0)
      else if (r < 0.65) {
        const ttl = next() < 0.2 ? 1000 + Math.floor(next() * 3000) : 0
        await this.set(client, mixedKey(own(mixedKeys)), mixedSize(next, this.avoid), ttl)
      } else if (r < 0.75) await this.delete(client, mixedKey(own(mixedKeys)))
      else await this.check(client, next() < 0.8 ? mixedKey(own(mixedKeys)) : durableKey(own(durableKeys)))
    }
  }
}

/** What the final read of every tracked key found. */
export class Verdict {
  checked = 0
  uncertain = 0
  present = 0
  /** Deleted and still absent. */
  absentAsDeleted = 0
  /** Missing with the TTL passed. */
  expired = 0
  missingDurable = 0
  missingMixed = 0
  /** Present with bytes other than the last acknowledged value. */
  wrongValue = 0
  /** Deleted but present. */
  resurrected = 0
  /** Present although the TTL passed more than a second ago. */
  notExpired = 0
  /** Keys found present, with their bytes' version (for comparing a restart or a replica). */
  readonly found = new Map<string, number>()
}

/** Reads every tracked key from `client` and classifies it against its last acknowledged state. */
export async function verify(tracker: Tracker, client: Client): Promise<Verdict> {
  const v = new Verdict()
  const keys = [...tracker.keys.keys()].sort()
  for (let at = 0; at < keys.length; at += 200) {
    const batch = keys.slice(at, at + 200)
    const readAt = Date.now()
    const got = await client.getMany(batch)
    for (const key of batch) {
      const st = tracker.keys.get(key)!
      v.checked++
      if (st.uncertain) {
        v.uncertain++
        continue
      }
      const value = got.get(key)
      if (!st.present) {
        if (value === undefined) v.absentAsDeleted++
        else v.resurrected++
        continue
      }
      if (value === undefined) {
        if (st.expiresFrom && readAt >= st.expiresFrom) v.expired++
        else if (key.startsWith('d:')) v.missingDurable++
        else v.missingMixed++
        continue
      }
      if (!value.equals(valueFor(key, st.version, st.size))) v.wrongValue++
      else {
        v.present++
        v.found.set(key, st.version)
        if (st.expiresBy && Date.now() > st.expiresBy) v.notExpired++
      }
    }
  }
  return v
}

/** Keys whose bytes differ between two servers, and keys only one of them holds. */
export interface Comparison {
  compared: number
  equal: number
  different: number
  onlyFirst: number
  onlySecond: number
  /** Keys only the second server has although their last acknowledged operation was a
   * delete (the first evicted them before the delete, which then changed nothing there). */
  deletedOnlySecond: number
  /** Keys whose TTL ends around the comparison: either answer is right, not compared. */
  expiring: number
  /** A few of the keys that differ or are on one side only, with their last known state. */
  samples: string[]
}

/** Compares every tracked key on two servers (keys with a TTL about to end are skipped). */
export async function compareServers(a: Client, b: Client, tracker: Tracker): Promise<Comparison> {
  const c: Comparison = {
    compared: 0,
    equal: 0,
    different: 0,
    onlyFirst: 0,
    onlySecond: 0,
    deletedOnlySecond: 0,
    expiring: 0,
    samples: [],
  }
  const keys = [...tracker.keys.keys()].sort()
  for (let at = 0; at < keys.length; at += 200) {
    const batch = keys.slice(at, at + 200)
    const readAt = Date.now()
    const [x, y] = await Promise.all([a.getMany(batch), b.getMany(batch)])
    for (const key of batch) {
      const st = tracker.keys.get(key)!
      if (st.expiresFrom && readAt >= st.expiresFrom - 2000 && readAt <= st.expiresBy + 2000) {
        c.expiring++
        continue
      }
      c.compared++
      const p = x.get(key)
      const q = y.get(key)
      let kind = ''
      if (p === undefined && q === undefined) c.equal++
      else if (p === undefined) {
        c.onlySecond++
        kind = 'only second'
        if (!st.present && !st.uncertain) (c.deletedOnlySecond++, (kind = 'deleted, only second'))
      }
      else if (q === undefined) (c.onlyFirst++, (kind = 'only first'))
      else if (p.equals(q)) c.equal++
      else (c.different++, (kind = 'different'))
      if (kind && (c.samples.length < 10 || kind.startsWith('deleted'))) c.samples.push(`${key} ${kind}: ${JSON.stringify(st)}`)
    }
  }
  return c
}
