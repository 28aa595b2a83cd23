// How a Client request settled: its rejection (bounded in time), or a tally of many.
import * as assert from 'uvu/assert'
import { within } from './servers'

/** A Client rejection: an Error with one of the `FERROCACHE_*` codes (and the server's label). */
export type CodedError = Error & { code: string; server?: string }

/** The rejection of `p`, which must come within `ms`; a fulfilment fails the test. */
export const failure = (p: Promise<unknown>, ms = 10_000): Promise<CodedError> =>
  within(
    p.then(
      (v) => assert.unreachable(`expected a rejection, got ${String(v)}`) as never,
      (e: CodedError) => e,
    ),
    ms,
    'the rejection',
  )

/** How many of `results` settled how: 'ok', or the rejection's code. */
export function tally(results: Array<PromiseSettledResult<unknown>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) {
    const what = r.status === 'fulfilled' ? 'ok' : String((r.reason as CodedError).code)
    out[what] = (out[what] ?? 0) + 1
  }
  return out
}
