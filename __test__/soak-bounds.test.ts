// What a leak hunt under churn found (docs/reliability.md, Soaks): descriptors, connection
// slots and memory that a pattern repeated N times must not keep, checked beside
// memcached 1.6.18 where it has the same case.
import * as net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { sleep, startAll, startFerrocached, startMemcached, waitFor, type Running } from './helpers/servers'

let ferrocached: Running
let memcached: Running

setUp(test, async () => {
  ;[ferrocached, memcached] = await startAll([() => startFerrocached(), () => startMemcached()])
})

tearDown(test, async () => {
  await Promise.all([ferrocached.stop(), memcached.stop()])
})

async function stat(port: number, name: string): Promise<number> {
  const c = await RawConn.open(port)
  c.send('stats\r\n')
  const text = await c.until('END\r\n')
  c.close()
  return Number(new RegExp(`^STAT ${name} (\\S+)\\r$`, 'm').exec(text)?.[1])
}

/** Polls a stat until it is `want` (at most `ms`); its last value. */
async function statBecomes(port: number, name: string, want: number, ms: number): Promise<number> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await stat(port, name)
    if (v === want || Date.now() > deadline) return v
    await sleep(50)
  }
}

/** A client that keeps its side open after the server's FIN (as a pooled socket does). */
function halfOpenClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    s.on('error', () => {})
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

// ferrocached sent its FIN after `quit` and then waited for the client's for good: each
// such client held a descriptor and one of the -c connection slots (2,000 of them, 2,000
// descriptors). memcached 1.6.18 closes at once.
test('clients that quit and keep their side open are closed, as memcached closes them', async () => {
  const BINARY_QUIT = Buffer.alloc(24)
  BINARY_QUIT.set([0x80, 0x07])
  for (const server of [memcached, ferrocached]) {
    const name = server === memcached ? 'memcached' : 'ferrocached'
    const before = await stat(server.port, 'curr_connections')
    const clients = await Promise.all(Array.from({ length: 40 }, () => halfOpenClient(server.port)))
    const ended = new Set<net.Socket>()
    clients.forEach((c, i) => {
      c.on('end', () => ended.add(c))
      c.resume()
      c.write(i % 2 === 0 ? 'get a\r\nquit\r\n' : BINARY_QUIT)
    })
    assert.ok(await waitFor(() => ended.size === clients.length, 5_000), `${name}: ${ended.size} of 40 got the FIN`)
    const now = await statBecomes(server.port, 'curr_connections', before, 3_000)
    clients.forEach((c) => c.destroy())
    assert.is(now, before, `${name}: curr_connections with the 40 clients still open`)
  }
})

test.run()
