// Client's connection handling: thousands of concurrent requests pipelined on one or two
// connections all get their own reply; replies cut into random pieces are reassembled;
// a server that never answers times the request out, a connect that never completes
// times out too; a refused connection fails at once.
import { spawn } from 'node:child_process'
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Client } from '../src'
import { startFerrocached, type Running } from './helpers/servers'

let server: Running

test.before(async () => {
  server = await startFerrocached()
})

test.after(async () => {
  await server?.stop()
})

/** A mixed burst of 6000 concurrent requests whose answers can all be predicted. */
async function burst(client: Client<'utf8'>, p: string): Promise<void> {
  const n = 2000
  await Promise.all(Array.from({ length: n }, (_, i) => client.set(`${p}${i}`, `v${i}`.repeat(1 + (i % 50)))))
  await client.set(`${p}ctr`, '0')
  const ops: Array<Promise<unknown>> = []
  for (let i = 0; i < n; i++) {
    ops.push(client.get(`${p}${i}`))
    ops.push(client.incr(`${p}ctr`))
    ops.push(client.get(`${p}miss${i}`))
  }
  const results = await Promise.all(ops)
  const incrs: bigint[] = []
  for (let i = 0; i < n; i++) {
    assert.is(results[3 * i], `v${i}`.repeat(1 + (i % 50)), `get ${i}`)
    incrs.push(results[3 * i + 1] as bigint)
    assert.is(results[3 * i + 2], undefined)
  }
  // Each incr saw a distinct value: no reply went to the wrong request.
  assert.is(new Set(incrs).size, n)
  assert.is(await client.get(`${p}ctr`), String(n))
}

test('6000 concurrent requests on one connection, then on a pool of four', async () => {
  for (const poolSize of [1, 4]) {
    const client = new Client({ servers: [`127.0.0.1:${server.port}`], encoding: 'utf8', poolSize })
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
  return new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy)))
}

test('replies cut into pieces of 1-40 bytes are reassembled', async () => {
  const proxy = await choppingProxy(server.port)
  const client = new Client({ servers: [`127.0.0.1:${(proxy.address() as net.AddressInfo).port}`], encoding: 'utf8', timeout: 10_000 })
  await burst(client, 'chop:')
  const big = 'x'.repeat(100_000)
  await client.set('chop:big', big)
  assert.is(await client.get('chop:big'), big)
  assert.is((await client.getMany(['chop:1', 'chop:big', 'chop:none'])).size, 2)
  await client.close()
  await new Promise((r) => proxy.close(r))
})

test('a server that never answers: the request times out after `timeout`', async () => {
  const sockets: net.Socket[] = []
  const silent = net.createServer((s) => sockets.push(s))
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  const port = (silent.address() as net.AddressInfo).port
  const client = new Client({ servers: [`127.0.0.1:${port}`], timeout: 200 })
  const t0 = Date.now()
  const errors = await Promise.all([client.get('a'), client.set('b', 'v'), client.get('c')].map((p) => p.catch((e: unknown) => e)))
  const took = Date.now() - t0
  for (const e of errors) assert.is((e as { code: string }).code, 'FERROCACHE_TIMEOUT')
  assert.match((errors[0] as Error).message, /timed out after 200 ms/)
  assert.ok(took >= 190 && took < 1500, `took ${took} ms`)
  // The timed-out connection was dropped; the next request fails fast (retry window).
  assert.is(((await client.get('d').catch((e: unknown) => e)) as { code: string }).code, 'FERROCACHE_SERVER_FAILING')
  await client.close()
  for (const s of sockets) s.destroy()
  await new Promise((r) => silent.close(r))
})

test('a connection that never completes fails after `connectTimeout`', async () => {
  // A listener with a full accept queue that never accepts: further SYNs go unanswered.
  const py = spawn('python3', ['-c', 'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)'])
  try {
    const port = await new Promise<number>((resolve, reject) => {
      py.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())))
      py.once('error', reject)
    })
    const fill = Array.from({ length: 3 }, () => net.connect(port, '127.0.0.1').on('error', () => {}))
    await new Promise((r) => setTimeout(r, 200))
    const client = new Client({ servers: [`127.0.0.1:${port}`], connectTimeout: 300, timeout: 5_000 })
    const t0 = Date.now()
    const err = (await client.get('k').catch((e: unknown) => e)) as { code: string; message: string }
    const took = Date.now() - t0
    assert.is(err.code, 'FERROCACHE_TIMEOUT')
    assert.match(err.message, /connecting to 127\.0\.0\.1:\d+ timed out after 300 ms/)
    assert.ok(took >= 290 && took < 2_000, `took ${took} ms`)
    await client.close()
    for (const s of fill) s.destroy()
  } finally {
    py.kill('SIGKILL')
  }
})

test('a reply that fits no request fails it and closes the connection', async () => {
  const odd = net.createServer((s) => s.on('data', () => s.write('WHAT\r\n')))
  await new Promise<void>((r) => odd.listen(0, '127.0.0.1', r))
  const client = new Client({ servers: [`127.0.0.1:${(odd.address() as net.AddressInfo).port}`], poolSize: 1 })
  const [a, b] = await Promise.all([client.get('a'), client.get('b')].map((p) => p.catch((e: unknown) => e as { code: string; message: string })))
  assert.is(a!.code, 'FERROCACHE_SERVER_ERROR')
  assert.match(a!.message, /unexpected reply from .*: WHAT/)
  assert.is(b!.code, 'FERROCACHE_CONNECTION')
  assert.match(b!.message, /out of step/)
  await client.close()
  await new Promise((r) => odd.close(r))
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
