// How each request looks on the wire, in the two dialects of memcached's protocol: meta
// commands (`mg`/`ms`/`md`/`ma`: one reply per request, flags and CAS in one round trip;
// the default) and the classic text commands (`get`/`set`/`delete`/`incr`…), which
// proxies such as twemproxy forward. `flush_all` and `stats` are the same in both.
import type { Write } from '../options'
import type { Encoding } from '../types'
import type { Pending } from './connection'
import { Batch, batchStatuses, FOUND, HAS, META_STATUSES, Request, type Kind, type Settle } from './requests'
import { TEXT_STATUSES, TextMultiGet, TextRequest } from './text-replies'

/** The dialect spoken: `'twemproxy'` is `'text'` without what twemproxy does not forward. */
export type Protocol = 'meta' | 'text' | 'twemproxy'

export type StoreMode = 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas'

export type Reject = (err: Error) => void

/** A batch's outcome: values in the order of its keys (reads), how many succeeded (writes). */
export interface BatchResult {
  values: unknown[]
  hits: number
}

export interface Wire {
  readonly protocol: Protocol
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
  ): { pending: Pending; lines: string[] }
  get(key: string): string
  gets(key: string): string
  gat(key: string, exptime: number): string
  touch(key: string, exptime: number): string
  /** `has`'s request; `hasKind` is how its reply is read. */
  has(key: string): string
  readonly hasKind: Kind
  delete(key: string): string
  arith(key: string, incr: boolean, delta: bigint): string
  /** A store's text before the value's byte length, and after it. */
  store(key: string, mode: StoreMode, w: Write, cas: bigint | undefined): [string, string]
  /** A request every server answers, and whether a reply line is its answer (the probe
   * that brings a dead server back). */
  readonly probe: string
  probeAnswered(head: string): boolean
}

const META_BATCH = batchStatuses(META_STATUSES)
const TEXT_BATCH = batchStatuses(TEXT_STATUSES)

const META_MODE: Record<StoreMode, string> = { set: '', add: ' ME', replace: ' MR', append: ' MA', prepend: ' MP', cas: '' }

/** ` T<exptime> F<flags>` as far as they differ from the defaults. */
function metaFlags(w: Write): string {
  return (w.exptime === 0 ? '' : ` T${w.exptime}`) + (w.flags === 0 ? '' : ` F${w.flags}`)
}

export const META: Wire = {
  protocol: 'meta',
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
  probe: 'mn\r\n',
  probeAnswered: (head) => head === 'MN',
}

/** Keys per `get` line of a text getMany: lines stay short (memcached closes a
 * connection on request lines over 2048 bytes, multigets aside; proxies buffer them). */
export const TEXT_KEYS_PER_GET = 100

function textWire(protocol: 'text' | 'twemproxy'): Wire {
  return {
    protocol,
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
    probe: 'version\r\n',
    probeAnswered: (head) => head.startsWith('VERSION '),
  }
}

export const TEXT = textWire('text')
export const TWEMPROXY = textWire('twemproxy')

export function wireFor(protocol: Protocol): Wire {
  return protocol === 'meta' ? META : protocol === 'text' ? TEXT : TWEMPROXY
}
