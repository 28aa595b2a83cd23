// A replica's link to its primary (review, sessions 19 and 20). Each test failed before its
// fix: a replica whose `--replica-auth` the primary refused logged a warning at every retry,
// for as long as it ran (every 2 s once the backoff was at its top): now the first refusal
// is logged, the same one again at most once a minute with the number of failed tries, and
// the link says when the primary finally takes it (the primary is named `localhost`: the
// link resolves a name at every connect). A SIGSTOPped primary's replica logged its silence
// at every link timeout (each reconnect lands in the stopped primary's backlog): now
// throttled the same way. A replica that lagged past a delayed flush_all's deadline flushed
// at once when the flush arrived, and lost what a cancel that followed kept on the primary.
// Real processes, stopped by PID; bounded waits.
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { TextConn } from './helpers/nutcracker'
import { freePort, sleep, startFerrocached, waitFor, type Running } from './helpers/servers'

const started: Running[] = []

tearDown(test, async () => {
  await Promise.all(started.map((r) => r.stop()))
})

function logLines(r: Running, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const line of r.stderr().split('\n')) {
    if (!line.startsWith('{')) continue
    const o = JSON.parse(line) as Record<string, unknown>
    if (o.msg === msg) out.push(o)
  }
  return out
}

test('a refused login is logged once while the replica retries, and the link says when the primary takes it', async () => {
  const right = join(tmpdir(), `ferrocache-link-right-${process.pid}`)
  const wrong = join(tmpdir(), `ferrocache-link-wrong-${process.pid}`)
  writeFileSync(right, 'repl:s3cret\n')
  writeFileSync(wrong, 'repl:other\n')
  const port = await freePort()
  const refusing = await startFerrocached(['-Y', wrong], {}, port)
  started.push(refusing)
  const replica = await startFerrocached(['--replica-of', `localhost:${port}`, '--replica-auth', 'repl:s3cret'])
  started.push(replica)
  const refused = (): number => logLines(replica, 'primary refused the replication link').length
  assert.ok(await waitFor(() => refused() >= 1, 10_000), replica.stderr())
  // tries at 50, 100, 200, 400, 800 ms... apart: several are refused meanwhile
  await sleep(1_600)
  assert.is(refused(), 1, `one line for the same refusal, got:\n${replica.stderr()}`)
  assert.is(logLines(replica, 'primary refused the replication link')[0]!.reply, 'CLIENT_ERROR authentication failure')

  // the primary comes back on its port with the replica's password
  await refusing.stop()
  const taking = await startFerrocached(['-Y', right], {}, port)
  started.push(taking)
  const acceptedLog = (): Array<Record<string, unknown>> => logLines(replica, 'primary accepted the replication link after failed tries')
  assert.ok(await waitFor(() => acceptedLog().length === 1, 20_000), replica.stderr())
  const tries = acceptedLog()[0]!.failedTries as number
  assert.ok(tries >= 3, `several tries failed before (${tries})`)
  assert.is(refused(), 1, 'the refusals stayed one line')

  const c = await TextConn.open(taking.port)
  const r = await TextConn.open(replica.port)
  try {
    assert.is(await c.line('set login 0 0 11\r\nrepl s3cret\r\n'), 'STORED\r\n')
    assert.is(await c.line('set k 0 0 2\r\nok\r\n'), 'STORED\r\n')
    let got = ''
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && !(got = await r.retrieve('get k\r\n')).includes('VALUE')) await sleep(50)
    assert.is(got, 'VALUE k 0 2\r\nok\r\nEND\r\n')
  } finally {
    c.close()
    r.close()
  }
})

test('a stopped primary: its silence is logged once while the replica reconnects into it, and the link says when it answers again', async () => {
  const primary = await startFerrocached()
  started.push(primary)
  // --repl-timeout 1: a silence is noticed within 1-1.25 s (the check runs every 250 ms)
  const replica = await startFerrocached(['--replica-of', `127.0.0.1:${primary.port}`, '--repl-timeout', '1'])
  started.push(replica)
  const c = await TextConn.open(primary.port)
  const r = await TextConn.open(replica.port)
  try {
    assert.is(await c.line('set a 0 0 1\r\na\r\n'), 'STORED\r\n')
    const online = Date.now() + 10_000
    while (Date.now() < online && !(await r.retrieve('get a\r\n')).includes('VALUE')) await sleep(20)
    const silent = (): Array<Record<string, unknown>> => logLines(replica, 'primary silent for the link timeout, reconnecting')
    // SIGSTOP: the primary's kernel keeps the link open and takes each new connection
    // into its backlog, where nothing answers the psync
    process.kill(primary.child.pid!, 'SIGSTOP')
    try {
      assert.ok(await waitFor(() => silent().length >= 1, 5_000), replica.stderr())
      // each reconnect is silent for the timeout too: two or three more before the fix
      await sleep(3_500)
      assert.is(silent().length, 1, `one line for the same silence, got:\n${replica.stderr()}`)
      assert.is(silent()[0]!.tries, 1)
    } finally {
      process.kill(primary.child.pid!, 'SIGCONT')
    }
    const acceptedLog = (): Array<Record<string, unknown>> => logLines(replica, 'primary accepted the replication link after failed tries')
    assert.ok(await waitFor(() => acceptedLog().length === 1, 10_000), replica.stderr())
    const tries = acceptedLog()[0]!.failedTries as number
    assert.ok(tries >= 2, `the silent tries counted (${tries})`)
    assert.is(silent().length, 1)
    assert.is(await c.line('set b 0 0 1\r\nb\r\n'), 'STORED\r\n')
    let got = ''
    const until = Date.now() + 10_000
    while (Date.now() < until && !(got = await r.retrieve('get b\r\n')).includes('VALUE')) await sleep(20)
    assert.is(got, 'VALUE b 0 1\r\nb\r\nEND\r\n', 'the link streams again')
  } finally {
    c.close()
    r.close()
  }
})

test('a replica stopped past a delayed flush_all deadline keeps what the cancel that followed kept on the primary', async () => {
  const primary = await startFerrocached()
  started.push(primary)
  const replica = await startFerrocached(['--replica-of', `127.0.0.1:${primary.port}`])
  started.push(replica)
  const c = await TextConn.open(primary.port)
  const r = await TextConn.open(replica.port)
  try {
    assert.is(await c.line('set b 0 0 1\r\nb\r\n'), 'STORED\r\n')
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && !(await r.retrieve('get b\r\n')).includes('VALUE')) await sleep(20)
    // the replica reads nothing while the flush's deadline passes; memcached's
    // `flush_all <unix time before its start>` cancels the flush on the primary first
    process.kill(replica.child.pid!, 'SIGSTOP')
    try {
      assert.is(await c.line('flush_all 2\r\n'), 'OK\r\n')
      assert.is(await c.line('flush_all 2592001\r\n'), 'OK\r\n')
      assert.is(await c.line('set c 0 0 1\r\nc\r\n'), 'STORED\r\n')
      await sleep(3_100)
      assert.is(await c.line('set d 0 0 1\r\nd\r\n'), 'STORED\r\n')
    } finally {
      process.kill(replica.child.pid!, 'SIGCONT')
    }
    const all = 'VALUE b 0 1\r\nb\r\nVALUE c 0 1\r\nc\r\nVALUE d 0 1\r\nd\r\nEND\r\n'
    assert.is(await c.retrieve('get b c d\r\n'), all, 'the primary kept them')
    let got = ''
    const until = Date.now() + 10_000
    while (Date.now() < until && !(got = await r.retrieve('get b c d\r\n')).includes('VALUE d')) await sleep(20)
    assert.is(got, all, 'the replica')
  } finally {
    c.close()
    r.close()
  }
})

test.run()
