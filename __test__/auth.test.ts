// Logins through ferrocached: memjs with credentials (SASL PLAIN), wrong credentials,
// the text login, the counters and settings memcached reports, command-line errors, and
// the warning for a server reachable beyond loopback without logins. The byte-for-byte
// comparison with memcached is auth-differential.test.ts.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import memjs from 'memjs'
import pino from 'pino'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { exposureWarning, isLoopback } from '../src/server/auth'
import { createServer } from '../src/server'
import { RawConn } from './helpers/raw'
import { setUp, tearDown } from './helpers/guard'
import { run, runCli, sleep, startFerrocached, type Running } from './helpers/servers'
import { parseCommandLine, type CliSettings } from '../src/cli/options'

let dir: string
let userFile: string
let server: Running

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-auth-'))
  userFile = join(dir, 'users')
  writeFileSync(userFile, 'alice:s3cret\nbob:two words:and colons\n')
  server = await startFerrocached(['-S', '-Y', userFile])
})

tearDown(test, async () => {
  await server?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

function memjsClient(credentials: string): memjs.Client {
  return memjs.Client.create(`${credentials}@127.0.0.1:${server.port}`, {
    retries: 0,
    timeout: 3,
    conntimeout: 3,
    logger: { log: () => {} },
  })
}

test('memjs with credentials: set, get, delete over SASL PLAIN', async () => {
  const client = memjsClient('alice:s3cret')
  try {
    assert.is(await client.set('k', 'hello', {}), true)
    assert.is((await client.get('k')).value?.toString(), 'hello')
    assert.is(await client.delete('k'), true)
  } finally {
    client.close()
  }
})

test('memjs with a wrong password fails and stores nothing', async () => {
  const client = memjsClient('alice:wrong')
  try {
    // memjs rejects with no error object when the server refuses the login
    const rejected = await client.set('w', 'x', {}).then(
      () => false,
      () => true,
    )
    assert.ok(rejected, 'the set fails')
  } finally {
    client.close()
  }
  const c = await RawConn.open(server.port)
  c.send('set x 0 0 12\r\nalice s3cret\r\nget w\r\n')
  assert.is(await c.until('END\r\n'), 'STORED\r\nEND\r\n')
  c.close()
})

test('libmemcached with SASL (memccp/memccat/memcstat --binary --username --password)', async () => {
  const servers = `--servers=127.0.0.1:${server.port}`
  const login = ['--binary', '--username=alice', '--password=s3cret']
  const file = join(dir, 'payload.txt')
  writeFileSync(file, 'stored through SASL\n')
  const cp = await run('/usr/bin/memccp', [servers, ...login, file])
  assert.is(cp.code, 0, cp.stderr)
  // memccp's set is quiet and it exits at once: the value may land a moment later.
  let cat = await run('/usr/bin/memccat', [servers, ...login, 'payload.txt'])
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && cat.stdout.trim() === ''; ) {
    await sleep(50)
    cat = await run('/usr/bin/memccat', [servers, ...login, 'payload.txt'])
  }
  assert.is(cat.stdout, 'stored through SASL\n\n') // memccat adds a newline
  const stat = await run('/usr/bin/memcstat', [servers, ...login])
  assert.match(stat.stdout, /version: 1\.6\.18/)
  const refused = await run('/usr/bin/memcstat', [servers, '--binary', '--username=alice', '--password=nope'])
  assert.match(refused.stdout + refused.stderr, /AUTHENTICATION FAILURE/)
  assert.not.match(refused.stdout, /version:/)
})

test('command line: -Y/-S/-Z/--tls-* and their FERROCACHE_* variables', () => {
  const run = (argv: string[], env: NodeJS.ProcessEnv = {}): CliSettings => {
    const c = parseCommandLine(argv, env)
    if (c.kind !== 'run') throw new Error(c.kind)
    return c.settings
  }
  assert.is(run(['-Y', '/u']).authFile, '/u')
  assert.is(run(['-S', '--auth-file', '/u']).authFile, '/u')
  assert.is(run([], { FERROCACHE_AUTH_FILE: '/e' }).authFile, '/e')
  assert.is(run([]).authFile, undefined)
  assert.equal(run(['--tls-cert', 'c', '--tls-key', 'k']).tls, { cert: 'c', key: 'k' })
  assert.equal(run(['-Z', '-o', 'ssl_chain_cert=c,ssl_key=k,ssl_ca_cert=a,idle_timeout=3']).tls, { cert: 'c', key: 'k', ca: 'a' })
  assert.equal(run([], { FERROCACHE_TLS_CERT: 'c', FERROCACHE_TLS_KEY: 'k', FERROCACHE_TLS_CA: 'a' }).tls, { cert: 'c', key: 'k', ca: 'a' })
  assert.is(run([]).tls, undefined)
  assert.throws(() => parseCommandLine(['-S']), /needs the users/)
  assert.throws(() => parseCommandLine(['--tls-cert', 'c']), /--tls-key/)
  assert.throws(() => parseCommandLine(['--tls-ca', 'a']), /--tls-cert/)
  // memcached's other ssl_* names are accepted with a log line (src/cli/extended.ts)
  assert.throws(() => parseCommandLine(['-o', 'ssl_nosuch=x']), /unknown -o option/)
})

test('text login: passwords with spaces cannot be sent, colons can; counters and settings', async () => {
  const c = await RawConn.open(server.port)
  c.send('stats\r\n')
  assert.is(await c.until('\r\n'), 'CLIENT_ERROR unauthenticated\r\n')
  // "two words:and colons" has a space: the token splits it, so bob cannot log in as text
  c.send('set x 0 0 24\r\nbob two words:and colons\r\n')
  assert.is(await c.until('\r\n'), 'CLIENT_ERROR authentication failure\r\n')
  c.send('set x 0 0 12\r\nalice s3cret\r\nstats\r\nstats settings\r\n')
  const text = await c.until(/END\r\n[^]*END\r\n$/)
  assert.match(text, /^STORED\r\n/)
  const stat = (name: string): string | undefined => new RegExp(`STAT ${name} (\\S+)\r\n`).exec(text)?.[1]
  assert.ok(Number(stat('auth_cmds')) >= 2, 'auth_cmds counts logins')
  assert.ok(Number(stat('auth_errors')) >= 1, 'auth_errors counts failures')
  assert.is(stat('auth_enabled_sasl'), 'yes')
  assert.is(stat('auth_enabled_ascii'), userFile)
  c.close()
})

test('bad user files and -S without users are usage errors (exit 1 where memcached 1.6.18 refuses them too, else 2)', async () => {
  // memcached: "Error initializing sasl." without its SASL database, exit 1
  const noUsers = await runCli(['-S', '-p', '0'])
  assert.is(noUsers.code, 1)
  assert.match(noUsers.stderr, /-S\/--enable-sasl needs the users/)
  const bad = join(dir, 'bad')
  writeFileSync(bad, 'alice:ok\nno-colon\n')
  const malformed = await runCli(['-Y', bad, '-p', '0'])
  assert.is(malformed.code, 2)
  assert.match(malformed.stderr, /line 2 is not username:password/)
  assert.match(malformed.stderr, /^ferrocached: -Y\/--auth-file \S+bad: line 2/m)
  // memcached: "Could not open authfile [...] for reading", exit 1
  const missing = await runCli(['-Y', join(dir, 'nope'), '-p', '0'])
  assert.is(missing.code, 1)
  assert.match(missing.stderr, /cannot read the user file/)
  // the command line's words: the flag, not createServer's option name
  assert.match(missing.stderr, /^ferrocached: -Y\/--auth-file \S+nope: cannot read the user file: ENOENT/m)
})

test('createServer({ authFile }) requires logins for embedded servers too', async () => {
  const s = createServer({ port: 0, authFile: userFile })
  const { port } = await s.listen()
  try {
    const c = await RawConn.open(port)
    c.send('mn\r\n')
    assert.is(await c.until('\r\n'), 'CLIENT_ERROR unauthenticated\r\n')
    c.close()
  } finally {
    await s.close(1_000)
  }
  assert.throws(() => createServer({ authFile: '' }), /authFile must be the path/)
})

/** The socket inodes a process holds, from /proc/<pid>/fd. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) inodes.add(m[1]!)
    } catch {
      // closed meanwhile
    }
  }
  return inodes
}

/** Rows of /proc/net/{tcp,tcp6,udp,udp6} owned by `inodes`: [local address:port hex, state hex]. */
function sockets(table: string, inodes: Set<string>): Array<[string, string]> {
  return readFileSync(`/proc/net/${table}`, 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length > 9 && inodes.has(f[9]!))
    .map((f) => [f[1]!, f[3]!])
}

test('defaults hold in a running ferrocached: no UDP socket, TCP listening on 127.0.0.1 only', () => {
  const inodes = socketInodes(server.child.pid!)
  assert.equal(sockets('udp', inodes), [])
  assert.equal(sockets('udp6', inodes), [])
  const listening = [...sockets('tcp', inodes), ...sockets('tcp6', inodes)].filter(([, state]) => state === '0A')
  const port = server.port.toString(16).toUpperCase().padStart(4, '0')
  assert.equal(listening, [[`0100007F:${port}`, '0A']], 'one listener, on 127.0.0.1')
})

test('loopback addresses and the warning for an open server without logins', () => {
  for (const a of ['127.0.0.1', '127.0.0.2', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost']) {
    assert.ok(isLoopback(a), a)
  }
  for (const a of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.5', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1']) {
    assert.not.ok(isLoopback(a), a)
  }
  assert.is(exposureWarning('127.0.0.1', false), undefined)
  assert.is(exposureWarning('0.0.0.0', true), undefined)
  assert.match(exposureWarning('0.0.0.0', false) ?? '', /without authentication.*-Y\/--auth-file/)
})

test('no warning when listening on another loopback address', async () => {
  const lines: string[] = []
  const logger = pino({ level: 'info' }, { write: (l: string) => lines.push(l) })
  const s = createServer({ port: 0, host: '127.0.0.2', logger })
  const { port, address } = await s.listen()
  try {
    assert.is(address, '127.0.0.2')
    assert.ok(lines.some((l) => l.includes('"msg":"listening"')), 'the logger is in use')
    assert.not.ok(lines.some((l) => l.includes('without authentication')), 'no warning on a loopback address')
    const c = await RawConn.open(port).catch(() => undefined)
    c?.close()
  } finally {
    await s.close(1_000)
  }
})

test.run()
