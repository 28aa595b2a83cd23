// What each request makes of its replies in the classic text protocol: `VALUE … END`
// for retrievals (a miss has no line of its own, so a retrieval ends at its END),
// STORED / NOT_STORED / EXISTS / NOT_FOUND for stores, DELETED / TOUCHED / NOT_FOUND,
// a bare number for incr/decr, OK for flush_all. Results match the meta path's. Stores and
// deletes sent together are a `Batch` (requests.ts) reading TEXT_STATUSES.
import type { Pending } from './connection'
import { serverError } from './errors'
import { ARITH, decode, FOUND, GET, GETS, HAS, isError, OK, STORE, statuses, statusResult, unexpected, type Kind, type Settle } from './requests'
import type { Encoding } from '../types'

/** The text protocol's status lines. A retrieval's END, and incr's number, are read by
 * `TextRequest` itself. */
export const TEXT_STATUSES = statuses({
  [GET]: {},
  [GETS]: {},
  [HAS]: {},
  [FOUND]: { DELETED: true, TOUCHED: true, NOT_FOUND: false },
  [STORE]: { STORED: true, NOT_STORED: false, EXISTS: false, NOT_FOUND: false },
  [ARITH]: { NOT_FOUND: undefined },
  [OK]: { OK: undefined },
})

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
    const kind = this.kind
    if (head === 'END') {
      if (kind === GET || kind === GETS) return this.#found
      if (kind === HAS) return this.#hit
    }
    if (kind === ARITH && /^\d+$/.test(head)) return BigInt(head)
    return statusResult(TEXT_STATUSES, kind, head, this.server, this)
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
