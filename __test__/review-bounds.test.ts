// Memory a connection holds for its replies, against ferrocached processes (RSS from
// /proc): connections that once fetched megabytes and now sit idle, and many clients that
// pipeline gets of big items and never read, clients that send `psync` and never read the
// full sync, and an `lru_crawler metadump` whose dump is larger than the replies a
// connection may queue; and `-c` past the open-file limit, refused at start as memcached
// refuses it. Every loop is bounded in count and time.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RawConn } from './helpers/raw'
import { BIN, freePort, listensOn, MEMCACHED, rssKiB, sleep, spawnOwned, startFerrocached, startOwned, stopChild, waitForPort, type Running } from './helpers/servers'

const MiB = 1024

/** Stores `size` bytes under `key` on a new connection. */
async function store(port: number, key: string, size: number): Promise<void> {
  const c = await RawConn.open(port)
  try {
    c.send(`set ${key} 0 0 ${size}\r\n${'v'.repeat(size)}\r\n`)
    assert.is(await c.until('\r\n'), 'STORED\r\n')
  } finally {
    c.close()
  }
}

/** Whether the server still answers a new client at once. */
async function serves(port: number): Promise<void> {
  const c = await RawConn.open(port)
  try {
    c.send('version\r\n')
    assert.is(await c.until('\r\n'), 'VERSION 1.6.18\r\n')
  } finally {
    c.close()
  }
}

async function withServer(args: string[], body: (fc: Running) => Promise<void>): Promise<void> {
  const fc = await startFerrocached(args)
  try {
    await body(fc)
  } finally {
    await fc.stop()
  }
}

test('40 idle connections that each read a 5 MB multiget keep no reply buffer', () =>
  withServer([], async (fc) => {
    await store(fc.port, 'big', 1_000_000)
    const before = rssKiB(fc.child.pid!)
    const conns: RawConn[] = []
    try {
      for (let i = 0; i < 40; i++) {
        const c = await RawConn.open(fc.port)
        conns.push(c)
        c.send('get big big big big big\r\n')
        const reply = await c.atLeast(5 * 1_000_023 + 5, 10_000)
        assert.is(reply.length, 5 * 1_000_023 + 5, `connection ${i} got every value`)
      }
      await sleep(300)
      const grown = rssKiB(fc.child.pid!) - before
      // was up to +4.7 MiB per connection (the reply buffer's capacity, kept until it closed)
      assert.ok(grown < 60 * MiB, `RSS grew by ${grown >> 10} MiB for 40 idle connections`)
    } finally {
      for (const c of conns) c.close()
    }
  }),
)

/**
 * `clients` connections that each send `request` `times` over and never read, from a
 * python3 child: its sockets have a 4 KiB receive buffer (node's cannot be set), so the
 * kernel cannot absorb the replies for them (`tls`: over TLS, certificate unchecked).
 * Resolves once all is sent; `stop` ends it.
 */
async function hogs(port: number, clients: number, request: string, times: number, tls = false): Promise<{ stop: () => Promise<void> }> {
  const script = [
    'import socket, ssl, sys, time',
    'ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE',
    'socks = []',
    `for i in range(${clients}):`,
    '    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
    `    s.connect(("127.0.0.1", ${port})); s.settimeout(10)`,
    ...(tls ? ['    s = ctx.wrap_socket(s)'] : []),
    `    s.sendall(${JSON.stringify(request)}.encode() * ${times}); socks.append(s)`,
    'print("sent", flush=True)',
    'sys.stdin.read()',
  ].join('\n')
  const child = spawnOwned('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] })
  const stop = (): Promise<void> => stopChild(child, 'SIGKILL')
  const sent = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000)
    child.stdout!.on('data', () => {
      clearTimeout(timer)
      resolve(true)
    })
    child.on('exit', () => resolve(false))
  })
  if (!sent) {
    await stop()
    throw new Error('the hog clients could not send their requests')
  }
  return { stop }
}

test('60 clients pipelining gets of a 100 KB item and never reading hold little each', () =>
  withServer([], async (fc) => {
    await store(fc.port, 'item', 100_000)
    const before = rssKiB(fc.child.pid!)
    const clients = await hogs(fc.port, 60, 'get item\r\n', 2000)
    try {
      await sleep(1_000)
      const grown = rssKiB(fc.child.pid!) - before
      // was +5.4 MiB per client (a 4 MiB reply budget each); now about one feed's replies
      assert.ok(grown < 160 * MiB, `RSS grew by ${grown >> 10} MiB for 60 clients that do not read`)
      await serves(fc.port)
    } finally {
      await clients.stop()
    }
  }),
)

/**
 * ferrocached with transparent huge pages off (prctl PR_SET_THP_DISABLE, kept across exec):
 * where THP is `always` each link's buffers take whole 2 MiB pages, and the bound below would
 * be about the kernel's page policy (with malloc's memory in huge pages RSS grew 155 MiB, not 93).
 */
async function withServerNoTHP(args: string[], body: (fc: Running) => Promise<void>): Promise<void> {
  const exec = 'import ctypes, os, sys\nif ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) != 0: sys.exit("prctl")\nos.execv(sys.argv[1], sys.argv[1:])'
  const fc = await startOwned(undefined, 15_000, (port) =>
    spawnOwned('/usr/bin/python3', ['-c', exec, process.execPath, BIN, '-p', String(port), ...args], { stdio: ['ignore', 'ignore', 'pipe'] }),
  )
  try {
    await body(fc)
  } finally {
    await fc.stop()
  }
}

test('40 clients that send psync and never read: each replica link holds about a chunk', () =>
  withServerNoTHP(['-m', '64'], async (fc) => {
    // 40 MB of items: a full sync's snapshot is far past what a link may queue
    const filler = await RawConn.open(fc.port)
    try {
      const value = 'v'.repeat(1000)
      for (let from = 0; from < 40_000; from += 5_000) {
        let batch = ''
        for (let i = from; i < from + 5_000; i++) batch += `set k${i} 0 0 1000 noreply\r\n${value}\r\n`
        filler.send(batch)
      }
      filler.send('mn\r\n')
      assert.is(await filler.until('MN\r\n', 30_000), 'MN\r\n')
    } finally {
      filler.close()
    }
    const before = rssKiB(fc.child.pid!)
    const clients = await hogs(fc.port, 40, 'psync ? 0\r\n', 1)
    try {
      await sleep(2_000)
      const grown = rssKiB(fc.child.pid!) - before
      // was +5 MiB per link (4 MiB queued before waiting for 'drain')
      assert.ok(grown < 140 * MiB, `RSS grew by ${grown >> 10} MiB for 40 replica links that do not read`)
      await serves(fc.port)
    } finally {
      await clients.stop()
    }
  }),
)

test('lru_crawler metadump of 120 000 items with long keys: built as it is read, the reader gets every line', () =>
  withServer(['-m', '64'], async (fc) => {
    // 240 '%' each: 720 bytes percent-encoded, so the dump (~100 MB) is well past the
    // 64 MiB of queued replies that drops a connection
    const items = 120_000
    let stored = 0
    const filler = await RawConn.open(fc.port)
    try {
      for (let from = 0; from < items; from += 10_000) {
        let batch = ''
        for (let i = from; i < from + 10_000; i++) batch += `set ${String(i).padStart(8, '0')}${'%'.repeat(240)} 0 0 1 noreply\r\nx\r\n`
        filler.send(batch)
      }
      filler.send('mn\r\n')
      assert.is(await filler.until('MN\r\n', 30_000), 'MN\r\n')
      filler.send('stats\r\n')
      stored = Number(/STAT curr_items (\d+)/.exec(await filler.until('END\r\n'))?.[1])
      // an eviction would only shorten the dump; nearly all must be there for it to be large
      assert.ok(stored > 100_000, `${stored} items stored`)
    } finally {
      filler.close()
    }
    const before = rssKiB(fc.child.pid!)
    const reader = await RawConn.open(fc.port)
    try {
      let bytes = 0
      let lines = 0
      let tail = ''
      let peak = 0
      const sampler = setInterval(() => (peak = Math.max(peak, rssKiB(fc.child.pid!))), 20)
      let timer: NodeJS.Timeout | undefined
      // counted as it arrives (RawConn would keep all 100 MB)
      reader.socket.removeAllListeners('data')
      const ended = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), 30_000)
        reader.socket.on('data', (d: Buffer) => {
          bytes += d.length
          for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++
          tail = (tail + d.toString('latin1', Math.max(0, d.length - 16))).slice(-16)
          if (tail.endsWith('END\r\nMN\r\n')) resolve(true)
        })
        reader.socket.on('close', () => resolve(false))
      })
      reader.send('lru_crawler metadump all\r\nmn\r\n')
      const done = await ended
      clearTimeout(timer)
      clearInterval(sampler)
      assert.ok(done, `the dump ended (got ${bytes} bytes, ${lines} lines)`)
      assert.is(lines, stored + 2, 'one line per item, then END and MN')
      const grown = Math.max(peak, rssKiB(fc.child.pid!)) - before
      // was the whole dump at once (+150 MiB, and the client dropped at 64 MiB queued)
      assert.ok(grown < 48 * MiB, `RSS grew by ${grown >> 10} MiB during the dump`)
    } finally {
      reader.close()
    }
  }),
)

test('30 TLS clients pipelining gets of a 100 KB item and never reading hold little each', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-bounds-'))
  try {
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')]
    execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' })
    await withServer(['--tls-cert', cert, '--tls-key', key], async (fc) => {
      const stored = await new Promise<string>((resolve) => {
        const c = tlsConnect({ port: fc.port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
          c.write(`set item 0 0 100000\r\n${'v'.repeat(100_000)}\r\n`)
        })
        const timer = setTimeout(() => c.destroy(), 10_000)
        let reply = ''
        c.on('data', (d: Buffer) => {
          reply += d.toString('latin1')
          if (reply.endsWith('\r\n')) c.end()
        })
        c.on('error', () => {})
        c.on('close', () => {
          clearTimeout(timer)
          resolve(reply)
        })
      })
      assert.is(stored, 'STORED\r\n')
      const before = rssKiB(fc.child.pid!)
      const clients = await hogs(fc.port, 30, 'get item\r\n', 2000, true)
      try {
        await sleep(1_500)
        const grown = rssKiB(fc.child.pid!) - before
        // was +10.8 MiB per client (a 4 MiB budget, and node's TLS copies of it); now about 2
        assert.ok(grown < 160 * MiB, `RSS grew by ${grown >> 10} MiB for 30 TLS clients that do not read`)
      } finally {
        await clients.stop()
      }
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/**
 * `cmd args`, a server told to listen on `port`, in a shell whose open-file limit is 256:
 * its exit code and stderr once it stops, or `listened` once it listens (both servers check
 * the limit before they listen, so a listener is past the check; it is then killed). Waits
 * for one of the two (at most 20 s), not a fixed time: a start takes ~0.3 s here idle, and a
 * CI run under load saw ferrocached's exit 71 come after the 2.5 s this once allowed.
 */
async function underFileLimit(cmd: string, args: string[], port: number): Promise<{ code: number | null; listened: boolean; stderr: string }> {
  const child = spawnOwned('/bin/sh', ['-c', 'ulimit -n 256 && exec "$0" "$@"', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  // 'close': the exit code with all of stderr read
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  const listened = await waitForPort(port, 20_000, child).then(
    () => listensOn(child.pid, port),
    () => false,
  )
  await stopChild(child, 'SIGKILL') // a listener, or one that did neither in time (no-op once it exited)
  const code = await closed
  return { code: listened ? null : code, listened, stderr }
}

test('-c past an open-file limit that cannot be raised: memcached stops at start, and so does ferrocached', async () => {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  const user = process.getuid?.() === 0 ? ['-u', 'root'] : []
  const memcached = (port: number, conns: string): ReturnType<typeof underFileLimit> =>
    underFileLimit(MEMCACHED, ['-U', '0', '-l', '127.0.0.1', '-p', String(port), '-c', conns, ...user], port)
  const ferrocached = (port: number, conns: string): ReturnType<typeof underFileLimit> =>
    underFileLimit(process.execPath, [BIN, '-p', String(port), '-c', conns], port)
  const [mcOver, fcOver, mcUnder, fcUnder] = await Promise.all([
    memcached(ports[0]!, '100000'),
    ferrocached(ports[1]!, '100000'),
    memcached(ports[2]!, '200'),
    ferrocached(ports[3]!, '200'),
  ])
  // was: ferrocached started, then dropped connections past ~250 without a word
  // (71 where the limit cannot be raised; with the privilege to raise it both run)
  assert.is(fcOver.listened, mcOver.listened, `memcached: ${mcOver.stderr}; ferrocached: ${fcOver.stderr}`)
  assert.is(fcOver.code, mcOver.code, `memcached: ${mcOver.stderr}; ferrocached: ${fcOver.stderr}`)
  if (mcOver.code === 71) assert.is(fcOver.stderr, mcOver.stderr)
  assert.ok(mcUnder.listened, `memcached -c 200 runs: ${mcUnder.stderr}`)
  assert.ok(fcUnder.listened, `ferrocached -c 200 runs: ${fcUnder.stderr}`)
})

test.run()
