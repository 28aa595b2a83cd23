// Differential tests: every session in __test__/fixtures/differential/ is replayed against
// Debian's memcached 1.6.18 and against ferrocached; the normalised replies must match
// step by step (see helpers/corpus.ts for the file format and what is normalised).
import { readdirSync, readFileSync } from 'node:fs'
import net from 'node:net'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { parseSession } from './helpers/corpus'
import { RawConn } from './helpers/raw'
import { replayPair, type Replayed } from './helpers/replay'
import { CutProxy } from './helpers/replication'
import { setUp, tearDown } from './helpers/guard'
import { freePort, sleep, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const DIR = join(__dirname, 'fixtures', 'differential')
const files = readdirSync(DIR).filter((f) => f.endsWith('.session')).sort()

/**
 * Sessions are replayed LANES at a time (each waits mostly on its 40 ms quiet windows):
 * lane i takes every LANES-th session in name order, one after another, on its own pair of
 * servers, so the sessions sharing a pair are always the same ones in the same order (a
 * flush_all in one reaches only the later sessions of its lane, on both servers alike).
 * Each test awaits its session's replay.
 */
const LANES = 4

let pairs: Array<[Running, Running]> = []
const replayed = new Map<string, Promise<{ ok: true; value: Compared } | { ok: false; err: unknown }>>()

setUp(test, async () => {
  const servers = await startAll(Array.from({ length: 2 * LANES }, (_, k) => (k % 2 === 0 ? () => startMemcached() : () => startFerrocached())))
  pairs = Array.from({ length: LANES }, (_, lane) => [servers[2 * lane]!, servers[2 * lane + 1]!])
  for (let lane = 0; lane < LANES; lane++) {
    let previous: Promise<unknown> = Promise.resolve()
    for (let i = lane; i < files.length; i += LANES) {
      const file = files[i]!
      const run = previous.then(() => compare(file, pairs[lane]!))
      const settled = run.then(
        (value) => ({ ok: true as const, value }),
        (err: unknown) => ({ ok: false as const, err }),
      )
      replayed.set(file, settled)
      previous = settled
    }
  }
})

tearDown(test, async () => {
  await Promise.all(replayed.values())
  await Promise.all(pairs.flat().map((r) => r.stop()))
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

interface Compared {
  source: string
  expected: Replayed
  actual: Replayed
}

/** Replays one session on `pair` (on a pair of its own if it is marked "# fresh"). */
async function compare(file: string, pair: [Running, Running]): Promise<Compared> {
  const source = readFileSync(join(DIR, file), 'utf8')
  const steps = parseSession(source)
  // Sessions marked "# fresh" look at server-wide state (stats) and get their own pair.
  const fresh = /^# fresh$/m.test(source)
  const [mc, fc] = fresh ? ((await startAll([() => startMemcached(), () => startFerrocached()])) as [Running, Running]) : pair
  try {
    // Both servers must have forgotten the probe connections that checked they were up.
    if (fresh) await Promise.all([onlyOwnConnection(mc.port), onlyOwnConnection(fc.port)])
    const [expected, actual] = await replayPair(mc.port, fc.port, steps)
    return { source, expected, actual }
  } finally {
    if (fresh) await Promise.all([mc.stop(), fc.stop()])
  }
}

for (const file of files) {
  test(`same replies as memcached: ${file}`, async () => {
    const result = await replayed.get(file)
    if (result === undefined) throw new Error(`${file} was not replayed`)
    if (!result.ok) throw result.err
    const { source, expected, actual } = result.value
    // "# known-difference: why" marks a divergence that is documented (docs/protocol.md).
    const known = /^# known-difference: /m.test(source)
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
  })
}

test('replies that come after the 150 ms tail are still compared (a busy machine)', async () => {
  // One server, once directly and once through a link that holds each read 400 ms: the
  // last replies reach the slow side after the tail's quiet window. Stateless requests,
  // so the lanes' sessions on the same server change nothing.
  const mc = pairs[0]![0]
  const slow = await CutProxy.start(mc.port, 400)
  try {
    const steps = parseSession('> version\\r\\n\n> mn\\r\\n\n> mn\\r\\n\n')
    const [direct, delayed] = await replayPair(mc.port, slow.port, steps)
    assert.is(delayed.stream, direct.stream)
    assert.match(direct.stream, /^VERSION <v>\r\nMN\r\nMN\r\n/)
  } finally {
    await slow.close()
  }
})

/**
 * A link to `targetPort` whose server reads late: what the client writes reaches it `holdMs`
 * after the first byte, everything written meanwhile in one write (one read, as a server
 * held up on a busy machine takes it). Replies pass at once.
 */
async function lateReader(targetPort: number, holdMs: number): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', drop).on('close', drop)
    }
    upstream.pipe(client)
    let held: Buffer[] = []
    const pass = (): void => {
      upstream.write(Buffer.concat(held))
      held = []
    }
    client.on('data', (d: Buffer) => {
      if (held.length === 0) setTimeout(pass, holdMs).unref()
      held.push(d)
    })
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve))
  const close = (): Promise<void> => {
    for (const s of sockets) s.destroy()
    return new Promise((resolve) => server.close(() => resolve()))
  }
  return { port, close }
}

test('a get that culls is sent once the reply before it came (a server that reads late)', async () => {
  // memcached culls the unwritten replies of the requests before an overlong get key in
  // the same read: a replay that sent the get after 40 ms of quiet, not after the VERSION,
  // lost it when the server read both at once (text-line-too-long.session, a busy machine).
  const mc = pairs[0]![0]
  const late = await lateReader(mc.port, 300)
  try {
    const steps = parseSession('> version\\r\\n\n> get a {b*300}\\r\\n\n')
    const [direct, delayed] = await replayPair(mc.port, late.port, steps)
    assert.match(direct.stream, /^VERSION <v>\r\nCLIENT_ERROR bad command line format\r\n/)
    assert.is(delayed.stream, direct.stream)
  } finally {
    await late.close()
  }
})

test.run()
