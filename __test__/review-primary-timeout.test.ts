// The primary's side of the link timeout (review, session 10). Each test failed before the
// fix: a primary never dropped a silent replica, so a SIGSTOPped replica, one behind a
// network that stopped forwarding (its link holding the primary's queued output), and one
// stopped inside its full sync stayed in `connected_slaves` until TCP gave up (for a stopped
// process, never). The full-sync test also checks that a slow replica still syncing (it
// sends keepalives) is not cut. A stopped replica whose next byte had left the backlog
// stayed listed too, with --repl-timeout 0 for good (it was found out only when its socket
// drained). Real processes, stopped by PID (SIGCONT in `finally`);
// every wait is bounded.
import net from 'node:net'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { tearDown } from './helpers/guard'
import { TextConn } from './helpers/nutcracker'
import { caughtUp, CutProxy, dump, dumpDiff, stats } from './helpers/replication'
import { freePort, sleep, startFerrocached, type Running } from './helpers/servers'

const started: Running[] = []
const conns: TextConn[] = []
const proxies: Array<{ close(): unknown }> = []

async function server(args: string[] = []): Promise<Running> {
  const r = await startFerrocached(args)
  started.push(r)
  return r
}

async function open(port: number): Promise<TextConn> {
  const c = await TextConn.open(port)
  conns.push(c)
  return c
}

tearDown(test, async () => {
  for (const p of proxies) p.close()
  for (const c of conns) c.close()
  await Promise.all(started.map((r) => r.stop()))
})

const ONE_LINE = (t: string): boolean => t.endsWith('\r\n')

/** Polls the primary's `stats` (bounded) until `connected_slaves` is `want`; returns the last stats. */
async function replicasBecome(primary: Running, want: string, ms: number): Promise<Map<string, string>> {
  const deadline = Date.now() + ms
  let s = await stats(primary.port)
  while (s.get('connected_slaves') !== want && Date.now() < deadline) {
    await sleep(50)
    s = await stats(primary.port)
  }
  return s
}

/** The primary's "dropping its link" log lines (JSON on stderr). */
function timeoutLogs(primary: Running): Array<Record<string, unknown>> {
  return primary
    .stderr()
    .split('\n')
    .filter((l) => l.includes('replica silent for the link timeout'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

async function sameItems(a: Running, b: Running, what: string): Promise<number> {
  const want = await dump(a.port)
  const diff = dumpDiff(want, await dump(b.port))
  assert.equal(diff.slice(0, 5), [], `${what}: ${diff.length} differences`)
  return want.size
}

test('a primary with --repl-timeout 1 drops the link of a SIGSTOPped replica; the replica continues from the backlog after SIGCONT', async () => {
  const primary = await server(['--repl-timeout', '1'])
  const replica = await server(['--replica-of', `127.0.0.1:${primary.port}`])
  await caughtUp(primary, replica)
  const c = await open(primary.port)
  process.kill(replica.child.pid!, 'SIGSTOP')
  let s: Map<string, string>
  const stoppedAt = Date.now()
  try {
    await c.call('set during 0 0 1\r\nd\r\n', ONE_LINE)
    // the stopped process's kernel keeps the connection open: only the timeout ends it
    s = await replicasBecome(primary, '0', 5_000)
  } finally {
    process.kill(replica.child.pid!, 'SIGCONT')
  }
  assert.is(s.get('connected_slaves'), '0', 'the stopped replica is no longer listed')
  assert.ok(Date.now() - stoppedAt >= 900, 'not before the timeout')
  assert.is(s.get('repl_replica_timeouts'), '1')
  const logged = timeoutLogs(primary)
  assert.is(logged.length, 1)
  assert.is(logged[0]!.state, 'online')
  await c.call('set back 0 0 1\r\nb\r\n', ONE_LINE)
  await caughtUp(primary, replica)
  assert.is((await replicasBecome(primary, '1', 2_000)).get('connected_slaves'), '1')
  const r = await stats(replica.port)
  assert.is(r.get('slave_full_syncs'), '1', 'no second full sync')
  assert.ok(Number(r.get('slave_partial_syncs')) >= 1, 'continued from the backlog')
  await sameItems(primary, replica, 'after the resume')
})

test('a primary drops a replica behind a network that stopped forwarding, and the output queued for it', async () => {
  const primary = await server(['--repl-timeout', '1'])
  const proxy = await CutProxy.start(primary.port)
  proxies.push(proxy)
  // the replica never times out its side: a close seen by the proxy would close the
  // primary's side too, and only the primary's timeout is under test
  const replica = await server(['--replica-of', `127.0.0.1:${proxy.port}`, '--repl-timeout', '0'])
  await caughtUp(primary, replica)
  // output the stalled link cannot carry queues on the primary's side once the kernel's
  // buffers on both sides are full, and how much those take depends on the machine's TCP
  // autotuning (a CI run's took all of a fixed 4 MB). Nor is lag_bytes > 0 enough: the stats
  // lines are a snapshot of every 100 ms that can catch bytes not yet pumped, and a kernel
  // with 64/128 MB tcp_wmem/rmem maxima took 2.3 MB more ~0.6 s after the link had stopped
  // (queuedBytes 0 at the timeout). So first only the primary's bytes stop (the replica's
  // acks still pass: no timeout yet) and 1 MB rounds go on until the link has been held for
  // 1.5 s: its offset stays put with bytes waiting (it waits for 'drain', over a chunk
  // queued); then the acks stop too
  proxy.stall('fromTarget')
  const c = await open(primary.port)
  const value = 'w'.repeat(1000)
  let fill = ''
  for (let i = 0; i < 1_000; i++) fill += `set w${i} 0 0 ${value.length} noreply\r\n${value}\r\n`
  const link = async (): Promise<{ online: boolean; offset: number; lag: number }> => {
    const line = (await stats(primary.port)).get('slave0') ?? ''
    const n = (name: string): number => Number(new RegExp(`${name}=(\\d+)`).exec(line)?.[1] ?? -1)
    return { online: line.includes('state=online'), offset: n('offset'), lag: n('lag_bytes') }
  }
  let before = await link()
  let heldSince: number | undefined
  let heldMs = 0
  for (let rounds = 0, deadline = Date.now() + 30_000; heldMs < 1_500 && rounds < 40 && Date.now() < deadline; ) {
    if (before.lag < 1 << 20) {
      await c.call(`${fill}mn\r\n`, (t) => t.endsWith('MN\r\n'), 10_000)
      rounds++
    }
    const at = Date.now()
    await sleep(150) // past a refresh of the stats lines (100 ms)
    const now = await link()
    const held = before.online && now.online && now.offset === before.offset && now.lag > 0
    heldSince = held ? (heldSince ?? at) : undefined
    heldMs = heldSince === undefined ? 0 : Date.now() - heldSince
    before = now
  }
  assert.ok(heldMs >= 1_500, `the link is waiting for the stalled network: ${JSON.stringify(before)}`)
  proxy.stall()
  const s = await replicasBecome(primary, '0', 5_000)
  assert.is(s.get('connected_slaves'), '0', 'the silent replica is no longer listed')
  assert.is(s.get('repl_replica_timeouts'), '1')
  const logged = timeoutLogs(primary)
  assert.is(logged.length, 1)
  assert.ok(Number(logged[0]!.queuedBytes) > 0, `output was queued for it: ${String(logged[0]!.queuedBytes)}`)
  // the network comes back as a reset: the replica reconnects and continues
  proxy.cut()
  await caughtUp(primary, replica)
  assert.is(await sameItems(primary, replica, 'after the reconnect'), 1_000)
  assert.is((await stats(replica.port)).get('slave_full_syncs'), '1', 'continued from the backlog')
})

/**
 * A proxy passing the primary's bytes at `rate.bytesPerMs` (0: unthrottled), respecting
 * the replica side's backpressure; the replica's bytes pass at once.
 */
async function throttled(targetPort: number, rate: { bytesPerMs: number }): Promise<number> {
  const port = await freePort()
  const srv = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    upstream.on('data', (d: Buffer) => {
      client.write(d)
      if (rate.bytesPerMs === 0 && client.writableLength === 0) return
      upstream.pause()
      setTimeout(
        () => (client.writableLength === 0 ? upstream.resume() : client.once('drain', () => upstream.resume())),
        rate.bytesPerMs === 0 ? 0 : Math.ceil(d.length / rate.bytesPerMs),
      )
    })
    client.on('data', (d: Buffer) => upstream.write(d))
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop).on('close', drop)
    upstream.on('error', drop).on('close', drop)
  })
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve))
  proxies.push(srv)
  return port
}

test('a slow full sync is not cut by the primary (keepalives), a replica stopped inside it is; it syncs again after SIGCONT', async () => {
  const primary = await server(['--repl-timeout', '1'])
  const c = await open(primary.port)
  const value = 'v'.repeat(200)
  let fill = ''
  for (let i = 0; i < 20_000; i++) fill += `set key${i} 0 0 ${value.length} noreply\r\n${value}\r\n`
  await c.call(`${fill}mn\r\n`, (t) => t.endsWith('MN\r\n'), 20_000)
  // ~4.6 MB of snapshot at 1.5 MB/s: about 3 s, three times the timeout
  const rate = { bytesPerMs: 1_500 }
  const port = await throttled(primary.port, rate)
  const replica = await server(['--replica-of', `127.0.0.1:${port}`])
  const deadline = Date.now() + 10_000
  while (Number((await stats(replica.port)).get('curr_items') ?? 0) === 0 && Date.now() < deadline) await sleep(50)
  await sleep(1_600)
  const during = await stats(primary.port)
  assert.is(during.get('connected_slaves'), '1', 'the slow sync goes on past the timeout')
  assert.is(during.get('repl_replica_timeouts'), '0')
  const r0 = await stats(replica.port)
  assert.is(r0.get('master_sync_in_progress'), '1', 'still inside the full sync')
  assert.ok(Number(r0.get('curr_items')) < 20_000, `part of the items: ${r0.get('curr_items')}`)
  process.kill(replica.child.pid!, 'SIGSTOP')
  let s: Map<string, string>
  try {
    s = await replicasBecome(primary, '0', 5_000)
  } finally {
    rate.bytesPerMs = 0
    process.kill(replica.child.pid!, 'SIGCONT')
  }
  assert.is(s.get('connected_slaves'), '0', 'the replica stopped inside its sync is no longer listed')
  assert.is(s.get('repl_replica_timeouts'), '1')
  // (the primary may have written the whole snapshot into the socket buffers already: its
  // side of the link is `online` then, while the replica is still applying the snapshot)
  assert.is(timeoutLogs(primary).length, 1)
  await caughtUp(primary, replica, 15_000)
  assert.is(await sameItems(primary, replica, 'after the second sync'), 20_000)
  // a second full sync, or a continuation when the snapshot's end was already in the
  // replica's socket when it stopped (it applies that first on SIGCONT)
  const p = await stats(primary.port)
  assert.is(Number(p.get('repl_sync_full')) + Number(p.get('repl_sync_partial_ok')), 2, 'the replica came back')
  assert.is((await replicasBecome(primary, '1', 2_000)).get('connected_slaves'), '1')
})

test('a stopped replica whose position leaves the backlog is dropped within a second (no timeout needed), then resyncs in full', async () => {
  const primary = await server(['--repl-timeout', '0', '--repl-backlog', '4m'])
  const replica = await server(['--replica-of', `127.0.0.1:${primary.port}`])
  await caughtUp(primary, replica)
  const c = await open(primary.port)
  const value = 'o'.repeat(1000)
  let n = 0
  const writeMiB = async (): Promise<void> => {
    let fill = ''
    for (let i = 0; i < 1_000; i++) fill += `set o${n++} 0 0 ${value.length} noreply\r\n${value}\r\n`
    await c.call(`${fill}mn\r\n`, (t) => t.endsWith('MN\r\n'), 10_000)
  }
  const lagBytes = (st: Map<string, string>): number => Number(/lag_bytes=(\d+)/.exec(st.get('slave0') ?? '')?.[1] ?? -1)
  process.kill(replica.child.pid!, 'SIGSTOP')
  let s: Map<string, string>
  try {
    // first the sockets' buffers fill at the pace the link is fed (the backlog still holds
    // its position): the link then waits for 'drain', which a stopped replica never gives
    let blocked = false
    for (let i = 0; i < 24 && !blocked; i++) {
      await writeMiB()
      await sleep(150)
      blocked = lagBytes(await stats(primary.port)) > 1 << 20
    }
    assert.ok(blocked, 'the link is waiting for the replica')
    // then more than the backlog holds
    for (let i = 0; i < 5; i++) await writeMiB()
    s = await replicasBecome(primary, '0', 3_000)
  } finally {
    process.kill(replica.child.pid!, 'SIGCONT')
  }
  assert.is(s.get('connected_slaves'), '0', 'the replica that cannot continue is no longer listed')
  assert.is(s.get('repl_replica_overruns'), '1')
  assert.is(s.get('repl_replica_timeouts'), '0')
  await caughtUp(primary, replica)
  assert.is(await sameItems(primary, replica, 'after the resync'), n)
  assert.is((await stats(replica.port)).get('slave_full_syncs'), '2')
})

test.run()
