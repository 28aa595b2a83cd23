// The two memcache commands nutcracker 0.5.0 proxies that __test__/nutcracker.test.ts does
// not send (review of issue 5: "works for every command it proxies"): `version` (answered
// by a backend through the proxy) and `quit` (the proxy closes the client's connection,
// the backends stay up). Three ferrocached behind it, as in the other test.
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { startNutcracker, TextConn } from './helpers/nutcracker'
import { startAll, startFerrocached, type Running } from './helpers/servers'

let backends: Running[] = []
let proxy: Running

setUp(test, async () => {
  backends = await startAll([() => startFerrocached(), () => startFerrocached(), () => startFerrocached()])
  proxy = await startNutcracker(backends.map((b) => ({ port: b.port, weight: 1 })))
})

tearDown(test, async () => {
  await proxy?.stop()
  await Promise.all(backends.map((b) => b.stop()))
})

test('version through nutcracker answers with the protocol version ferrocached speaks', async () => {
  const c = await TextConn.open(proxy.port)
  try {
    assert.is(await c.line('version\r\n'), 'VERSION 1.6.18\r\n')
    // the connection stays usable after it
    assert.is(await c.line('set after-version 0 0 1\r\nv\r\n'), 'STORED\r\n')
    assert.is(await c.retrieve('get after-version\r\n'), 'VALUE after-version 0 1\r\nv\r\nEND\r\n')
  } finally {
    c.close()
  }
})

test('quit through nutcracker closes the client connection without a reply; the pool keeps serving', async () => {
  const s = net.connect(proxy.port, '127.0.0.1')
  const outcome = await new Promise<{ got: string; closed: boolean }>((resolve) => {
    let got = ''
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ got, closed: false })
    }, 5_000)
    s.on('data', (d: Buffer) => (got += d.toString('latin1')))
    s.on('error', () => {})
    s.on('close', () => {
      clearTimeout(timer)
      resolve({ got, closed: true })
    })
    s.on('connect', () => s.write('set before-quit 0 0 1\r\nq\r\nquit\r\n'))
  })
  assert.equal(outcome, { got: 'STORED\r\n', closed: true })
  const c = await TextConn.open(proxy.port)
  try {
    assert.is(await c.retrieve('get before-quit\r\n'), 'VALUE before-quit 0 1\r\nq\r\nEND\r\n')
  } finally {
    c.close()
  }
})

test.run()
