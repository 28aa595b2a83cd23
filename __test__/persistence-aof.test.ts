// ferrocached --appendfsync: with `always` every acknowledged write survives kill -9 at any
// moment (snapshots and log compaction running meanwhile); with `everysec` and `no` too when
// only the process dies (the OS has every acknowledged record); a
// torn tail is cut off with a warning. Every server is stopped by its PID; every wait and
// loop is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import net from 'node:net'
import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCommandLine, UsageError } from '../src/cli/options'
import { Cache } from '../src'
import { RawConn } from './helpers/raw'
import { sleep, startFerrocached, stopChild, waitFor, within, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

const dirs: string[] = []
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ferrocached-aof-'))
  dirs.push(d)
  return d
}
const running: Running[] = []
async function start(args: string[]): Promise<Running> {
  const r = await startFerrocached(args)
  running.push(r)
  return r
}
function exited(r: Running): Promise<unknown> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => r.child.once('exit', resolve))
}

tearDown(test, async () => {
  for (const r of running) await stopChild(r.child, 'SIGKILL')
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** `gets` of many keys: key → { flags, value }. */
async function getMany(c: RawConn, keys: string[]): Promise<Map<string, { flags: number; value: string }>> {
  const out = new Map<string, { flags: number; value: string }>()
  for (let at = 0; at < keys.length; at += 200) {
    c.send(`get ${keys.slice(at, at + 200).join(' ')}\r\n`)
    const text = await c.until(/END\r\n$/, 10_000)
    const re = /VALUE (\S+) (\d+) (\d+)\r\n/g
    let m: RegExpExecArray | null
    while ((m = re.exec(text)) !== null) {
      const len = Number(m[3])
      out.set(m[1]!, { flags: Number(m[2]), value: text.slice(re.lastIndex, re.lastIndex + len) })
      re.lastIndex += len + 2
    }
  }
  return out
}

const valueOf = (round: number, i: number): string => `r${round}:${i}:${'x'.repeat(i % 37)}`
const flagsOf = (round: number, i: number): number => (round * 7919 + i) % 65536

/**
 * Writes `r<round>k<i>` for i = 0.. with a window of 8 requests in flight until the socket
 * dies; `done` resolves with how many were acknowledged (replies come in order, so the
 * first n), `firstAck` once one was.
 */
function writeUntilDead(port: number, round: number, max: number): { done: Promise<number>; firstAck: Promise<void> } {
  let acked = 0
  let onFirstAck = (): void => {}
  const firstAck = new Promise<void>((resolve) => (onFirstAck = resolve))
  const done = new Promise<number>((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    let sent = 0
    let tail = ''
    const pump = (): void => {
      while (sent < max && sent - acked < 8) {
        const v = valueOf(round, sent)
        s.write(`set r${round}k${sent} ${flagsOf(round, sent)} 0 ${v.length}\r\n${v}\r\n`)
        sent++
      }
    }
    s.on('connect', pump)
    s.on('data', (d: Buffer) => {
      tail += d.toString('latin1')
      let at: number
      while ((at = tail.indexOf('\r\n')) >= 0) {
        const line = tail.slice(0, at)
        tail = tail.slice(at + 2)
        if (line === 'STORED') acked++
      }
      if (acked > 0) onFirstAck()
      if (acked >= max) s.destroy()
      else pump()
    })
    s.on('error', () => {})
    s.on('close', () => resolve(acked))
  })
  return { done, firstAck }
}

test('--appendfsync and FERROCACHE_APPENDFSYNC', () => {
  const run = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
    const c = parseCommandLine(argv, env)
    if (c.kind !== 'run') throw new Error(c.kind)
    return c.settings
  }
  assert.is(run(['--data-dir', '/d', '--appendfsync', 'always']).persistence?.appendfsync, 'always')
  assert.is(run(['--data-dir', '/d'], { FERROCACHE_APPENDFSYNC: 'everysec' }).persistence?.appendfsync, 'everysec')
  assert.is(run(['--data-dir', '/d']).persistence?.appendfsync, undefined)
  assert.throws(() => run(['--appendfsync', 'always']), (e: unknown) => e instanceof UsageError && /need --data-dir/.test(e.message))
  assert.throws(() => run(['--data-dir', '/d', '--appendfsync', 'sometimes']), (e: unknown) => e instanceof UsageError)
  assert.throws(() => run(['--data-dir', '/d', '--appendfsync', 'no', '--load-async']), (e: unknown) => e instanceof UsageError)
})

test('appendfsync always: kill -9 at random moments loses no acknowledged write', async () => {
  const dir = dataDir()
  const ROUNDS = 16
  const acked: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    // snapshots every second in half the rounds: the log is compacted while it is written
    const r = await start(['--data-dir', dir, '--appendfsync', 'always', '--save', round % 2 === 0 ? '1 1' : '', '-m', '64'])
    const c = await RawConn.open(r.port)
    // every write acknowledged in earlier rounds is there, with its value and flags
    for (let p = 0; p < round; p++) {
      const keys = Array.from({ length: acked[p]! }, (_, i) => `r${p}k${i}`)
      const got = await getMany(c, keys)
      for (let i = 0; i < acked[p]!; i++) {
        const e = got.get(`r${p}k${i}`)
        if (e === undefined) assert.unreachable(`round ${round}: r${p}k${i} (acknowledged) is missing\n${r.stderr()}`)
        assert.is(e!.value, valueOf(p, i))
        assert.is(e!.flags, flagsOf(p, i))
      }
    }
    c.close()
    const writing = writeUntilDead(r.port, round, 200_000)
    // at least one write acknowledged first (with fsync on every write a busy machine can
    // take longer than a fixed wait for it), then a random moment; in the snapshot rounds
    // after a snapshot has started, so kills also land mid-save and in the compacted log.
    // The snapshot command runs the save the '1 1' rule would run a second later.
    await within(writing.firstAck, 15_000, `round ${round}: a first acknowledged write`)
    const asking = round % 2 === 0 ? await RawConn.open(r.port) : undefined
    asking?.send('snapshot\r\n')
    await sleep(Math.floor(Math.random() * 700))
    r.child.kill('SIGKILL')
    await exited(r)
    asking?.close()
    acked.push(await writing.done)
    if (process.env.AOF_TEST_DEBUG) console.log(round, acked[round], readdirSync(dir).join(' '))
    assert.ok(acked[round]! > 0, `round ${round}: no write acknowledged`)
  }
  const last = await start(['--data-dir', dir, '--appendfsync', 'always', '--save', ''])
  const c = await RawConn.open(last.port)
  const total = acked.reduce((a, b) => a + b, 0)
  let found = 0
  for (let p = 0; p < ROUNDS; p++) found += (await getMany(c, Array.from({ length: acked[p]! }, (_, i) => `r${p}k${i}`))).size
  assert.is(found, total)
  c.send('stats\r\n')
  const stats = await c.until(/END\r\n$/)
  assert.match(stats, /STAT aof_enabled 1\r\n/)
  assert.match(stats, /STAT aof_current_size \d+\r\n/)
  assert.match(stats, /STAT aof_last_write_status ok\r\n/)
  c.close()
  await stopChild(last.child)
})

for (const mode of ['everysec', 'no'] as const) {
  test(`appendfsync ${mode}: acknowledged writes survive kill -9 of the process at once`, async () => {
    const dir = dataDir()
    const r = await start(['--data-dir', dir, '--appendfsync', mode, '--save', ''])
    let c = await RawConn.open(r.port)
    // md b I: b stays, stale (meta state is logged as a type-4 record)
    c.send('set a 3 0 1\r\n1\r\nset b 4 0 2\r\n22\r\ndelete a\r\nset n 0 0 1\r\n5\r\nincr n 10\r\nmd b I T300\r\n')
    assert.is(await c.until('HD\r\n'), 'STORED\r\nSTORED\r\nDELETED\r\nSTORED\r\n15\r\nHD\r\n')
    // no wait: every record is in the kernel before its reply (only the fsync waits a second)
    r.child.kill('SIGKILL')
    c.close()
    await exited(r)
    const again = await start(['--data-dir', dir, '--appendfsync', mode, '--save', ''])
    c = await RawConn.open(again.port)
    // replayed stale, its win token free: the first fetch wins the recache
    c.send('mg b v\r\n')
    assert.is(await c.until('22\r\n'), 'VA 2 X W\r\n22\r\n')
    c.send('get a b n\r\n')
    assert.is(await c.until(/END\r\n$/), 'VALUE b 4 2\r\n22\r\nVALUE n 0 2\r\n15\r\nEND\r\n')
    c.close()
    await stopChild(again.child)
  })
}

test('a torn log tail is cut off with a warning; the records before it load', async () => {
  const dir = dataDir()
  const r = await start(['--data-dir', dir, '--appendfsync', 'always', '--save', ''])
  let c = await RawConn.open(r.port)
  c.send('set a 0 0 1\r\n1\r\n')
  assert.is(await c.until('STORED\r\n'), 'STORED\r\n')
  c.close()
  r.child.kill('SIGKILL')
  await exited(r)
  // half a record, as a write cut off by a crash leaves it
  appendFileSync(join(dir, 'appendonly.aof'), Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 1, 9]))
  const again = await start(['--data-dir', dir, '--appendfsync', 'always', '--save', ''])
  assert.ok(await waitFor(() => again.stderr().includes('torn tail cut off'), 5_000), again.stderr())
  c = await RawConn.open(again.port)
  c.send('get a\r\n')
  assert.is(await c.until(/END\r\n$/), 'VALUE a 0 1\r\n1\r\nEND\r\n')
  c.close()
  await stopChild(again.child)
  assert.ok(readdirSync(dir).includes('appendonly.aof'))
})

test('embedded: new Cache({ dataDir, appendfsync }) replays its log', async () => {
  const dir = dataDir()
  const a = new Cache({ dataDir: dir, appendfsync: 'always', save: '', saveOnClose: false })
  await a.set('k', 'v')
  await a.delete('k')
  await a.set('k2', 'v2')
  const st = a.persistence!.stats()
  assert.ok(st.some(([n, v]) => n === 'aof_enabled' && v === '1'))
  a.close()
  const b = new Cache({ dataDir: dir, appendfsync: 'everysec', save: '', saveOnClose: false })
  assert.is(await b.get('k'), undefined)
  assert.equal((await b.get('k2'))?.toString(), 'v2')
  b.close()
  const c = await Cache.open({ dataDir: dir, appendfsync: 'no', save: '', saveOnClose: false })
  assert.equal((await c.get('k2'))?.toString(), 'v2')
  c.close()
  assert.throws(() => new Cache({ dataDir: dir, appendfsync: 'always', loadAsync: true }), TypeError)
})

test.run()
