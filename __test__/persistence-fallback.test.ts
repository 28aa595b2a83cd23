// ferrocached with a damaged newest snapshot and the append-only log: the older snapshot
// loads and the log, kept back to the oldest kept snapshot, brings back every acknowledged
// write (docs/persistence.md "The append-only log"); a delayed flush_all replays at its
// deadline; and a last snapshot at stop that fails makes the process exit 1. Every server
// is stopped by its PID; every wait is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RawConn } from './helpers/raw'
import { sleep, startFerrocached, stopChild, waitFor, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

const dirs: string[] = []
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferrocached-fallback-'))
  dirs.push(d)
  return d
}
const running: Running[] = []
async function start(args: string[]): Promise<Running> {
  const r = await startFerrocached(args)
  running.push(r)
  return r
}
function exited(r: Running): Promise<number | null> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return Promise.resolve(r.child.exitCode)
  return new Promise((resolve) => r.child.once('exit', (code) => resolve(code)))
}
const snapshots = (d: string): string[] =>
  readdirSync(d)
    .filter((n) => n.endsWith('.fcs'))
    .sort()

tearDown(test, async () => {
  for (const r of running) await stopChild(r.child, 'SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** `gets` of many keys: key → "flags value-length cas\r\nvalue". */
async function getsMany(c: RawConn, keys: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (let at = 0; at < keys.length; at += 100) {
    c.send(`gets ${keys.slice(at, at + 100).join(' ')}\r\n`)
    const text = await c.until(/END\r\n$/, 10_000)
    const re = /VALUE (\S+) (\d+ (\d+) \d+)\r\n/g
    let m: RegExpExecArray | null
    while ((m = re.exec(text)) !== null) {
      const len = Number(m[3])
      out.set(m[1]!, `${m[2]}\r\n${text.slice(re.lastIndex, re.lastIndex + len)}`)
      re.lastIndex += len + 2
    }
  }
  return out
}

/** Sets `r<round>k<i>` for i < n, overwrites and deletes some of the round before, pipelined. */
async function round(c: RawConn, r: number, n: number): Promise<string[]> {
  const keys: string[] = []
  let req = ''
  let replies = ''
  for (let i = 0; i < n; i++) {
    const v = `v${r}.${i}.${'x'.repeat(i % 50)}`
    req += `set r${r}k${i} ${r * 1000 + i} 0 ${v.length}\r\n${v}\r\n`
    replies += 'STORED\r\n'
    keys.push(`r${r}k${i}`)
  }
  if (r > 0) {
    for (let i = 0; i < 10; i++) {
      req += `set r${r - 1}k${i} 7 0 5\r\nagain\r\n`
      replies += 'STORED\r\n'
    }
    for (let i = 10; i < 20; i++) {
      req += `delete r${r - 1}k${i}\r\n`
      replies += 'DELETED\r\n'
    }
  }
  c.send(req)
  assert.is(await c.until(replies, 10_000), replies)
  return keys
}

test('appendfsync always: a damaged newest snapshot falls back to the older one and the log restores every acknowledged write', async () => {
  const dir = dataDir()
  const a = await start(['--data-dir', dir, '--save', '', '--appendfsync', 'always'])
  const c = await RawConn.open(a.port)
  const keys: string[] = []
  for (let r = 0; r < 3; r++) {
    keys.push(...(await round(c, r, 300)))
    // snapshots after the first two rounds; the third is in the log only
    if (r < 2) {
      c.send('snapshot\r\n')
      assert.is(await c.until('\r\n', 10_000), 'OK\r\n')
    }
  }
  const want = await getsMany(c, keys)
  assert.is(want.size, keys.length - 20, 'the deleted keys miss')
  c.close()
  // a crash: no last snapshot
  a.child.kill('SIGKILL')
  await exited(a)
  const [older, newest] = snapshots(dir)
  assert.ok(older !== undefined && newest !== undefined, readdirSync(dir).join(' '))
  const path = join(dir, newest)
  const bytes = readFileSync(path)
  bytes[bytes.length >> 1]! ^= 0x5a
  writeFileSync(path, bytes)

  const b = await start(['--data-dir', dir, '--save', '', '--appendfsync', 'always'])
  const d = await RawConn.open(b.port)
  const got = await getsMany(d, keys)
  d.close()
  const missing = keys.filter((k) => want.get(k) !== got.get(k))
  assert.equal(missing.slice(0, 5), [], `${missing.length} keys differ (value, flags or CAS)`)
  assert.is(got.size, want.size)
  assert.ok(existsSync(`${path}.corrupt`), 'the damaged snapshot is set aside')
  await stopChild(b.child)
})

test('a delayed flush_all whose deadline passes while the server is down takes the items set before its deadline', async () => {
  const dir = dataDir()
  const args = ['--data-dir', dir, '--save', '', '--appendfsync', 'always']
  const a = await start(args)
  let c = await RawConn.open(a.port)
  c.send('set before 0 0 1\r\n1\r\nflush_all 2\r\nset meanwhile 0 0 1\r\n2\r\n')
  assert.is(await c.until('STORED\r\nOK\r\nSTORED\r\n'), 'STORED\r\nOK\r\nSTORED\r\n')
  c.close()
  a.child.kill('SIGKILL')
  await exited(a)
  // past the deadline (2 s after the command, whole seconds) while down
  await sleep(3_100)
  const b = await start(args)
  c = await RawConn.open(b.port)
  c.send('get before meanwhile\r\nset after 0 0 1\r\n3\r\n')
  assert.is(await c.until('STORED\r\n'), 'END\r\nSTORED\r\n', 'both were stored before the deadline')
  c.close()
  b.child.kill('SIGKILL')
  await exited(b)
  // the deadline is marked in the log now: what was set after it survives the next restart
  const d = await start(args)
  c = await RawConn.open(d.port)
  c.send('get before meanwhile after\r\n')
  assert.is(await c.until('END\r\n'), 'VALUE after 0 1\r\n3\r\nEND\r\n')
  c.close()
  await stopChild(d.child)
})

test('a last snapshot at stop that fails is logged and ferrocached exits 1', async () => {
  const dir = dataDir()
  const a = await start(['--data-dir', dir, '--save', ''])
  const c = await RawConn.open(a.port)
  const value = 'v'.repeat(2000)
  let req = ''
  for (let i = 0; i < 100; i++) req += `set k${i} 0 0 ${value.length} noreply\r\n${value}\r\n`
  c.send(`${req}mn\r\n`)
  await c.until('MN\r\n')
  c.close()
  // no file of the server may grow past 4 KiB now: the snapshot's write fails with EFBIG
  // (node ignores SIGXFSZ)
  execFileSync('prlimit', ['--pid', String(a.child.pid), '--fsize=4096:'])
  const code = exited(a)
  a.child.kill('SIGTERM')
  assert.is(await code, 1, a.stderr())
  assert.ok(
    await waitFor(() => a.stderr().includes('snapshot failed; the previous snapshot is kept'), 1_000),
    a.stderr(),
  )
  assert.match(a.stderr(), /"exitCode":1/)
  assert.equal(snapshots(dir), [])
})

test('a last snapshot at stop that succeeds exits 0', async () => {
  const dir = dataDir()
  const a = await start(['--data-dir', dir, '--save', ''])
  const code = exited(a)
  a.child.kill('SIGTERM')
  assert.is(await code, 0, a.stderr())
  assert.is(snapshots(dir).length, 1)
})

test.run()
