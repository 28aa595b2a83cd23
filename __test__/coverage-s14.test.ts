// Gaps found by comparing ferrocached with memcached 1.6.18's own documentation (doc/protocol.txt,
// `memcached -h`, its long options, its scripts), each checked beside Debian's memcached: `-o`
// names it takes that ferrocached refused, how its getopt reads long options and repeated
// `-l`, `-N`, `-p -1` with its port file, SIGHUP, protocol.txt lines no other test sends, and
// memcached-tool.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { normalizeArgv, parseCommandLine } from '../src/cli/options'
import './helpers/guard'
import { askAlike, connectUnix, RawConn } from './helpers/raw'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, MEMCACHED, run, sleep, spawnOwned, startAll, startFerrocached, startMemcached, stopChild, waitFor } from './helpers/servers'
import { ferrocachedVerdict, memcachedVerdict } from './helpers/verdicts'

const root = process.getuid?.() === 0 ? ['-u', 'nobody'] : []

const ours = ferrocachedVerdict
const theirs = memcachedVerdict

test('-o slab_sizes, no_chunked_items, no_slab_automove, resp_obj_mem_limit: taken or refused as memcached', async () => {
  const many = (n: number): string => Array.from({ length: n }, (_, i) => 100 + 16 * i).join('-')
  const cases: string[][] = [
    ['-o', 'slab_sizes=64-128-256'],
    ['-o', 'slab_sizes=48'],
    ['-o', 'slab_sizes=524288'],
    ['-o', 'slab_sizes=64-73'],
    ['-o', 'slab_sizes=64--128-'],
    ['-o', 'slab_sizes=-'],
    ['-o', `slab_sizes=${many(62)}`],
    ['-n', '20', '-o', 'slab_sizes=20'],
    ['-o', 'no_chunked_items,slab_sizes=1048576'],
    ['-o', 'no_slab_automove'],
    ['-o', 'resp_obj_mem_limit=abc'],
    ['-o', 'worker_logbuf_size=64'],
    // refused, with memcached's words
    ['-o', 'slab_sizes='],
    ['-o', 'slab_sizes=47'],
    ['-o', 'slab_sizes=524289'],
    ['-o', 'slab_sizes=64-64'],
    ['-o', 'slab_sizes=64-72'],
    ['-o', 'slab_sizes=100-50'],
    ['-o', 'slab_sizes=64-abc'],
    ['-o', 'slab_sizes=64-4294967360'],
    ['-o', `slab_sizes=${many(63)}`],
    ['-n', '100', '-o', 'slab_sizes=64'],
    ['-o', 'slab_sizes=64', '-n', '100'],
    ['-I', '2m', '-o', 'no_chunked_items,slab_sizes=1048576'],
    ['-I', '768k', '-o', 'no_chunked_items'],
    ['-o', 'worker_logbuf_size=10'],
  ]
  const results = await Promise.all(cases.map(async (argv) => ({ argv: argv.join(' '), ours: ours(argv), theirs: await theirs(argv) })))
  for (const r of results) {
    assert.is(r.ours.code, r.theirs.code, `${r.argv}: ${r.ours.message} / memcached: ${r.theirs.message}`)
    // memcached's message, where it prints one, is in ours
    if (r.theirs.code !== null && r.theirs.message !== '') assert.ok(r.ours.message.includes(r.theirs.message.split('\n')[0]!), `${r.argv}: "${r.ours.message}" lacks "${r.theirs.message}"`)
  }
  // each accepted name ferrocached does not apply says so
  const c = parseCommandLine(['-o', 'slab_sizes=64-128,no_chunked_items,resp_obj_mem_limit=5,no_slab_automove'])
  if (c.kind !== 'run') throw new Error(c.kind)
  assert.ok(c.settings.notes?.some((n) => n.startsWith('-o resp_obj_mem_limit:')))
  // slab_sizes and no_chunked_items are applied (slab-sizes, slab-chunk-max tests), not noted
  assert.ok(!c.settings.notes?.some((n) => n.startsWith('-o no_chunked_items:')))
  assert.equal(c.settings.slabSizes, [64, 128])
  assert.is(c.settings.slabChunkMax, 1048576)
  assert.is(c.settings.tuning?.slabAutomove, 0)
})

test('-o no_slab_automove,no_chunked_items,slab_sizes: stats settings as memcached', async () => {
  const flags = ['-o', 'no_slab_automove,no_chunked_items,slab_sizes=64-128-256,resp_obj_mem_limit=5']
  const servers = await startAll([() => startMemcached(flags), () => startFerrocached(flags)])
  try {
    const settings = await Promise.all(
      servers.map(async (s) => {
        const c = await RawConn.open(s.port)
        try {
          c.send('stats settings\r\n')
          const text = await c.until('END\r\n')
          return ['slab_automove', 'slab_chunk_max', 'chunk_size'].map((n) => new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(text)?.[1])
        } finally {
          c.close()
        }
      }),
    )
    assert.equal(settings[1], settings[0])
    assert.equal(settings[0], ['0', '1048576', '48'])
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('long options read as memcached\'s getopt_long: unique prefixes, --verbose=N, --napi-ids, values starting with -', async () => {
  const cases: string[][] = [
    ['--enable-shut'],
    ['--memory-l=64'],
    ['--max-reqs', '5'],
    ['--verbose=2'],
    ['--napi-ids=1'],
    ['-D', '-'],
    // unique among memcached's names, though ferrocached's own share them (--tls-*,
    // --prefix-delimiter, --load-async, --no-replication-commands)
    ['--t=2'],
    ['--pr=binary'],
    ['--lo'],
    ['--n=1'],
    // refused: ambiguous prefixes, memcached -h's spelling its getopt does not know
    ['--mem=64'],
    ['--dis'],
  ]
  const results = await Promise.all(cases.map(async (argv) => ({ argv: argv.join(' '), ours: ours(argv), theirs: await theirs(argv) })))
  for (const r of results) assert.is(r.ours.code, r.theirs.code, `${r.argv}: ${r.ours.message} / memcached: ${r.theirs.message}`)
  const read = (argv: string[]): Record<string, unknown> => {
    const c = parseCommandLine(argv)
    if (c.kind !== 'run') throw new Error(c.kind)
    const s = c.settings
    return { shutdown: s.enableShutdown, memory: s.memoryLimit, verbosity: s.verbosity, delimiter: s.prefixDelimiter, reqs: s.switches?.reqsPerEvent }
  }
  assert.equal(read(['--enable-shut', '--memory-l=32', '--verbose=3', '-D', '-', '--max-r', '5']), { shutdown: true, memory: 32 * 2 ** 20, verbosity: 1, delimiter: '-', reqs: 5 })
  assert.match(ours(['--mem=64']).message, /'--mem' is ambiguous; possibilities: '--memory-limit' '--memory-file'/)
  assert.equal(normalizeArgv(['--t=2', '--pr', 'binary', '--da', '--tls-ce=x', '--lo']), ['--threads=2', '--protocol', 'binary', '--daemon', '--tls-cert=x', '--lock-memory'])
})

test('lines of memcached 1.6.18\'s protocol.txt no other test sends: the same bytes', async () => {
  const servers = await startAll([() => startMemcached(), () => startFerrocached()])
  try {
    const lines = [
      // debug-build and later commands: ERROR in 1.6.18 (mgdump came in 1.6.19)
      'debugtime 5', 'lru_crawler mgdump hash', 'misbehave',
      // stats arguments with words after them, unknown ones, case
      'stats extstore', 'stats items x', 'stats slabs x', 'stats proxy', 'stats detail on x',
      'stats detail dump x', 'stats cachedump 1 0 x', 'STATS', 'Get a',
      // extra tokens where memcached reads none, or reads them its own way
      'touch a 0 noreply x', 'delete a 0 0', 'me a b c', 'incr a 1 noreply x',
    ]
    const answers = await Promise.all(lines.map((l) => askAlike(servers[0]!.port, servers[1]!.port, `${l}\r\nmn\r\n`)))
    answers.forEach(([mc, fc], i) => assert.equal(fc, mc, lines[i]))
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('-N (NAPI ids): checked as memcached checks it, against -t (default 4)', async () => {
  const cases = [['-N', '4'], ['-t', '1', '-N', '1'], ['-N', '5'], ['-t', '1', '-N', '2'], ['--napi-ids=3', '-t', '2'], ['-N', '0'], ['-N', 'abc'], ['-N', '-1']]
  const results = await Promise.all(cases.map(async (argv) => ({ argv: argv.join(' '), ours: ours(argv), theirs: await theirs(argv) })))
  for (const r of results) {
    assert.is(r.ours.code, r.theirs.code, `${r.argv}: ${r.ours.message} / memcached: ${r.theirs.message}`)
    if (r.theirs.code !== null) assert.ok(r.ours.message.includes(r.theirs.message.split('\n')[0]!), `${r.argv}: "${r.ours.message}" lacks "${r.theirs.message}"`)
  }
})

test('repeated -l: every address listens, as memcached joins them (inter a,b)', async () => {
  const servers = await startAll([() => startMemcached(['-l', '127.0.0.2']), () => startFerrocached(['-l', '127.0.0.1', '-l', '127.0.0.2', '-l', '127.0.0.1'])])
  try {
    const ask = (host: string, port: number, request: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const c = net.connect(port, host)
        let got = ''
        const timer = setTimeout(() => c.destroy(new Error(`no reply from ${host}:${port}`)), 5_000)
        c.on('data', (d: Buffer) => {
          got += d.toString('latin1')
          if (/(?:END|VERSION .*)\r\n$/.test(got)) {
            clearTimeout(timer)
            c.end()
            resolve(got)
          }
        })
        c.on('error', (err) => {
          clearTimeout(timer)
          reject(err)
        })
        c.write(request)
      })
    const seen = await Promise.all(
      servers.map(async (s) => [
        /^STAT inter (.*)\r$/m.exec(await ask('127.0.0.1', s.port, 'stats settings\r\n'))?.[1],
        await ask('127.0.0.2', s.port, 'version\r\n'),
      ]),
    )
    assert.equal(seen[1], seen[0])
    assert.equal(seen[0], ['127.0.0.1,127.0.0.2', 'VERSION 1.6.18\r\n'])
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('-p -1 -U -1 and MEMCACHED_PORT_FILENAME (memcached\'s test suite): ports picked by the system, written to the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-coverage-'))
  chmodSync(dir, 0o777) // memcached writes it as -u nobody
  const args = ['-p', '-1', '-U', '-1', '-l', '127.0.0.1']
  const children = [
    spawnOwned(MEMCACHED, [...root, ...args], { stdio: 'ignore', env: { ...process.env, MEMCACHED_PORT_FILENAME: join(dir, 'mc') } }),
    spawnOwned(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, MEMCACHED_PORT_FILENAME: join(dir, 'fc') } }),
  ]
  try {
    const files = [join(dir, 'mc'), join(dir, 'fc')]
    assert.ok(await waitFor(() => files.every((f) => existsSync(f)), 10_000), 'both wrote the port file')
    const texts = files.map((f) => readFileSync(f, 'latin1'))
    assert.equal(texts.map((t) => t.replace(/\d+/g, 'N')), ['TCP INET: N\nUDP INET: N\n', 'TCP INET: N\nUDP INET: N\n'])
    const settings = await Promise.all(
      texts.map(async (t) => {
        const c = await RawConn.open(Number(/^TCP INET: (\d+)$/m.exec(t)![1]))
        try {
          c.send('stats settings\r\n')
          const reply = await c.until('END\r\n')
          return ['tcpport', 'udpport'].map((n) => new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(reply)?.[1])
        } finally {
          c.close()
        }
      }),
    )
    assert.equal(settings, [['-1', '-1'], ['-1', '-1']])
  } finally {
    await Promise.all(children.map((c) => stopChild(c)))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('-s with -U: stats settings shows -U\'s port (and as tcpport without -p), as memcached, though neither is served', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-coverage-'))
  chmodSync(dir, 0o777) // memcached makes its socket as -u nobody
  // (no port is bound: -s turns TCP and UDP off in both)
  const lines = ['-U 45000', '-p 45001 -U 45002', '-U -1']
  const children: ReturnType<typeof spawnOwned>[] = []
  try {
    const ask = async (path: string): Promise<(string | undefined)[]> => {
      const c = await connectUnix(path)
      c.on('error', () => undefined)
      let reply = ''
      c.on('data', (d: Buffer) => (reply += d.toString('latin1')))
      c.write('stats settings\r\n')
      await waitFor(() => reply.endsWith('END\r\n'))
      c.destroy()
      return ['tcpport', 'udpport'].map((n) => new RegExp(`^STAT ${n} (.*)\r$`, 'm').exec(reply)?.[1])
    }
    const results = await Promise.all(
      lines.map(async (line, i) => {
        const args = line.split(' ')
        const mc = join(dir, `mc${i}`)
        const fc = join(dir, `fc${i}`)
        children.push(spawnOwned(MEMCACHED, [...root, '-s', mc, ...args], { stdio: 'ignore' }))
        children.push(spawnOwned(process.execPath, [BIN, '-s', fc, ...args], { stdio: 'ignore' }))
        return { line, memcached: await ask(mc), ferrocached: await ask(fc) }
      }),
    )
    for (const r of results) assert.equal(r.ferrocached, r.memcached, r.line)
  } finally {
    await Promise.all(children.map((c) => stopChild(c)))
    rmSync(dir, { recursive: true, force: true })
  }
})

test('memcached-tool (memcached\'s own admin script): each mode gives what it gives against memcached', async () => {
  const tool = '/usr/share/memcached/scripts/memcached-tool'
  if (!existsSync(tool)) throw new Error(`${tool} is missing: it comes with Debian's memcached package`)
  const servers = await startAll([() => startMemcached(), () => startFerrocached()])
  try {
    const fill = Array.from({ length: 5 }, (_, i) => `set key${i} ${i} 0 ${10 * i + 1}\r\n${'v'.repeat(10 * i + 1)}\r\n`).join('') + 'set b%C3 0 0 2\r\nhi\r\n'
    for (const s of servers) {
      const c = await RawConn.open(s.port)
      c.send(`${fill}mn\r\n`)
      await c.until('MN\r\n')
      c.close()
    }
    const runTool = (port: number, mode: string[]): Promise<{ code: number | null; stdout: string }> => run('/usr/bin/perl', [tool, `127.0.0.1:${port}`, ...mode], { ms: 10_000 })
    // the names each mode prints (values are each engine's own: item sizes, timings)
    const shape = (mode: string, out: string): string[] => {
      const all = out.split('\n').filter((l) => l !== '')
      // keys and dump print no heading (their "Dumping memcache keys" goes to stderr)
      if (mode === 'keys') return all.map((l) => l.replace(/ exp=.*/, '')).sort()
      if (mode === 'dump') return all.sort()
      const lines = all.slice(1)
      if (mode === 'stats' || mode === 'settings') return lines.map((l) => l.trim().split(/\s+/)[0]!)
      return lines.map((l) => l.replace(/\d+/g, 'N').replace(/\s+/g, ' ').replace(/(?:yes|no)/, 'B')).slice(0, 1)
    }
    for (const mode of [['display'], ['stats'], ['settings'], ['sizes'], ['keys'], ['dump'], ['dump', '100']]) {
      const [mc, fc] = await Promise.all(servers.map((s) => runTool(s.port, mode)))
      assert.equal([fc!.code, mc!.code], [0, 0], mode.join(' '))
      assert.equal(shape(mode[0]!, fc!.stdout), shape(mode[0]!, mc!.stdout), mode.join(' '))
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('SIGHUP (a closed terminal, a reload) leaves the server running, as memcached', async () => {
  const servers = await startAll([() => startMemcached(), () => startFerrocached()])
  try {
    for (const s of servers) s.child.kill('SIGHUP')
    await sleep(300)
    const [mc, fc] = await askAlike(servers[0]!.port, servers[1]!.port, 'version\r\n')
    assert.equal([mc.reply, fc.reply], ['VERSION 1.6.18\r\n', 'VERSION 1.6.18\r\n'])
    assert.equal(servers.map((s) => s.child.exitCode ?? s.child.signalCode), [null, null])
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test.run()
