// memcached 1.6.18's command line where ferrocached read it otherwise (the matrix of
// 2026-11-27: the same argument sets run through both, exit codes and `stats settings`
// compared): numbers read as memcached's atoi/atof/strtol read them (`-c 64k` is 64, `-a
// 7777x` octal 7777), every `-v` counted, `-I` with memcached's units, `-l notls:` without
// TLS and a bad `-l` port refused with exit 71, `-S`/`-Z`/`-Y` exit codes, `-c` past what
// the open-file limit takes; and the replica's flags without `--replica-of`. Runs dist/.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseCommandLine, UsageError } from '../src/cli/options'
import './helpers/guard'
import { RawConn } from './helpers/raw'
import { freePort, MEMCACHED, run, runCli, startAll, startFerrocached, startMemcached } from './helpers/servers'

// numbers that are not plain digits, each as memcached reads it
const ODD_NUMBERS = ['-c', '64k', '-t', '1x', '-R', '1.5', '-f', '1e1', '-n', '40x', '-b', '0', '-a', '7777x', '-I', '1.5m', '-vvvv']
async function settingsOf(port: number): Promise<Map<string, string>> {
  const c = await RawConn.open(port)
  try {
    c.send('stats settings\r\n')
    const reply = await c.until('END\r\n')
    return new Map(reply.split('\r\n').filter((l) => l.startsWith('STAT ')).map((l) => l.slice(5).split(' ', 2) as [string, string]))
  } finally {
    c.close()
  }
}

test('numbers that are not plain digits start both with the same settings, each logged', async () => {
  const servers = await startAll([() => startMemcached(ODD_NUMBERS), () => startFerrocached(ODD_NUMBERS)])
  try {
    const [m, f] = await Promise.all(servers.map((s) => settingsOf(s.port)))
    const names = ['maxconns', 'reqs_per_event', 'growth_factor', 'chunk_size', 'tcp_backlog', 'umask', 'item_size_max', 'verbosity']
    const pick = (s: Map<string, string>): (string | undefined)[] => names.map((n) => s.get(n))
    assert.equal(pick(m!), ['64', '1', '10.00', '40', '0', '7777', '1048576', '4'], 'memcached')
    assert.equal(pick(f!), pick(m!))
    const logged = servers[1]!.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg)
    for (const note of ['-c/--conn-limit "64k": read as 64', '-f/--factor "1e1": read as 10', '-I/--max-item-size "1.5m": read as 1048576 bytes', '-a/--unix-mask "7777x": read as 7777 (octal)']) {
      assert.ok(logged.some((m) => m.startsWith(note)), note)
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()))
  }
})

test('command lines memcached refuses exit with its codes', async () => {
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const cases: string[][] = [
    ['-I', '1g', '-m', '4096'], ['-I', '1mb'], ['-l', 'notls:127.0.0.1'], ['-l', '127.0.0.1:x'], ['-S'], ['-Z'], ['-Y', '/nonexistent'],
    // (-c: past any kernel's nr_open, so refused wherever the test runs)
    ['-p', '-5'], ['-c', '2147483647'],
  ]
  const results = await Promise.all(
    cases.map(async (argv) => {
      // memcached reads -l only with a TCP port
      const p = argv[0] === '-p' ? [] : ['-p', String(await freePort())]
      const l = argv[0] === '-l' ? [] : ['-l', '127.0.0.1']
      const [memcached, ours] = await Promise.all([
        run(MEMCACHED, [...root, '-U', '0', ...l, ...p, ...argv], { ms: 5_000 }),
        runCli([...l, ...p, ...argv]),
      ])
      return { argv: argv.join(' '), memcached: memcached.code, ours: ours.code, stderr: ours.stderr }
    }),
  )
  for (const r of results) {
    assert.ok(r.memcached !== null && r.memcached !== 0, `${r.argv}: memcached ${r.memcached}`)
    assert.is(r.ours, r.memcached, `${r.argv}: ${r.stderr}`)
  }
  const notls = results.find((r) => r.argv.startsWith('-l notls'))!
  assert.match(notls.stderr, /'notls' option is valid only when SSL is enabled/)
})

test('ports as memcached\'s atoi reads them: -U without a number is off; -p without one is refused (-p 0 picks a port here)', () => {
  const u = parseCommandLine(['-U', 'abc'])
  if (u.kind !== 'run') throw new Error(u.kind)
  assert.is(u.settings.udpPort, undefined)
  assert.ok(u.settings.notes?.some((n) => n.startsWith('-U/--udp-port "abc": read as 0')), String(u.settings.notes))
  const p = parseCommandLine(['-p', '11300x'])
  assert.is(p.kind === 'run' && p.settings.port, 11300)
  for (const text of ['0x2b', 'abc', '']) {
    try {
      parseCommandLine(['-p', text])
      assert.unreachable(`-p ${text} accepted`)
    } catch (err) {
      assert.instance(err, UsageError)
      assert.is((err as UsageError).exitCode, 2)
    }
  }
})

test('-h, -V and -i act where they stand, as memcached\'s getopt loop: a mistake after one is not read', () => {
  assert.is(parseCommandLine(['-h', '--bogus']).kind, 'help')
  assert.is(parseCommandLine(['-p', '1', '-V', '-c']).kind, 'version')
  assert.is(parseCommandLine(['--license', 'stray']).kind, 'license')
  for (const argv of [['--bogus', '-h'], ['-x', '-V']]) {
    assert.throws(() => parseCommandLine(argv), (err: unknown) => err instanceof UsageError && err.exitCode === 1, argv.join(' '))
  }
})

test('the first of -h, -V and -i wins, and the checks memcached makes on the flags before it come first, as beside memcached', async () => {
  const root = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const cases = [
    ['-V', '-h'], ['-i', '-h'], ['-h', '-V'], ['-vV'], ['-c', '0', '-V'], ['-t', '0', '-h'], ['--threads', '0', '--version'], ['-B', 'x', '-V'],
    ['-f', '1', '-i'], ['-o', 'hashpower=5', '-V'], ['-R', '-1', '-V'], ['-m', '0', '-V'], ['-I', '1', '-V'], ['-V', '-c', '0'],
  ]
  /** What memcached printed (its help and license begin with its version line too). */
  const shown = (code: number | null, stdout: string): string =>
    code !== 0 ? `exit ${code}` : stdout.includes('Copyright') ? 'license' : stdout.trim().split('\n').length > 1 ? 'help' : 'version'
  const memcached = await Promise.all(cases.map(async (argv) => {
    const r = await run(MEMCACHED, [...root, ...argv], { ms: 5_000 })
    return shown(r.code, r.stdout)
  }))
  const ours = cases.map((argv) => {
    try {
      return parseCommandLine(argv).kind
    } catch (err) {
      return err instanceof UsageError ? `exit ${err.exitCode}` : String(err)
    }
  })
  assert.equal(ours.map((o, i) => `${cases[i]!.join(' ')}: ${o}`), memcached.map((m, i) => `${cases[i]!.join(' ')}: ${m}`))
  // (memcached: the second and third print the license and the help)
  assert.equal(memcached.slice(0, 5), ['version', 'license', 'help', 'version', 'exit 1'])
})

test('inter is the -l text as memcached joins it: a trailing comma kept, with -s too (measured: STAT inter 127.0.0.1,)', () => {
  for (const argv of [['-l', '127.0.0.1,'], ['-s', '/tmp/x.sock', '-l', '127.0.0.1,'], ['-l', '127.0.0.1', '-l', '::1', '-l', '127.0.0.1']]) {
    const c = parseCommandLine(argv)
    if (c.kind !== 'run') throw new Error(c.kind)
    const inter = c.settings.settingsShown?.filter(([k]) => k === 'inter').map(([, v]) => v)
    assert.equal(inter, [argv.includes('::1') ? '127.0.0.1,::1' : '127.0.0.1,'], argv.join(' '))
  }
})

test('--verbose 2: refused as a stray word, saying that -vv is how to get more', () => {
  try {
    parseCommandLine(['--verbose', '2'])
    assert.unreachable('accepted')
  } catch (err) {
    assert.instance(err, UsageError)
    assert.is((err as UsageError).exitCode, 1)
    assert.match((err as Error).message, /Unexpected argument '2': --verbose takes no value .*-vv/)
  }
})

test('the replica\'s flags without --replica-of: noted, and refused with --no-replication-commands', () => {
  const c = parseCommandLine(['--replica-auth', 'u:p', '--replica-writable', '--repl-timeout', '5'])
  if (c.kind !== 'run') throw new Error(c.kind)
  assert.ok(c.settings.notes?.some((n) => n.startsWith('--replica-writable, --replica-auth without --replica-of: this server starts as a primary')), String(c.settings.notes))
  // a primary's own backlog and link timeout need no note
  const b = parseCommandLine(['--repl-backlog', '1m', '--repl-timeout', '5'])
  if (b.kind !== 'run') throw new Error(b.kind)
  assert.is(b.settings.notes, undefined)
  try {
    parseCommandLine(['--replica-auth', 'u:p', '--no-replication-commands'])
    assert.unreachable('accepted')
  } catch (err) {
    assert.instance(err, UsageError)
    assert.is((err as UsageError).exitCode, 2)
    assert.match((err as Error).message, /--replica-auth: .*no --replica-of, and --no-replication-commands turns replicaof off/)
  }
})

test.run()
