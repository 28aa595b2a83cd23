// A watcher that hangs up is dropped at once, also when its `watch` ran while replies of
// its earlier requests were still queued for it (the server had stopped reading it until
// they drained). memcached 1.6.18 drops such a watcher at once too (measured: log_watchers
// 0 and the connection gone within a second); ferrocached kept it, and its watcher slot,
// until two lines of its filter had been written to the dead socket.
import * as net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { startFerrocached, type Running } from './helpers/servers'

let server: Running

setUp(test, async () => {
  server = await startFerrocached()
})

tearDown(test, async () => {
  await server.stop()
})

async function stat(name: string): Promise<string | undefined> {
  const c = await RawConn.open(server.port)
  c.send('stats\r\n')
  const text = await c.until('END\r\n')
  c.close()
  return new RegExp(`^STAT ${name} (\\S+)\\r$`, 'm').exec(text)?.[1]
}

test('a watcher behind queued replies that hangs up is dropped at once', async () => {
  const setter = await RawConn.open(server.port)
  setter.send(`set big 0 0 500000\r\n${'x'.repeat(500_000)}\r\n`)
  assert.equal(await setter.until('\r\n'), 'STORED\r\n')
  setter.close()

  // 20 MB of replies, then watch (fetchers: nothing here logs one), read only a second later
  const sock = net.connect(server.port, '127.0.0.1')
  sock.on('error', () => {})
  sock.pause()
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()))
  sock.write(`get${' big'.repeat(40)}\r\nwatch\r\n`)
  await new Promise((r) => setTimeout(r, 1000))
  let tail = ''
  let total = 0
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${total} bytes came`)), 20_000)
    sock.on('data', (d: Buffer) => {
      total += d.length
      tail = (tail + d.toString('latin1')).slice(-20)
      if (tail.endsWith('END\r\nOK\r\n')) {
        clearTimeout(timer)
        resolve()
      }
    })
    sock.resume()
  })
  assert.equal(total, 40 * (500_000 + 2 + 'VALUE big 0 500000\r\n'.length) + 'END\r\nOK\r\n'.length)
  assert.equal(await stat('log_watchers'), '1')

  sock.destroy()
  let watchers: string | undefined
  for (let i = 0; i < 50; i++) {
    watchers = await stat('log_watchers')
    if (watchers === '0') break
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.equal(watchers, '0', 'the watcher is still counted 5 s after its client hung up')
  assert.equal(await stat('curr_connections'), '1') // this stats connection only
})

test.run()
