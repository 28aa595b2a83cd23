// A replica with --data-dir inside its full sync (the store holds part of the primary's
// data): no snapshot may be written then. Before the fix a save rule, the `snapshot`
// command and the save at SIGTERM each wrote the part that had arrived as the newest
// snapshot, and a node started from that directory alone came up short. Every process is
// stopped by its PID; every wait is bounded.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { TextConn } from './helpers/nutcracker'
import { caughtUp, CutProxy, fill, stats } from './helpers/replication'
import { sleep, startFerrocached, stopChild, waitFor, type Running } from './helpers/servers'

const ITEMS = 150_000
const started: Running[] = []
const proxies: CutProxy[] = []
const dirs: string[] = []

async function server(args: string[]): Promise<Running> {
  const r = await startFerrocached(['-m', '256', ...args])
  started.push(r)
  return r
}

tearDown(test, async () => {
  await Promise.all(proxies.map((p) => p.close()))
  await Promise.all(started.map((r) => r.stop()))
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A slow link to `target` (one read of what it sends per `gapMs`); its port. */
async function slowLink(target: number, gapMs = 25): Promise<number> {
  const proxy = await CutProxy.start(target, gapMs)
  proxies.push(proxy)
  return proxy.port
}

test('a replica stopped inside its full sync leaves no partial snapshot behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-replica-save-'))
  dirs.push(dir)
  const primary = await server([])
  await fill(primary.port, ITEMS)
  const link = await slowLink(primary.port, 25)
  // "1 1": a rule comes due every second of the sync
  const replica = await server(['--replica-of', `127.0.0.1:${link}`, '--data-dir', dir, '--save', '1 1'])

  // inside the full sync, with part of the items in
  let st = await stats(replica.port)
  for (let i = 0; i < 200 && !(st.get('master_sync_in_progress') === '1' && Number(st.get('curr_items')) > 1000); i++) {
    await sleep(25)
    st = await stats(replica.port)
  }
  assert.is(st.get('master_sync_in_progress'), '1', 'the replica is in its full sync')

  const c = await TextConn.open(replica.port)
  const reply = await c.call('snapshot\r\n', (t) => t.endsWith('\r\n'), 10_000)
  c.close()
  assert.match(reply, /^SERVER_ERROR cannot snapshot: replica full sync in progress/, `snapshot during the sync: ${reply.trim()}`)

  // a rule came due meanwhile (and was deferred)
  await sleep(1_500)
  st = await stats(replica.port)
  assert.is(st.get('master_sync_in_progress'), '1', 'still in the full sync when stopped')
  assert.ok(Number(st.get('curr_items')) < ITEMS, 'part of the items arrived')
  assert.is(st.get('rdb_saves'), '0', 'no snapshot written during the sync')

  await stopChild(replica.child)
  assert.is(replica.child.exitCode, 0, 'a skipped save at stop is not a failure')
  assert.match(replica.stderr(), 'scheduled snapshot deferred')
  assert.match(replica.stderr(), 'no snapshot saved, the previous one is kept')

  // the same directory alone, as a primary: the complete data set or nothing, never a part
  const alone = await server(['--data-dir', dir])
  const items = Number((await stats(alone.port)).get('curr_items'))
  assert.ok(items === 0 || items === ITEMS, `started from the replica's snapshots with ${items} of ${ITEMS} items`)
})

test('a rule deferred by the full sync runs once it is done, with every item', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-replica-save-'))
  dirs.push(dir)
  const primary = await server([])
  await fill(primary.port, ITEMS)
  // about 2 s of sync: rules come due inside it
  const link = await slowLink(primary.port, 4)
  const replica = await server(['--replica-of', `127.0.0.1:${link}`, '--data-dir', dir, '--save', '1 1'])
  await caughtUp(primary, replica, 15_000)
  let st = await stats(replica.port)
  // a deadline, not ~3 s of polls: beside two busy processes the save came 1.2-8.1 s after the sync
  for (const deadline = Date.now() + 20_000; Date.now() < deadline && st.get('rdb_last_save_keys') !== String(ITEMS); ) {
    await sleep(50)
    st = await stats(replica.port)
  }
  assert.is(st.get('rdb_last_save_keys'), String(ITEMS), 'a snapshot of the whole data set after the sync')
  await stopChild(replica.child)
  // every snapshot it wrote holds all of the items (an empty store before the sync aside)
  const saved = replica
    .stderr()
    .split('\n')
    .filter((l) => l.includes('"snapshot saved"'))
    .map((l) => (JSON.parse(l) as { items: number }).items)
  assert.ok(saved.length >= 1, 'snapshots were written')
  for (const n of saved) assert.ok(n === 0 || n === ITEMS, `a snapshot of ${n} of ${ITEMS} items`)
})

test('a full sync that begins while a snapshot is written waits for it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-replica-save-'))
  dirs.push(dir)
  const primary = await server([])
  await fill(primary.port, 1_000, 'p')
  const node = await server(['--data-dir', dir, '--save', ''])
  await fill(node.port, ITEMS, 'old')
  const [a, b] = await Promise.all([TextConn.open(node.port), TextConn.open(node.port)])
  try {
    const saving = a.call('snapshot\r\n', (t) => t.endsWith('\r\n'), 20_000)
    // the full sync begins while the save walks the store (before the fix its emptying cut
    // the walk short: 46,903 of 150,000 items in that snapshot)
    await sleep(5)
    assert.is(await b.call(`replicaof 127.0.0.1 ${primary.port}\r\n`, (t) => t.endsWith('\r\n')), 'OK\r\n')
    assert.is(await saving, 'OK\r\n')
  } finally {
    a.close()
    b.close()
  }
  await caughtUp(primary, node, 15_000)
  const st = await stats(node.port)
  assert.is(st.get('curr_items'), '1000', 'the full sync replaced the data set')
  assert.is(st.get('rdb_last_save_keys'), String(ITEMS), 'the snapshot holds the whole data set it began with')
})

/**
 * Runs `pid` for `runMs` in every `runMs + stopMs` (SIGSTOP/SIGCONT): a machine that many
 * times slower, so a save outlasts a 1 s link timeout. Returns the function that ends it
 * (SIGCONT); it also ends by itself after 60 s.
 */
function slowDown(pid: number, runMs: number, stopMs: number): () => void {
  let on = true
  const until = Date.now() + 60_000
  const cycle = async (): Promise<void> => {
    while (on && Date.now() < until) {
      process.kill(pid, 'SIGSTOP')
      await sleep(stopMs)
      process.kill(pid, 'SIGCONT')
      await sleep(runMs)
    }
  }
  const done = cycle()
  return () => {
    on = false
    void done.finally(() => process.kill(pid, 'SIGCONT'))
  }
}

test('a full sync re-pointed while a snapshot is written waits for it too, and the wait is not the primary falling silent', async () => {
  // before the fix the second FULLRESYNC (after replicaof to another address, or after the
  // link timeout reconnected) did not wait: it emptied the store under the save's walk; and
  // a wait longer than --repl-timeout was taken for a silent primary
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-replica-save-'))
  dirs.push(dir)
  const primary = await server([])
  await fill(primary.port, 1_000, 'p')
  const secondAddress = await CutProxy.start(primary.port)
  proxies.push(secondAddress)
  const node = await server(['--data-dir', dir, '--save', '', '--repl-timeout', '1'])
  await fill(node.port, ITEMS, 'old')
  const waits = (): number => node.stderr().split('\n').filter((l) => l.includes('full sync waits for the snapshot being written')).length
  const [a, b] = await Promise.all([TextConn.open(node.port), TextConn.open(node.port)])
  let resume: (() => void) | undefined
  try {
    const saving = a.call('snapshot\r\n', (t) => t.endsWith('\r\n'), 60_000)
    await sleep(5)
    resume = slowDown(node.child.pid!, 2, 48)
    assert.is(await b.call(`replicaof 127.0.0.1 ${primary.port}\r\n`, (t) => t.endsWith('\r\n'), 10_000), 'OK\r\n')
    assert.ok(await waitFor(() => waits() === 1, 10_000), 'the first full sync waits')
    assert.is(await b.call(`replicaof 127.0.0.1 ${secondAddress.port}\r\n`, (t) => t.endsWith('\r\n'), 10_000), 'OK\r\n')
    await waitFor(() => waits() === 2, 10_000)
    assert.is(await saving, 'OK\r\n')
  } finally {
    resume?.()
    a.close()
    b.close()
  }
  assert.not.match(node.stderr(), 'primary silent for the link timeout', 'waiting for the save is not a silent primary')
  assert.is(waits(), 2, 'the re-pointed link waited too')
  await caughtUp(primary, node, 15_000)
  const st = await stats(node.port)
  assert.is(st.get('curr_items'), '1000', 'the full sync replaced the data set')
  assert.is(st.get('rdb_last_save_keys'), String(ITEMS), 'the snapshot holds the whole data set it began with')
})

test.run()
