// The status page at / of the metrics port, loaded in headless Chromium (Debian's
// `chromium`, driven by puppeteer-core): the numbers it shows are those of `stats`,
// `stats slabs` and `stats items`, it refreshes itself, and its CSP lets it run.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Browser, Page } from 'puppeteer-core'
import { silentLogger } from '../src/server/logger'
import { MetricsServer } from '../src/server/metrics'
import { RawConn } from './helpers/raw'
import { tearDownEach } from './helpers/guard'
import { freePort, startFerrocached, waitForPort, type Running } from './helpers/servers'
import { haveChromium, launchChromium as launch } from './helpers/chromium'

async function stats(conn: RawConn, family = ''): Promise<Map<string, string>> {
  conn.send(family === '' ? 'stats\r\n' : `stats ${family}\r\n`)
  const reply = await conn.until('END\r\n')
  return new Map([...reply.matchAll(/^STAT (\S+) (.*)\r$/gm)].map((m) => [m[1]!, m[2]!]))
}

/**
 * Every element with data-stat: name → [shown text, exact value in its title]. One
 * evaluate, so one render's elements: `$$eval` finds them and reads them in separate round
 * trips, and a refresh in between (one a second) replaces the table rows, whose old cells
 * its fill() has just dashed (measured under load: 13 of 169 such reads saw the dashes).
 */
async function shown(page: Page): Promise<Map<string, [string, string]>> {
  const rows = await page.evaluate(() =>
    [...document.querySelectorAll('[data-stat]')].map((e) => [e.getAttribute('data-stat') ?? '', e.textContent ?? '', (e as HTMLElement).title] as const),
  )
  return new Map(rows.map(([name, text, title]) => [name, [text, title]]))
}

/** Waits until the page has rendered a report read after `since` (ms since the epoch). */
async function refreshedAfter(page: Page, since: number): Promise<void> {
  await page.waitForFunction((t: number) => Number(document.body.getAttribute('data-read-at') ?? 0) > t, { timeout: 20_000 }, since)
}

const count = (v: string | undefined): string => String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ',')

let server: Running | undefined
let browser: Browser | undefined
let dataDir = ''
tearDownEach(test, async () => {
  try {
    await browser?.close()
  } finally {
    await server?.stop()
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  browser = undefined
  server = undefined
  dataDir = ''
})

/** False (with a clear message) when chromium is missing here; CI must have it. */


test('the status page shows the numbers of stats and follows them', async () => {
  if (!haveChromium()) return
  const metricsPort = await freePort()
  dataDir = mkdtempSync(join(tmpdir(), 'ferrocache-status-'))
  server = await startFerrocached(['-m', '2', '--metrics-port', String(metricsPort), '--data-dir', dataDir, '--save', ''])
  await waitForPort(metricsPort) // the metrics port opens right after the memcached port
  const conn = await RawConn.open(server.port)
  const big = 'v'.repeat(20_000)
  for (let i = 0; i < 200; i++) {
    conn.send(`set big${i} 0 0 ${big.length}\r\n${big}\r\n`)
    await conn.until('STORED\r\n')
  }
  for (let i = 0; i < 30; i++) {
    conn.send(`set small${i} 0 0 3\r\nabc\r\n`)
    await conn.until('STORED\r\n')
  }
  conn.send('get small1 small2 small3 nope\r\nsnapshot\r\n')
  await conn.until('OK\r\n')

  browser = await launch()
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text())
  })
  page.on('pageerror', (err) => problems.push(String(err)))
  await page.goto(`http://127.0.0.1:${metricsPort}/`, { timeout: 30_000 })

  const s = await stats(conn)
  const slabs = await stats(conn, 'slabs')
  const items = await stats(conn, 'items')
  const settings = await stats(conn, 'settings')
  await refreshedAfter(page, Date.now())
  const on = await shown(page)

  assert.ok(Number(s.get('evictions')) > 0, 'the test must cause evictions')
  for (const name of ['get_hits', 'get_misses', 'curr_items', 'evictions', 'curr_connections', 'total_connections', 'rejected_connections', 'max_connections']) {
    assert.is(on.get(name)?.[0], count(s.get(name)), name)
  }
  for (const name of ['bytes', 'limit_maxbytes']) assert.is(on.get(name)?.[1], s.get(name), name)
  assert.is(on.get('version')?.[0], s.get('version'))
  const hits = Number(s.get('get_hits'))
  const misses = Number(s.get('get_misses'))
  assert.is(await page.$eval('#hit-ratio', (e) => e.textContent), `${((100 * hits) / (hits + misses)).toFixed(1)}%`)

  // memory by slab class: one row per class, the same figures as stats slabs / stats items
  const classes = [...slabs.keys()].map((k) => /^(\d+):chunk_size$/.exec(k)?.[1]).filter((x): x is string => x !== undefined)
  assert.ok(classes.length >= 2)
  const pageSize = Math.max(1 << 20, Number(settings.get('item_size_max')))
  assert.equal(await page.$$eval('#slabs tr', (rows) => rows.map((r) => r.getAttribute('data-class'))), classes)
  for (const id of classes) {
    const p = `slab.${id}.`
    assert.is(on.get(`${p}chunk_size`)?.[1], slabs.get(`${id}:chunk_size`))
    assert.is(on.get(`${p}total_pages`)?.[0], count(slabs.get(`${id}:total_pages`)))
    assert.is(on.get(`${p}allocated`)?.[1], String(Number(slabs.get(`${id}:total_pages`)) * pageSize))
    assert.is(on.get(`${p}used`)?.[1], String(Number(slabs.get(`${id}:used_chunks`)) * Number(slabs.get(`${id}:chunk_size`))))
    assert.is(on.get(`${p}number`)?.[0], count(items.get(`items:${id}:number`) ?? '0'))
    assert.is(on.get(`${p}evicted`)?.[0], count(items.get(`items:${id}:evicted`) ?? '0'))
    assert.is(on.get(`${p}mem_requested`)?.[1], items.get(`items:${id}:mem_requested`) ?? '')
  }

  // snapshot state
  assert.is(await page.$eval('#persistence', (e) => (e as HTMLElement).hidden), false)
  assert.is(on.get('rdb_last_bgsave_status')?.[0], 'ok')
  assert.is(on.get('rdb_changes_since_last_save')?.[0], count(s.get('rdb_changes_since_last_save')))
  assert.is(on.get('rdb_last_save_time')?.[0], new Date(Number(s.get('rdb_last_save_time')) * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z'))
  assert.is(on.get('rdb_bgsave_in_progress')?.[0], s.get('rdb_bgsave_in_progress') === '1' ? 'yes' : 'no')
  assert.is(on.get('line.rdb_saves')?.[0], s.get('rdb_saves'))
  assert.is(s.get('rdb_saves'), '1')
  // no replication lines in stats: no replication section
  assert.is(await page.$eval('#replication', (e) => (e as HTMLElement).hidden), true)

  // it follows the server: one more hit shows up within a refresh or two
  conn.send('get small4\r\n')
  await conn.until('END\r\n')
  await page.waitForFunction(
    (want: string) => document.querySelector('[data-stat="get_hits"]')?.textContent === want,
    { timeout: 20_000 },
    count(String(hits + 1)),
  )
  assert.equal(problems, [], 'no script errors or CSP violations')
  conn.close()
})

test('a primary and its replica show their replication state', async () => {
  if (!haveChromium()) return
  const [primaryMetrics, replicaMetrics] = [await freePort(), await freePort()]
  server = await startFerrocached(['--metrics-port', String(primaryMetrics)])
  await waitForPort(primaryMetrics) // the metrics port opens right after the memcached port
  const replica = await startFerrocached(['--metrics-port', String(replicaMetrics), '--replica-of', `127.0.0.1:${server.port}`])
  try {
    await waitForPort(replicaMetrics) // the metrics port opens right after the memcached port
    const conn = await RawConn.open(replica.port)
    // linked up (from FULLRESYNC on) and past the first heartbeat, ~100 ms later: until then
    // repl_lag_ms is -1, which the lag card shows as a dash
    const deadline = Date.now() + 10_000
    for (;;) {
      const s = await stats(conn)
      if (s.get('master_link_status') === 'up' && Number(s.get('repl_lag_ms')) >= 0) break
      assert.ok(Date.now() < deadline, `the replica links up and hears a heartbeat: link ${s.get('master_link_status')}, lag ${s.get('repl_lag_ms')}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    conn.close()
    browser = await launch()
    const page = await browser.newPage()
    await page.goto(`http://127.0.0.1:${replicaMetrics}/`, { timeout: 30_000 })
    await refreshedAfter(page, 0)
    let on = await shown(page)
    assert.is(await page.$eval('#replication', (e) => (e as HTMLElement).hidden), false)
    assert.is(on.get('role')?.[0], 'replica')
    assert.is(on.get('master_link_status')?.[0], 'up')
    // the last heartbeat's delay (or how overdue the next one is): ms, never a dash again
    assert.match(on.get('repl_lag_ms')?.[0] ?? '', /^\d[\d,]* ms$/)
    assert.is(on.get('line.master_port')?.[0], String(server.port))
    await page.goto(`http://127.0.0.1:${primaryMetrics}/`, { timeout: 30_000 })
    await refreshedAfter(page, 0)
    on = await shown(page)
    assert.is(on.get('role')?.[0], 'primary')
    assert.is(on.get('connected_slaves')?.[0], '1')
    // a primary has no link to a primary: that card is hidden, not shown empty
    assert.is(await page.$eval('[data-stat="master_link_status"]', (e) => (e.parentElement as HTMLElement).hidden), true)
  } finally {
    await replica.stop()
  }
})

test('stat values reach the page as text only: markup in them is shown, never run', async () => {
  if (!haveChromium()) return
  const hostile = '<img src=x onerror="window.__pwned=1"></td></script><script>window.__pwned=2</script>'
  const general: Array<[string, string]> = [
    ['version', hostile],
    ['get_hits', '3'],
    ['get_misses', '1'],
    ['role', hostile],
    ['master_link_status', '"><b id=injected>x</b>'],
    ['rdb_last_bgsave_status', hostile],
  ]
  const source = {
    statsPairs: (family: string): Array<[string, string]> =>
      family === '' ? general : family === 'settings' ? [['maxconns', '10']] : family === 'slabs' ? [['1:chunk_size', '<i>96</i>']] : [],
  }
  const metrics = new MetricsServer(source, { port: 0, host: '127.0.0.1', logger: silentLogger() })
  const { port } = await metrics.listen()
  try {
    browser = await launch()
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(String(err)))
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 30_000 })
    await refreshedAfter(page, 0)
    const on = await shown(page)
    assert.is(on.get('version')?.[0], hostile)
    assert.is(on.get('rdb_last_bgsave_status')?.[0], hostile)
    assert.is(on.get('line.role')?.[0], hostile)
    assert.is(on.get('line.master_link_status')?.[0], '"><b id=injected>x</b>')
    assert.is(await page.$eval('#hit-ratio', (e) => e.textContent), '75.0%')
    assert.is(await page.$$eval('img, b#injected, i', (els) => els.length), 0, 'no element came from a stat value')
    assert.is(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined)
    assert.equal(problems, [])
  } finally {
    await metrics.close()
  }
})

test.run()
