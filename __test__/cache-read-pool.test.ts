// Single Buffer reads come back as views of a shared read pool (src/scratch.ts): values
// read earlier must keep their bytes when later reads fill the pool and a new one starts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MessageChannel } from 'node:worker_threads'

import { Cache } from '../src'

test('values read across several pools keep their own bytes', () => {
  const cache = new Cache({ memoryLimit: '16mb' })
  const value = (i: number) => Buffer.alloc(100 + (i % 900), i % 251)
  for (let i = 0; i < 500; i++) cache.setSync(`k${i}`, value(i))
  const got: Buffer[] = []
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 500; i++) got.push(cache.getSync(`k${i}`) as Buffer) // ~1.6 MB in all
  }
  got.forEach((b, n) => assert.ok(b.equals(value(n % 500)), `read ${n}`))
  const entry = cache.getsSync('k7')
  assert.ok(entry?.value.equals(value(7)))
  assert.ok(cache.gatSync('k8', 60_000)?.equals(value(8)))
  assert.is(cache.getSync('k9', { encoding: 'utf8' }), value(9).toString('utf8'))
  cache.close()
})

test('a returned value cannot detach the pool the next reads land in', () => {
  const cache = new Cache({ memoryLimit: '16mb' })
  cache.setSync('a', 'first')
  cache.setSync('b', 'second')
  const a = cache.getSync('a') as Buffer
  const { port1, port2 } = new MessageChannel()
  try {
    port1.postMessage(a.buffer, [a.buffer]) // copied or refused (DataCloneError), never moved
  } catch (e) {
    assert.is((e as Error).name, 'DataCloneError')
  }
  assert.ok(a.buffer.byteLength > 0, 'the pool was detached')
  port1.close()
  port2.close()
  assert.is(a.toString(), 'first')
  assert.is((cache.getSync('b') as Buffer).toString(), 'second')
  cache.close()
})

test.run()
