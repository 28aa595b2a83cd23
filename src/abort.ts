// Per-call `signal` options: the error an aborted call rejects with, and one 'abort'
// listener per signal however many calls wait on it (fetch's waits and the Client's
// requests share it).
import { argError } from './arg-error'

/** The waits bounded by each signal: one 'abort' listener per signal, however many calls
 * share it (a listener per call warned MaxListenersExceeded from 11 concurrent calls with
 * one request-scoped signal). */
const watched = new WeakMap<AbortSignal, { readonly waits: Set<() => void>; readonly fire: () => void }>()

/** Calls `onAbort` when `signal` aborts; returns what stops watching (the listener goes with
 * the signal's last watcher). */
export function watch(signal: AbortSignal, onAbort: () => void): () => void {
  let w = watched.get(signal)
  if (w === undefined) {
    const waits = new Set<() => void>()
    const fire = (): void => {
      watched.delete(signal)
      for (const f of waits) f()
    }
    w = { waits, fire }
    watched.set(signal, w)
    signal.addEventListener('abort', fire, { once: true })
  }
  const { waits, fire } = w
  waits.add(onAbort)
  return () => {
    if (!waits.delete(onAbort) || waits.size > 0 || watched.get(signal)?.waits !== waits) return
    watched.delete(signal)
    signal.removeEventListener('abort', fire)
  }
}

/** What a call given up through its `signal` rejects with: an error named `AbortError` with
 * the signal's reason as its `cause`, as Node's own APIs (fs/promises, timers/promises,
 * events.once) reject; theirs is an Error with code 'ABORT_ERR', this the `DOMException` of
 * the web APIs (fetch's, `throwIfAborted`'s default), so `err.name` is what both share. */
export function abortError(signal: AbortSignal): DOMException {
  return new DOMException('This operation was aborted', { name: 'AbortError', cause: signal.reason })
}

/** What an aborted `signal` gives up with, as the global `fetch` rejects: its `reason`, or
 * for a signal without one (the abort-controller polyfill has none) an AbortError. */
export function reasonOf(signal: AbortSignal): unknown {
  const reason: unknown = signal.reason
  return reason !== undefined ? reason : new DOMException('This operation was aborted', 'AbortError')
}

/** Whether `value` can serve as a signal: Node's own rule (its validateAbortSignal takes
 * any object with an `aborted` property, so another realm's signal, such as jsdom's under
 * jest's jsdom environment, or a polyfill's passes), plus the `addEventListener` and
 * `removeEventListener` an abort is watched with. */
export function isSignal(value: unknown): value is AbortSignal {
  if (typeof value !== 'object' || value === null || !('aborted' in value)) return false
  const s = value as { addEventListener?: unknown; removeEventListener?: unknown }
  return typeof s.addEventListener === 'function' && typeof s.removeEventListener === 'function'
}

/** `options.signal`'s type checked: undefined or a signal (`isSignal`), else a TypeError. */
export function checkSignalType(value: unknown): AbortSignal | undefined {
  if (value === undefined || isSignal(value)) return value
  let got: string = value === null ? 'null' : typeof value
  if (got === 'object') got += 'aborted' in (value as object) ? ' without addEventListener and removeEventListener' : ' without an aborted property'
  throw argError(TypeError, `options.signal must be an AbortSignal, got ${got}`)
}

/** `options.signal` checked: undefined, or a signal not aborted yet (an aborted one throws
 * its AbortError: the call does not run). */
export function checkSignal(value: unknown): AbortSignal | undefined {
  const signal = checkSignalType(value)
  if (signal?.aborted === true) throw abortError(signal)
  return signal
}

/**
 * `p`, or an AbortError once `signal` aborts first. `p` goes on (a Client's request keeps
 * its place in the connection's reply order, its reply is read and dropped); the listener
 * goes when either settles.
 */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p
  if (signal.aborted) {
    p.catch(() => {})
    return Promise.reject(abortError(signal))
  }
  return new Promise<T>((resolve, reject) => {
    const stop = watch(signal, () => reject(abortError(signal)))
    p.then(
      (value) => {
        stop()
        resolve(value)
      },
      (err: unknown) => {
        stop()
        reject(err)
      },
    )
  })
}
