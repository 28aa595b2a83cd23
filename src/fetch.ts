// Read-through with stampede protection, shared by the embedded `Cache` and the remote
// `Client`: `fetch(key, loader)` returns the cached value, or on a miss calls `loader` once
// for every concurrent caller of the same key, stores its result (unless the key was set
// meanwhile) and hands it to all of them. A failing loader (or store) rejects every waiter
// and leaves nothing in the cache. A call bounded by `timeout` or `signal` gives up alone;
// once every caller of a load has, the load is dropped (its loader's signal aborts).
import { checkSignalType, reasonOf, watch } from './abort'
import { argError } from './arg-error'
import { checkKey } from './client/keys'
import { encodeValue } from './encoding'
import { checkFetchOptionNames, parseWrite } from './options'
import type { CacheLike, Decoded, Encodable, Encoding, FetchLoader, FetchOptions, WriteOptions } from './types'

/** What a `Fetcher` works on: the cache's own Promise API and its default encoding. */
export interface Fetchable<E extends Encoding> extends CacheLike<E> {
  readonly encoding: E
}

/** The value a `get` with `encoding` would return for what the loader produced (`json`
 * is handled by the caller: it is the stored text parsed). */
function asRead(value: unknown, encoding: Encoding): unknown {
  const bytes = value as string | Uint8Array
  if (encoding === 'utf8') return typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8')
  return Buffer.isBuffer(bytes) ? bytes : typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : Buffer.from(bytes)
}

/** One load in flight; `id` names it in `calling`. */
interface Load {
  readonly run: Promise<unknown>
  readonly id: object
  /** Aborted when every caller gave up: the loader's signal. */
  readonly abort: AbortController
  /** Callers still waiting; a caller without a bound never stops waiting. */
  waiters: number
}

/** Node's timers stop at 2^31 - 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** `timeout` and `signal` out of fetch's options (the rest are `WriteOptions`). */
function splitOptions<F extends Encoding>(
  options: FetchOptions<F> | undefined,
): { write: WriteOptions<F> | undefined; timeout: number | undefined; signal: AbortSignal | undefined } {
  if (options === undefined || options === null || typeof options !== 'object') {
    return { write: options, timeout: undefined, signal: undefined }
  }
  checkFetchOptionNames(options)
  const { timeout, signal, ...write } = options
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout >= 0 && timeout <= MAX_TIMEOUT_MS))) {
    throw argError(RangeError, `options.timeout must be a number of milliseconds from 0 to ${MAX_TIMEOUT_MS}, got ${String(timeout)}`)
  }
  checkSignalType(signal)
  return { write: 'timeout' in options || 'signal' in options ? write : options, timeout, signal }
}

/** The loads whose loader is being called right now, on this stack: a fetch of the same
 * key from there would wait for itself (a deadlock that would also hold every later fetch
 * of the key), so it is refused instead. Only the loader's synchronous part is covered:
 * following it across its awaits takes AsyncLocalStorage, which on Node 20 slows every
 * promise of the process once used (an awaited `get` took about 1.7x as long). */
const calling = new Set<object>()

/** The in-flight loads of one cache, by encoding and key. */
export class Fetcher<E extends Encoding> {
  readonly #cache: Fetchable<E>
  readonly #inflight = new Map<string, Load>()

  constructor(cache: Fetchable<E>) {
    this.#cache = cache
  }

  /** How many keys are being loaded right now. */
  get pending(): number {
    return this.#inflight.size
  }

  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, fetchOptions?: FetchOptions<F>): Promise<Decoded<F>> {
    if (typeof loader !== 'function') return Promise.reject(argError(TypeError, 'fetch: loader must be a function'))
    let split: ReturnType<typeof splitOptions<F>>
    try {
      split = splitOptions(fetchOptions)
      // bad options fail now, not after a wasted load
      parseWrite(split.write, split.write?.encoding ?? this.#cache.encoding)
      // and the key, before it names an in-flight load (a Symbol threw there, without a code)
      checkKey(key)
    } catch (err) {
      return Promise.reject(err)
    }
    const { write: options, timeout, signal } = split
    if (signal?.aborted === true) return Promise.reject(reasonOf(signal))
    const encoding: Encoding = options?.encoding ?? this.#cache.encoding
    // Keys never contain spaces, so the space cannot make two different pairs collide.
    const slot = `${encoding} ${key}`
    const running = this.#inflight.get(slot)
    if (running !== undefined) {
      if (calling.has(running.id)) {
        return Promise.reject(new Error(`fetch: the loader for "${key}" called fetch for "${key}" (it would wait for itself)`))
      }
      return this.#wait(slot, key, running, timeout, signal) as Promise<Decoded<F>>
    }
    // The whole read-then-load is shared, not only the load: a caller arriving while the
    // first one's `get` is on its way joins it instead of issuing a get of its own.
    const id = {}
    const abort = new AbortController()
    const run = this.#load(key, loader, options, encoding, id, abort.signal).finally(() => {
      if (this.#inflight.get(slot)?.id === id) this.#inflight.delete(slot)
    })
    const load: Load = { run, id, abort, waiters: 0 }
    this.#inflight.set(slot, load)
    return this.#wait(slot, key, load, timeout, signal) as Promise<Decoded<F>>
  }

  /** One caller's wait for `load`, bounded by its `timeout` and `signal` if given. */
  #wait(slot: string, key: string, load: Load, timeout: number | undefined, signal: AbortSignal | undefined): Promise<unknown> {
    load.waiters++
    if (timeout === undefined && signal === undefined) return load.run
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      let unwatch: (() => void) | undefined
      const done = (): void => {
        clearTimeout(timer)
        unwatch?.()
      }
      const giveUp = (reason: unknown): void => {
        done()
        reject(reason)
        if (--load.waiters > 0) return
        // nobody waits any more: a later fetch calls the loader again
        if (this.#inflight.get(slot) === load) this.#inflight.delete(slot)
        load.abort.abort(reason)
      }
      const onAbort = (): void => giveUp(reasonOf(signal!))
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          giveUp(new DOMException(`fetch: "${key}" was not loaded within ${timeout} ms`, 'TimeoutError'))
        }, timeout)
      }
      if (signal !== undefined) unwatch = watch(signal, onAbort)
      load.run.then(
        (value) => {
          done()
          resolve(value)
        },
        (err: unknown) => {
          done()
          reject(err)
        },
      )
    })
  }

  async #load<F extends Encoding>(
    key: string,
    loader: FetchLoader<Encodable<F>>,
    options: WriteOptions<F> | undefined,
    encoding: Encoding,
    id: object,
    signal: AbortSignal,
  ): Promise<Decoded<F>> {
    const hit = await this.#cache.get<F>(key, { encoding: encoding as F })
    if (hit !== undefined) return hit
    // every caller gave up during the read: no loader call
    signal.throwIfAborted()
    let loading: Encodable<F> | PromiseLike<Encodable<F>>
    calling.add(id)
    try {
      loading = loader(key, signal)
    } finally {
      calling.delete(id)
    }
    const value = await loading
    // given up on: its value is not stored (a newer load may be running)
    signal.throwIfAborted()
    if (value === undefined) throw argError(TypeError, `fetch: the loader for "${key}" returned undefined (nothing to store)`, 'FERROCACHE_BAD_VALUE')
    // `add`, not `set`: a value stored while the loader ran (a writer's `set` after updating
    // the source) is newer than what the loader read, and stays (as lru-cache discards a
    // fetch when the key is set meanwhile). The callers still get the loader's value.
    if (encoding !== 'json') {
      await this.#cache.add<F>(key, value, options)
      return asRead(value, encoding) as Decoded<F>
    }
    // JSON: the callers get the stored text parsed, as a hit would return it (a Date comes
    // back a string, an undefined property is gone), not the loader's own object.
    const text = encodeValue(value, 'json') as string
    await this.#cache.add(key, text, { ...options, encoding: 'utf8' })
    return JSON.parse(text) as Decoded<F>
  }
}
