// Differential tests: every session in __test__/fixtures/differential/ is replayed against
// Debian's memcached 1.6.18 and against ferrocached; the normalised replies must match
// step by step (see helpers/corpus.ts for the file format and what is normalised).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseSession } from './helpers/corpus'
import { RawConn } from './helpers/raw'
import { replay } from './helpers/replay'
import { setUp, tearDown } from './helpers/guard'
import { sleep, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const DIR = join(__dirname, 'fixtures', 'differential')
const files = readdirSync(DIR).filter((f) => f.endsWith('.session')).sort()

let memcached: Running
let ferrocached: Running

setUp(test, async () => {
  ;[memcached, ferrocached] = (await startAll([() => startMemcached(), () => startFerrocached()])) as [Running, Running]
})

tearDown(test, async () => {
  await Promise.all([memcached?.stop(), ferrocached?.stop()])
})

/**
 * Waits (at most 10 s) until `stats conns` lists only the listener and the asking connection,
 * which then sends `quit`: the server closes it itself, so it is gone before the next one
 * connects. A fixed wait lost the race on a busy machine: a probe closed by the client can
 * still be listed.
 */
async function onlyOwnConnection(port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const c = await RawConn.open(port)
    c.send('stats conns\r\n')
    const ids = new Set([...(await c.until('END\r\n')).matchAll(/^STAT (\d+):/gm)].map((m) => m[1]))
    c.send('quit\r\n')
    await c.waitClosed(5_000)
    c.close()
    if (ids.size <= 2 || Date.now() > deadline) return
    await sleep(50)
  }
}

test('the corpus is not empty', () => {
  assert.ok(files.length >= 30, `only ${files.length} sessions in ${DIR}`)
})

for (const file of files) {
  test(`same replies as memcached: ${file}`, async () => {
    const source = readFileSync(join(DIR, file), 'utf8')
    const steps = parseSession(source)
    // Sessions marked "# fresh" look at server-wide state (stats) and get their own pair.
    const fresh = /^# fresh$/m.test(source)
    // "# known-difference: why" marks a divergence that is documented (docs/protocol.md).
    const known = /^# known-difference: /m.test(source)
    const [mc, fc] = fresh ? ((await startAll([() => startMemcached(), () => startFerrocached()])) as [Running, Running]) : [memcached, ferrocached]
    // Both servers must have forgotten the probe connections that checked they were up.
    if (fresh) await Promise.all([onlyOwnConnection(mc.port), onlyOwnConnection(fc.port)])
    try {
      const [expected, actual] = await Promise.all([replay(mc.port, steps), replay(fc.port, steps)])
      if (known) {
        // A documented difference stays visible: once it is gone the marker must go too.
        assert.is.not(actual.stream, expected.stream, `${file} now matches memcached: remove its known-difference line`)
        return
      }
      if (actual.stream !== expected.stream) {
        // The per-step view says which request diverged; the stream diff follows.
        console.log(`\n${file}: ferrocached / memcached per step:\n${actual.transcript.join('\n')}\n---\n${expected.transcript.join('\n')}`)
      }
      assert.fixture(actual.stream, expected.stream)
    } finally {
      if (fresh) await Promise.all([mc.stop(), fc.stop()])
    }
  })
}

test.run()
