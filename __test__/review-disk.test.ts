// Persistence under disk faults (review): ferrocached with --appendfsync always whose data
// directory is removed while it runs, then whose disk fills up (a 2 MiB tmpfs when root may
// mount one), killed with SIGKILL and restarted: no acknowledged write is lost
// (docs/persistence.md "When the log cannot write"). Every server is stopped by its PID;
// every wait is bounded; the tmpfs is unmounted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RawConn } from './helpers/raw'
import { sleep, startFerrocached, stopChild, waitFor, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

const root = mkdtempSync(join(tmpdir(), 'ferrocached-review-disk-'))
/** A 2 MiB tmpfs at `root` when mounting is allowed (root); else a plain directory. */
let mounted = false
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', root], { stdio: 'ignore' })
  mounted = true
} catch {
  // not root: the full-disk part is skipped (said in the test)
}
const running: Running[] = []
function unmount(): void {
  if (mounted) execFileSync('umount', ['-l', root])
  mounted = false
}
tearDown(test, async () => {
  for (const r of running) await stopChild(r.child, 'SIGKILL')
  unmount()
  rmSync(root, { recursive: true, force: true })
})
// a run that ends early (an uncaught error, process.exit) still leaves no mount behind
process.on('exit', () => {
  try {
    unmount()
  } catch {
    // reported by tearDown when it ran; nothing more to do at exit
  }
})

function exited(r: Running): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => r.child.once('exit', () => resolve()))
}

async function ask(c: RawConn, req: string, end: string | RegExp = /\r\n$/): Promise<string> {
  c.send(req)
  return c.until(end)
}

async function stat(c: RawConn, name: string): Promise<string | undefined> {
  const text = await ask(c, 'stats\r\n', /END\r\n$/)
  return new RegExp(`STAT ${name} (\\S+)\r\n`).exec(text)?.[1]
}

test('--appendfsync always: a removed data directory, then a full disk, lose no acknowledged write across kill -9', async () => {
  const dir = join(root, 'data')
  const args = ['--data-dir', dir, '--appendfsync', 'always', '--save', '']
  const r = await startFerrocached(args)
  running.push(r)
  const c = await RawConn.open(r.port)
  assert.is(await ask(c, 'set before 0 0 1\r\n1\r\n'), 'STORED\r\n')

  // the operator removes the directory: the log's records would go to a deleted file
  rmSync(dir, { recursive: true })
  const refused = await ask(c, 'set gone 0 0 1\r\n2\r\n')
  assert.is(refused, 'SERVER_ERROR append-only log write failed; writes refused\r\n')
  // a snapshot starts a new log on its own (within the rule check's second) and writes go on
  assert.ok(await waitFor(() => readdirSync(root).includes('data') && readdirSync(dir).some((n) => n.endsWith('.fcs')), 5_000), r.stderr())
  // (a deadline, not 50 back-to-back polls, which a busy machine can answer in 50 ms)
  let ok = false
  for (const deadline = Date.now() + 5_000; !ok && Date.now() < deadline; await sleep(20)) {
    ok = (await stat(c, 'aof_last_write_status')) === 'ok'
  }
  assert.ok(ok, r.stderr())
  assert.match(r.stderr(), /append-only log file deleted: snapshot to start a new log/)
  // the new directory is locked again: its LOCK names this server
  assert.is(readFileSync(join(dir, 'LOCK'), 'utf8').trim(), String(r.child.pid))
  assert.is(await ask(c, 'set after 0 0 1\r\n3\r\n'), 'STORED\r\n')

  // then the disk fills: writes are refused, none acknowledged is lost
  const acked: string[] = []
  let full = ''
  if (mounted) {
    const v = 'v'.repeat(1000)
    // pipelined batches of 100; replies come in order, one line each
    for (let at = 0; at < 3000 && full === ''; at += 100) {
      const keys = Array.from({ length: 100 }, (_, i) => `k${at + i}`)
      c.send(keys.map((k) => `set ${k} 0 0 ${v.length}\r\n${v}\r\n`).join(''))
      const replies = (await c.until(/^(?:[^\r\n]*\r\n){100}$/, 10_000)).split('\r\n').slice(0, 100)
      assert.is(replies.length, 100)
      replies.forEach((reply, i) => {
        if (reply === 'STORED') acked.push(keys[i]!)
        else full ||= `${reply}\r\n`
      })
    }
    assert.is(full, 'SERVER_ERROR append-only log write failed; writes refused\r\n')
    assert.ok(acked.length > 100, String(acked.length))
    // a snapshot cannot be written either: reported, nothing left behind, serving goes on
    assert.match(await ask(c, 'snapshot\r\n'), /^SERVER_ERROR .*No space left on device/)
    assert.is(await stat(c, 'rdb_last_bgsave_status'), 'err')
    assert.ok(!readdirSync(dir).some((n) => n.endsWith('.tmp')), readdirSync(dir).join(' '))
    assert.match(await ask(c, 'get before\r\n', /END\r\n$/), /^VALUE before 0 1\r\n1\r\n/)
  } else {
    console.log('review-disk: not root, the full-disk part is skipped (no tmpfs)')
  }
  c.close()
  r.child.kill('SIGKILL')
  await exited(r)

  const again = await startFerrocached(args)
  running.push(again)
  const d = await RawConn.open(again.port)
  const want = ['before', 'after', ...acked]
  for (let at = 0; at < want.length; at += 100) {
    const keys = want.slice(at, at + 100)
    const got = await ask(d, `get ${keys.join(' ')}\r\n`, /END\r\n$/)
    for (const k of keys) assert.ok(got.includes(`VALUE ${k} 0 `), `${k} was acknowledged`)
  }
  d.close()
  await stopChild(again.child)
})

test.run()
