// Seeded random sequences of client-library calls for clients-differential.test.ts: one
// sequence is the same list of calls (set, cas from the last gets, incr on text, multi-gets,
// flush_all with a delay, ...) that each client's driver runs against memcached and
// ferrocached in lockstep. Keys come from a small pool so calls meet; values run from
// empty to past the item limit. Every value of the list is JSON (the Python driver reads it).
import { rng } from './prng'

/** A value as the drivers build it: bytes (size, rotation of 0..255), text, or an integer. */
export type ValueSpec = ['b', number, number] | ['s', string] | ['i', number]

/** A ttl in seconds, or `now+N`/`now-N` (a unix time the driver works out when it runs). */
export type Ttl = number | string

export interface Op {
  op: string
  key?: string
  keys?: string[]
  value?: ValueSpec
  items?: [string, ValueSpec][]
  ttl?: Ttl
  delta?: number
  /** memjs: the binary increment's initial value (and then `ttl` its expiry) */
  initial?: number
  delay?: number
  noreply?: boolean
  /** which token a cas sends: the last one gets returned for the key, one less, or `bogus` */
  cas?: 'last' | 'stale' | 'bogus'
  bogus?: number
}

/** What one client's driver can send; the generator draws only from these. */
export interface Caps {
  ops: readonly string[]
  /** keys it may be given (valid ones, and those it should refuse or mangle) */
  keys: readonly string[]
  /** the largest value size drawn (a client that breaks on bigger ones lowers it) */
  maxValue: number
  noreply: boolean
  /** whether flush takes a delay */
  flushDelay: boolean
  /** whether incr/decr take an initial value (binary protocol) */
  initial?: boolean
  ttls: readonly Ttl[]
}

export const ITEM_MAX = 1024 * 1024

const LONG = 'x'.repeat(250)
export const PLAIN_KEYS = ['a', 'b', 'c', 'n', 'k:1', LONG] as const
export const BAD_KEYS = ['x'.repeat(251), 'sp ace', 'ctl\x01', ''] as const
export const UNICODE_KEYS = ['ünï', 'ключ'] as const
/** Every key a sequence can leave stored ('sp ace' sent unchecked stores 'sp'; binary
 * clients store 'sp ace' itself). */
export const RESET_KEYS = [...PLAIN_KEYS, ...UNICODE_KEYS, 'sp', 'sp ace', 'ctl\x01'] as const
export const TTLS: readonly Ttl[] = [0, 0, 0, 100, 3600, -1, 2592000, 2592001, 'now+3600', 'now-10', 2 ** 31 - 1]

// Nothing of 2^63 or more: memcached's incr then reads past the value into its memory
// (docs/protocol.md), so its answer changes from run to run
const NUMERIC = ['0', '5', '42', '9223372036854775806', '-1', ' 7', '007', '1.5', 'abc', '']

/** One sequence of `count` calls for a client with `caps`, from `seed`. */
export function generate(seed: number, caps: Caps, count: number): Op[] {
  const r = rng(seed)
  const int = (n: number): number => Math.floor(r() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
  const chance = (p: number): boolean => r() < p
  // mostly a few plain keys, so calls meet; now and then one of the rest
  const good = (k: string): boolean => !(BAD_KEYS as readonly string[]).includes(k)
  const key = (): string => (chance(0.8) ? pick(PLAIN_KEYS.slice(0, 4)) : pick(caps.keys))
  const size = (): number => {
    const roll = r()
    let n: number
    if (roll < 0.15) n = 0
    else if (roll < 0.6) n = 1 + int(100)
    else if (roll < 0.8) n = 100 + int(20_000)
    else if (roll < 0.9) n = ITEM_MAX - 30 - int(400) // around the limit: the item's header and key count
    else if (roll < 0.95) n = 200_000 + int(600_000)
    else n = ITEM_MAX + int(3) * 300_000 + int(100)
    return Math.min(n, caps.maxValue)
  }
  // A value that reads as commands goes only with a key the server takes: a refused
  // command line makes the server read its value as commands, and memcached holds their
  // replies while the last waits for its data, which ferrocached sends (docs/protocol.md)
  const value = (k = 'a'): ValueSpec => {
    const roll = r()
    if (roll < 0.3) return ['s', pick(NUMERIC)]
    if (roll < 0.4) return ['i', pick([0, 1, 99, 2 ** 53 - 1])]
    if (roll < 0.45) return ['s', pick(['héllo wörld', '☃'.repeat(1 + int(50)), good(k) ? 'x\r\nset a 0 0 1\r\n' : 'x'])]
    return ['b', size(), int(256)]
  }
  const ttl = (): Ttl => pick(caps.ttls)
  // A bad key's noreply command is not one for the server ('delete  noreply' deletes the
  // key 'noreply' and answers): its reply races the next call's (a client that reads it
  // whole drops what came with it), so noreply only with keys a server takes
  const noreply = (k?: string): boolean => caps.noreply && (k === undefined || good(k)) && chance(0.15)
  const noreplyAll = (ks: string[]): boolean => caps.noreply && ks.every(good) && chance(0.15)
  const keys = (): string[] => Array.from({ length: 1 + int(5) }, key)
  const has = (op: string): boolean => caps.ops.includes(op)
  const weights: [string, number][] = (
    [
      ['set', 14], ['get', 10], ['gets', 6], ['add', 5], ['replace', 4], ['append', 4], ['prepend', 3],
      ['cas', 7], ['incr', 6], ['decr', 4], ['delete', 6], ['touch', 4], ['getMulti', 4], ['getsMulti', 2],
      ['setMulti', 3], ['addMulti', 1], ['deleteMulti', 2], ['incrMulti', 1], ['flush', 1], ['stats', 2],
      ['version', 1], ['exist', 3],
    ] as [string, number][]
  ).filter(([op]) => has(op))
  const total = weights.reduce((s, [, w]) => s + w, 0)
  const withNoreply = (op: Op): Op => ({ ...op, noreply: noreply(op.key) })
  const keyed = (op: Op): Op => {
    const k = key()
    return { ...op, key: k, value: value(k) }
  }
  const ops: Op[] = []
  // a delayed flush after an immediate one shows again, in memcached only, the items the
  // immediate one hid that its maintainer has not reaped yet (docs/protocol.md): so
  // delays only before any immediate flush
  let flushed = false
  for (let i = 0; i < count; i++) {
    let roll = r() * total
    const name = weights.find(([, w]) => (roll -= w) < 0)?.[0] ?? weights[0]![0]
    switch (name) {
      case 'set':
      case 'add':
      case 'replace':
      case 'append':
      case 'prepend':
        ops.push(withNoreply(keyed({ op: name, ttl: ttl() })))
        break
      case 'cas': {
        const which = pick(['last', 'last', 'last', 'stale', 'bogus'] as const)
        ops.push(withNoreply(keyed({ op: name, ttl: ttl(), cas: which, bogus: pick([1, 123456789, 2 ** 53 - 1]) })))
        break
      }
      case 'incr':
      case 'decr':
        // never noreply: an increment of a value of only white space is one memcached
        // answers from the bytes its slab chunk held before (docs/protocol.md), which the
        // drivers tell apart only at the call itself (its noreply is drawn and dropped, so
        // every seed keeps its sequence)
        ops.push({ ...withNoreply({ op: name, key: key(), delta: pick([0, 1, 5, 1000, 2 ** 32, 2 ** 53 - 1]) }), noreply: false })
        if (caps.initial === true && chance(0.5)) Object.assign(ops.at(-1)!, { initial: pick([0, 7, 2 ** 53 - 1]), ttl: ttl() })
        break
      case 'incrMulti':
        ops.push({ op: name, keys: keys(), delta: pick([1, 5]) })
        break
      case 'delete':
        ops.push(withNoreply({ op: name, key: key() }))
        break
      case 'touch':
        ops.push(withNoreply({ op: name, key: key(), ttl: ttl() }))
        break
      case 'get':
      case 'gets':
        ops.push({ op: name, key: key() })
        break
      case 'getMulti':
      case 'getsMulti':
      case 'exist':
      case 'deleteMulti': {
        const ks = keys()
        ops.push({ op: name, keys: ks, noreply: name === 'deleteMulti' && noreplyAll(ks) })
        break
      }
      case 'setMulti':
      case 'addMulti':
        ops.push({ op: name, items: keys().map((k) => [k, value(k)] as [string, ValueSpec]), ttl: ttl() })
        ops.at(-1)!.noreply = noreplyAll(ops.at(-1)!.items!.map(([k]) => k))
        break
      case 'flush':
        // a delay long enough never to come due inside a run, which the next run's
        // flush_all (the reset) overrides
        ops.push({ op: name, delay: caps.flushDelay && !flushed && chance(0.5) ? pick([100, 3600]) : 0, noreply: noreply() })
        flushed ||= ops.at(-1)!.delay === 0
        break
      default:
        ops.push({ op: name })
    }
  }
  return ops
}
