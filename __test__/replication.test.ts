// Primary → replica replication across processes (docs/replication.md): random mutations
// with a replica killed and restarted and a link cut short and long; every replica ends
// with the primary's items (values, flags, CAS, expiry), and the stats tell partial from
// full resyncs. Then promotion, re-pointing, a chain, read-only replies and logins.
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseCommandLine, UsageError } from '../src/cli/options'
import { TextConn } from './helpers/nutcracker'
import { CutProxy, dump, dumpDiff, randomMutations, rng, stats, type DumpedItem } from './helpers/replication'
import { sleep, startFerrocached, type Running } from './helpers/servers'
import { tearDown } from './helpers/guard'

const started: Running[] = []
const proxies: CutProxy[] = []

async function server(args: string[] = []): Promise<Running> {
  const r = await startFerrocached(args)
  started.push(r)
  return r
}

/** Waits (bounded) until every replica's dump equals the primary's; returns the primary's. */
async function converged(primary: number, replicas: number[], ms = 15_000): Promise<Map<string, DumpedItem>> {
  const deadline = Date.now() + ms
  for (;;) {
    const want = await dump(primary)
    const diffs: string[] = []
    for (const port of replicas) {
      const d = dumpDiff(want, await dump(port))
      if (d.length > 0) diffs.push(`replica ${port}: ${d.length} differences, e.g. ${d.slice(0, 3).join('; ')}`)
    }
    if (diffs.length === 0) return want
    if (Date.now() > deadline) assert.unreachable(diffs.join('\n'))
    await sleep(100)
  }
}

async function waitStat(port: number, name: string, ok: (v: string | undefined) => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = (await stats(port)).get(name)
    if (ok(v)) return
    if (Date.now() > deadline) assert.unreachable(`stat ${name} on ${port} stayed ${v}`)
    await sleep(50)
  }
}

tearDown(test, async () => {
  for (const p of proxies) await p.close()
  await Promise.all(started.map((r) => r.stop()))
})

test('two replicas stay equal to the primary through a restart and cut links (partial and full resyncs)', async () => {
  const primary = await server(['--repl-backlog', '64k'])
  const proxy = await CutProxy.start(primary.port)
  proxies.push(proxy)
  let r1 = await server(['--replica-of', `127.0.0.1:${primary.port}`])
  const r2 = await server(['--replica-of', `127.0.0.1:${proxy.port}`])
  const c = await TextConn.open(primary.port)
  const random = rng(20261125)
  try {
    await randomMutations(c, random, 1500)
    await converged(primary.port, [r1.port, r2.port])

    // r1 killed mid-run and restarted: a new process has no history, so a full sync
    await randomMutations(c, random, 300)
    r1.child.kill('SIGKILL')
    await randomMutations(c, random, 500)
    r1 = await server(['--replica-of', `127.0.0.1:${primary.port}`])

    // r2's link cut for a few changes: the backlog (64k) covers them, a partial resync
    await waitStat(r2.port, 'master_link_status', (v) => v === 'up')
    proxy.cut()
    await randomMutations(c, random, 60)
    await waitStat(r2.port, 'slave_partial_syncs', (v) => Number(v) >= 1)
    await randomMutations(c, random, 300)
    await converged(primary.port, [r1.port, r2.port])

    // r2's link down while far more than the backlog is written: a full resync
    proxy.down = true
    proxy.cut()
    await randomMutations(c, random, 1500, 200)
    proxy.down = false
    await waitStat(r2.port, 'slave_full_syncs', (v) => Number(v) >= 2)
    await randomMutations(c, random, 300)
    const items = await converged(primary.port, [r1.port, r2.port])
    assert.ok(items.size > 50, `only ${items.size} items`)

    const p = await stats(primary.port)
    assert.is(p.get('role'), 'primary')
    assert.is(p.get('connected_slaves'), '2')
    // r1 twice (start, restart) and r2 twice (start, after the long cut) in full; r2 once partially
    assert.ok(Number(p.get('repl_sync_full')) >= 4, `repl_sync_full ${p.get('repl_sync_full')}`)
    assert.ok(Number(p.get('repl_sync_partial_ok')) >= 1, `repl_sync_partial_ok ${p.get('repl_sync_partial_ok')}`)
    assert.ok(Number(p.get('repl_sync_partial_err')) >= 1, `repl_sync_partial_err ${p.get('repl_sync_partial_err')}`)
    const s2 = await stats(r2.port)
    assert.is(s2.get('role'), 'replica')
    assert.is(s2.get('master_link_status'), 'up')
    assert.is(s2.get('slave_full_syncs'), '2')
    assert.ok(Number(s2.get('slave_partial_syncs')) >= 1)
    assert.is(s2.get('master_replid'), p.get('master_replid'))
    assert.ok(Number(s2.get('repl_lag_ms')) >= 0, `repl_lag_ms ${s2.get('repl_lag_ms')}`)
  } finally {
    c.close()
  }
})

test('writes on a replica get SERVER_ERROR replica is read-only, byte for byte; --replica-writable takes them; stats offsets are current', async () => {
  const primary = await server()
  const ro = await server(['--replica-of', `127.0.0.1:${primary.port}`])
  // credentials for a primary without logins: never sent (the login set would be stored)
  const rw = await server(['--replica-of', `127.0.0.1:${primary.port}`, '--replica-writable', '--replica-auth', 'u:p'])
  const c = await TextConn.open(ro.port)
  const w = await TextConn.open(rw.port)
  try {
    const err = 'SERVER_ERROR replica is read-only\r\n'
    const writes = [
      'set a 0 0 1\r\nx\r\n', 'add a 0 0 1\r\nx\r\n', 'cas a 0 0 1 5\r\nx\r\n', 'append a 0 0 1\r\nx\r\n',
      'incr a 1\r\n', 'decr a 1\r\n', 'touch a 10\r\n', 'delete a\r\n', 'flush_all\r\n',
      'ms a 1 T0\r\nx\r\n', 'md a\r\n', 'ma a\r\n',
    ]
    for (const req of writes) assert.is(await c.line(req), err, req)
    // noreply is honoured; the data block of a refused set is skipped, not run as a command
    assert.is(await c.call('set a 0 0 5 noreply\r\nstats\r\nget a\r\n', (t) => t.endsWith('END\r\n')), 'END\r\n')
    assert.is(await w.line('set own 0 0 1\r\ny\r\n'), 'STORED\r\n')
    assert.is(await w.retrieve('get own\r\n'), 'VALUE own 0 1\r\ny\r\nEND\r\n')
    const p = await TextConn.open(primary.port)
    assert.is(await p.line('set fromp 5 0 2\r\nhi\r\n'), 'STORED\r\n')
    p.close()
    await converged(primary.port, [ro.port])
    assert.is(await c.retrieve('get fromp\r\n'), 'VALUE fromp 5 2\r\nhi\r\nEND\r\n')
    assert.is(await w.retrieve('get fromp ferrocache-replica\r\n'), 'VALUE fromp 5 2\r\nhi\r\nEND\r\n')

    // `stats` reads the offsets as it runs (they were refreshed every 100 ms): a stats in
    // the same read as a write shows it, and a replica at that offset has the write
    const offset = (reply: string, name: string): number => Number(new RegExp(`STAT ${name} (\\d+)`).exec(reply)?.[1])
    const q = await TextConn.open(primary.port)
    const before = offset(await q.call('stats\r\n', (t) => t.endsWith('END\r\n')), 'master_repl_offset')
    const after = offset(await q.call('set live 0 0 1\r\nz\r\nstats\r\n', (t) => t.endsWith('END\r\n')), 'master_repl_offset')
    q.close()
    assert.ok(after > before, `master_repl_offset ${before} -> ${after} with the write`)
    await waitStat(ro.port, 'slave_repl_offset', (v) => Number(v) >= after)
    assert.is(await c.retrieve('get live\r\n'), 'VALUE live 0 1\r\nz\r\nEND\r\n')
  } finally {
    c.close()
    w.close()
  }
})

test('a chain, promotion with replicaof no one, and the old primary re-pointed at the new one', async () => {
  const p = await server()
  const a = await server(['--replica-of', `127.0.0.1:${p.port}`])
  const b = await server(['--replica-of', `127.0.0.1:${a.port}`])
  const c = await TextConn.open(p.port)
  const random = rng(7)
  try {
    await randomMutations(c, random, 800)
    await converged(p.port, [a.port, b.port])
    const before = await stats(p.port)
    assert.is((await stats(b.port)).get('master_replid'), before.get('master_replid'), 'b follows p through a')

    // promote a: it keeps the data and takes writes under a new id; b stays with it
    const ac = await TextConn.open(a.port)
    assert.is(await ac.line('replicaof no one\r\n'), 'OK\r\n')
    await waitStat(a.port, 'role', (v) => v === 'primary')
    const promoted = await stats(a.port)
    assert.is.not(promoted.get('master_replid'), before.get('master_replid'))
    assert.is(promoted.get('master_replid2'), before.get('master_replid'))
    assert.is(await ac.line('set after-promotion 0 0 3\r\nnew\r\n'), 'STORED\r\n')

    // the old primary follows a: it has no writes of its own since, so it continues from a's backlog
    assert.is(await c.line(`replicaof 127.0.0.1 ${a.port}\r\n`), 'OK\r\n')
    await waitStat(p.port, 'master_link_status', (v) => v === 'up')
    assert.is(await c.line('set x 0 0 1\r\nx\r\n'), 'SERVER_ERROR replica is read-only\r\n')
    await randomMutations(ac, random, 400)
    const items = await converged(a.port, [p.port, b.port])
    assert.ok(items.has('after-promotion'))
    const ps = await stats(p.port)
    assert.is(ps.get('slave_partial_syncs'), '1', 'the old primary continued instead of a full sync')
    assert.is(ps.get('slave_full_syncs'), '0')
    ac.close()
  } finally {
    c.close()
  }
})

test('a replica logs in when the primary requires it; without the login the link stays down', async () => {
  const users = join(tmpdir(), `ferrocache-repl-users-${process.pid}`)
  writeFileSync(users, 'repl:s3cret\n')
  const p = await server(['-Y', users])
  const good = await server(['--replica-of', `127.0.0.1:${p.port}`, '--replica-auth', 'repl:s3cret'])
  const bad = await server(['--replica-of', `127.0.0.1:${p.port}`])
  const c = await TextConn.open(p.port)
  try {
    assert.is(await c.line('set login 0 0 11\r\nrepl s3cret\r\n'), 'STORED\r\n')
    assert.is(await c.line('set k 0 0 2\r\nok\r\n'), 'STORED\r\n')
    const g = await TextConn.open(good.port)
    const deadline = Date.now() + 10_000
    let got = ''
    while (Date.now() < deadline && !(got = await g.retrieve('get k\r\n')).includes('VALUE')) await sleep(50)
    assert.is(got, 'VALUE k 0 2\r\nok\r\nEND\r\n')
    g.close()
    const s = await stats(bad.port)
    assert.is(s.get('master_link_status'), 'down')
  } finally {
    c.close()
  }
})

test('ferrocached parses --replica-of, --replica-writable, --repl-backlog and --replica-auth (and their FERROCACHE_ variables)', () => {
  const run = parseCommandLine(['--replica-of', '10.0.0.1:11211', '--repl-backlog', '1m', '--replica-auth', 'u:p:w'])
  assert.equal(run.kind === 'run' && run.settings.replication, {
    replicaWritable: false,
    replicaOf: { host: '10.0.0.1', port: 11211 },
    backlogSize: 1 << 20,
    auth: { username: 'u', password: 'p:w' },
  })
  const env = parseCommandLine([], { FERROCACHE_REPLICA_OF: '[::1]:7', FERROCACHE_REPLICA_WRITABLE: '1' })
  assert.equal(env.kind === 'run' && env.settings.replication, { replicaWritable: true, replicaOf: { host: '::1', port: 7 } })
  assert.is(parseCommandLine([]).kind === 'run' && (parseCommandLine([]) as { settings: { replication?: unknown } }).settings.replication, undefined)
  const timeout = parseCommandLine(['--replica-of', 'h:1', '--repl-timeout', '3'])
  assert.is(timeout.kind === 'run' && timeout.settings.replication?.linkTimeout, 3000)
  const timeoutEnv = parseCommandLine(['--replica-of', 'h:1'], { FERROCACHE_REPL_TIMEOUT: '0' })
  assert.is(timeoutEnv.kind === 'run' && timeoutEnv.settings.replication?.linkTimeout, 0)
  const badTimeouts = [['--repl-timeout', 'abc'], ['--repl-timeout', '1.5'], ['--repl-timeout=-1'], ['--repl-timeout', '']]
  for (const bad of [['--replica-of', 'nohost'], ['--replica-of', 'h:0'], ['--repl-backlog', '10'], ['--replica-auth', 'nopass'], ...badTimeouts]) {
    assert.throws(() => parseCommandLine(bad), (e: unknown) => e instanceof UsageError, bad.join(' '))
  }
})

test.run()
