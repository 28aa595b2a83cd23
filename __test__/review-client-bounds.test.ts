// Review of the Client's bounds: requests waiting for a server that does not answer
// (maxPending), ttls over 30 days under a faked clock, and the keyv adapter's key layout.
import net from 'node:net'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache, Client, type ClientOptions } from '../src'
import { DEFAULT_MAX_PENDING, parseClientOptions } from '../src/client/options'
import { KeyvFerrocache } from '../src/adapters/keyv'
import { setUp, tearDown } from './helpers/guard'
import { sleep, startMemcached, within, type Running } from './helpers/servers'
import { failure, tally } from './helpers/settled'

type Err = Error & { code: string }
type Protocol = NonNullable<ClientOptions['protocol']>


/** A TCP server of this file: `onSocket` does what it likes with each connection. */
interface Fake {
  port: number
  sockets: Set<net.Socket>
  close(): Promise<void>
}

const fakes: Fake[] = []

async function fake(onSocket: (socket: net.Socket) => void): Promise<Fake> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    onSocket(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const f: Fake = {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
  fakes.push(f)
  return f
}

/** Accepts and reads nothing (a stopped or wedged server: the kernel still accepts). */
const deaf = (): Promise<Fake> => fake((socket) => socket.pause())

/** A meta server that reads nothing until `resume()`, then answers every `mg` with `EN`. */
async function held(): Promise<Fake & { resume(): void }> {
  let paused = true
  const f = await fake((socket) => {
    if (paused) socket.pause()
    let rest = ''
    socket.on('data', (d: Buffer) => {
      const lines = (rest + d.toString('latin1')).split('\n')
      rest = lines.pop()!
      socket.write('EN\r\n'.repeat(lines.filter((l) => l.startsWith('mg ')).length))
    })
  })
  const resume = (): void => {
    paused = false
    for (const socket of f.sockets) socket.resume()
  }
  return { ...f, resume }
}

interface Ctx {
  memcached?: Running
}

const s = suite<Ctx>('Client bounds', {})

setUp(s, async (ctx) => {
  ctx.memcached = await startMemcached(process.getuid?.() === 0 ? ['-u', 'nobody'] : [])
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.memcached?.stop(), ...fakes.map((f) => f.close())])
})

s('maxPending: a server that reads nothing holds at most maxPending requests; more are refused at once, not counted as its failure (meta, text, binary)', async () => {
  const server = await deaf()
  for (const protocol of ['meta', 'text', 'binary'] as Protocol[]) {
    const c = new Client({ servers: [`127.0.0.1:${server.port}`], protocol, maxPending: 1000, timeout: 800, retry: 0 })
    try {
      // a batch counts its keys: 600 + 399 singles + 1 = 1000 waiting
      const waiting: Array<Promise<unknown>> = [c.getMany(Array.from({ length: 600 }, (_, i) => `b:${i}`))]
      for (let i = 0; i < 399; i++) waiting.push(c.get(`k:${i}`))
      waiting.push(c.set('last', 'v'))
      let waitingSettled = 0
      for (const p of waiting) p.then(() => waitingSettled++, () => waitingSettled++)
      const refused = await Promise.allSettled([c.get('over'), c.set('over', 'v'), c.getMany(['x', 'y']), c.deleteMany(['x']), c.stats()])
      assert.equal(tally(refused), { FERROCACHE_QUEUE_FULL: 5 }, protocol)
      // at once: before any timer of the client ran (not a wall-clock bound, which a busy
      // machine can exceed), so before the first waiting request's timeout
      assert.is(waitingSettled, 0, `${protocol}: refused at once`)
      const err = (refused[0] as PromiseRejectedResult).reason as Err & { server: string }
      assert.is(err.server, `127.0.0.1:${server.port}`)
      assert.match(err.message, /1000 requests waiting for replies \(maxPending 1000\)/)
      // the requests already sent are what tells whether the server failed
      assert.equal(c.servers, [{ server: `127.0.0.1:${server.port}`, dead: false }])
      const settled = await within(Promise.allSettled(waiting), 5_000, 'the waiting requests time out')
      assert.equal(tally(settled), { FERROCACHE_TIMEOUT: 401 }, protocol)
    } finally {
      await c.close()
    }
  }
})

s('maxPending: the bound frees as replies come; a batch larger than it goes alone; another server is not bounded by a stuck one', async () => {
  const slow = await held()
  const c = new Client({ servers: [`127.0.0.1:${slow.port}`], maxPending: 100, timeout: 5_000, encoding: 'utf8' })
  try {
    // one batch of 500 keys goes when nothing waits; then nothing more until it is answered
    const big = c.getMany(Array.from({ length: 500 }, (_, i) => `big:${i}`))
    assert.is((await failure(c.get('more'))).code, 'FERROCACHE_QUEUE_FULL')
    slow.resume()
    assert.is((await within(big, 3_000, 'the batch')).size, 0)
    assert.is(await c.get('after'), undefined)
    // single requests: the 101st of one tick is refused, the first 100 answered
    const burst = await Promise.allSettled(Array.from({ length: 101 }, (_, i) => c.get(`burst:${i}`)))
    assert.equal(tally(burst), { ok: 100, FERROCACHE_QUEUE_FULL: 1 })
  } finally {
    await c.close()
  }

  const stuck = await deaf()
  const two = new Client({ servers: [`127.0.0.1:${stuck.port}`, `127.0.0.1:${slow.port}`], maxPending: 50, timeout: 600, retry: 0 })
  try {
    const keys = Array.from({ length: 1000 }, (_, i) => `two:${i}`)
    const toStuck = keys.filter((k) => two.serverFor(k) === `127.0.0.1:${stuck.port}`).slice(0, 80)
    const toSlow = keys.filter((k) => two.serverFor(k) === `127.0.0.1:${slow.port}`).slice(0, 40)
    const stuckGets = Promise.allSettled(toStuck.map((k) => two.get(k)))
    // the stuck server's 50 wait; its 30 others are refused, the other server's 40 answered
    assert.equal(tally(await Promise.allSettled(toSlow.map((k) => two.get(k)))), { ok: 40 })
    assert.equal(tally(await stuckGets), { FERROCACHE_QUEUE_FULL: 30, FERROCACHE_TIMEOUT: 50 })
  } finally {
    await two.close()
  }
})

s("maxPending with readFrom: 'replica': reads go to the primary while the replica's bound is reached", async () => {
  const primary = await held()
  primary.resume()
  const replica = await deaf()
  const c = new Client({
    servers: [{ host: '127.0.0.1', port: primary.port, replicas: [`127.0.0.1:${replica.port}`] }],
    readFrom: 'replica',
    maxPending: 10,
    timeout: 500,
    retry: 0,
  })
  try {
    const onReplica = Promise.allSettled(Array.from({ length: 10 }, (_, i) => c.get(`r:${i}`)))
    assert.equal(tally(await Promise.allSettled(Array.from({ length: 5 }, (_, i) => c.get(`p:${i}`)))), { ok: 5 })
    assert.equal(tally(await onReplica), { FERROCACHE_TIMEOUT: 10 })
  } finally {
    await c.close()
  }
})

s('maxPending: finite by default (1000000), a large batch bounds the rest, checked', async () => {
  assert.is(parseClientOptions({ servers: ['127.0.0.1:1'] }).settings.maxPending, DEFAULT_MAX_PENDING)
  assert.ok(Number.isSafeInteger(DEFAULT_MAX_PENDING) && DEFAULT_MAX_PENDING >= 100_000)
  const server = await deaf()
  const c = new Client({ servers: [`127.0.0.1:${server.port}`], timeout: 1_000, retry: 0, maxPending: 20_000 })
  try {
    const waiting = c.getMany(Array.from({ length: 20_000 }, (_, i) => `d:${i}`))
    waiting.catch(() => {})
    assert.is((await failure(c.get('one-more'))).code, 'FERROCACHE_QUEUE_FULL')
    assert.is((await failure(waiting, 5_000)).code, 'FERROCACHE_TIMEOUT')
  } finally {
    await c.close()
  }
  assert.throws(() => new Client({ servers: ['127.0.0.1:1'], maxPending: 0 }), /maxPending must be an integer from 1/)
  assert.throws(() => new Client({ servers: ['127.0.0.1:1'], maxPending: '5' as unknown as number }), /maxPending must be a number/)
})

s('a ttl over 30 days ends on the real clock when the app fakes Date (set, touch, gat; meta, text, binary)', async (ctx) => {
  const DAY = 24 * 3600 * 1000
  const realNow = Date.now
  for (const protocol of ['meta', 'text', 'binary'] as Protocol[]) {
    const c = new Client({ servers: [`127.0.0.1:${ctx.memcached!.port}`], protocol, encoding: 'utf8' })
    try {
      // as MockDate or fake timers with a fixed date do: the server's clock stays real
      Date.now = () => Date.UTC(2020, 0, 1)
      assert.is(await c.set(`long:${protocol}`, 'v', { ttl: 60 * DAY }), true)
      await c.set(`touched:${protocol}`, 'v')
      assert.is(await c.touch(`touched:${protocol}`, 45 * DAY), true)
      await c.set(`gat:${protocol}`, 'v')
      assert.is(await c.gat(`gat:${protocol}`, 45 * DAY), 'v')
      Date.now = realNow
      assert.is(await c.get(`long:${protocol}`), 'v', `${protocol}: stored already expired`)
      assert.is(await c.get(`touched:${protocol}`), 'v', `${protocol}: touched to an expired time`)
      assert.is(await c.get(`gat:${protocol}`), 'v', `${protocol}: gat to an expired time`)
    } finally {
      Date.now = realNow
      await c.close()
    }
  }
})

s('a frozen Date.now (a mocked date) does not stop timeouts: a request to a server that never answers still fails after timeout', async () => {
  const server = await deaf()
  const realNow = Date.now
  const frozen = realNow()
  const c = new Client({ servers: [`127.0.0.1:${server.port}`], timeout: 300, retry: 0 })
  try {
    Date.now = () => frozen
    const started = performance.now()
    assert.is((await failure(c.get('frozen'), 3_000)).code, 'FERROCACHE_TIMEOUT')
    assert.ok(performance.now() - started < 1_500, 'within about timeout')
  } finally {
    Date.now = realNow
    await c.close()
  }
})

s('a frozen Date.now does not keep a failed server failing: after retry ms it is tried again', async () => {
  const server = await deaf()
  const port = server.port
  await server.close() // nothing listens: connections are refused
  const realNow = Date.now
  const frozen = realNow()
  const c = new Client({ servers: [`127.0.0.1:${port}`], retry: 200, removeAfter: 100 })
  try {
    Date.now = () => frozen
    assert.is((await failure(c.get('a'))).code, 'FERROCACHE_CONNECTION')
    assert.is((await failure(c.get('b'))).code, 'FERROCACHE_SERVER_FAILING')
    await sleep(400)
    assert.is((await failure(c.get('c'))).code, 'FERROCACHE_CONNECTION', 'tried again after retry ms')
  } finally {
    Date.now = realNow
    await c.close()
  }
})

s('keyv adapter: a prefix that extends another (x, xnQ) does not share its namespaces; | is refused in a prefix', async () => {
  const cache = new Cache()
  try {
    // 'xnQ' + the token of 'sess' ('n' + base64url 'c2Vzcw') spelt 'x' + the token of
    // 'Bw6W70' ('n' + 'Qnc2Vzcw'): the two used one generation counter and one set of items
    const a = new KeyvFerrocache({ cache, prefix: 'x', namespace: 'Bw6W70' })
    const b = new KeyvFerrocache({ cache, prefix: 'xnQ', namespace: 'sess' })
    await a.set('k', 'from a')
    assert.is(await b.get('k'), undefined, "b reads a's item")
    await b.set('k', 'from b')
    assert.is(await a.get('k'), 'from a', "b's set overwrote a's item")
    await b.clear()
    assert.is(await a.get('k'), 'from a', "b's clear() cleared a's namespace")
    assert.throws(() => new KeyvFerrocache({ cache, prefix: 'a|b' }), /prefix must be .* without spaces or '\|'/)
  } finally {
    cache.close()
  }
})

s.run()
