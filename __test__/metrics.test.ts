// ferrocached --metrics-port: a real HTTP scrape of /metrics, parsed as Prometheus text,
// carries memcached_exporter's metric names with the values `stats` reports.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src/cache'
import { createServer } from '../src/server'
import { metricsText } from '../src/server/metrics'
import { RawConn } from './helpers/raw'
import { tearDownEach } from './helpers/guard'
import { freePort, runCli, startFerrocached, waitFor, waitForPort, type Running } from './helpers/servers'

interface Sample {
  value: string
  labels?: Record<string, string>
}
interface Family {
  name: string
  help: string
  type: string
  metrics: Sample[]
}
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => Family[]

/** Checks the text line by line against the exposition format, then parses it. */
function parseStrict(text: string): Map<string, Family> {
  const declared = new Set<string>()
  let current = ''
  for (const line of text.split('\n').slice(0, -1)) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line)
    if (help) {
      assert.not.ok(declared.has(help[1]!), `family ${help[1]} declared twice`)
      declared.add(help[1]!)
      current = help[1]!
    } else if (type) {
      assert.is(type[1], current, `TYPE right after HELP: ${line}`)
    } else {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|[+-]Inf)$/.exec(line)
      assert.ok(m, `not a sample line: ${JSON.stringify(line)}`)
      assert.is(m![1], current, `sample of ${m![1]} outside its family`)
    }
  }
  assert.ok(text.endsWith('\n'))
  return new Map(parsePrometheus(text).map((f) => [f.name, f]))
}

/** The value of one sample (the one whose labels include `labels`). */
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name)
  assert.ok(f, `no metric ${name}`)
  const matching = f!.metrics.filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  assert.is(matching.length, 1, `${name}${JSON.stringify(labels)}: ${matching.length} samples`)
  return Number(matching[0]!.value)
}

/** Sends raw requests, counting the bytes both ways, as bytes_read/bytes_written do. */
class CountingConn {
  sent = 0
  received = 0
  private constructor(private readonly conn: RawConn) {}
  static async open(port: number): Promise<CountingConn> {
    return new CountingConn(await RawConn.open(port))
  }
  async request(text: string, end: string | RegExp): Promise<string> {
    this.conn.send(text)
    this.sent += Buffer.byteLength(text)
    const reply = await this.conn.until(end)
    this.received += Buffer.byteLength(reply, 'latin1')
    return reply
  }
  async stats(family = ''): Promise<Map<string, string>> {
    const reply = await this.request(family === '' ? 'stats\r\n' : `stats ${family}\r\n`, 'END\r\n')
    const out = new Map<string, string>()
    for (const line of reply.split('\r\n')) {
      const m = /^STAT (\S+) (.*)$/.exec(line)
      if (m) out.set(m[1]!, m[2]!)
    }
    return out
  }
  close(): void {
    this.conn.close()
  }
}

async function scrape(port: number, path = '/metrics'): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5_000) })
}

let server: Running | undefined
let dataDir = ''
tearDownEach(test, async () => {
  await server?.stop()
  server = undefined
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  dataDir = ''
})

test('a scrape after sets, hits, misses and evictions matches stats, stats slabs and stats items', async () => {
  const metricsPort = await freePort()
  dataDir = mkdtempSync(join(tmpdir(), 'ferrocache-metrics-'))
  server = await startFerrocached(['-m', '2', '--metrics-port', String(metricsPort), '--data-dir', dataDir, '--save', ''])
  await waitForPort(metricsPort) // the metrics port opens right after the memcached port
  const c = await CountingConn.open(server.port)
  const big = 'v'.repeat(20_000)
  for (let i = 0; i < 300; i++) await c.request(`set big${i} 0 0 ${big.length}\r\n${big}\r\n`, 'STORED\r\n')
  for (let i = 0; i < 20; i++) await c.request(`set k${i} 5 0 2\r\nv${i % 10}\r\n`, 'STORED\r\n')
  await c.request('get k1 k2 k3 nope1 nope2\r\n', 'END\r\n')
  await c.request('get k4\r\n', 'END\r\n')
  await c.request('delete k5\r\ndelete nope\r\n', 'NOT_FOUND\r\n')
  await c.request('incr k6 1\r\nincr nope 1\r\n', 'NOT_FOUND\r\n')
  await c.request('cas k7 0 0 1 12345\r\nx\r\n', 'EXISTS\r\n')
  await c.request('touch k8 100\r\n', 'TOUCHED\r\n')
  await c.request('snapshot\r\n', 'OK\r\n')

  const stats = await c.stats()
  const settings = await c.stats('settings')
  const slabs = await c.stats('slabs')
  const items = await c.stats('items')
  const res = await scrape(metricsPort)
  assert.is(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  const m = parseStrict(await res.text())

  assert.ok(Number(stats.get('evictions')) > 0, 'the test must cause evictions')
  assert.is(value(m, 'memcached_up'), 1)
  assert.is(value(m, 'memcached_version', { version: '1.6.18' }), 1)
  const same: Array<[string, string]> = [
    ['memcached_current_items', 'curr_items'],
    ['memcached_items_total', 'total_items'],
    ['memcached_items_evicted_total', 'evictions'],
    ['memcached_items_reclaimed_total', 'reclaimed'],
    ['memcached_current_bytes', 'bytes'],
    ['memcached_limit_bytes', 'limit_maxbytes'],
    ['memcached_current_connections', 'curr_connections'],
    ['memcached_connections_total', 'total_connections'],
    ['memcached_connections_rejected_total', 'rejected_connections'],
    ['memcached_item_too_large_total', 'store_too_large'],
  ]
  for (const [metric, stat] of same) assert.is(value(m, metric), Number(stats.get(stat)), metric)
  assert.is(value(m, 'memcached_max_connections'), Number(settings.get('maxconns')))
  assert.is(value(m, 'memcached_malloced_bytes'), Number(slabs.get('total_malloced')))
  // the stats requests themselves are counted: compare with what this connection sent and got
  assert.is(value(m, 'memcached_read_bytes_total'), c.sent)
  // (the `snapshot` command's OK\r\n is written by the server once the file is durable,
  // outside the protocol session that counts bytes_written)
  assert.is(value(m, 'memcached_written_bytes_total'), c.received - 'OK\r\n'.length)

  const cmd = (command: string, status: string): number => value(m, 'memcached_commands_total', { command, status })
  for (const op of ['get', 'delete', 'incr', 'decr', 'cas', 'touch']) {
    assert.is(cmd(op, 'hit'), Number(stats.get(`${op}_hits`)), `${op} hit`)
    assert.is(cmd(op, 'miss'), Number(stats.get(`${op}_misses`)), `${op} miss`)
  }
  assert.is(cmd('get', 'hit'), 4)
  assert.is(cmd('get', 'miss'), 2)
  assert.is(cmd('cas', 'badval'), 1)
  assert.is(cmd('set', 'hit'), 320) // cmd_set less the cas request
  assert.is(Number(stats.get('cmd_set')), 321)

  // per slab class, from stats slabs and stats items
  const classes = [...slabs.keys()].map((k) => /^(\d+):chunk_size$/.exec(k)?.[1]).filter((x): x is string => x !== undefined)
  assert.ok(classes.length >= 2, 'small and large items use two classes')
  for (const slab of classes) {
    assert.is(value(m, 'memcached_slab_chunk_size_bytes', { slab }), Number(slabs.get(`${slab}:chunk_size`)))
    assert.is(value(m, 'memcached_slab_current_pages', { slab }), Number(slabs.get(`${slab}:total_pages`)))
    assert.is(value(m, 'memcached_slab_chunks_used', { slab }), Number(slabs.get(`${slab}:used_chunks`)))
    assert.is(value(m, 'memcached_slab_commands_total', { slab, command: 'get', status: 'hit' }), Number(slabs.get(`${slab}:get_hits`)))
    if (items.has(`items:${slab}:number`)) {
      assert.is(value(m, 'memcached_slab_current_items', { slab }), Number(items.get(`items:${slab}:number`)))
      assert.is(value(m, 'memcached_slab_items_evicted_total', { slab }), Number(items.get(`items:${slab}:evicted`)))
      assert.is(value(m, 'memcached_slab_mem_requested_bytes', { slab }), Number(items.get(`items:${slab}:mem_requested`)))
    }
  }

  // ferrocache's own: the snapshot the `snapshot` command wrote
  assert.is(value(m, 'ferrocache_snapshot_saves_total'), Number(stats.get('rdb_saves')))
  assert.is(value(m, 'ferrocache_snapshot_saves_total'), 1)
  assert.is(value(m, 'ferrocache_snapshot_last_ok'), 1)
  assert.is(value(m, 'ferrocache_snapshot_last_save_time_seconds'), Number(stats.get('rdb_last_save_time')))
  assert.is(value(m, 'ferrocache_snapshot_last_items'), Number(stats.get('rdb_last_save_keys')))
  c.close()
})

test('a primary and its replica export their replication state', async () => {
  const [primaryMetrics, replicaMetrics] = [await freePort(), await freePort()]
  server = await startFerrocached(['--metrics-port', String(primaryMetrics)])
  await waitForPort(primaryMetrics) // the metrics port opens right after the memcached port
  const replica = await startFerrocached(['--metrics-port', String(replicaMetrics), '--replica-of', `127.0.0.1:${server.port}`])
  try {
    await waitForPort(replicaMetrics) // the metrics port opens right after the memcached port
    const c = await CountingConn.open(replica.port)
    assert.ok(await waitForAsync(async () => (await c.stats()).get('master_link_status') === 'up', 10_000), 'the replica links up')
    c.close()
    const p = parseStrict(await (await scrape(primaryMetrics)).text())
    assert.is(value(p, 'ferrocache_replication_role', { role: 'primary' }), 1)
    assert.is(value(p, 'ferrocache_replication_connected_replicas'), 1)
    const links = p.get('ferrocache_replication_replica_lag_bytes')!.metrics
    assert.is(links.length, 1)
    assert.match(links[0]!.labels!.replica!, /^127\.0\.0\.1:\d+$/)
    assert.match(links[0]!.labels!.state!, /^(sync|online)$/)
    const r = parseStrict(await (await scrape(replicaMetrics)).text())
    assert.is(value(r, 'ferrocache_replication_role', { role: 'replica' }), 1)
    assert.is(value(r, 'ferrocache_replication_link_up'), 1)
    assert.is(value(r, 'ferrocache_replication_read_only'), 1)
    assert.is(value(r, 'ferrocache_replication_info', { stat: 'master_host', value: '127.0.0.1' }), 1)
    assert.is(value(r, 'ferrocache_replication_info', { stat: 'master_port', value: String(server.port) }), 1)
    assert.is(value(r, 'ferrocache_replication_replica_full_syncs_total'), 1)
    assert.ok(!r.has('ferrocache_replication_master_replid2'), 'ids are not numbers')
  } finally {
    await replica.stop()
  }
})

async function waitForAsync(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 50))
  }
  return true
}

test('other paths are 404, other methods 405; the page and its JSON are served', async () => {
  const metricsPort = await freePort()
  server = await startFerrocached(['--metrics-port', String(metricsPort)])
  await waitForPort(metricsPort) // the metrics port opens right after the memcached port
  assert.is((await scrape(metricsPort, '/nope')).status, 404)
  const post = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'POST', body: 'x', signal: AbortSignal.timeout(5_000) })
  assert.is(post.status, 405)
  assert.is(post.headers.get('allow'), 'GET, HEAD')
  const head = await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) })
  assert.is(head.status, 200)
  assert.ok(Number(head.headers.get('content-length')) > 1000)
  assert.is(await head.text(), '')
  const page = await scrape(metricsPort, '/')
  assert.is(page.status, 200)
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/)
  assert.match(await page.text(), /<title>ferrocached status<\/title>/)
  const json = (await (await scrape(metricsPort, '/stats.json')).json()) as { stats: Record<string, string>; persistence: unknown }
  assert.is(json.stats.version, '1.6.18')
  assert.is(json.persistence, null)
})

test('a metrics port already in use stops ferrocached with an error; --metrics-host needs --metrics-port', async () => {
  const busy = await freePort()
  const blocker = require('node:net').createServer() as import('node:net').Server
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject)
    blocker.listen(busy, '127.0.0.1', resolve)
  })
  try {
    const port = await freePort()
    const r = await runCli(['-p', String(port), '--metrics-port', String(busy)], {}, 15_000)
    assert.is(r.code, 71)
    assert.match(r.stderr, /cannot listen/)
  } finally {
    blocker.close()
  }
  const bad = await runCli(['--metrics-host', '127.0.0.1'])
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /--metrics-host needs --metrics-port/)
})

test('replication and unknown persistence lines are exported generically; label values are escaped', () => {
  const general: Array<[string, string]> = [
    ['version', 'weird "1.6" \\ \n'],
    ['curr_items', '3'],
    ['role', 'primary'],
    ['connected_slaves', '1'],
    ['slave0', 'addr=127.0.0.1:4000,state=online,offset=90,lag_bytes=10'],
    ['master_replid', 'abc'],
    ['master_repl_offset', '100'],
    ['repl_backlog_histlen', '1234'],
    ['repl_sync_full', '2'],
    ['master_link_status', 'up'],
    ['rdb_saves', '2'],
    ['rdb_last_bgsave_status', 'err'],
    ['rdb_new_thing', '7'],
    ['aof_last_write_status', 'ok'],
  ]
  const source = {
    statsPairs: (family: string): Array<[string, string]> =>
      family === '' ? general : family === 'slabs' ? [['1:chunk_size', '96'], ['total_malloced', '1048576']] : [],
  }
  const m = parseStrict(metricsText(source))
  assert.is(value(m, 'memcached_current_items'), 3)
  assert.equal(m.get('memcached_version')!.metrics[0]!.labels, { version: 'weird "1.6" \\ \n' })
  assert.is(value(m, 'ferrocache_replication_role', { role: 'primary' }), 1)
  assert.is(value(m, 'ferrocache_replication_connected_replicas'), 1)
  assert.is(value(m, 'ferrocache_replication_offset_bytes'), 100)
  assert.is(value(m, 'ferrocache_replication_replica_lag_bytes', { replica: '127.0.0.1:4000', state: 'online' }), 10)
  assert.is(value(m, 'ferrocache_replication_replica_offset_bytes', { replica: '127.0.0.1:4000' }), 90)
  assert.is(value(m, 'ferrocache_replication_backlog_histlen'), 1234)
  assert.is(value(m, 'ferrocache_replication_full_syncs_total'), 2)
  assert.is(m.get('ferrocache_replication_full_syncs_total')!.type, 'COUNTER')
  assert.is(value(m, 'ferrocache_replication_info', { stat: 'master_replid', value: 'abc' }), 1)
  assert.is(value(m, 'ferrocache_replication_link_up'), 1)
  assert.is(value(m, 'ferrocache_snapshot_saves_total'), 2)
  assert.is(value(m, 'ferrocache_snapshot_last_ok'), 0)
  assert.is(value(m, 'ferrocache_snapshot_new_thing'), 7)
  assert.is(value(m, 'ferrocache_aof_last_write_ok'), 1)
  assert.is(value(m, 'memcached_slab_chunk_size_bytes', { slab: '1' }), 96)
  // a closed cache: only memcached_up 0
  const closed = { statsPairs: (): Array<[string, string]> => { throw new Error('closed') } }
  const down = parseStrict(metricsText(closed))
  assert.equal([...down.keys()], ['memcached_up'])
  assert.is(value(down, 'memcached_up'), 0)
})

test('createServer({ metricsPort: 0 }) picks a port and closes it with the server', async () => {
  const cache = new Cache()
  const srv = createServer({ cache, port: 0, metricsPort: 0 })
  await srv.listen()
  try {
    const addr = srv.metricsAddress()
    assert.ok(addr && addr.port > 0)
    cache.setSync('a', 'b')
    const m = parseStrict(await (await scrape(addr!.port)).text())
    assert.is(value(m, 'memcached_current_items'), 1)
    assert.equal(new Map(srv.statsPairs()).get('curr_items'), '1')
  } finally {
    await srv.close()
  }
  assert.ok(await waitFor(() => srv.metricsAddress() === null, 10_000))
  cache.close()
})

test.run()
