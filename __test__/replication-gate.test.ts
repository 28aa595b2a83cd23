// Who may use `replicaof` and `psync` (docs/security.md): `-X` (no dumps) refuses `psync`,
// a full dump of every item, while a primary without it still feeds its replicas; and
// `--no-replication-commands` makes both answer like memcached 1.6.18 answers any unknown
// command, byte for byte. Needs `npm run build` and /usr/bin/memcached.
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
  const [memcached, plain, plainEnv] = await startAll([
    () => startMemcached(asRoot ? ['-u', 'nobody'] : []),
    () => startFerrocached(['--no-replication-commands']),
    () => startFerrocached([], { FERROCACHE_NO_REPLICATION_COMMANDS: '1' }),
  ])
  started.push(memcached!, plain!, plainEnv!)
  const expected = await exchange(memcached!.port, REPLICATION_REQUEST, 'END\r\n')
  assert.is(expected, 'ERROR\r\nERROR\r\nERROR\r\nEND\r\n', 'memcached 1.6.18 reference')
  assert.is(await exchange(plain!.port, REPLICATION_REQUEST, 'END\r\n'), expected)
  assert.is(await exchange(plainEnv!.port, REPLICATION_REQUEST, 'END\r\n'), expected)
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
