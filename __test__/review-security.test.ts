// Ways into a running ferrocached that leaked secrets or data (docs/security.md): the
// replication login (--replica-auth) sent to any server a client named with `replicaof`,
// shown to every local user by `ps`, and logins' passwords in the -vv log; snapshot and log
// files every local user could read, a symlink in the data directory followed, and a Unix
// socket open to all for a moment. One set of servers for the file. Needs `npm run build`.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { maskedArgs, moveSecretToEnv } from '../src/cli/secret-args'
import { createServer } from '../src/server'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { stats } from './helpers/replication'
import { freePort, runCli, sleep, startAll, startFerrocached, type Running } from './helpers/servers'

const PASSWORD = 'pw-of-the-link-7f3a'
const LOGIN = `set x 0 0 ${`repl ${PASSWORD}`.length}\r\nrepl ${PASSWORD}\r\n`
const dir = mkdtempSync(join(tmpdir(), 'ferrocache-security-'))
const users = join(dir, 'users')
/** Created by the primary: it must come out private. */
const dataDir = join(dir, 'data', 'primary')
let primary: Running
/** A replica without logins of its own, and one with them. */
let open: Running
let guarded: Running

/** A server posing as a primary: asks every link for a login and keeps what it was sent. */
class FakePrimary {
  readonly received: string[] = []
  closedAfterAsking = 0
  private readonly server = net.createServer((s) => {
    let asked = false
    const i = this.received.push('') - 1
    s.on('error', () => {})
    s.on('data', (d: Buffer) => {
      this.received[i] += d.toString('latin1')
      if (!asked && this.received[i]!.includes('\n')) {
        asked = true
        s.write('CLIENT_ERROR unauthenticated\r\n')
      }
    })
    s.on('close', () => {
      if (asked) this.closedAfterAsking++
    })
  })
  port = 0

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as net.AddressInfo).port
    return this
  }

  /** Until the password arrived or a link it asked closed (`ms` at most). */
  async waitAnswer(ms = 5_000): Promise<string> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline && this.closedAfterAsking === 0 && !this.all().includes(PASSWORD)) await sleep(10)
    return this.all()
  }

  all(): string {
    return this.received.join('')
  }

  close(): void {
    this.server.close()
  }
}

/** Sends `lines` on one connection; the replies once they end with `end`. */
async function exchange(port: number, lines: string, end: string | RegExp): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(lines)
    return await c.until(end)
  } finally {
    c.close()
  }
}

async function linkUp(port: number, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if ((await stats(port)).get('master_link_status') === 'up') return true
    await sleep(25)
  }
  return false
}

setUp(test, async () => {
  writeFileSync(users, `repl:${PASSWORD}\nother:pw2\n`, { mode: 0o600 })
  primary = await startFerrocached(['-Y', users, '--data-dir', dataDir, '--appendfsync', 'everysec', '-vv'])
  const link = ['--replica-of', `127.0.0.1:${primary.port}`, '--replica-auth', `repl:${PASSWORD}`]
  ;[open, guarded] = await startAll([() => startFerrocached(link), () => startFerrocached(['-Y', users, ...link])])
  assert.ok(await linkUp(open.port), 'the replica logs in to its primary')
})

tearDown(test, async () => {
  await Promise.all([primary, open, guarded].map((r) => r?.stop()))
  rmSync(dir, { recursive: true, force: true })
})

test('replicaof from anyone does not hand --replica-auth to the server it names; the configured primary still gets it', async () => {
  const fake = await new FakePrimary().listen()
  try {
    assert.is(await exchange(open.port, `replicaof 127.0.0.1 ${fake.port}\r\n`, '\r\n'), 'OK\r\n')
    const got = await fake.waitAnswer()
    assert.match(got, /^psync /, 'the replica did connect')
    assert.not.ok(got.includes(PASSWORD), `the password went to the server named by replicaof: ${JSON.stringify(got)}`)
  } finally {
    fake.close()
  }
  assert.is(await exchange(open.port, `replicaof 127.0.0.1 ${primary.port}\r\n`, '\r\n'), 'OK\r\n')
  assert.ok(await linkUp(open.port), 'back on the configured primary, the link logs in again')
  assert.match(open.stderr(), /does not send --replica-auth/)
})

test('a client that logged in may re-point the link with its login (failover)', async () => {
  const fake = await new FakePrimary().listen()
  try {
    const reply = await exchange(guarded.port, `${LOGIN}replicaof 127.0.0.1 ${fake.port}\r\n`, 'OK\r\n')
    assert.is(reply, 'STORED\r\nOK\r\n')
    assert.ok((await fake.waitAnswer()).includes(`repl ${PASSWORD}`))
  } finally {
    fake.close()
  }
})

test('--replica-auth is masked in the process title (ps, /proc/<pid>/cmdline); -d hands it on by the environment', async () => {
  const cmdline = readFileSync(`/proc/${open.child.pid}/cmdline`, 'latin1')
  assert.ok(cmdline.includes('--replica-auth'), cmdline)
  assert.not.ok(cmdline.includes(PASSWORD), `visible to every local user: ${JSON.stringify(cmdline)}`)
  assert.ok(cmdline.includes('repl:***'), cmdline)
  // -d: the detached copy is started without the flag, the password in its environment
  const pidFile = join(dir, 'daemon.pid')
  const port = await freePort()
  const run = await runCli(['-d', '-P', pidFile, '-p', String(port), '--replica-of', `127.0.0.1:${primary.port}`, '--replica-auth', `repl:${PASSWORD}`])
  assert.is(run.code, 0, run.stderr)
  const pid = Number(readFileSync(pidFile, 'latin1'))
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'latin1')
    assert.not.ok(args.includes(PASSWORD) || args.includes('--replica-auth'), JSON.stringify(args))
    assert.ok(readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`FERROCACHE_REPLICA_AUTH=repl:${PASSWORD}`))
  } finally {
    process.kill(pid, 'SIGKILL')
  }
})

test('--replica-auth named by a getopt prefix (--replica-au, --replica-a=) is masked and handed on by the environment too', () => {
  const argv = ['-p', '1', '--replica-au', `repl:${PASSWORD}`, '--replica-of', 'h:1']
  assert.equal(maskedArgs(argv), ['-p', '1', '--replica-au', 'repl:***', '--replica-of', 'h:1'])
  assert.equal(maskedArgs(['-v', `--replica-a=repl:${PASSWORD}`]), ['-v', '--replica-a=repl:***'])
  const moved = moveSecretToEnv([...argv, '-v'], {})
  assert.equal(moved.argv, ['-p', '1', '--replica-of', 'h:1', '-v'])
  assert.is(moved.env.FERROCACHE_REPLICA_AUTH, `repl:${PASSWORD}`)
  // the word after an option that takes a value is that value, whatever it looks like
  assert.is(maskedArgs(['-l', '--replica-auth']), null)
})

test("-u's check of --data-dir, a process of that user, does not get the environment (FERROCACHE_REPLICA_AUTH)", async () => {
  if (process.getuid?.() !== 0) return // -u needs root
  const shared = mkdtempSync(join(tmpdir(), 'ferrocache-env-'))
  const private_ = mkdtempSync(join(tmpdir(), 'ferrocache-env-private-')) // 0700: the check fails, fast
  try {
    chmodSync(shared, 0o777)
    const spy = join(shared, 'spy.js')
    const seen = join(shared, 'seen')
    // loaded by every node process the environment reaches; writes what one running as
    // another user than root sees (any process of nobody could read it in /proc/<pid>/environ)
    writeFileSync(spy, `if (process.getuid() !== 0) require('fs').writeFileSync(${JSON.stringify(seen)}, String(process.env.FERROCACHE_REPLICA_AUTH))\n`, { mode: 0o644 })
    const port = await freePort()
    const r = await runCli(
      ['-p', String(port), '-l', '127.0.0.1', '-u', 'nobody', '--data-dir', join(private_, 'data'), '--replica-of', '127.0.0.1:1'],
      { FERROCACHE_REPLICA_AUTH: 'u:topsecret', NODE_OPTIONS: `--require ${spy}` },
    )
    assert.is(r.code, 1, r.stderr)
    assert.match(r.stderr, /cannot be reached by the user nobody/)
    assert.not.ok(existsSync(seen), `a process running as nobody had the password: ${existsSync(seen) ? readFileSync(seen, 'utf8') : ''}`)
  } finally {
    rmSync(shared, { recursive: true, force: true })
    rmSync(private_, { recursive: true, force: true })
  }
})

test('the data directory, snapshots and the log are private to the server user', async () => {
  assert.is(await exchange(primary.port, `${LOGIN}set k 0 0 1\r\nv\r\nsnapshot\r\n`, 'OK\r\n'), 'STORED\r\nSTORED\r\nOK\r\n')
  const mode = (p: string): number => statSync(p).mode & 0o777
  assert.is(mode(dataDir) & 0o077, 0, `data directory mode ${mode(dataDir).toString(8)}`)
  const files = ['appendonly.aof', 'LOCK', ...readdirSync(dataDir).filter((f) => f.startsWith('snapshot-'))]
  assert.ok(files.length >= 3, files.join(' '))
  for (const f of files) assert.is(mode(join(dataDir, f)) & 0o077, 0, `${f}: mode ${mode(join(dataDir, f)).toString(8)}`)
})

test('-vv on a server with logins does not log the bytes of reads (logins: text, SASL PLAIN, the replica link\'s)', async () => {
  const sasl = Buffer.from(`PLAIN\0repl\0${PASSWORD}`, 'latin1')
  const header = Buffer.alloc(24)
  header.writeUInt8(0x80, 0)
  header.writeUInt8(0x21, 1)
  header.writeUInt16BE(5, 2)
  header.writeUInt32BE(sasl.length, 8)
  const c = await RawConn.open(primary.port)
  try {
    c.send(Buffer.concat([header, sasl]))
    assert.match((await c.atLeast(24 + 13, 5_000)).toString('latin1'), /Authenticated$/)
  } finally {
    c.close()
  }
  assert.is(await exchange(primary.port, LOGIN, '\r\n'), 'STORED\r\n')
  const deadline = Date.now() + 5_000
  while (Date.now() < deadline && (primary.stderr().match(/"msg":"read"/g) ?? []).length < 3) await sleep(10)
  assert.ok((primary.stderr().match(/"msg":"read"/g) ?? []).length >= 3, 'reads are logged')
  assert.not.ok(primary.stderr().includes(PASSWORD), 'a password in the log')
})

test('the Unix socket has its -a mode from the bind on, whatever the umask (no moment others may connect)', async () => {
  const path = join(dir, 'fc.sock')
  // longer, libuv binds a truncated path, the stat below throws and listen() never settles
  assert.ok(Buffer.byteLength(path) <= 107, `${path}: over the 107 bytes of a Unix socket path (a long TMPDIR)`)
  let modeAtListening = -1
  const listen = net.Server.prototype.listen
  const old = process.umask(0)
  const server = createServer({ unixSocket: { path, mode: 0o700 } })
  // the first 'listening' listener runs as the socket starts accepting, before anything else
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    this.once('listening', () => (modeAtListening = statSync(path).mode & 0o777))
    return (listen as (...a: unknown[]) => net.Server).apply(this, args)
  } as typeof listen
  try {
    await server.listen()
  } finally {
    net.Server.prototype.listen = listen
    process.umask(old)
    await server.close()
  }
  assert.is(modeAtListening.toString(8), '700')
})

test('a symlink planted in place of the log is not followed (the file it names is left alone)', async () => {
  const d = join(dir, 'planted')
  mkdirSync(d)
  const victim = join(dir, 'victim')
  writeFileSync(victim, 'short')
  symlinkSync(victim, join(d, 'appendonly.aof'))
  const run = await runCli(['-p', '0', '--data-dir', d, '--appendfsync', 'everysec'], {}, 10_000)
  assert.is.not(run.code, 0, 'refused to start')
  assert.match(run.stderr, /symbolic link/)
  assert.is(readFileSync(victim, 'latin1'), 'short')
})

test.run()
