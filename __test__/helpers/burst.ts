// A burst of concurrent requests whose every answer is known, for the Client's pipelining
// tests (meta, text, through a proxy, over TLS): a reply given to the wrong request shows.
import * as assert from 'uvu/assert'
import type { Client } from '../../src'

/** The value `burst` stores under key number `i`. */
export const burstValue = (i: number): string => `v${i}`.repeat(1 + (i % 50))

/** Stores `n` keys under `prefix` (flags = their number), then sends 4n requests at once:
 * for each key a get, a gets (its flags), a get of a missing key and an incr of one shared
 * counter. Each incr must see a value of its own. */
export async function burst(client: Client<'utf8'>, prefix: string, n = 1500): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => client.set(`${prefix}${i}`, burstValue(i), { flags: i })))
  await client.set(`${prefix}ctr`, '0')
  const ops: Array<Promise<unknown>> = []
  for (let i = 0; i < n; i++) {
    ops.push(client.get(`${prefix}${i}`))
    ops.push(client.gets(`${prefix}${i}`).then((e) => e?.flags))
    ops.push(client.get(`${prefix}miss${i}`))
    ops.push(client.incr(`${prefix}ctr`))
  }
  const results = await Promise.all(ops)
  const incrs = new Set<bigint>()
  for (let i = 0; i < n; i++) {
    assert.is(results[4 * i], burstValue(i), `get ${i}`)
    assert.is(results[4 * i + 1], i, `gets ${i}`)
    assert.is(results[4 * i + 2], undefined, `miss ${i}`)
    incrs.add(results[4 * i + 3] as bigint)
  }
  assert.is(incrs.size, n, 'every incr saw its own value: no reply went to another request')
  assert.is(await client.get(`${prefix}ctr`), String(n))
}
