// Who may use `replicaof` and `psync` (docs/security.md): `-X` (no dumps) refuses `psync`,
// a full dump of every item, while a primary without it still feeds its replicas; and
// `--no-replication-commands` makes both answer like memcached 1.6.18 answers any unknown
// command, byte for byte. Needs `npm run build` and /usr/bin/memcached.
import dgram from 'node:dgram'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer } from '../src/server'
import { tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { runCli, sleep, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const started: Running[] = []

tearDown(test, async () => {
  await Promise.all(started.map((r) => r.stop()))
})

/** Sends `request` on a new connection; the whole reply, once it ends with `end`. */
async function exchange(port: number, request: string, end: string | RegExp): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(request)
    return await c.until(end)
  } finally {
    c.socket.destroy()
  }
}

/** A UDP port free on 127.0.0.1 right now (the kernel picks it). */
function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.once('error', reject)
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** One request datagram (8-byte frame header, request id 1) to `port`; the reply datagram. */
async function datagram(port: number, payload: string): Promise<Buffer> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  try {
    const header = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0])
    const reply = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply to ${JSON.stringify(payload)} in 3 s`)), 3_000)
      s.once('message', (m: Buffer) => {
        clearTimeout(timer)
        resolve(m)
      })
    })
    s.send(Buffer.concat([header, Buffer.from(payload, 'latin1')]), port, '127.0.0.1')
    return await reply
  } finally {
    s.close()
  }
}

// Each replication command, with a plain command after it to show the connection goes on.
const REPLICATION_REQUEST = 'replicaof 127.0.0.1 1\r\npsync ? 0\r\nreplicaof no one\r\nget absent\r\n'

test('-X refuses psync (a full dump); a primary without -X still feeds a replica', async () => {
  const [closed, open] = await startAll([() => startFerrocached(['-X']), () => startFerrocached()])
  started.push(closed!, open!)
  const refused = await exchange(closed!.port, 'set k 0 0 1\r\nv\r\npsync ? 0\r\nget k\r\n', 'END\r\n')
  assert.is(refused, 'STORED\r\nCLIENT_ERROR psync not allowed\r\nVALUE k 0 1\r\nv\r\nEND\r\n')

  // a replica cannot follow the -X server: its link never gets the data
  const blocked = await startFerrocached(['--replica-of', `127.0.0.1:${closed!.port}`])
  started.push(blocked)
  // the normal primary: the replica gets an item set before and one set after it connects
  assert.is(await exchange(open!.port, 'set before 0 0 1\r\nb\r\n', '\r\n'), 'STORED\r\n')
  const replica = await startFerrocached(['--replica-of', `127.0.0.1:${open!.port}`])
  started.push(replica)
  assert.is(await exchange(open!.port, 'set after 0 0 1\r\na\r\n', '\r\n'), 'STORED\r\n')
  const want = 'VALUE before 0 1\r\nb\r\nVALUE after 0 1\r\na\r\nEND\r\n'
  let seen = ''
  for (let i = 0; i < 80 && seen !== want; i++) {
    seen = await exchange(replica.port, 'get before after\r\n', 'END\r\n')
    if (seen !== want) await sleep(100)
  }
  assert.is(seen, want, 'replica of a normal primary')
  assert.is(await exchange(blocked.port, 'get k\r\n', 'END\r\n'), 'END\r\n', 'a replica of the -X server got its item')
})

test('--no-replication-commands: replicaof and psync answer ERROR byte for byte like memcached', async () => {
  // memcached refuses root without -u; `nobody` as the brief's reference run
  const asRoot = process.getuid?.() === 0
  const [mu, fu] = [await freeUdpPort(), await freeUdpPort()]
  const [memcached, plain, plainEnv] = await startAll([
    () => startMemcached(['-U', String(mu), ...(asRoot ? ['-u', 'nobody'] : [])]),
    () => startFerrocached(['--no-replication-commands', '-U', String(fu)]),
    () => startFerrocached([], { FERROCACHE_NO_REPLICATION_COMMANDS: '1' }),
  ])
  started.push(memcached!, plain!, plainEnv!)
  const expected = await exchange(memcached!.port, REPLICATION_REQUEST, 'END\r\n')
  assert.is(expected, 'ERROR\r\nERROR\r\nERROR\r\nEND\r\n', 'memcached 1.6.18 reference')
  assert.is(await exchange(plain!.port, REPLICATION_REQUEST, 'END\r\n'), expected)
  assert.is(await exchange(plainEnv!.port, REPLICATION_REQUEST, 'END\r\n'), expected)
  // over UDP too (where replication is refused anyway), the same datagram as memcached's
  for (const line of ['replicaof 127.0.0.1 1\r\n', 'psync ? 0\r\n']) {
    const want = await datagram(mu, line)
    assert.is(want.subarray(8).toString('latin1'), 'ERROR\r\n', 'memcached over UDP')
    assert.equal(await datagram(fu, line), want, `UDP ${JSON.stringify(line)}`)
  }
})

test('--no-replication-commands with --replica-of: usage error naming both (exit 2)', async () => {
  const flags = await runCli(['--no-replication-commands', '--replica-of', '127.0.0.1:1'])
  assert.is(flags.code, 2)
  assert.match(flags.stderr, /--no-replication-commands cannot be used with --replica-of/)
  const env = await runCli(['--replica-of', '127.0.0.1:1'], { FERROCACHE_NO_REPLICATION_COMMANDS: '1' })
  assert.is(env.code, 2)
  assert.match(env.stderr, /FERROCACHE_NO_REPLICATION_COMMANDS cannot be used with --replica-of/)
  const help = await runCli(['--help'])
  assert.match(help.stdout, /--no-replication-commands/)
  assert.throws(
    () => createServer({ port: 0, replicationCommands: false, replication: { replicaOf: '127.0.0.1:1' } }),
    /replicationCommands: false cannot be used with replication\.replicaOf/,
  )
})

test.run()
