// What each request makes of its replies in the classic text protocol: `VALUE … END`
// for retrievals (a miss has no line of its own, so a retrieval ends at its END),
// STORED / NOT_STORED / EXISTS / NOT_FOUND for stores, DELETED / TOUCHED / NOT_FOUND,
// a bare number for incr/decr, OK for flush_all. Results match the meta path's.
import type { Pending } from './connection'
import { serverError } from './errors'
import { ARITH, decode, FOUND, GET, GETS, HAS, isError, OK, STORE, unexpected, type Kind, type Settle } from './requests'
import type { Encoding } from '../types'

/** `VALUE <key> <flags> <bytes> [<cas>]` split on spaces. */
function valueFields(head: string): string[] {
  return head.split(' ')
}

/** What `kind` reads from one VALUE line and its data. */
function readValue(kind: Kind, head: string, buf: Buffer, start: number, end: number, encoding: Encoding): unknown {
  if (kind === HAS) return true
  const value = decode(buf, start, end, encoding)
  if (kind === GET) return value
  const f = valueFields(head)
  return { value, cas: f[4] === undefined ? 0n : BigInt(f[4]), flags: Number(f[2]) }
}

/** One text request: a retrieval of one key (VALUE lines, then END), or one reply line. */
export class TextRequest implements Pending {
  broken = false
  #found: unknown = undefined
  #hit = false
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    private readonly kind: Kind,
    private readonly encoding: Encoding,
    private readonly server: string,
    private readonly resolve: Settle,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(head: string, buf: Buffer, start: number, end: number): boolean {
    const kind = this.kind
    if ((kind === GET || kind === GETS || kind === HAS) && head.startsWith('VALUE ')) {
      if (this.#hit) {
        this.reject(unexpected(head, this.server, this))
        return true
      }
      this.#hit = true
      try {
        this.#found = readValue(kind, head, buf, start, end, this.encoding)
      } catch (err) {
        this.#error = err as Error
      }
      return false
    }
    try {
      const result = this.#read(head)
      if (this.#error !== undefined) this.reject(this.#error)
      else this.resolve(result)
    } catch (err) {
      this.reject(err as Error)
    }
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }

  #read(head: string): unknown {
    switch (this.kind) {
      case GET:
      case GETS:
        if (head === 'END') return this.#found
        break
      case HAS:
        if (head === 'END') return this.#hit
        break
      case FOUND:
        if (head === 'DELETED' || head === 'TOUCHED') return true
        if (head === 'NOT_FOUND') return false
        break
      case STORE:
        if (head === 'STORED') return true
        if (head === 'NOT_STORED' || head === 'EXISTS' || head === 'NOT_FOUND') return false
        break
      case ARITH:
        if (/^\d+$/.test(head)) return BigInt(head)
        if (head === 'NOT_FOUND') return undefined
        break
      case OK:
        if (head === 'OK') return undefined
        break
    }
    throw isError(head) ? serverError(head, this.server) : unexpected(head, this.server, this)
  }
}

/** `count` stores or deletes sent together, one reply line each: how many succeeded.
 * The first error rejects the whole batch once every reply is in. */
export class TextBatch implements Pending {
  broken = false
  #replies = 0
  #hits = 0
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    private readonly count: number,
    private readonly server: string,
    private readonly resolve: (result: { values: unknown[]; hits: number }) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  reply(head: string): boolean {
    if (head === 'STORED' || head === 'DELETED') this.#hits++
    else if (head !== 'NOT_STORED' && head !== 'EXISTS' && head !== 'NOT_FOUND') {
      if (!isError(head)) {
        this.reject(unexpected(head, this.server, this))
        return true
      }
      this.#error ??= serverError(head, this.server)
    }
    if (++this.#replies < this.count) return false
    if (this.#error !== undefined) this.reject(this.#error)
    else this.resolve({ values: [], hits: this.#hits })
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/** Keys as the reply's latin1-decoded VALUE lines spell them (UTF-8 bytes, one char each). */
function asReplied(key: string): string {
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0x7f) return Buffer.from(key, 'utf8').toString('latin1')
  }
  return key
}

/** A multi-key retrieval: `get k1 k2 …` lines, each ending at its END; every VALUE is
 * matched to its key by name (a proxy merging several servers' replies keeps the order,
 * but a name cannot be mistaken). Values come out in the order of `keys`. */
export class TextMultiGet implements Pending {
  broken = false
  readonly #positions = new Map<string, number[]>()
  readonly #values: unknown[]
  #ends = 0
  #error: Error | undefined

  constructor(
    readonly deadline: number,
    keys: readonly string[],
    private readonly lines: number,
    private readonly encoding: Encoding,
    private readonly server: string,
    private readonly resolve: (result: { values: unknown[]; hits: number }) => void,
    private readonly reject: (err: Error) => void,
  ) {
    this.#values = new Array<unknown>(keys.length)
    keys.forEach((k, i) => {
      const name = asReplied(k)
      const at = this.#positions.get(name)
      if (at === undefined) this.#positions.set(name, [i])
      else at.push(i)
    })
  }

  reply(head: string, buf: Buffer, start: number, end: number): boolean {
    if (head.startsWith('VALUE ')) {
      const positions = this.#positions.get(head.slice(6, head.indexOf(' ', 6)))
      if (positions === undefined) {
        this.reject(unexpected(head, this.server, this))
        return true
      }
      try {
        const value = decode(buf, start, end, this.encoding)
        for (const i of positions) this.#values[i] = value
      } catch (err) {
        this.#error ??= err as Error
      }
      return false
    }
    if (head !== 'END') {
      if (!isError(head)) {
        this.reject(unexpected(head, this.server, this))
        return true
      }
      // An error line ends its `get` line's reply in place of END.
      this.#error ??= serverError(head, this.server)
    }
    if (++this.#ends < this.lines) return false
    if (this.#error !== undefined) this.reject(this.#error)
    else this.resolve({ values: this.#values, hits: 0 })
    return true
  }

  fail(err: Error): void {
    this.reject(err)
  }
}
