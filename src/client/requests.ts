// What each request makes of its replies (meta protocol: VA/EN/HD/NS/EX/NF/MN, and the
// classic OK / STAT…END for flush_all and stats). One object per request, settled once.
// The status lines (replies without a value) of either dialect are read from a table:
// `Statuses`, here for meta, in text-replies.ts for text; batches of both are `Batch`.
import type { Pending } from './connection'
import { cacheError, serverError } from './errors'
import type { Encoding } from '../types'
import { parseJson } from '../encoding'

/** How a single reply is read. */
export const GET = 0 // mg k v            → value | undefined
export const GETS = 1 // mg k v f c       → { value, cas, flags } | undefined
export const FOUND = 2 // mg k [T] / md k → true on HD, false on EN/NF
export const STORE = 3 // ms              → true on HD, false on NS/EX/NF
export const ARITH = 4 // ma k v          → bigint | undefined
export const OK = 5 // flush_all          → undefined on OK
export const HAS = 6 // text `get k`      → true on a value, false on a miss (meta: FOUND)
export type Kind = typeof GET | typeof GETS | typeof FOUND | typeof STORE | typeof ARITH | typeof OK | typeof HAS

export type Settle = (value: unknown) => void

/** An error line of either protocol: ERROR, CLIENT_ERROR …, SERVER_ERROR …. */
export function isError(head: string): boolean {
  const c = head.charCodeAt(0)
  return (c === 67 /*C*/ || c === 83 /*S*/ || c === 69 /*E*/) && /^(CLIENT_ERROR|SERVER_ERROR|ERROR)\b/.test(head)
}

/** A value's bytes as the encoding asks: a private copy, a string, or parsed JSON. */
export function decode(buf: Buffer, start: number, end: number, encoding: Encoding): unknown {
  if (encoding === 'buffer') {
    const out = Buffer.allocUnsafe(end - start)
    buf.copy(out, 0, start, end)
    return out
  }
  const text = buf.toString('utf8', start, end)
  return encoding === 'json' ? parseJson(text) : text
}

/** The error for a reply that fits no request; marks `p` broken (the connection closes
 * and fails what is queued: `p` itself should settle with this error first). */
export function unexpected(head: string, server: string, p: Pending): Error {
  // Replies are matched by position: after one that fits no request, none can be trusted.
  p.broken = true
  return cacheError(Error, 'FERROCACHE_SERVER_ERROR', `unexpected reply from ${server}: ${head.slice(0, 100)}`, server)
}

/** A bare `ERROR`: the server does not know the command. A meta-capable server never
 * answers one to the Client's requests; a server without meta commands (memcached before
 * 1.6) answers every one, and reads a store's value as a command line of its own, whose
 * reply would be taken for the next request's. Marks `p` broken: the connection closes. */
export function unknownCommand(server: string, p: Pending): Error {
  p.broken = true
  // the requests queued behind fail with it too: the reason, not "out of step"
  p.failure = cacheError(
    Error,
    'FERROCACHE_SERVER_ERROR',
    `${server} answered ERROR: it does not know the command (memcached before 1.6 has no meta commands: use protocol 'text'); connection closed`,
    server,
  )
  return p.failure
}

/** A dialect's status lines (replies without a value), indexed by `Kind`: the lines that
 * answer a request of that kind, and the result each settles it with. */
export type Statuses = ReadonlyArray<ReadonlyMap<string, unknown>>

/** `Statuses` from a table written out for every kind. */
export function statuses(table: Record<Kind, Record<string, unknown>>): Statuses {
  const byKind: Array<ReadonlyMap<string, unknown>> = []
  for (const [kind, lines] of Object.entries(table)) byKind[Number(kind)] = new Map(Object.entries(lines))
  return byKind
}

/** The result status line `head` gives a request of `kind`; a line the table does not
 * list throws: the server's error, or one that fits no request (marking `p` broken). */
export function statusResult(table: Statuses, kind: Kind, head: string, server: string, p: Pending): unknown {
  const lines = table[kind]
  const result = lines.get(head)
  if (result !== undefined || lines.has(head)) return result
  throw isError(head) ? serverError(head, server) : unexpected(head, server, p)
}

/** The lines a store or delete of a batch may get: true where it did something (text's
 * TOUCHED among them, though a touch is never batched). */
export function batchStatuses(table: Statuses): ReadonlyMap<string, unknown> {
  return new Map([...table[STORE], ...table[FOUND]])
}

const MISS = { EN: undefined }
const FOUND_OR_NOT = { HD: true, EN: false, NF: false }
export const META_STATUSES = statuses({
  [GET]: MISS,
  [GETS]: MISS,
  [FOUND]: FOUND_OR_NOT,
  [HAS]: FOUND_OR_NOT,
  [STORE]: { HD: true, NS: false, EX: false, NF: false },
  [ARITH]: { NF: undefined },
  [OK]: { OK: undefined },
})

/** A request answered by one reply line (plus a value for VA). */
export class Request implements Pending {
  broken = false
  constructor(
    readonly deadline: number,
    private readonly kind: Kind,
    private readonly encoding: Encoding,
    private readonly server: string,
    private readonly resolve: Settle,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(head: string, buf: Buffer, start: number, end: number): boolean {
    try {
      this.resolve(this.#read(head, buf, start, end))
    } catch (err) {
      this.reject(err as Error)
    }
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }

  #read(head: string, buf: Buffer, start: number, end: number): unknown {
    if (head.startsWith('VA ')) {
      switch (this.kind) {
        case GET:
          return decode(buf, start, end, this.encoding)
        case GETS: {
          let flags = 0
          let cas = 0n
          for (const t of head.split(' ')) {
            if (t[0] === 'f') flags = Number(t.slice(1))
            else if (t[0] === 'c') cas = BigInt(t.slice(1))
          }
          return { value: decode(buf, start, end, this.encoding), cas, flags }
        }
        case ARITH:
          return BigInt(buf.toString('latin1', start, end))
      }
    }
    if (head === 'ERROR') throw unknownCommand(this.server, this)
    return statusResult(META_STATUSES, this.kind, head, this.server, this)
  }
}

/** `count` pipelined requests to one server, one reply each, settled together: with an
 * `encoding`, meta gets' values (undefined for misses); for stores and deletes (of either
 * dialect: `lines` from `batchStatuses`), how many did something. The first error rejects
 * the whole batch once every reply is in. */
export class Batch implements Pending {
  broken = false
  readonly values: unknown[] = []
  #hits = 0
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    private readonly count: number,
    private readonly encoding: Encoding | undefined,
    private readonly lines: ReadonlyMap<string, unknown>,
    private readonly server: string,
    private readonly resolve: (result: { values: unknown[]; hits: number }) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(head: string, buf: Buffer, start: number, end: number): boolean {
    const status = this.lines.get(head)
    if (this.encoding !== undefined && head.startsWith('VA ')) {
      try {
        this.values.push(decode(buf, start, end, this.encoding))
      } catch (err) {
        this.#error ??= err as Error
        this.values.push(undefined)
      }
    } else if (status !== undefined) {
      if (status === true) this.#hits++
      this.values.push(undefined)
    } else if (head === 'ERROR') {
      this.reject(unknownCommand(this.server, this))
      return true
    } else if (isError(head)) {
      this.#error ??= serverError(head, this.server)
      this.values.push(undefined)
    } else {
      // Out of step: the connection closes behind this; the batch says why.
      this.reject(unexpected(head, this.server, this))
      return true
    }
    if (this.values.length < this.count) return false
    if (this.#error !== undefined) this.reject(this.#error)
    else this.resolve({ values: this.values, hits: this.#hits })
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/** `stats`, `stats slabs`, `stats items` in one go: every STAT line until three ENDs. */
export class StatsRequest implements Pending {
  broken = false
  readonly #stats = new Map<string, string>()
  #ends = 0

  constructor(
    readonly deadline: number,
    private readonly sections: number,
    private readonly server: string,
    private readonly resolve: (stats: Map<string, string>) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(head: string): boolean {
    if (head.startsWith('STAT ')) {
      const sp = head.indexOf(' ', 5)
      if (sp > 0) this.#stats.set(head.slice(5, sp), head.slice(sp + 1))
      return false
    }
    if (head !== 'END') {
      this.reject(isError(head) ? serverError(head, this.server) : unexpected(head, this.server, this))
    }
    if (++this.#ends < this.sections) return false
    this.resolve(this.#stats)
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}
