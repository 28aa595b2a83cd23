// memcached 1.6.18's command line, unchanged, starts ferrocached: Debian's flags (-u, -P,
// -t, -c), -d, -s/-a, -l lists, and the switches that change replies (-B, -C, -F, -X, -W,
// -R, -o LRU settings) compared with Debian's memcached. Runs dist/ (npm run build first).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import net from 'node:net'
import tls from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseCommandLine, UsageError } from '../src/cli/options'
import { setUp, tearDown } from './helpers/guard'
import { askAlike, RawConn } from './helpers/raw'
import { BIN, freePort, MEMCACHED, run, runCli, spawnOwned, startAll, startFerrocached, startMemcached, stopChild, waitFor, waitForPort, type Running } from './helpers/servers'
import { binaryRequest as binary } from './helpers/binary'

let dir = ''
setUp(test, () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-cli-memcached-'))
  // -u nobody writes the pid file here
  chmodSync(dir, 0o777)
})
tearDown(test, () => rmSync(dir, { recursive: true, force: true }))

const isRoot = process.getuid?.() === 0

/** Sends `request` and collects the reply until it ends with `end` (or the server goes quiet). */
async function exchange(port: number, request: string | Buffer, end?: string): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(request)
    return end === undefined ? (await c.settle(150, 3_000)).toString('latin1') : await c.until(end)
  } finally {
    c.close()
  }
}

/** `stats settings` as a map. */
async function settingsOf(port: number): Promise<Map<string, string>> {
  const reply = await exchange(port, 'stats settings\r\n', 'END\r\n')
  return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ', 2) as [string, string]))
}

const SET_EXTRAS = Buffer.alloc(8)

test('parsing: Debian\'s command line and memcached\'s other flags', () => {
  const c = parseCommandLine(['-m', '64', '-p', '11211', '-u', 'memcache', '-l', '127.0.0.1', '-P', '/run/memcached.pid', '-R', '20', '-t', '4', '-B', 'auto', '-b', '1024', '-C', '-L', '-k', '-r', '-F', '-X', '-W', '-D', '#', '-c', '1024', '-vv'])
  if (c.kind !== 'run') throw new Error(c.kind)
  const s = c.settings
  assert.equal([s.user, s.pidFile, s.backlog, s.prefixDelimiter, s.verbosity], ['memcache', '/run/memcached.pid', 1024, '#', 2])
  assert.equal(s.switches, { reqsPerEvent: 20, protocol: 'auto', cas: false, flush: false, dump: false, watch: false })
  // each accepted-and-ignored flag has its log line, saying what ferrocache does instead
  for (const flag of ['-t 4', '-k', '-r']) assert.ok(s.notes?.some((n) => n.startsWith(`${flag}:`)), flag)
  // -L is real: huge-page slab pairs (cacheOptions.largePages), no note
  assert.is(s.largePages, true)
  assert.not.ok(s.notes?.some((n) => n.startsWith('-L')), '-L note')
  // (notls: needs TLS, as in memcached)
  const l = parseCommandLine(['-l', '127.0.0.1:11300,[::1]:11301,::1,notls:10.0.0.1', '--tls-cert', 'c.pem', '--tls-key', 'k.pem'])
  if (l.kind !== 'run') throw new Error(l.kind)
  assert.equal(l.settings.listenAddresses, [{ host: '127.0.0.1', port: 11300 }, { host: '::1', port: 11301 }, { host: '::1' }, { host: '10.0.0.1', tls: false }])
  const o = parseCommandLine(['-o', 'hot_lru_pct=10,warm_lru_pct=30,temporary_ttl=30,slab_automove=2,no_lru_crawler,hashpower=20,ext_path=/x:1G'])
  if (o.kind !== 'run') throw new Error(o.kind)
  assert.equal(o.settings.tuning, { hotLruPct: 10, warmLruPct: 30, temporaryTtl: 30, slabAutomove: 2, lruCrawler: false })
  assert.is(o.settings.hashPower, 20)
  assert.ok(o.settings.notes?.some((n) => n.startsWith('-o ext_path: accepted and ignored')))
  assert.is(parseCommandLine(['-i']).kind, 'license')
  const refused: [string[], RegExp, number][] = [
    [['-e', '/dev/shm/memory_file'], /--data-dir/, 1],
    [['-B', 'udp'], /binding protocol/, 64],
    [['-o', 'hot_lru_pct=50,warm_lru_pct=40'], /more than 80%/, 64],
    [['-o', 'temp_lru'], /unknown -o option "temp_lru"/, 1],
    [['-R', '0'], /requests per event/, 1],
    [['-o', 'hashpower=11'], /Initial hashtable multiplier of 11 is too low/, 1],
    [['-o', 'hashpower=abc'], /Initial hashtable multiplier of 0 is too low/, 1],
    [['-o', 'hashpower=33'], /Initial hashtable multiplier of 33 is too high/, 1],
  ]
  for (const [argv, message, code] of refused) {
    try {
      parseCommandLine(argv)
      assert.unreachable(`${argv.join(' ')} was accepted`)
    } catch (err) {
      assert.instance(err, UsageError, argv.join(' '))
      assert.match((err as Error).message, message)
      assert.is((err as UsageError).exitCode, code, argv.join(' '))
    }
  }
})

test('exit codes of bad command lines are memcached\'s', async () => {
  const cases = [
    ['-j'], ['--bogus'], ['-P'], ['-o', 'bogus'], ['-B', 'foo'], ['-o', 'hot_lru_pct=50,warm_lru_pct=40'], ['-t', '0'], ['-R', '0'],
    ['-o', 'hashpower=11'], ['-o', 'hashpower=33'],
    ['-u', 'no-such-user-here'], ['-d', '-u', 'no-such-user-here'], ['-m', 'abc'], ['-I', '512'], ['-n', '0'], ['-c', '0'], ['-f', '1'],
  ]
  const root = isRoot ? ['-u', 'root'] : []
  const results = await Promise.all(
    cases.map(async (argv) => {
      const memcached = await run(MEMCACHED, [...(argv.includes('-u') ? [] : root), '-p', '0', '-U', '0', ...argv], { ms: 10_000 })
      const ours = await runCli(['-p', '0', ...argv])
      return { argv: argv.join(' '), memcached: memcached.code, ours: ours.code, stderr: ours.stderr }
    }),
  )
  for (const r of results) {
    assert.is(r.ours, r.memcached, `${r.argv}: ${r.stderr}`)
    assert.match(r.stderr, /^ferrocached: /, `${r.argv}: ${JSON.stringify(r.stderr.slice(0, 400))}`)
  }
})

test('Debian\'s command line (-m -p -u -l -P -c -t) and -L: starts and serves; pid file; user switched; pid file removed at stop', async () => {
  const pidFile = join(dir, 'memcached.pid')
  const f = await startFerrocached(['-m', '64', '-u', 'nobody', '-l', '127.0.0.1', '-P', pidFile, '-c', '1024', '-t', '4', '-L'])
  try {
    assert.is(await exchange(f.port, 'set k 0 0 2\r\nhi\r\nget k\r\n', 'END\r\n'), 'STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n')
    // written once the server listens, by open then write: wait for the whole line
    assert.ok(await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'), 10_000), 'pid file written')
    assert.is(readFileSync(pidFile, 'utf8'), `${f.child.pid}\n`)
    const uid = /^Uid:\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${f.child.pid}/status`, 'utf8'))
    // as root, -u nobody switches to nobody (65534); otherwise the user stays
    assert.equal([uid?.[1], uid?.[2]], isRoot ? ['65534', '65534'] : [String(process.getuid?.()), String(process.getuid?.())])
    const s = await settingsOf(f.port)
    // -t is accepted, but ferrocache serves on one event loop: num_threads stays truthful
    assert.equal([s.get('num_threads'), s.get('maxconns'), s.get('maxbytes')], ['1', '1024', String(64 << 20)])
    assert.match(f.stderr(), /-t 4: accepted and ignored; ferrocache serves every connection on one event loop/)
    // -L turns huge-page slab pairs on: no longer an ignored flag
    assert.not.match(f.stderr(), /-L: accepted and ignored/)
  } finally {
    await f.stop()
  }
  assert.is(f.child.exitCode, 0)
  assert.not.ok(existsSync(pidFile), 'pid file removed at stop')
})

test('-l with a comma-separated list and host:port forms: one listener each; inter and tcpport as memcached', async () => {
  const [a, b, p] = [await freePort(), await freePort(), await freePort()]
  const listen = `127.0.0.1:${a},127.0.0.1:${b}`
  const child = spawnOwned(process.execPath, [BIN, '-p', String(p), '-l', listen], { stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    await waitForPort(a, 15_000, child)
    await waitForPort(b, 15_000, child)
    for (const port of [a, b]) assert.is(await exchange(port, 'version\r\n', '\r\n'), 'VERSION 1.6.18\r\n')
    const s = await settingsOf(a)
    // as memcached's: tcpport is -p, inter the -l text
    assert.equal([s.get('tcpport'), s.get('inter')], [String(p), listen])
  } finally {
    await stopChild(child)
  }
})

test('-Z with -o ssl_chain_cert=,ssl_key= and -l a,notls:b: TLS on a, plain text on b', async () => {
  const made = await run('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.pem'), '-days', '2', '-subj', '/CN=localhost'], { ms: 20_000 })
  assert.is(made.code, 0, made.stderr)
  const [a, b] = [await freePort(), await freePort()]
  const child = spawnOwned(process.execPath, [BIN, '-Z', '-o', `ssl_chain_cert=${join(dir, 'tls.pem')},ssl_key=${join(dir, 'tls.key')}`, '-l', `127.0.0.1:${a},notls:127.0.0.1:${b}`], { stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    await waitForPort(a, 15_000, child)
    await waitForPort(b, 15_000, child)
    assert.is(await exchange(b, 'version\r\n', '\r\n'), 'VERSION 1.6.18\r\n')
    const overTls = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port: a, rejectUnauthorized: false }, () => socket.write('version\r\n'))
      let got = ''
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`no TLS reply: ${JSON.stringify(got)}`))
      }, 5_000)
      socket.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.on('data', (d: Buffer) => {
        got += d.toString()
        if (!got.endsWith('\r\n')) return
        clearTimeout(timer)
        socket.end()
        resolve(got)
      })
    })
    assert.is(overTls, 'VERSION 1.6.18\r\n')
    // plain text on the TLS listener gets no memcached reply
    assert.not.match(await exchange(a, 'version\r\n'), /VERSION/)
  } finally {
    await stopChild(child)
  }
})

/** Whether a connection to the Unix socket at `path` is accepted within `ms` (tried every 20 ms). */
async function unixListening(path: string, ms: number): Promise<boolean> {
  const connects = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = net.connect({ path })
      socket.once('connect', () => (socket.destroy(), resolve(true)))
      socket.once('error', () => resolve(false))
    })
  for (const deadline = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 20))) {
    if (await connects()) return true
    if (Date.now() > deadline) return false
  }
}

/** Talks to a Unix socket: sends `request`, reads until the reply ends with `end`. */
function unixExchange(path: string, request: string, end: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path })
    let got = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no "${JSON.stringify(end)}" from ${path}: ${JSON.stringify(got)}`))
    }, 5_000)
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (!got.endsWith(end)) return
      clearTimeout(timer)
      socket.end()
      resolve(got)
    })
    socket.write(request)
  })
}

test('-s <path> -a 666: a Unix socket with those permissions, no TCP port; stats settings as memcached', async () => {
  const ours = join(dir, 'ferrocached.sock')
  const theirs = join(dir, 'memcached.sock')
  const child = spawnOwned(process.execPath, [BIN, '-s', ours, '-a', '666'], { stdio: ['ignore', 'ignore', 'pipe'] })
  const memcached = spawnOwned(MEMCACHED, [...(isRoot ? ['-u', 'root'] : []), '-s', theirs, '-a', '666'], { stdio: ['ignore', 'ignore', 'ignore'] })
  try {
    // The file exists from the bind on, a moment before the listen: connect to know.
    assert.ok(await unixListening(ours, 15_000), 'ferrocached listens on its socket')
    assert.ok(await unixListening(theirs, 15_000), 'memcached listens on its socket')
    assert.is(statSync(ours).mode & 0o777, 0o666)
    assert.is(statSync(ours).mode & 0o777, statSync(theirs).mode & 0o777)
    assert.is(await unixExchange(ours, 'set u 0 0 3\r\nabc\r\nget u\r\n', 'END\r\n'), 'STORED\r\nVALUE u 0 3\r\nabc\r\nEND\r\n')
    const pick = (reply: string): string[] => reply.split('\r\n').filter((l) => /^STAT (inter|domain_socket|umask) /.test(l.replace(theirs, ours)))
    const [a, b] = await Promise.all([unixExchange(ours, 'stats settings\r\n', 'END\r\n'), unixExchange(theirs, 'stats settings\r\n', 'END\r\n')])
    assert.equal(pick(a), pick(b.replaceAll(theirs, ours)))
    assert.equal(pick(a), ['STAT inter NULL', `STAT domain_socket ${ours}`, 'STAT umask 666'])
  } finally {
    await Promise.all([stopChild(child), stopChild(memcached)])
  }
})

test('-d returns once the daemon listens; it serves, and stops by the pid file\'s PID', async () => {
  const port = await freePort()
  const pidFile = join(dir, 'daemon.pid')
  const r = await runCli(['-d', '-p', String(port), '-P', pidFile], {}, 15_000)
  assert.is(r.code, 0, r.stderr)
  // the command returned: the port already listens and the pid file is there
  const pid = Number(readFileSync(pidFile, 'utf8').trim())
  try {
    assert.ok(pid > 0 && pid !== process.pid)
    assert.is(await exchange(port, 'version\r\n', '\r\n'), 'VERSION 1.6.18\r\n')
    // detached: its own session, not a child of the command that started it
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    assert.is(Number(stat[3]), pid, 'session leader')
    process.kill(pid, 'SIGTERM')
    assert.ok(await waitFor(() => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), 10_000), 'daemon stopped')
    assert.not.ok(existsSync(pidFile), 'pid file removed')
  } finally {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

/** A server of each kind with the same flags. */
async function pair(flags: string[]): Promise<[Running, Running]> {
  return (await startAll([() => startMemcached(flags), () => startFerrocached(flags)])) as [Running, Running]
}

test('-C -F -X -W -R -o: replies and stats settings as memcached\'s', async () => {
  const flags = ['-C', '-F', '-X', '-W', '-R', '5', '-b', '64', '-D', '#', '-o', 'hot_lru_pct=10,warm_lru_pct=30,hot_max_factor=0.3,warm_max_factor=1.5,temporary_ttl=30,slab_automove=2,slab_automove_ratio=0.5,lru_crawler_sleep=50,lru_crawler_tocrawl=7']
  const [m, f] = await pair(flags)
  try {
    const requests: Array<string | Buffer> = [
      // -C: CAS values read 0; cas finds no match
      'set a 0 0 1\r\nx\r\ngets a\r\ngats 0 a\r\ncas a 0 0 1 0\r\ny\r\ncas nokey 0 0 1 5\r\nz\r\n',
      'mg a c v\r\nms b 1 c\r\nz\r\nms a 1 C0\r\ny\r\nma n N0 J0 c\r\n',
      binary(0x00, 'a'),
      binary(0x01, 'bk', SET_EXTRAS, 'v', { cas: 5n }),
      // -F, -X, -W
      'flush_all\r\nflush_all noreply\r\nflush_all 10\r\nget a\r\n',
      binary(0x08),
      'stats cachedump 1 0\r\n',
      'lru_crawler metadump all\r\n',
      'watch\r\n',
      'watch fetchers\r\n',
      // -D #: per-prefix stats from the start (text and binary; meta, touch, incr not counted)
      'set user#1 0 0 1\r\nx\r\nget user#1 user#2 sess#1 nopfx\r\ndelete sess#9\r\nmg user#1 v\r\nappend user#1 0 0 1\r\ny\r\n',
      binary(0x00, 'bin#1'),
      binary(0x04, 'bin#2'),
      'stats detail dump\r\n',
      'stats detail off\r\nget user#1\r\nstats detail dump\r\n',
    ]
    for (const request of requests) {
      const [theirs, ours] = await askAlike(m.port, f.port, request)
      assert.is(ours.reply, theirs.reply, JSON.stringify(request.toString('latin1')))
    }
    const [sm, sf] = await Promise.all([settingsOf(m.port), settingsOf(f.port)])
    const keys = ['cas_enabled', 'flush_enabled', 'dump_enabled', 'reqs_per_event', 'tcp_backlog', 'stat_key_prefix', 'detail_enabled', 'hot_lru_pct', 'warm_lru_pct', 'hot_max_factor', 'warm_max_factor', 'temp_lru', 'temporary_ttl', 'slab_automove', 'slab_automove_ratio', 'lru_crawler_sleep', 'lru_crawler_tocrawl']
    assert.equal(keys.map((k) => `${k} ${sf.get(k)}`), keys.map((k) => `${k} ${sm.get(k)}`))
    assert.is(sf.get('hot_lru_pct'), '10') // not the default
  } finally {
    await Promise.all([m.stop(), f.stop()])
  }
})

test('-B ascii -L / -B binary, -R 3 and -o no_lru_crawler, no_lru_maintainer: as memcached', async () => {
  const [[ma, fa], [mb, fb]] = await Promise.all([pair(['-B', 'ascii', '-L', '-R', '3', '-o', 'no_lru_crawler,no_lru_maintainer']), pair(['-B', 'binary'])])
  try {
    const cases: Array<[Running, Running, string | Buffer]> = [
      [ma, fa, 'set a 0 0 1\r\nx\r\nget a\r\n'],
      // binary bytes on a text-only server: one text line that never ends
      [ma, fa, binary(0x01, 'bk', SET_EXTRAS, 'v')],
      [ma, fa, 'lru_crawler crawl all\r\n'],
      [mb, fb, binary(0x01, 'bk', SET_EXTRAS, 'v')],
      [mb, fb, binary(0x00, 'bk')],
      // text on a binary-only server: a bad 24-byte header hangs up, a shorter one waits
      [mb, fb, 'flush_all noreply\r\nget a\r\n'],
      [mb, fb, 'version\r\n'],
      // no -D: `stats detail on` counts by the ':' prefix; the dump is in memcached's order
      [ma, fa, 'stats detail on\r\nset p:1 0 0 1\r\n1\r\ngat 0 p:1\r\ngets p:2 q:1 r:1 s:1 t:1 u:1\r\ncas p:1 0 0 1 99\r\nx\r\nstats detail dump\r\n'],
    ]
    for (const [m, f, request] of cases) {
      const [theirs, ours] = await askAlike(m.port, f.port, request, 200)
      const what = `${m === ma ? '-B ascii' : '-B binary'}: ${JSON.stringify(request.toString('latin1'))}`
      assert.is(ours.reply, theirs.reply, what)
      assert.is(ours.closed, theirs.closed, `${what}: closed`)
    }
    // -R 3: replies are written out after the 4th request of a read, then every 3rd; a
    // `watch` right after such a point is accepted, elsewhere it counts as pipelined
    for (let n = 0; n <= 8; n++) {
      const [theirs, ours] = await askAlike(ma.port, fa.port, `${'mg miss q\r\n'.repeat(n)}watch\r\n`)
      assert.is(ours.reply.slice(0, 2), theirs.reply.slice(0, 2), `-R 3: watch after ${n} requests`)
    }
    const [sm, sf] = await Promise.all([settingsOf(ma.port), settingsOf(fa.port)])
    for (const k of ['binding_protocol', 'lru_crawler', 'lru_segmented', 'reqs_per_event']) assert.is(`${k} ${sf.get(k)}`, `${k} ${sm.get(k)}`)
    // -L has no stats settings line in memcached 1.6.18: the same names, in its order
    assert.ok(sm.size > 50, `${sm.size} settings`)
    assert.equal([...sf.keys()], [...sm.keys()])
  } finally {
    await Promise.all([ma.stop(), fa.stop(), mb.stop(), fb.stop()])
  }
})

test.run()
