// Follow-up review of this session's fresh fixes (fetch timeout/signal, replication login
// gating, process title masking, private data files, the deleted-log refusal): what they
// missed or broke. Needs `npm run build` for the server tests.
import { getEventListeners } from 'node:events'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { setUp, tearDown } from './helpers/guard'

setUp(test, async () => {})

tearDown(test, async () => {})

/** A promise with its resolve, to hold loaders open. */
function held<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((res) => (resolve = res))
  return { promise, resolve }
}

test('fetch: concurrent fetches sharing one AbortSignal add one abort listener (no MaxListenersExceeded), none left after', async () => {
  const cache = new Cache<'utf8'>({ encoding: 'utf8' })
  const warnings: string[] = []
  const onWarning = (w: Error): void => {
    warnings.push(`${w.name}: ${w.message}`)
  }
  process.on('warning', onWarning)
  try {
    // a request's signal bounding its parallel reads: 50 misses at once
    const request = new AbortController()
    const loads = held<string>()
    const calls = Array.from({ length: 50 }, (_, i) => cache.fetch(`k${i}`, () => loads.promise, { signal: request.signal, timeout: 10_000 }))
    const most = getEventListeners(request.signal, 'abort').length
    loads.resolve('v')
    assert.equal(await Promise.all(calls), Array(50).fill('v'))
    assert.is(getEventListeners(request.signal, 'abort').length, 0, 'a listener left on the signal after the calls settled')
    assert.ok(most <= 1, `${most} abort listeners on one signal`)
    // the one listener still reaches every call when the signal aborts
    const stopping = new AbortController()
    const never = held<string>()
    const waits = Array.from({ length: 30 }, (_, i) => cache.fetch(`n${i}`, () => never.promise, { signal: stopping.signal }).then(
      () => 'loaded',
      (e: Error) => e.message,
    ))
    stopping.abort(new Error('request gone'))
    assert.equal(await Promise.all(waits), Array(30).fill('request gone'))
    assert.is(getEventListeners(stopping.signal, 'abort').length, 0)
    await new Promise((r) => setImmediate(r))
    assert.equal(warnings.filter((w) => w.includes('MaxListeners')), [])
  } finally {
    process.off('warning', onWarning)
    cache.close()
  }
})

test.run()
