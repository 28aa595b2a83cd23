// Consistent hashing as libmemcached's weighted ketama and twemproxy's
// `hash: md5, distribution: ketama` compute it, so a key lands on the same server as
// with those tools: 160 points per server (40 MD5 digests of `name-i`, 4 points each,
// little-endian words), scaled by weight in 32-bit float arithmetic, sorted; a key
// goes to the first point at or after the MD5 of the key, wrapping at the end.

import { createHash } from 'node:crypto'

/** libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA / twemproxy's KETAMA_POINTS_PER_SERVER. */
const POINTS_PER_SERVER = 160
const POINTS_PER_HASH = 4
/** Both tools leave the port out of the point names for memcached's default port. */
const DEFAULT_PORT = 11211

export interface KetamaNode {
  host: string
  port: number
  /** Relative share of the points (positive integer). */
  weight: number
  /** Hashed instead of `host:port` when set (twemproxy's optional server name). */
  name?: string
}

/** The string whose digests place the node: `host:port`, or `host` on port 11211. */
export function ketamaName(node: Pick<KetamaNode, 'host' | 'port' | 'name'>): string {
  if (node.name !== undefined) return node.name
  return node.port === DEFAULT_PORT ? node.host : `${node.host}:${node.port}`
}

function md5(text: string): Buffer {
  return createHash('md5').update(text).digest()
}

/** The 32-bit hash of a key: the first four MD5 bytes, little-endian (hash_md5). */
export function ketamaHash(key: string | Uint8Array): number {
  return createHash('md5').update(key).digest().readUInt32LE(0)
}

const f32 = Math.fround

/**
 * How many points a node gets: floorf(pct * 160 / 4 * live + 1e-10) * 4 with every step
 * rounded to float as C does (x86-64 SSE evaluates float expressions in float), so a
 * weight split that is not exact truncates the same way.
 */
export function pointsFor(weight: number, totalWeight: number, live: number): number {
  const pct = f32(f32(weight) / f32(totalWeight))
  const scaled = f32(f32(f32(pct * POINTS_PER_SERVER) / POINTS_PER_HASH) * f32(live))
  // `+ 0.0000000001` is a double addition whose result floorf takes back as a float.
  return Math.floor(f32(scaled + 0.0000000001)) * POINTS_PER_HASH
}

/** A sorted continuum of points over some nodes; `lookup` gives a node's index. */
export class Continuum {
  /** Point values, ascending. */
  readonly #points: Uint32Array
  /** Index (into the nodes given to the constructor) of the node owning each point. */
  readonly #owners: Uint32Array

  /** `nodes` in the pool's order; `live[i] === false` leaves node i out (ejected). */
  constructor(nodes: readonly KetamaNode[], live?: readonly boolean[]) {
    const active: number[] = []
    let total = 0
    nodes.forEach((n, i) => {
      if (live === undefined || live[i] !== false) {
        active.push(i)
        total += n.weight
      }
    })
    const pairs: Array<[number, number]> = []
    for (const i of active) {
      const node = nodes[i]!
      const digests = pointsFor(node.weight, total, active.length) / POINTS_PER_HASH
      const name = ketamaName(node)
      for (let d = 0; d < digests; d++) {
        const digest = md5(`${name}-${d}`)
        for (let x = 0; x < POINTS_PER_HASH; x++) pairs.push([digest.readUInt32LE(x * 4), i])
      }
    }
    // Equal points (vanishingly rare) go in pool order; C's qsort leaves theirs unspecified.
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    this.#points = Uint32Array.from(pairs, (p) => p[0])
    this.#owners = Uint32Array.from(pairs, (p) => p[1])
  }

  /** Number of points. */
  get size(): number {
    return this.#points.length
  }

  /** The node index for a 32-bit hash: first point >= hash, wrapping; -1 when empty. */
  lookupHash(hash: number): number {
    const points = this.#points
    if (points.length === 0) return -1
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid]! < hash) lo = mid + 1
      else hi = mid
    }
    return this.#owners[hi === points.length ? 0 : hi]!
  }

  /** The node index for a key; -1 when no node is live. */
  lookup(key: string | Uint8Array): number {
    return this.lookupHash(ketamaHash(key))
  }
}
