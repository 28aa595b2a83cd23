// Read-through with stampede protection, shared by the embedded `Cache` and the remote
// `Client`: `fetch(key, loader)` returns the cached value, or on a miss calls `loader` once
// for every concurrent caller of the same key, stores its result (unless the key was set
// meanwhile) and hands it to all of them. A failing loader (or store) rejects every waiter
// and leaves nothing in the cache.
import { encodeValue } from './encoding'
import { parseWrite } from './options'
import type { CacheLike, Decoded, Encodable, Encoding, FetchLoader, WriteOptions } from './types'

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

  fetch<F extends Encoding = E>(key: string, loader: FetchLoader<Encodable<F>>, options?: WriteOptions<F>): Promise<Decoded<F>> {
    if (typeof loader !== 'function') return Promise.reject(new TypeError('fetch: loader must be a function'))
    const encoding: Encoding = options?.encoding ?? this.#cache.encoding
    try {
      parseWrite(options, encoding) // bad options fail now, not after a wasted load
    } catch (err) {
      return Promise.reject(err)
    }
    // Keys never contain spaces, so the space cannot make two different pairs collide.
    const slot = `${encoding} ${key}`
    const running = this.#inflight.get(slot)
    if (running !== undefined) {
      if (calling.has(running.id)) {
        return Promise.reject(new Error(`fetch: the loader for "${key}" called fetch for "${key}" (it would wait for itself)`))
      }
      return running.run as Promise<Decoded<F>>
    }
    // The whole read-then-load is shared, not only the load: a caller arriving while the
    // first one's `get` is on its way joins it instead of issuing a get of its own.
    const id = {}
    const run = this.#load(key, loader, options, encoding, id).finally(() => this.#inflight.delete(slot))
    this.#inflight.set(slot, { run, id })
    return run
  }

  async #load<F extends Encoding>(
    key: string,
    loader: FetchLoader<Encodable<F>>,
    options: WriteOptions<F> | undefined,
    encoding: Encoding,
    id: object,
  ): Promise<Decoded<F>> {
    const hit = await this.#cache.get<F>(key, { encoding: encoding as F })
    if (hit !== undefined) return hit
    let loading: Encodable<F> | PromiseLike<Encodable<F>>
    calling.add(id)
    try {
      loading = loader(key)
    } finally {
      calling.delete(id)
    }
    const value = await loading
    if (value === undefined) throw new TypeError(`fetch: the loader for "${key}" returned undefined (nothing to store)`)
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
