// libmemcached-tools (Debian) against ferrocached: memccapable's protocol conformance
// suites (text and binary), memccp/memccat round trips, and short bounded memcslap runs
// whose hit counts must match memcached's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setUp, tearDown } from './helpers/guard'
import { run, startFerrocached, startMemcached, type Running } from './helpers/servers'

let server: Running

setUp(test, async () => {
  server = await startFerrocached()
})

tearDown(test, async () => {
  await server?.stop()
})

test('memccapable: every text protocol test passes', async () => {
  const r = await run('/usr/bin/memccapable', ['-h', '127.0.0.1', '-p', String(server.port), '-a', '-t', '5'], { ms: 60_000 })
  assert.not.match(r.stdout, /\[FAIL\]/, r.stdout + r.stderr)
  assert.match(r.stdout, /All tests passed/, r.stdout + r.stderr)
  assert.ok((r.stdout.match(/\[pass\]/g) ?? []).length >= 27, r.stdout)
  assert.is(r.code, 0)
})

test('memccapable -b: every binary protocol test passes', async () => {
  const r = await run('/usr/bin/memccapable', ['-h', '127.0.0.1', '-p', String(server.port), '-b', '-t', '5'], { ms: 60_000 })
  assert.not.match(r.stdout, /\[FAIL\]/, r.stdout + r.stderr)
  assert.match(r.stdout, /All tests passed/, r.stdout + r.stderr)
  assert.ok((r.stdout.match(/\[pass\]/g) ?? []).length >= 27, r.stdout)
  assert.is(r.code, 0)
})

test('memccp/memccat round-trip a binary file, text and binary protocol, with flags', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-memccp-'))
  try {
    const file = join(dir, 'blob.bin')
    const blob = Buffer.alloc(300_000)
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) & 0xff
    writeFileSync(file, blob)
    const servers = `--servers=127.0.0.1:${server.port}`
    for (const proto of [[], ['--binary']]) {
      const cp = await run('/usr/bin/memccp', [...proto, servers, '--flags=7', file])
      assert.is(cp.code, 0, cp.stderr)
      const out = join(dir, 'out.bin')
      const cat = await run('/bin/sh', ['-c', `/usr/bin/memccat ${proto.join(' ')} ${servers} blob.bin > ${out}`])
      assert.is(cat.code, 0, cat.stderr)
      // memccat ends the value with a newline of its own.
      assert.ok(readFileSync(out).subarray(0, blob.length).equals(blob), 'same bytes back')
      const flags = await run('/usr/bin/memccat', [...proto, servers, '--flag', 'blob.bin'])
      assert.match(flags.stdout, /^7\b/, flags.stdout.slice(0, 100))
    }
    const miss = await run('/usr/bin/memccat', [servers, 'no-such-key'])
    assert.is.not(miss.code, 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/** "Time to get 8000 keys" → { get: 8000 }: what memcslap managed, per phase. */
function slapCounts(output: string): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const m of output.matchAll(/Time to (\w+)\s+(\d+) keys/g)) counts[m[1]!] = Number(m[2])
  return counts
}

async function slap(port: number, args: string[]): Promise<Record<string, number>> {
  const r = await run('/usr/bin/memcslap', [`--servers=127.0.0.1:${port}`, ...args], { ms: 60_000 })
  assert.is(r.code, 0, r.stderr)
  return slapCounts(r.stdout)
}

test('memcslap: set, get and binary mget runs match memcached key for key', async () => {
  const runs = [
    ['--concurrency=4', '--execute-number=2000', '--test=set'],
    ['--concurrency=4', '--execute-number=2000', '--test=get'],
    ['--binary', '--concurrency=2', '--execute-number=1000', '--test=mget'],
  ]
  const reference = await startMemcached()
  try {
    for (const args of runs) {
      const expected = await slap(reference.port, args)
      const actual = await slap(server.port, args)
      assert.ok(Object.keys(expected).length > 0, 'memcslap reported its counts')
      assert.equal(actual, expected, `memcslap ${args.join(' ')}`)
    }
  } finally {
    await reference.stop()
  }
})

test.run()
