// Logins compared byte for byte with memcached 1.6.18: the sessions in
// __test__/fixtures/auth/ are replayed against memcached and ferrocached, both requiring
// logins. text-*: memcached -Y <file> vs ferrocached -Y <file>. binary-*: memcached -S
// (Cyrus SASL, its sasldb made with saslpasswd2 from sasl2-bin) vs ferrocached -Y
// <file>, which speaks SASL PLAIN from the same user file.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseSession } from './helpers/corpus'
import { generate } from './helpers/diffgen'
import { runBoth, type Pair } from './helpers/diffrun'
import { replayPair } from './helpers/replay'
import { setUp, tearDown } from './helpers/guard'
import { run, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const DIR = join(__dirname, 'fixtures', 'auth')
const files = readdirSync(DIR).filter((f) => f.endsWith('.session')).sort()
const SASLPASSWD = '/usr/sbin/saslpasswd2'
const USERS = { alice: 'secret', bob: 'pw2' }

let tmp: string
let memcachedText: Running
let memcachedSasl: Running
let ferrocached: Running

setUp(test, async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ferrocache-auth-'))
  const userFile = join(tmp, 'users')
  writeFileSync(userFile, Object.entries(USERS).map(([u, p]) => `${u}:${p}\n`).join(''))
  if (!existsSync(SASLPASSWD)) throw new Error(`${SASLPASSWD} is missing: CI installs sasl2-bin in .ci/run`)
  // memcached -S reads SASL_CONF_PATH/memcached.conf: PLAIN only, users from a sasldb.
  const sasldb = join(tmp, 'sasldb2')
  for (const [user, pass] of Object.entries(USERS)) {
    execFileSync(SASLPASSWD, ['-p', '-a', 'memcached', '-c', '-f', sasldb, user], { input: `${pass}\n` })
  }
  writeFileSync(join(tmp, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${sasldb}\n`)
  process.env.SASL_CONF_PATH = tmp // inherited by the memcached started next
  try {
    ;[memcachedText, memcachedSasl, ferrocached] = (await startAll([
      () => startMemcached(['-Y', userFile]),
      () => startMemcached(['-S']),
      () => startFerrocached(['-Y', userFile]),
    ])) as [Running, Running, Running]
  } finally {
    delete process.env.SASL_CONF_PATH
  }
})

tearDown(test, async () => {
  await Promise.all([memcachedText?.stop(), memcachedSasl?.stop(), ferrocached?.stop()])
  if (tmp) rmSync(tmp, { recursive: true, force: true })
})

test('the auth corpus has text and binary sessions', () => {
  assert.ok(files.filter((f) => f.startsWith('text-')).length >= 3)
  assert.ok(files.filter((f) => f.startsWith('binary-')).length >= 3)
})

for (const file of files) {
  test(`same replies as memcached with logins: ${file}`, async () => {
    const steps = parseSession(readFileSync(join(DIR, file), 'utf8'))
    const reference = file.startsWith('binary-') ? memcachedSasl : memcachedText
    const [expected, actual] = await replayPair(reference.port, ferrocached.port, steps)
    if (actual.stream !== expected.stream) {
      console.log(`\n${file}: ferrocached / memcached per step:\n${actual.transcript.join('\n')}\n---\n${expected.transcript.join('\n')}`)
    }
    assert.fixture(actual.stream, expected.stream)
  })
}

test('libmemcached tools log in with SASL as against memcached -S (right and wrong password)', async () => {
  const payload = join(tmp, 'k')
  writeFileSync(payload, 'v')
  const tools = async (port: number): Promise<string> => {
    let out = ''
    for (const password of ['secret', 'nope']) {
      const login = [`--servers=127.0.0.1:${port}`, '--username=alice', `--password=${password}`]
      for (const [tool, ...args] of [
        ['memccp', '--binary', payload],
        ['memcexist', '--binary', 'k', 'zz'],
        ['memctouch', '--binary', '--expire=50', 'k', 'zz'],
        ['memcping'],
        ['memcstat', '-S'],
        ['memcrm', '--binary', 'k', 'zz'],
        ['memcflush', '--binary'],
      ] as const) {
        const r = await run(`/usr/bin/${tool}`, [...login, ...args])
        const said = (r.stdout + r.stderr).replaceAll(String(port), 'PORT').replace(/\(0x[0-9a-f]+\)/g, '(0xADDR)')
        out += `$ ${tool} ${password} ${args.join(' ')}\n${said}exit ${r.code}\n`
      }
    }
    return out
  }
  const expected = await tools(memcachedSasl.port)
  const actual = await tools(ferrocached.port)
  assert.match(actual, /\$ memcping nope \nFailed to ping '127.0.0.1:PORT:AUTHENTICATION FAILURE.\nexit 1\n/)
  assert.fixture(actual, expected)
})

test('python3-pylibmc logs in with SASL as against memcached -S (right and wrong password)', async () => {
  const script = join(__dirname, 'fixtures', 'clients', 'pylibmc_sasl.py')
  const results: string[] = []
  for (const server of [memcachedSasl, ferrocached]) {
    const r = await run('/usr/bin/python3', [script, String(server.port)])
    assert.is(r.code, 0, r.stderr)
    results.push(r.stdout)
  }
  const parsed = JSON.parse(results[1]!) as Record<string, string[]>
  assert.equal(parsed.secret!.slice(0, 3), ['True', "b'v'", "(b'v', True)"])
  assert.is(results[1], results[0])
})

// The differential runner's logins (helpers/diffrun.ts `Control.login`, the binary-only
// campaigns' SASL set): each binary connection, the control one too, logs in first, so
// seeded binary streams (their own SASL packets among them) and the counters compare.
test('seeded binary streams behind a SASL login: same replies and counters as memcached -S', async () => {
  const pair: Pair = { memcached: memcachedSasl.port, ferrocached: ferrocached.port, binaryOnly: true, login: { user: 'alice', password: USERS.alice } }
  for (let seed = 1; seed <= 12; seed++) {
    const { expected, actual } = await runBoth(pair, generate(seed, 40, { focus: 'binary' }))
    assert.match(actual, /^\[conn 3\]\nop=21 status=0 extras= key="" value="Authenticated" /)
    assert.match(actual, /\[stats\] cmd_get \d+ /)
    assert.fixture(actual, expected, `seed ${seed}`)
  }
})

test.run()
