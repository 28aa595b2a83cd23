import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { run } from './helpers/servers'

// CI once died of an unhandled EPIPE: memccat exited before `run` wrote its (empty) input.
test('run: a program that exits without reading its input is not an error', async () => {
  for (let i = 0; i < 20; i++) {
    const r = await run('/bin/true', [], { input: 'x'.repeat(1 << 20) })
    assert.is(r.code, 0)
  }
})

test('run: input reaches a program that reads it', async () => {
  const r = await run('/bin/cat', [], { input: 'hello' })
  assert.is(r.stdout, 'hello')
})

test.run()
