// Assertions shared by the embedded-cache tests: which error class, which message.
import * as assert from 'uvu/assert'

type ErrorClass = new (...args: never[]) => Error

export function throwsLike(fn: () => unknown, kind: ErrorClass, message: RegExp): Error {
  try {
    fn()
  } catch (err) {
    assert.instance(err, kind)
    assert.match((err as Error).message, message)
    return err as Error
  }
  assert.unreachable(`expected a ${kind.name} matching ${message}`)
  throw new Error('unreachable')
}

/** The call must return a Promise (not throw) and that Promise must reject like this. */
export async function rejectsLike(fn: () => Promise<unknown>, kind: ErrorClass, message: RegExp): Promise<Error> {
  const p = fn()
  assert.instance(p, Promise)
  try {
    await p
  } catch (err) {
    assert.instance(err, kind)
    assert.match((err as Error).message, message)
    return err as Error
  }
  assert.unreachable(`expected a rejection with a ${kind.name} matching ${message}`)
  throw new Error('unreachable')
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `cond` every 50 ms until it holds or `limitMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean, limitMs: number): Promise<boolean> {
  const end = Date.now() + limitMs
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(50)
  }
  return cond()
}
