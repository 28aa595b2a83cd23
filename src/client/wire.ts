// How each request looks on the wire, in the two dialects of memcached's protocol: meta
// commands (`mg`/`ms`/`md`/`ma`: one reply per request, flags and CAS in one round trip;
// the default) and the classic text commands (`get`/`set`/`delete`/`incr`…), which
// proxies such as twemproxy forward. `flush_all` and `stats` are the same in both. The
// binary protocol's requests are in binary.ts.
import type { Write } from '../options'
import type { Encoding } from '../types'
import type { Pending } from './connection'
import { BINARY } from './binary'
import { Batch, batchStatuses, FOUND, HAS, META_STATUSES, Request, StatsRequest, type Kind, type Settle } from './requests'
import { TEXT_STATUSES, TextMultiGet, TextRequest } from './text-replies'

/** The dialect spoken: `'twemproxy'` is `'text'` without what twemproxy does not forward;
 * `'binary'` is memcached's binary protocol (with SASL logins). */
export type Protocol = 'meta' | 'text' | 'twemproxy' | 'binary'

/** A request's bytes: a text line (or lines), or a binary packet. */
export type Bytes = string | Uint8Array

export type StoreMode = 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas'

export type Reject = (err: Error) => void

/** A batch's outcome: values in the order of its keys (reads), how many succeeded (writes). */
export interface BatchResult {
  values: unknown[]
  hits: number
}

export interface Wire {
  readonly protocol: Protocol
  /** Replies are binary packets, not lines (`Connection` frames them by their headers). */
  readonly binary: boolean
  /** What reads the replies of one request of `kind`. */
  one(kind: Kind, deadline: number, encoding: Encoding, server: string, resolve: Settle, reject: Reject): Pending
  /** What reads the replies of `count` stores or deletes sent together. */
  many(count: number, deadline: number, server: string, resolve: (r: BatchResult) => void, reject: Reject): Pending
  /** The requests reading `keys` from one server, and what reads their replies. */
  getMany(
    keys: readonly string[],
    deadline: number,
    encoding: Encoding,
    server: string,
    resolve: (r: BatchResult) => void,
    reject: Reject,
  ): { pending: Pending; lines: Bytes[] }
  get(key: string): Bytes
  gets(key: string): Bytes
  gat(key: string, exptime: number): Bytes
  touch(key: string, exptime: number): Bytes
  /** `has`'s request; `hasKind` is how its reply is read. */
  has(key: string): Bytes
  readonly hasKind: Kind
  delete(key: string): Bytes
  arith(key: string, incr: boolean, delta: bigint): Bytes
  /** A store's text before the value's byte length, and after it (binary: the packet
   * before the value, and nothing). */
  store(key: string, mode: StoreMode, w: Write, cas: bigint | undefined): [Bytes, string]
  /** A `set` and a `delete` of a batch made by `many` (binary: the quiet opcodes)… */
  batchStore(key: string, w: Write): [Bytes, string]
  batchDelete(key: string): Bytes
  /** …and what follows the batch's requests (binary: the noop that ends it). */
  batchEnd(): Bytes | undefined
  /** `flush_all` after `seconds` (0: now), read as `OK`. */
  flush(seconds: number): Bytes
  /** `stats`, `stats slabs` and `stats items` in one request, and what reads them. */
  stats(
    deadline: number,
    server: string,
    resolve: (stats: Map<string, string>) => void,
    reject: Reject,
  ): { pending: Pending; request: Bytes }
  /** A request every server answers, and whether a reply is its answer (the probe that
   * brings a dead server back): a line `head`, or binary: the packet at `buf[at]`. */
  readonly probe: Bytes
  probeAnswered(head: string, buf: Buffer, at: number): boolean
}

const META_BATCH = batchStatuses(META_STATUSES)
const TEXT_BATCH = batchStatuses(TEXT_STATUSES)

const META_MODE: Record<StoreMode, string> = { set: '', add: ' ME', replace: ' MR', append: ' MA', prepend: ' MP', cas: '' }

/** ` T<exptime> F<flags>` as far as they differ from the defaults. */
function metaFlags(w: Write): string {
  return (w.exptime === 0 ? '' : ` T${w.exptime}`) + (w.flags === 0 ? '' : ` F${w.flags}`)
}

/** flush_all and the three stats, the same in meta and text. */
const TEXT_FLUSH_STATS: Pick<Wire, 'flush' | 'stats'> = {
  flush: (seconds) => `flush_all ${seconds}\r\n`,
  stats: (deadline, server, resolve, reject) => ({
    pending: new StatsRequest(deadline, 3, server, resolve, reject),
    request: 'stats\r\nstats slabs\r\nstats items\r\n',
  }),
}

export const META: Wire = {
  protocol: 'meta',
  binary: false,
  one: (kind, deadline, encoding, server, resolve, reject) => new Request(deadline, kind, encoding, server, resolve, reject),
  many: (count, deadline, server, resolve, reject) => new Batch(deadline, count, undefined, META_BATCH, server, resolve, reject),
  getMany: (keys, deadline, encoding, server, resolve, reject) => ({
    pending: new Batch(deadline, keys.length, encoding, META_BATCH, server, resolve, reject),
    lines: keys.map((k) => `mg ${k} v\r\n`),
  }),
  get: (key) => `mg ${key} v\r\n`,
  gets: (key) => `mg ${key} v f c\r\n`,
  gat: (key, exptime) => `mg ${key} v T${exptime}\r\n`,
  touch: (key, exptime) => `mg ${key} T${exptime}\r\n`,
  // `mg` with no flags: HD or EN, no value sent. Servers count it as a get.
  has: (key) => `mg ${key}\r\n`,
  hasKind: FOUND,
  delete: (key) => `md ${key}\r\n`,
  arith: (key, incr, delta) => `ma ${key} v ${incr ? 'MI' : 'MD'}${delta === 1n ? '' : ` D${delta}`}\r\n`,
  store: (key, mode, w, cas) => [`ms ${key} `, metaFlags(w) + META_MODE[mode] + (cas === undefined ? '' : ` C${cas}`)],
  batchStore: (key, w) => [`ms ${key} `, metaFlags(w)],
  batchDelete: (key) => `md ${key}\r\n`,
  batchEnd: () => undefined,
  ...TEXT_FLUSH_STATS,
  probe: 'mn\r\n',
  probeAnswered: (head) => head === 'MN',
}

/** Keys per `get` line of a text getMany: lines stay short (memcached closes a
 * connection on request lines over 2048 bytes, multigets aside; proxies buffer them). */
export const TEXT_KEYS_PER_GET = 100

function textWire(protocol: 'text' | 'twemproxy'): Wire {
  return {
    protocol,
    binary: false,
    one: (kind, deadline, encoding, server, resolve, reject) => new TextRequest(deadline, kind, encoding, server, resolve, reject),
    many: (count, deadline, server, resolve, reject) => new Batch(deadline, count, undefined, TEXT_BATCH, server, resolve, reject),
    getMany: (keys, deadline, encoding, server, resolve, reject) => {
      const unique = [...new Set(keys)]
      const lines: string[] = []
      for (let i = 0; i < unique.length; i += TEXT_KEYS_PER_GET) {
        lines.push(`get ${unique.slice(i, i + TEXT_KEYS_PER_GET).join(' ')}\r\n`)
      }
      return { pending: new TextMultiGet(deadline, keys, lines.length, encoding, server, resolve, reject), lines }
    },
    get: (key) => `get ${key}\r\n`,
    gets: (key) => `gets ${key}\r\n`,
    gat: (key, exptime) => `gat ${exptime} ${key}\r\n`,
    touch: (key, exptime) => `touch ${key} ${exptime}\r\n`,
    // No text command answers "is it there" without the value: `get`, value dropped.
    has: (key) => `get ${key}\r\n`,
    hasKind: HAS,
    delete: (key) => `delete ${key}\r\n`,
    arith: (key, incr, delta) => `${incr ? 'incr' : 'decr'} ${key} ${delta}\r\n`,
    // append/prepend take flags and exptime in the syntax and ignore them.
    store: (key, mode, w, cas) => [`${mode} ${key} ${w.flags} ${w.exptime} `, cas === undefined ? '' : ` ${cas}`],
    batchStore: (key, w) => [`set ${key} ${w.flags} ${w.exptime} `, ''],
    batchDelete: (key) => `delete ${key}\r\n`,
    batchEnd: () => undefined,
    ...TEXT_FLUSH_STATS,
    probe: 'version\r\n',
    probeAnswered: (head) => head.startsWith('VERSION '),
  }
}

export const TEXT = textWire('text')
export const TWEMPROXY = textWire('twemproxy')

export function wireFor(protocol: Protocol): Wire {
  return protocol === 'meta' ? META : protocol === 'text' ? TEXT : protocol === 'binary' ? BINARY : TWEMPROXY
}
