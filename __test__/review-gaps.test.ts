// Documented gaps closed against memcached 1.6.18, each beside a memcached where the
// protocol decides: `flush_all <unix time before the start>` dropping a pending delayed
// flush (with a replica and an append-only log restart), `stats sizes` / `sizes_enable` /
// `sizes_disable`, `ssl_new_sessions` with `-o ssl_session_cache`; and the embedded
// `fetch`'s `timeout` and `signal`. Every server is stopped by its PID; every wait is
// bounded.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import tls from 'node:tls'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { binaryRequest } from './helpers/binary'
import { makeCertificates, type TestCertificates } from './helpers/certs'
import { tearDown } from './helpers/guard'
import { askOnce } from './helpers/raw'
import { caughtUp } from './helpers/replication'
import { startAll, startFerrocached, startMemcached, stopChild, waitFor, type Running } from './helpers/servers'

const running: Running[] = []
const dir = mkdtempSync(join(tmpdir(), 'ferro-review-gaps-'))
let certs: TestCertificates | undefined

tearDown(test, async () => {
  await Promise.all(running.map((r) => stopChild(r.child)))
  certs?.remove()
  rmSync(dir, { recursive: true, force: true })
})

async function track(starts: ReadonlyArray<() => Promise<Running>>): Promise<Running[]> {
  const started = await startAll(starts)
  running.push(...started)
  return started
}

const text = async (port: number, request: string): Promise<string> => (await askOnce(port, Buffer.from(request, 'latin1'))).reply

/** memcached's realtime() reads this as 1 (before its start): its flush mark becomes 0. */
const BEFORE_START = 2_592_001

/** The server's `time` stat: its clock, whole seconds. */
async function serverTime(port: number): Promise<number> {
  return Number(/STAT time (\d+)/.exec(await text(port, 'stats\r\n'))?.[1])
}

test('flush_all <unix time before the start> drops a pending delayed flush, as memcached; a replica and a log replay agree', async () => {
  const data = join(dir, 'aof')
  const primaryArgs = ['--data-dir', data, '--appendfsync', 'always']
  const [m, primary] = await track([() => startMemcached(), () => startFerrocached(primaryArgs)])
  const [replica] = await track([() => startFerrocached(['--replica-of', `127.0.0.1:${primary!.port}`])])
  await caughtUp(primary!, replica!)
  // `flush_all 0` after a delayed one replaces it (both, measured); then `flush_all 2` is
  // dropped by the time before the start: b and c stay after its deadline
  const exchange = async (port: number): Promise<string> =>
    text(port, `set a 0 0 1\r\nx\r\nflush_all 3\r\nflush_all 0\r\nget a\r\nset b 0 0 1\r\ny\r\nflush_all 2\r\nflush_all ${BEFORE_START}\r\nset c 0 0 1\r\nz\r\n`)
  const [theirs, ours] = await Promise.all([exchange(m!.port), exchange(primary!.port)])
  assert.is(ours, theirs)
  assert.is(theirs, 'STORED\r\nOK\r\nOK\r\nEND\r\nSTORED\r\nOK\r\nOK\r\nSTORED\r\n')
  // `flush_all 2` would hide b and c from the second after it at the latest
  const after = Math.max(await serverTime(m!.port), await serverTime(primary!.port))
  assert.ok(await waitUntilTime([m!.port, primary!.port], after + 2), 'the clocks moved on')
  const read = 'get b c\r\n'
  const both = 'VALUE b 0 1\r\ny\r\nVALUE c 0 1\r\nz\r\nEND\r\n'
  assert.is(await text(m!.port, read), both)
  assert.is(await text(primary!.port, read), both)
  await caughtUp(primary!, replica!)
  assert.is(await text(replica!.port, read), both, 'the replica')
  await primary!.stop()
  const [again] = await track([() => startFerrocached(primaryArgs)])
  assert.is(await text(again!.port, read), both, 'after replaying the log')
})

/** Polls the servers' `time` until each reads at least `t` (bounded: 5 s). */
async function waitUntilTime(ports: number[], t: number): Promise<boolean> {
  const deadline = Date.now() + 5_000
  while (Date.now() < deadline) {
    const times = await Promise.all(ports.map(serverTime))
    if (times.every((x) => x >= t)) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

test('stats sizes, sizes_enable, sizes_disable: text and binary replies as memcached', async () => {
  const [m, f] = await track([() => startMemcached(), () => startFerrocached()])
  const value = 'v'.repeat(100)
  const script = [
    'stats sizes\r\n',
    'set old 0 0 1\r\na\r\n',
    'stats sizes_enable\r\n',
    'stats sizes_enable\r\n',
    `set k1 0 0 1\r\na\r\nset k2 7 0 100\r\n${value}\r\nset k3 0 0 100\r\n${value}\r\n`,
    'stats sizes\r\n',
    'delete k3\r\ndelete old\r\n',
    'stats sizes extra\r\n',
    'stats sizes_disable\r\nstats sizes\r\n',
  ].join('')
  const exchange = async (port: number): Promise<string[]> => {
    const reply = await text(port, script)
    // binary: no terminator packet after sizes_enable/sizes_disable; `sizes_enable x` unknown
    const binary = Buffer.concat(['sizes_enable', 'sizes', 'sizes_enable x', 'sizes_disable'].map((k) => binaryRequest(0x10, k)))
    return [reply, Buffer.from((await askOnce(port, binary)).reply, 'latin1').toString('hex')]
  }
  const [theirs, ours] = await Promise.all([exchange(m!.port), exchange(f!.port)])
  assert.equal(ours, theirs)
  assert.is(
    theirs[0],
    'STAT sizes_status disabled\r\nEND\r\nSTORED\r\nSTAT sizes_status enabled\r\nSTAT sizes_status enabled\r\nSTORED\r\nSTORED\r\nSTORED\r\n' +
      'STAT 64 1\r\nSTAT 192 2\r\nEND\r\nDELETED\r\nDELETED\r\nSTAT 64 1\r\nSTAT 192 1\r\nEND\r\nSTAT sizes_status disabled\r\nSTAT sizes_status disabled\r\nEND\r\n',
  )
})

test('-o track_sizes: stats sizes counts from the start (one CAS used up), stats settings track_sizes yes', async () => {
  const [m, f] = await track([() => startMemcached(['-o', 'track_sizes']), () => startFerrocached(['-o', 'track_sizes'])])
  const exchange = async (port: number): Promise<string> => {
    const reply = await text(port, 'stats sizes\r\nset a 0 0 1\r\nx\r\ngets a\r\nstats sizes\r\n')
    const settings = await text(port, 'stats settings\r\n')
    return reply + (/STAT track_sizes \w+\r\n/.exec(settings)?.[0] ?? '')
  }
  const [theirs, ours] = await Promise.all([exchange(m!.port), exchange(f!.port)])
  assert.is(ours, theirs)
  assert.is(theirs, 'END\r\nSTORED\r\nVALUE a 0 1 2\r\nx\r\nEND\r\nSTAT 64 1\r\nEND\r\nSTAT track_sizes yes\r\n')
})

/** A TLS connection (any certificate) at `version`; resolves once `tickets` session
 * tickets have come, with the socket still open. */
function tlsOpen(port: number, version: tls.SecureVersion, tickets: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    let got = 0
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, minVersion: version, maxVersion: version })
    const timer = setTimeout(() => s.destroy(new Error(`${tickets} tickets did not come`)), 5_000)
    const check = (): void => {
      if (got < tickets || s.pending) return
      clearTimeout(timer)
      resolve(s)
    }
    s.on('session', () => {
      got++
      check()
    })
    s.once('secureConnect', check)
    s.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

function tlsAsk(s: tls.TLSSocket, request: string, until = 'END\r\n'): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    const onData = (d: Buffer): void => {
      out += d.toString('latin1')
      if (!out.endsWith(until)) return
      clearTimeout(timer)
      s.off('data', onData)
      resolve(out)
    }
    const timer = setTimeout(() => reject(new Error(`no ${until.trim()}: ${out}`)), 5_000)
    s.on('data', onData)
    s.write(request)
  })
}

test('-o ssl_session_cache: ssl_new_sessions before ssl_handshake_errors, counting new TLS sessions as memcached', async () => {
  certs = makeCertificates()
  chmodSync(certs.dir, 0o755) // memcached -u nobody reads the files after dropping root
  for (const f of ['server.pem', 'server.key']) chmodSync(certs.path(f), 0o644)
  const args = ['-Z', '-o', `ssl_chain_cert=${certs.path('server.pem')},ssl_key=${certs.path('server.key')},ssl_session_cache`]
  const [m, f] = await track([() => startMemcached(args), () => startFerrocached(args)])
  const exchange = async (port: number): Promise<[string, string]> => {
    // a TLS 1.2 handshake (a ticket) is no new session; `stats reset` zeroes the counts (the
    // start-up probe's plain connection counts as a failed handshake here, not in memcached)
    const s = await tlsOpen(port, 'TLSv1.2', 1)
    try {
      await tlsAsk(s, 'stats reset\r\n', 'RESET\r\n')
      // a TLS 1.3 handshake: two tickets, two new sessions
      ;(await tlsOpen(port, 'TLSv1.3', 2)).destroy()
      const stats = await tlsAsk(s, 'stats\r\n')
      const settings = await tlsAsk(s, 'stats settings\r\n')
      const lines = stats.split('\r\n').filter((l) => /^STAT (log_watchers|ssl_|time_since)/.test(l))
      return [lines.map((l) => l.replace(/(time_since_server_cert_refresh) \d+/, '$1')).join('\n'), /STAT ssl_session_cache \w+/.exec(settings)?.[0] ?? '']
    } finally {
      s.destroy()
    }
  }
  const theirs = await exchange(m!.port)
  const ours = await exchange(f!.port)
  assert.equal(ours, theirs)
  assert.equal(theirs, ['STAT log_watchers 0\nSTAT ssl_new_sessions 2\nSTAT ssl_handshake_errors 0\nSTAT time_since_server_cert_refresh', 'STAT ssl_session_cache yes'])
})

test('fetch timeout and signal: a loader that never settles no longer holds its callers', async () => {
  const cache = new Cache({ encoding: 'utf8' })
  try {
    let calls = 0
    let loaderSignal: AbortSignal | undefined
    const never = (_key: string, signal: AbortSignal): Promise<string> => {
      calls++
      loaderSignal = signal
      return new Promise(() => {})
    }
    const started = Date.now()
    const err = await cache.fetch('k', never, { timeout: 50 }).then(() => undefined, (e: unknown) => e)
    assert.instance(err, DOMException)
    assert.is((err as DOMException).name, 'TimeoutError')
    assert.match((err as DOMException).message, /"k" was not loaded within 50 ms/)
    assert.ok(Date.now() - started < 2_000)
    assert.ok(loaderSignal?.aborted, "the loader's signal aborts once nobody waits")
    // the dropped load is not joined: the loader is called again, and its value served
    assert.is(await cache.fetch('k', async () => 'v', { timeout: 1_000 }), 'v')
    assert.is(calls, 1)
    assert.is(await cache.get('k'), 'v')

    // a caller with a signal gives up alone: a caller without a bound still gets the value
    let release!: (v: string) => void
    const held = (): Promise<string> => new Promise((resolve) => (release = resolve))
    const controller = new AbortController()
    const bounded = cache.fetch('j', held, { signal: controller.signal })
    const patient = cache.fetch('j', held)
    await waitFor(() => release !== undefined, 1_000)
    controller.abort(new Error('gave up'))
    assert.is(await bounded.then(() => 'resolved', (e: Error) => e.message), 'gave up')
    release('w')
    assert.is(await patient, 'w')
    assert.is(await cache.get('j'), 'w')

    // an aborted signal rejects before any read; bad values are refused by name
    const aborted = AbortSignal.abort(new Error('already'))
    assert.is(await cache.fetch('x', never, { signal: aborted }).then(() => 'resolved', (e: Error) => e.message), 'already')
    for (const [bad, re] of [
      [{ timeout: -1 }, /options.timeout must be a number of milliseconds from 0 to 2147483647/],
      [{ timeout: Number.NaN }, /options.timeout/],
      [{ signal: {} }, /options.signal must be an AbortSignal/],
    ] as const) {
      const e = await cache.fetch('x', never, bad as never).then(() => undefined, (e: Error) => e)
      assert.match(String(e), re)
    }
    assert.is(calls, 1, 'no loader call for refused options')
  } finally {
    cache.close()
  }
})

test.run()
