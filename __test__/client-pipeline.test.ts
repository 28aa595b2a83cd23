// Client's connection handling: thousands of concurrent requests pipelined on one or two
// connections all get their own reply; replies cut into random pieces are reassembled;
// a server that never answers times the request out, a connect that never completes
// times out too; a refused connection fails at once.
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { burst, burstValue } from './helpers/burst'
import { setUp, tearDown } from './helpers/guard'
import { spawnOwned, startFerrocached, stopChild, within, type Running } from './helpers/servers'

let server: Running

setUp(test, async () => {
  server = await startFerrocached()
})

tearDown(test, async () => {
  await server?.stop()
})

test('6000 concurrent requests on one connection, then on a pool of four', async () => {
  for (const poolSize of [1, 4]) {
    // 10 s request timeout, not 1 s: 6000 requests at once can take a busy machine longer
    const client = new Client({ servers: [`127.0.0.1:${server.port}`], encoding: 'utf8', poolSize, timeout: 10_000 })
    await burst(client, `pipe${poolSize}:`)
    await client.close()
  }
})

/** A proxy to `port` that forwards replies in random pieces of 1-40 bytes. */
function choppingProxy(port: number): Promise<net.Server> {
  let seed = 12345
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 40
  const proxy = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1')
    down.pipe(up)
    up.on('data', (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; ) {
        const len = 1 + rand()
        down.write(chunk.subarray(i, i + len))
        i += len
      }
    })
    const end = () => {
      up.destroy()
      down.destroy()
    }
    up.on('error', end).on('close', end)
    down.on('error', end).on('close', end)
  })
  return listening(proxy)
}

/** `server` listening on a free port of 127.0.0.1. */
function listening(server: net.Server): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server))
  })
}

/** Runs `body` on a test server, then closes it, dropping the connections it still has. */
async function withTestServer(server: net.Server, body: (port: number) => Promise<void>): Promise<void> {
  const sockets = new Set<net.Socket>()
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    // the client under test hangs up when it gives up on a reply: a reset there is expected
    s.on('error', () => {})
  })
  await listening(server)
  try {
    await body((server.address() as net.AddressInfo).port)
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise((r) => server.close(r))
  }
}

test('replies cut into pieces of 1-40 bytes are reassembled (meta, text and binary)', async () => {
  const proxy = await choppingProxy(server.port)
  try {
    for (const protocol of ['meta', 'text', 'binary'] as const) {
      const client = new Client({ servers: [`127.0.0.1:${(proxy.address() as net.AddressInfo).port}`], encoding: 'utf8', timeout: 10_000, protocol })
      try {
        const p = `chop-${protocol}:`
        await burst(client, p)
        const big = 'x'.repeat(100_000)
        await client.set(`${p}big`, big)
        assert.is(await client.get(`${p}big`), big)
        const many = await client.getMany([`${p}1`, `${p}big`, `${p}none`, `${p}2`])
        assert.equal([...many.values()], [burstValue(1), big, burstValue(2)])
      } finally {
        await client.close()
      }
    }
  } finally {
    await new Promise((r) => proxy.close(r))
  }
})

test('a server that never answers: the request times out after `timeout`', async () => {
  await withTestServer(net.createServer(), async (port) => {
    const client = new Client({ servers: [`127.0.0.1:${port}`], timeout: 200 })
    try {
      const t0 = Date.now()
      const errors = await Promise.all([client.get('a'), client.set('b', 'v'), client.get('c')].map((p) => p.catch((e: unknown) => e)))
      const took = Date.now() - t0
      for (const e of errors) assert.is((e as { code: string }).code, 'FERROCACHE_TIMEOUT')
      assert.match((errors[0] as Error).message, /timed out after 200 ms/)
      // the message names the 200 ms timer; the upper bound only catches a hang
      assert.ok(took >= 190 && took < 10_000, `took ${took} ms`)
      // The timed-out connection was dropped; the next request fails fast (retry window).
      assert.is(((await client.get('d').catch((e: unknown) => e)) as { code: string }).code, 'FERROCACHE_SERVER_FAILING')
    } finally {
      await client.close()
    }
  })
})

test('a connection that never completes fails after `connectTimeout`', async () => {
  // A listener with a full accept queue that never accepts: further SYNs go unanswered.
  const py = spawnOwned('/usr/bin/python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const fill: net.Socket[] = []
  let client: Client | undefined
  try {
    const listens = new Promise<number>((resolve, reject) => {
      py.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
      py.once('error', reject)
      py.once('exit', (code) => reject(new Error(`python3 exited with ${code} before printing its port`)))
    })
    const port = await within(listens, 15_000, 'python3 printing its port')
    for (let i = 0; i < 3; i++) fill.push(net.connect(port, '127.0.0.1').on('error', () => {}))
    await new Promise((r) => setTimeout(r, 200))
    client = new Client({ servers: [`127.0.0.1:${port}`], connectTimeout: 300, timeout: 5_000 })
    const t0 = Date.now()
    const err = (await client.get('k').catch((e: unknown) => e)) as { code: string; message: string }
    const took = Date.now() - t0
    assert.is(err.code, 'FERROCACHE_TIMEOUT')
    assert.match(err.message, /connecting to 127\.0\.0\.1:\d+ timed out after 300 ms/)
    assert.ok(took >= 290 && took < 4_500, `took ${took} ms`) // the 5 s request timeout did not fire first
  } finally {
    await client?.close()
    for (const s of fill) s.destroy()
    await stopChild(py, 'SIGKILL')
  }
})

test('a reply that fits no request fails it and closes the connection (meta and text)', async () => {
  // the client hangs up after the first WHAT: a second one can meet a reset (on the socket's 'error' listener)
  // text: a VALUE for a key not asked for is as wrong as a WHAT
  for (const [protocol, reply] of [['meta', 'WHAT\r\n'], ['text', 'WHAT\r\n'], ['text', 'VALUE other 0 1\r\nx\r\nEND\r\n']] as const) {
    await withTestServer(net.createServer((s) => s.on('data', () => s.write(reply))), async (port) => {
      const client = new Client({ servers: [`127.0.0.1:${port}`], poolSize: 1, protocol })
      try {
        const first = reply.startsWith('VALUE') ? client.getMany(['a', 'c']) : client.get('a')
        const [a, b] = await Promise.all([first, client.get('b')].map((p) => p.then(() => undefined, (e: unknown) => e as { code: string; message: string })))
        assert.is(a!.code, 'FERROCACHE_SERVER_ERROR', `${protocol} ${reply}`)
        assert.match(a!.message, new RegExp(`unexpected reply from .*: ${reply.slice(0, 4)}`))
        assert.is(b!.code, 'FERROCACHE_CONNECTION')
        assert.match(b!.message, /out of step/)
      } finally {
        await client.close()
      }
    })
  }
})

test('a refused connection fails the request, then the server is skipped until `retry`', async () => {
  const closed = net.createServer()
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
  const port = (closed.address() as net.AddressInfo).port
  await new Promise((r) => closed.close(r))
  const client = new Client({ servers: [`127.0.0.1:${port}`], retry: 300, removeAfter: 5 })
  const first = (await client.get('k').catch((e: unknown) => e)) as { code: string; message: string }
  assert.is(first.code, 'FERROCACHE_CONNECTION')
  assert.match(first.message, /ECONNREFUSED/)
  assert.is(((await client.get('k').catch((e: unknown) => e)) as { code: string }).code, 'FERROCACHE_SERVER_FAILING')
  await new Promise((r) => setTimeout(r, 350))
  assert.is(((await client.get('k').catch((e: unknown) => e)) as { code: string }).code, 'FERROCACHE_CONNECTION', 'tried again after retry')
  await client.close()
})

test('close waits for requests in flight, then later calls reject', async () => {
  const client = new Client({ servers: [`127.0.0.1:${server.port}`] })
  const inflight = Array.from({ length: 500 }, (_, i) => client.set(`close:${i}`, 'v'))
  const closing = client.close()
  assert.equal(await Promise.all(inflight), new Array(500).fill(true))
  await closing
  assert.is(((await client.get('close:1').catch((e: unknown) => e)) as { code: string }).code, 'FERROCACHE_CLOSED')
})

test('options are checked: names, types, ranges', () => {
  assert.throws(() => new Client({ servers: [] }), /servers must be a non-empty array/)
  assert.throws(() => new Client({ servers: ['a b'] }), /servers\[0\] must look like/)
  assert.throws(() => new Client({ servers: ['h:1', 'h:1'] }), /lists h:1 twice/)
  assert.throws(() => new Client({ servers: ['h:1'], timeout: 0 }), /timeout must be an integer from 1/)
  assert.throws(() => new Client({ servers: ['h:1'], bogus: 1 } as never), /unknown option 'bogus'/)
  assert.throws(() => new Client({ servers: ['h:70000'] }), /port must be an integer/)
  assert.equal(new Client({ servers: ['h', 'h:11212:3'] }).servers.map((s) => s.server), ['h:11211', 'h:11212'])
})

test.run()
