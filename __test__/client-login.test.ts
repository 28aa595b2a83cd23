// Client `username`/`password`: memcached 1.6's text login (`-Y` user file) sent first on
// every connection, before any request, in both dialects, against ferrocached -Y and
// memcached 1.6.18 -Y. A refused login fails the requests queued behind it with
// FERROCACHE_AUTH; a connection opened again (after a drop) logs in again.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { suite } from 'uvu'
import * as assert from 'uvu/assert'
import { Client, type ClientOptions } from '../src'
import { setUp, tearDown } from './helpers/guard'
import { TextConn } from './helpers/nutcracker'
import { startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'
import { failure } from './helpers/settled'

const USER = 'app'
const PASS = 's3cret-token'

interface Ctx {
  dir?: string
  ferrocached?: Running
  memcached?: Running
  plain?: Running
}

const s = suite<Ctx>('Client login', {})

setUp(s, async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), 'ferrocache-client-login-'))
  const users = join(ctx.dir, 'users')
  writeFileSync(users, `${USER}:${PASS}\nother:x\n`, { mode: 0o644 })
  ;[ctx.ferrocached, ctx.memcached, ctx.plain] = await startAll([
    () => startFerrocached(['-Y', users]),
    () => startMemcached(['-Y', users]),
    () => startFerrocached(),
  ])
})

tearDown(s, async (ctx) => {
  await Promise.all([ctx.ferrocached?.stop(), ctx.memcached?.stop(), ctx.plain?.stop()])
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true })
})

type Err = Error & { code: string; server?: string }

function client(port: number, more: Partial<ClientOptions<'utf8'>> = {}): Client<'utf8'> {
  return new Client({ servers: [`127.0.0.1:${port}`], encoding: 'utf8', username: USER, password: PASS, ...more })
}

const servers = (ctx: Ctx): Array<[string, Running]> => [
  ['ferrocached -Y', ctx.ferrocached!],
  ['memcached -Y', ctx.memcached!],
]

s('logged in, every method works in both dialects, on every pooled connection', async (ctx) => {
  for (const [name, server] of servers(ctx)) {
    for (const protocol of ['meta', 'text'] as const) {
      const c = client(server.port, { protocol, poolSize: 3 })
      try {
        const p = `${protocol}:`
        // the first requests go out in the same write as the login
        const writes = await Promise.all(Array.from({ length: 200 }, (_, i) => c.set(`${p}${i}`, `v${i}`)))
        assert.ok(writes.every((w) => w === true), `${name} ${protocol}`)
        assert.is(await c.get(`${p}7`), 'v7')
        assert.is((await c.getMany([`${p}1`, `${p}2`, `${p}none`])).size, 2)
        assert.is(await c.incr(`${p}n`), undefined)
        assert.is(await c.delete(`${p}1`), true)
        assert.ok((await c.stats()).cmd_set >= 200)
      } finally {
        await c.close()
      }
    }
  }
})

s('a refused login fails the requests queued behind it with FERROCACHE_AUTH, and the next ones while failing', async (ctx) => {
  for (const [name, server] of servers(ctx)) {
    for (const protocol of ['meta', 'text'] as const) {
      const c = client(server.port, { protocol, password: 'wrong', retry: 60_000 })
      try {
        const [a, b] = await Promise.all([failure(c.get('k')), failure(c.set('k', 'v'))])
        for (const err of [a, b]) {
          assert.is(err.code, 'FERROCACHE_AUTH', `${name} ${protocol}`)
          assert.match(err.message, new RegExp(`^login to 127\\.0\\.0\\.1:${server.port} as 'app' failed: CLIENT_ERROR `))
          assert.is(err.server, `127.0.0.1:${server.port}`)
        }
        const later = await failure(c.get('k'))
        assert.is(later.code, 'FERROCACHE_SERVER_FAILING')
        assert.match(later.message, /\(login to .* failed: CLIENT_ERROR/)
      } finally {
        await c.close()
      }
    }
  }
})

s('without credentials a server with logins answers CLIENT_ERROR unauthenticated', async (ctx) => {
  const c = new Client({ servers: [`127.0.0.1:${ctx.ferrocached!.port}`] })
  try {
    const err = await failure(c.get('k'))
    assert.is(err.code, 'FERROCACHE_SERVER_ERROR')
    assert.match(err.message, /CLIENT_ERROR unauthenticated/)
  } finally {
    await c.close()
  }
})

/** The server's `auth_cmds` (logins tried), read on a connection of our own (one more). */
async function authCmds(port: number): Promise<number> {
  const conn = await TextConn.open(port)
  try {
    assert.is(await conn.line(`set x 0 0 ${USER.length + 1 + PASS.length}\r\n${USER} ${PASS}\r\n`), 'STORED\r\n')
    const stats = await conn.call('stats\r\n', (t) => t.endsWith('END\r\n'))
    return Number(/^STAT auth_cmds (\d+)\r$/m.exec(stats)![1])
  } finally {
    conn.close()
  }
}

/** A TCP relay to `port` whose connections can be cut at will. */
async function relay(port: number): Promise<{ port: number; cut(): void; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((down) => {
    const up = net.connect(port, '127.0.0.1')
    sockets.add(down).add(up)
    down.pipe(up).pipe(down)
    const end = () => {
      up.destroy()
      down.destroy()
      sockets.delete(up)
      sockets.delete(down)
    }
    up.on('error', end).on('close', end)
    down.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => {
      for (const sock of sockets) sock.destroy()
    },
    close: async () => {
      for (const sock of sockets) sock.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

s('a connection opened again logs in again (dropped connections, a dead server probed back)', async (ctx) => {
  const backend = ctx.ferrocached!
  const relayed = await relay(backend.port)
  const before = await authCmds(backend.port)
  try {
    for (const protocol of ['meta', 'text'] as const) {
      const c = client(relayed.port, { protocol, retry: 0, removeAfter: 1, reconnect: 20 })
      try {
        assert.is(await c.set('again', protocol), true)
        for (let round = 0; round < 3; round++) {
          relayed.cut()
          // the cut fails what was in flight (if anything); then the server is dead until
          // a probe - on a new connection, logged in - brings it back
          for (let tries = 0; tries < 200; tries++) {
            const got = await c.get('again').catch((e: Err) => e)
            if (got === protocol) break
            assert.ok(got instanceof Error && ['FERROCACHE_CONNECTION', 'FERROCACHE_SERVER_DEAD', 'FERROCACHE_SERVER_FAILING'].includes(got.code), String(got))
            await new Promise((r) => setTimeout(r, 20))
          }
          assert.is(await c.get('again'), protocol, `round ${round}`)
        }
      } finally {
        await c.close()
      }
    }
    // one login per connection: the first of each dialect, then at least one per cut
    assert.ok((await authCmds(backend.port)) - before >= 2 * 4 + 1)
  } finally {
    await relayed.close()
  }
})

s('a server without logins takes the login as a set of an already expired item', async (ctx) => {
  const c = client(ctx.plain!.port)
  const plain = new Client({ servers: [`127.0.0.1:${ctx.plain!.port}`], encoding: 'utf8' })
  try {
    assert.is(await c.set('k', 'v'), true)
    assert.is(await plain.get('ferrocache:login'), undefined, 'the credentials are not kept')
    assert.is((await plain.stats()).curr_items, 1)
  } finally {
    await c.close()
    await plain.close()
  }
})

s('username/password options: both or neither, no spaces, not through twemproxy', () => {
  const base = { servers: ['127.0.0.1:1'] }
  assert.throws(() => new Client({ ...base, username: 'u' }), (e: Error) => e instanceof TypeError && e.message === 'username needs password')
  assert.throws(() => new Client({ ...base, password: 'p' }), (e: Error) => e instanceof TypeError && e.message === 'password needs username')
  assert.throws(() => new Client({ ...base, username: 'u', password: 'a b' }), (e: Error) => e instanceof TypeError && /^password must not contain spaces/.test(e.message))
  assert.throws(() => new Client({ ...base, username: '', password: 'p' }), (e: Error) => e instanceof TypeError && e.message === 'username must not be empty')
  assert.throws(
    () => new Client({ ...base, username: 'u', password: 7 as unknown as string }),
    (e: Error) => e instanceof TypeError && e.message === 'password must be a string, got number',
  )
  assert.throws(
    () => new Client({ ...base, username: 'u', password: 'p', protocol: 'twemproxy' }),
    (e: Error) => e instanceof TypeError && /^username\/password cannot be used with protocol 'twemproxy'/.test(e.message),
  )
})

s.run()
