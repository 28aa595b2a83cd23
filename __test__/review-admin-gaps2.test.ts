// Small admin differences against memcached 1.6.18, differentially where a server can be
// asked: `flush_all` with a unix time before the server started (memcached hides nothing;
// neither does ferrocached, nor its append-only log or replicas), how double-valued `-o`
// options are read (C strtod + memcached's safe_strtod: hex floats, white space around the
// number), and `stats conns` on a Unix socket and for the connection that asks. Every server is stopped by its PID; every
// wait is bounded.
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { binaryRequest } from './helpers/binary'
import { tearDown } from './helpers/guard'
import { askOnce, connectUnix, RawConn } from './helpers/raw'
import { caughtUp } from './helpers/replication'
import { BIN, MEMCACHED, run, sleep, spawnOwned, startFerrocached, startMemcached, stopChild, waitFor, type Running } from './helpers/servers'

const running: Running[] = []
const dir = mkdtempSync(join(tmpdir(), 'ferro-admin-gaps2-'))
// memcached drops to nobody before it binds its socket
chmodSync(dir, 0o777)

tearDown(test, async () => {
  await Promise.all(running.map((r) => stopChild(r.child)))
  rmSync(dir, { recursive: true, force: true })
})

async function track(r: Promise<Running>): Promise<Running> {
  const started = await r
  running.push(started)
  return started
}

const text = async (port: number, request: string): Promise<string> => (await askOnce(port, Buffer.from(request, 'latin1'))).reply

/** memcached's realtime() reads this as 1 (before its start): its flush mark becomes 0. */
const BEFORE_START = 2_592_001

test('flush_all <unix time before the start> hides nothing, text and binary, as memcached', async () => {
  const [m, f] = await Promise.all([track(startMemcached()), track(startFerrocached())])
  const exchange = async (port: number): Promise<string[]> => {
    const flushText = await text(port, `set a 0 0 1\r\nx\r\nflush_all ${BEFORE_START}\r\nget a\r\nflush_all ${BEFORE_START} noreply\r\nget a\r\n`)
    const extras = Buffer.alloc(4)
    extras.writeUInt32BE(BEFORE_START)
    const flushBinary = (await askOnce(port, binaryRequest(0x08, '', extras))).reply
    const after = await text(port, 'get a\r\nstats\r\n')
    const flushes = /STAT cmd_flush (\d+)/.exec(after)?.[1]
    return [flushText, Buffer.from(flushBinary, 'latin1').toString('hex'), after.split('STAT')[0]!, `cmd_flush ${flushes}`]
  }
  const [theirs, ours] = await Promise.all([exchange(m.port), exchange(f.port)])
  assert.equal(ours, theirs)
  assert.is(theirs[0], 'STORED\r\nOK\r\nVALUE a 0 1\r\nx\r\nEND\r\nVALUE a 0 1\r\nx\r\nEND\r\n')
})

test('a flush that hides nothing leaves the append-only log and a replica as the primary', async () => {
  const data = join(dir, 'aof')
  const primaryArgs = ['--data-dir', data, '--appendfsync', 'always']
  const primary = await track(startFerrocached(primaryArgs))
  const replica = await track(startFerrocached(['--replica-of', `127.0.0.1:${primary.port}`]))
  await caughtUp(primary, replica)
  assert.is(await text(primary.port, `set a 0 0 1\r\nx\r\nflush_all ${BEFORE_START}\r\nset b 0 0 1\r\ny\r\n`), 'STORED\r\nOK\r\nSTORED\r\n')
  await caughtUp(primary, replica)
  const both = 'VALUE a 0 1\r\nx\r\nVALUE b 0 1\r\ny\r\nEND\r\n'
  assert.is(await text(replica.port, 'get a b\r\n'), both)
  await primary.stop()
  const again = await track(startFerrocached(primaryArgs))
  assert.is(await text(again.port, 'get a b\r\n'), both, 'after replaying the log')
})

test('double -o values are read as C strtod + memcached safe_strtod read them', async () => {
  // measured: memcached starts with the first eight, exits 1 with the others
  const values = ['0x1p3', ' 0.5', '0.5 ', '0.5 x', 'inf', 'nan', '0x1p-1074', ' \t0.25', '1e400', 'abc', '', ' ', '1e-310', '0x', '0x3p-1075', 'infinityx']
  const results = await Promise.all(
    values.map(async (v) => {
      const o = `slab_automove_freeratio=${v}`
      // a memcached that starts runs until killed (code null) after 3 s; ours is stopped
      // (null) once it logs "listening", so a start slowed by a busy machine is not taken
      // for a refusal
      const [theirs, ours] = await Promise.all([
        run(MEMCACHED, ['-u', 'nobody', '-p', '0', '-U', '0', '-o', o], { ms: 3_000 }),
        startsOrExits(['-p', '0', '-U', '0', '-o', o]),
      ])
      return { v, theirs: theirs.code, ours: ours.code, stderr: ours.stderr }
    }),
  )
  for (const r of results) assert.is(r.ours, r.theirs, `${JSON.stringify(r.v)}: ${r.stderr}`)
  assert.equal(results.map((r) => r.theirs === null), [...Array(8).fill(true), ...Array(8).fill(false)])
})

/** The CLI's exit code, or null once it logs that it is listening (then it is killed). */
function startsOrExits(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnOwned(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    let started = false
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (!started && stderr.includes('"msg":"listening"')) {
        started = true
        child.kill('SIGKILL')
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code: started ? null : code, stderr })
    })
  })
}

/** `stats conns` asked over the Unix socket at `path`. */
async function statsConns(path: string): Promise<string> {
  const s = await connectUnix(path)
  return new Promise((resolve, reject) => {
    let got = ''
    const timer = setTimeout(() => {
      s.destroy()
      reject(new Error(`no stats conns from ${path}: ${JSON.stringify(got)}`))
    }, 5_000)
    s.on('error', reject)
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (!got.endsWith('END\r\n')) return
      clearTimeout(timer)
      s.end()
      resolve(got)
    })
    s.write('stats conns\r\n')
  })
}

test('stats conns on a Unix socket: the listener cut at 31 bytes, a client as ?:<AF 0>', async () => {
  // paths of one length (past 31 bytes with unix:) that differ in their last letter
  const path = (who: string): string => join(dir, `a-long-socket-name-past-thirty-two-bytes-${who}.sock`)
  const start = async (cmd: string, args: string[], p: string): Promise<void> => {
    const child = spawnOwned(cmd, [...args, '-s', p], { stdio: ['ignore', 'ignore', 'ignore'] })
    running.push({ port: 0, child, stderr: () => '', stop: () => stopChild(child) })
    // the file comes at the bind, a moment before the listen: statsConns retries a refusal
    assert.ok(await waitFor(() => existsSync(p), 10_000), `${cmd} made no socket at ${p}`)
  }
  await Promise.all([start(MEMCACHED, ['-u', 'nobody', '-t', '1'], path('m')), start(process.execPath, [BIN], path('f'))])
  // connection numbers are memcached's descriptors: compared by order
  const shape = (conns: string, who: string): string[] => {
    const ids = [...new Set([...conns.matchAll(/STAT (\d+):/g)].map((x) => x[1]!))]
    // the letter after 'bytes-' only: the directory's random name may hold '-f' or '-m' too
    return conns
      .split(path(who))
      .join('PATH')
      .split(`bytes-${who}`)
      .join('bytes-X')
      .split('\r\n')
      .map((l) => l.replace(/^STAT (\d+):/, (_, id: string) => `STAT #${ids.indexOf(id)}:`))
      // the listener's counts from its server's start: on a busy machine ferrocached (node)
      // started a second or more after memcached
      .map((l) => l.replace(/^(STAT #0:secs_since_last_cmd) \d+$/, '$1 <s>'))
  }
  const [theirs, ours] = await Promise.all([statsConns(path('m')), statsConns(path('f'))])
  assert.equal(shape(ours, 'f'), shape(theirs, 'm'))
  assert.ok(theirs.includes(':addr ?:<AF 0>\r\n'), theirs)
})

test('stats conns: the connection that asks ran a command 0 seconds ago, after an idle second too, as memcached', async () => {
  // memcached stamps a command's time as it parses it, before running it; ferrocached
  // stamped it after the read's commands had run, so a connection that asked after a
  // second or more without commands saw its previous command's age (the Unix socket test
  // above failed 'secs_since_last_cmd 1' when a busy machine took a second from accept
  // to the first command)
  const [m, f] = await Promise.all([track(startMemcached()), track(startFerrocached())])
  const own = async (port: number): Promise<string[]> => {
    const c = await RawConn.open(port)
    try {
      const ages: string[] = []
      // first on a connection open for a second, then a second after its first command
      for (let i = 0; i < 2; i++) {
        // past the next whole second (the servers' clock is this one's)
        await sleep(1_050 - (Date.now() % 1_000))
        c.send('stats conns\r\n')
        const conns = await c.until('END\r\n')
        // the one client connection: the entry with a listen_addr (listeners have none)
        const id = /^STAT (\d+):listen_addr /m.exec(conns)?.[1]
        ages.push(new RegExp(`^STAT ${id}:secs_since_last_cmd (\\d+)\r$`, 'm').exec(conns)?.[1] ?? conns)
      }
      return ages
    } finally {
      c.close()
    }
  }
  const [theirs, ours] = await Promise.all([own(m.port), own(f.port)])
  assert.equal(theirs, ['0', '0'])
  assert.equal(ours, theirs)
})

test.run()
