import { test } from 'uvu'
import * as assert from 'uvu/assert'
import net from 'node:net'
import { askAlike, askOnce, connectLocal } from './helpers/raw'
import { freePort, listensOn, MEMCACHED, run, spawnOwned, startOwned } from './helpers/servers'

// A busy machine held a differential run's loop past a connect's 5 s: the timer ran first
// ('connect to … timed out') though the connection was up.
test('connectLocal: a connection made while the loop was held is not a timeout', async () => {
  const server = net.createServer((s) => s.on('error', () => {}))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    const pending = connectLocal((server.address() as net.AddressInfo).port, 100)
    for (const until = Date.now() + 300; Date.now() < until; ) {
      // the loop held past the 100 ms timeout
    }
    ;(await pending).destroy()
  } finally {
    server.close()
  }
})

// A busy machine held ferrocached's reply past the 150 ms quiet window of a comparison
// with memcached (cli-memcached: '' against memcached's binary 'Auth failure.').
test('askAlike: a reply held past the quiet window is still compared', async () => {
  const answering = (delayMs: number): net.Server =>
    net.createServer((s) => s.on('error', () => {}).on('data', () => setTimeout(() => s.write('PONG\r\n'), delayMs)))
  const [prompt, late] = [answering(0), answering(400)]
  const ports = await Promise.all(
    [prompt, late].map((srv) => new Promise<number>((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as net.AddressInfo).port)))),
  )
  try {
    const [a, b] = await askAlike(ports[0]!, ports[1]!, 'ping\r\n')
    assert.equal([a.reply, b.reply], ['PONG\r\n', 'PONG\r\n'])
  } finally {
    prompt.close()
    late.close()
  }
})

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

// A "free" port can be bound by another process (the other uvu shard) before the server
// binds it: the test then talked to that process (a ferrocached test got memcached's ERROR).
test('a server whose port another process took first starts on another port, not mistaken for that one', async () => {
  const squatter = net.createServer((s) => s.on('error', () => {}).end('ERROR\r\n'))
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve))
  const taken = (squatter.address() as net.AddressInfo).port
  const offered = [taken]
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const spawnOn = (port: number) => spawnOwned(MEMCACHED, ['-U', '0', '-l', '127.0.0.1', '-p', String(port), '-t', '1', ...root], { stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    const r = await startOwned(undefined, 10_000, spawnOn, async () => offered.shift() ?? (await freePort()))
    try {
      assert.is.not(r.port, taken)
      assert.ok(listensOn(r.child.pid, r.port), 'the child listens on the port it was given')
      assert.not.ok(listensOn(r.child.pid, taken))
      assert.is((await askOnce(r.port, Buffer.from('version\r\n'))).reply, 'VERSION 1.6.18\r\n')
    } finally {
      await r.stop()
    }
  } finally {
    await new Promise((resolve) => squatter.close(resolve))
  }
})

test.run()
