// Review of the administrative commands and start-up options against Debian's memcached
// 1.6.18, side by side: each case here differed before its fix (see CHANGELOG.md).
// - `lru_crawler crawl hash`: memcached's "ERROR an unknown error happened" (was BADCLASS).
// - `extstore <setting> <value>`: memcached (extstore built in, not configured) answers OK
//   and shows the value in `stats settings` (was ERROR, as an unknown command).
// - `shutdown` (-A): the replies of the same read not written out yet are lost, `watch
//   connevents` logs the sender's close as reason=shutdown, and the server exits without
//   waiting for that client to hang up (it used to wait for its 5 s close timeout).
// - `-o`: `lru_crawler` started nothing (exit 2), `inline_ascii_resp`, `hot_lru_pct=1` and a
//   bare `slab_automove` were refused, an empty item between commas and unparsable values
//   of the ignored numeric suboptions were accepted, and `ssl_*` files without -Z turned TLS
//   on (memcached serves plain text); `-I 128m` (over half of -m) exited 2, not memcached's 64.
// Runs dist/ (npm run build).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { MEMCACHED, run, runCli, startAll, startFerrocached, startMemcached, within, type Running } from './helpers/servers'

let servers: Running[] = []

setUp(test, async () => {
  servers = await startAll([() => startMemcached(), () => startFerrocached()])
})

tearDown(test, async () => {
  await Promise.all(servers.map((s) => s.stop()))
})

/** `lines` in one write on a fresh connection to `port`; what came back until quiet. */
async function exchange(port: number, lines: string): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(lines)
    return (await c.settle(150, 3_000, 1_000)).toString('latin1')
  } finally {
    c.close()
  }
}

async function sameReplies(lines: string[]): Promise<void> {
  for (const line of lines) {
    const [mc, fc] = await Promise.all(servers.map((s) => exchange(s.port, `${line}\r\n`)))
    assert.is(fc, mc, `reply to ${JSON.stringify(line)}`)
  }
}

test('lru_crawler crawl hash: memcached 1.6.18 starts no hash crawl for expiry', async () => {
  await sameReplies([
    'lru_crawler crawl hash',
    'lru_crawler crawl hash,1',
    'lru_crawler crawl 1,hash',
    'lru_crawler metadump hash',
    'lru_crawler crawl hash noreply',
  ])
  // with the crawler off, its own error comes first
  await sameReplies(['lru_crawler disable', 'lru_crawler crawl hash', 'lru_crawler enable'])
})

test('extstore <setting> <value>: OK and stored (stats settings) as memcached 1.6.18 without ext_path', async () => {
  const lines = [
    'extstore compact_under 5',
    'extstore drop_under 3 noreply',
    'extstore low_ttl 9 extra',
    'extstore item_size 4294967296',
    'extstore max_frag 0.5',
    'extstore drop_unread 7',
    'extstore free_memchunks 63 2',
    'extstore free_memchunks 64 2',
    'extstore free_memchunks 1',
    'extstore max_frag x',
    'extstore compact_under x noreply',
    'extstore compact_under',
    'extstore bogus 1',
  ]
  const conns = await Promise.all(servers.map((s) => RawConn.open(s.port)))
  try {
    for (const line of lines) {
      // `mn` after each line shows a silenced reply as nothing
      const [mc, fc] = await Promise.all(conns.map((c) => (c.send(`${line}\r\nmn\r\n`), c.until('MN\r\n'))))
      assert.is(fc, mc, `reply to ${JSON.stringify(line)}`)
    }
    const [mine, theirs] = await Promise.all([settingsOf(servers[1]!.port), settingsOf(servers[0]!.port)])
    for (const name of ['ext_compact_under', 'ext_drop_under', 'ext_low_ttl', 'ext_item_size', 'ext_max_frag', 'ext_drop_unread']) {
      assert.is(mine.get(name), theirs.get(name), name)
    }
  } finally {
    for (const c of conns) c.close()
  }
})

/** A server with -A, a `watch connevents` watcher on it and a client; `stop` ends all. */
async function shutdownRig(start: () => Promise<Running>): Promise<{ server: Running; watcher: RawConn; client: RawConn }> {
  const server = await start()
  const watcher = await RawConn.open(server.port)
  watcher.send('watch connevents\r\n')
  assert.is(await watcher.until('OK\r\n'), 'OK\r\n')
  const client = await RawConn.open(server.port)
  assert.ok(await watcher.arrived(), 'conn_new of the client')
  watcher.take()
  return { server, watcher, client }
}

test('shutdown: earlier replies of the read are lost, the close is reason=shutdown, the exit does not wait for the client', async () => {
  for (const line of ['version\r\nshutdown\r\n', 'get a\r\nversion\r\nshutdown graceful\r\n']) {
    const results = await Promise.all(
      [() => startMemcached(['-A']), () => startFerrocached(['-A'])].map(async (start) => {
        const { server, watcher, client } = await shutdownRig(start)
        try {
          const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()))
          client.send(line)
          // the client never closes its side; the server still exits (ferrocached used
          // to wait for its 5 s close timeout on this connection)
          await within(exited, 4_000, `exit after ${JSON.stringify(line)}`)
          const reply = (await client.settle(50, 1_000)).toString('latin1')
          const close = /type=conn_close .*reason=(\w+)/.exec(watcher.take().toString('latin1'))
          return { reply, closed: client.closed, reason: close?.[1] }
        } finally {
          watcher.close()
          client.close()
          await server.stop()
        }
      }),
    )
    assert.equal(results[1], results[0], JSON.stringify(line))
    assert.is(results[0]!.reason, 'shutdown')
  }
})

/** memcached's exit code for a command line (null: it started and was stopped). */
async function memcachedExit(args: string[]): Promise<number | null> {
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const r = await run(MEMCACHED, [...root, '-p', '0', '-U', '0', '-l', '127.0.0.1', ...args], { ms: 5_000 })
  return r.code
}

test('-o lists memcached refuses or takes, with its exit codes', async () => {
  const cases: Array<{ args: string[]; code: number | null }> = [
    { args: ['-o', ',hashpower=16'], code: 1 },
    { args: ['-o', 'hashpower=16,,no_hashexpand'], code: 1 },
    { args: ['-o', 'watcher_logbuf_size=x'], code: 1 },
    { args: ['-o', 'read_buf_mem_limit=12abc'], code: 1 },
    { args: ['-o', 'slab_automove_freeratio=1e400'], code: 1 },
    { args: ['-o', 'ext_item_age=x'], code: 1 },
    { args: ['-o', 'ssl_verify_mode=9'], code: 1 },
    // over half of -m (64 MB): memcached's 64 before ferrocache's own 16 MiB cap (was 2)
    { args: ['-I', '128m'], code: 64 },
  ]
  const theirs = await Promise.all(cases.map((c) => memcachedExit(c.args)))
  const ours = await Promise.all(cases.map((c) => runCli(['-p', '0', ...c.args], {}, 10_000)))
  cases.forEach((c, i) => {
    assert.is(theirs[i], c.code, `memcached ${c.args.join(' ')}`)
    assert.is(ours[i]!.code, c.code, `ferrocached ${c.args.join(' ')}: ${ours[i]!.stderr}`)
  })
})

/** `stats settings` of a server as a map. */
async function settingsOf(port: number): Promise<Map<string, string>> {
  const c = await RawConn.open(port)
  try {
    c.send('stats settings\r\n')
    const text = await c.until('END\r\n')
    return new Map([...text.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((m) => [m[1] as string, m[2] as string]))
  } finally {
    c.close()
  }
}

test('-o lists memcached starts with: the same settings, and plain text without -Z', async () => {
  const flags = ['-o', 'lru_crawler,inline_ascii_resp,no_inline_ascii_resp,hot_lru_pct=1,warm_lru_pct=1,slab_automove,hashpower=16,', '-o', 'ssl_chain_cert=/nonexistent.pem,ssl_key=/nonexistent.key']
  const [m, f] = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  try {
    const [mine, theirs] = await Promise.all([settingsOf(f!.port), settingsOf(m!.port)])
    for (const name of ['lru_crawler', 'hot_lru_pct', 'warm_lru_pct', 'slab_automove', 'hashpower_init', 'ssl_enabled']) {
      assert.is(mine.get(name), theirs.get(name), name)
    }
    // the -o files without -Z leave the port plain text, as memcached's
    assert.is(await exchange(f!.port, 'version\r\n'), await exchange(m!.port, 'version\r\n'))
  } finally {
    await Promise.all([m!.stop(), f!.stop()])
  }
})

test('stats settings ext_* lines: memcached 1.6.18 defaults, and the -o ext_* values its extstore command also sets', async () => {
  const extLines = (m: Map<string, string>): string[] => [...m].filter(([k]) => k.startsWith('ext_')).map(([k, v]) => `${k} ${v}`)
  const [mcDefault, fcDefault] = await Promise.all(servers.map((s) => settingsOf(s.port)))
  assert.ok(extLines(mcDefault!).length >= 10, 'memcached lists its ext_* settings')
  assert.equal(extLines(fcDefault!), extLines(mcDefault!), 'defaults')
  const flags = ['-o', 'ext_item_size=100,ext_item_age=+7,ext_low_ttl=9,ext_recache_rate=3,ext_compact_under=4,ext_drop_under=5,ext_max_frag=0.5,ext_drop_unread']
  let m: Running | undefined
  let f: Running | undefined
  try {
    ;[m, f] = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
    const [mine, theirs] = await Promise.all([settingsOf(f!.port), settingsOf(m!.port)])
    assert.equal(extLines(mine), extLines(theirs), 'with -o ext_*')
  } finally {
    await Promise.all([m?.stop(), f?.stop()])
  }
})

test.run()
