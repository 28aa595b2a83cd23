// Command-line behaviour beside memcached 1.6.18, byte for byte: `-o no_slab_reassign` and
// `-o no_modern` (`slabs reassign` refused, `slab_reassign no`, no `slab_reassign_*` or
// `slabs_moved` in `stats`) and the exit status of a listener that cannot be bound (71).
// One memcached and one ferrocached per configuration, started together and stopped by PID.
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Cache } from '../src'
import { tearDown } from './helpers/guard'
import { RawConn } from './helpers/raw'
import { freePort, MEMCACHED, run, runCli, startAll, startFerrocached, startMemcached, type Running } from './helpers/servers'

const running: Running[] = []
tearDown(test, async () => {
  await Promise.all(running.map((r) => r.stop()))
})

const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : []

/** Sends `request` and reads until `end`. */
async function exchange(port: number, request: string, end: string): Promise<string> {
  const c = await RawConn.open(port)
  try {
    c.send(request)
    return await c.until(end)
  } finally {
    c.close()
  }
}

/** `stats <family>` as `name value` lines (values of `keep` names only; others by name). */
async function statLines(port: number, family: string, keep: (name: string) => boolean): Promise<string[]> {
  const reply = await exchange(port, `stats ${family}\r\n`, 'END\r\n')
  return reply
    .split('\r\n')
    .filter((l) => l.startsWith('STAT '))
    .map((l) => l.slice(5))
    .filter((l) => keep(l.split(' ')[0]!))
}

// every form memcached checks the setting for (before it reads the class ids) and the
// ones it refuses for their token count; `slabs automove` still answers OK
const REASSIGN_REQUESTS = [
  'slabs reassign 1 2', 'slabs reassign -1 2', 'slabs reassign 99 2', 'slabs reassign a b',
  'slabs reassign 1 1', 'slabs reassign 1 2 x', 'slabs reassign 1', 'slabs automove 2',
  'slabs automove 3', 'slabs automove 0', 'mn',
].map((l) => `${l}\r\n`).join('')

test('-o no_slab_reassign and -o no_modern: slabs reassign refused, slab_reassign no, no page-move stats, as memcached', async () => {
  const configs = [['-o', 'no_slab_reassign'], ['-o', 'no_modern']]
  const servers = await startAll(configs.flatMap((flags) => [() => startMemcached(flags), () => startFerrocached(['-l', '127.0.0.1', '-U', '0', ...flags])]))
  running.push(...servers)
  for (const [i, flags] of configs.entries()) {
    const [m, f] = [servers[2 * i]!, servers[2 * i + 1]!]
    const what = flags.join(' ')
    const [rm, rf] = await Promise.all([exchange(m.port, REASSIGN_REQUESTS, 'MN\r\n'), exchange(f.port, REASSIGN_REQUESTS, 'MN\r\n')])
    assert.is(rf, rm, what)
    assert.match(rm, /^CLIENT_ERROR slab reassignment disabled\r\n/, what)
    const settings = (name: string): boolean => ['slab_reassign', 'slab_automove', 'lru_segmented', 'lru_crawler'].includes(name)
    const [sm, sf] = await Promise.all([statLines(m.port, 'settings', settings), statLines(f.port, 'settings', settings)])
    assert.equal(sf, sm, what)
    assert.ok(sm.includes('slab_reassign no'), sm.join(', '))
    // memcached lists these only when pages can move
    const moves = (name: string): boolean => name.startsWith('slab_reassign_') || name === 'slabs_moved'
    const [gm, gf] = await Promise.all([statLines(m.port, '', moves), statLines(f.port, '', moves)])
    assert.equal(gf, gm, what)
    assert.equal(gm, [], what)
  }
})

test('a listener that cannot be bound exits 71 (EX_OSERR), as memcached', async () => {
  const blocker = net.createServer()
  blocker.on('error', () => {})
  const port = await freePort()
  await new Promise<void>((resolve, reject) => {
    blocker.once('error', reject)
    blocker.listen(port, '127.0.0.1', resolve)
  })
  try {
    const cases = [['-p', String(port), '-l', '127.0.0.1'], ['-s', '/nonexistent-ferrocache-dir/m.sock']]
    for (const argv of cases) {
      const [m, f] = await Promise.all([run(MEMCACHED, [...asRoot, '-U', '0', ...argv], { ms: 10_000 }), runCli(['-U', '0', ...argv], {}, 15_000)])
      assert.is(m.code, 71, `memcached ${argv.join(' ')}: ${m.stderr}`)
      assert.is(f.code, m.code, `ferrocached ${argv.join(' ')}: ${f.stderr}`)
      assert.match(f.stderr, /"msg":"cannot listen"/)
    }
  } finally {
    blocker.close()
  }
})

test('with --load-async, a listener that cannot be bound still exits 71 (not as a failed strict load)', async () => {
  // A snapshot that takes a while to load: the listen fails while it is loading, and the
  // server's close rejects the load for the closed cache (was: exit 1, 'cannot load the
  // snapshot (strict)'). A load done first leaves nothing to reject: 71 either way.
  const dir = mkdtempSync(join(tmpdir(), 'ferrocache-flags-'))
  const blocker = net.createServer()
  blocker.on('error', () => {})
  try {
    const cache = new Cache({ memoryLimit: 64 * 1024 * 1024, dataDir: dir })
    const value = Buffer.alloc(100, 'v')
    for (let i = 0; i < 150_000; i++) cache.setSync(`key:${i}`, value)
    cache.close()
    const port = await freePort()
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject)
      blocker.listen(port, '127.0.0.1', resolve)
    })
    const f = await runCli(['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '64', '--data-dir', dir, '--load-async'], {}, 15_000)
    assert.is(f.code, 71, f.stderr)
    assert.not.match(f.stderr, /cannot load the snapshot/)
  } finally {
    blocker.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
