// -u <user> and the files a server needs after switching: the Unix socket (-s) belongs to the
// user, as memcached's (memcached creates it after switching), so the user can connect and
// the socket goes at stop even from a sticky directory; a --data-dir the user cannot write to
// is refused at start (every snapshot would fail, seen only at stop), a missing one is created
// for the user. Needs root (CI runs as root); without it each test checks nothing and says so.
// Runs dist/ (npm run build first).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setUp, tearDown } from './helpers/guard'
import { BIN, MEMCACHED, freePort, run, runCli, spawnOwned, stopChild, waitFor, waitForPort } from './helpers/servers'

const NOBODY = 65534
const isRoot = process.getuid?.() === 0

let dir = ''
setUp(test, () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrocache-review-cli-user-'))
  // sticky and world-writable, as /tmp: only a file's owner may remove it
  chmodSync(dir, 0o1777)
})
tearDown(test, () => rmSync(dir, { recursive: true, force: true }))

/** Connects to the Unix socket `path` as the user nobody and returns what `version` gets. */
async function versionAsNobody(path: string): Promise<string> {
  const script = `const s = require('net').connect(process.argv[1]); let got = '';
s.on('error', (e) => { process.stdout.write('error ' + e.code); process.exit(0) });
s.on('data', (d) => { got += d; if (got.endsWith('\\r\\n')) { process.stdout.write(got); s.end() } });
s.write('version\\r\\n')`
  const r = await run('/bin/sh', ['-c', `exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups "$0" -e "$1" "$2"`, process.execPath, script, path], { ms: 10_000 })
  return r.stdout || r.stderr
}

test('-u nobody -s <path>: the socket belongs to nobody (as memcached\'s), who can connect; removed at stop', async () => {
  if (!isRoot) return console.log('  (not root: -u does nothing, skipped)')
  const ours = join(dir, 'ferrocached.sock')
  const theirs = join(dir, 'memcached.sock')
  const child = spawnOwned(process.execPath, [BIN, '-u', 'nobody', '-s', ours], { stdio: ['ignore', 'ignore', 'pipe'] })
  const memcached = spawnOwned(MEMCACHED, ['-u', 'nobody', '-s', theirs], { stdio: ['ignore', 'ignore', 'ignore'] })
  try {
    assert.ok(await waitFor(() => existsSync(ours) && existsSync(theirs), 15_000), 'both sockets created')
    // the switch follows the bind: wait for it
    assert.ok(await waitFor(() => statSync(ours).uid === NOBODY, 5_000), `socket owner ${statSync(ours).uid}`)
    assert.equal([statSync(ours).uid, statSync(ours).gid], [statSync(theirs).uid, statSync(theirs).gid])
    assert.is(statSync(ours).mode & 0o777, statSync(theirs).mode & 0o777)
    assert.is(await versionAsNobody(theirs), 'VERSION 1.6.18\r\n')
    assert.is(await versionAsNobody(ours), 'VERSION 1.6.18\r\n')
  } finally {
    await Promise.all([stopChild(child), stopChild(memcached)])
  }
  assert.is(child.exitCode, 0)
  assert.not.ok(existsSync(ours), 'socket removed at stop')
})

test('-u nobody --data-dir: a directory nobody cannot write to or reach is refused at start, naming the path at fault; a missing one is made for nobody with its parents (under umask 027 too) and saved to at stop', async () => {
  if (!isRoot) return console.log('  (not root: -u does nothing, skipped)')
  const rootOwned = join(dir, 'root-owned')
  mkdirSync(rootOwned, { mode: 0o755 })
  const refused = await runCli(['-p', String(await freePort()), '-l', '127.0.0.1', '-u', 'nobody', '--data-dir', rootOwned], {}, 15_000)
  assert.is(refused.code, 1, refused.stderr)
  assert.match(refused.stderr, /not writable by the user nobody/)
  assert.equal(readdirSync(rootOwned), [], 'nothing written')

  // behind a parent nobody cannot pass through: refused, naming that parent (not the
  // directory, which nobody owns)
  const shut = join(dir, 'shut')
  mkdirSync(join(shut, 'data'), { recursive: true })
  chmodSync(shut, 0o750)
  chownSync(join(shut, 'data'), NOBODY, NOBODY)
  const behind = await runCli(['-p', String(await freePort()), '-l', '127.0.0.1', '-u', 'nobody', '--data-dir', join(shut, 'data')], {}, 15_000)
  assert.is(behind.code, 1, behind.stderr)
  assert.match(behind.stderr, `cannot be reached by the user nobody (-u): ${shut} does not let it through`)

  // made with its parents under a umask that shuts others out (a hardened root's 027): the
  // parents made for it are nobody's too, so nobody reaches it
  const made = join(dir, 'made', 'deeper', 'data')
  const port = await freePort()
  const argv = [BIN, '-p', String(port), '-l', '127.0.0.1', '-u', 'nobody', '--data-dir', made]
  const child = spawnOwned('/bin/sh', ['-c', 'umask 027; exec "$0" "$@"', process.execPath, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  try {
    await waitForPort(port, 15_000, child)
    assert.is(statSync(made).uid, NOBODY)
    assert.is(statSync(join(dir, 'made')).mode & 0o777, 0o750, 'the umask still holds for others')
  } finally {
    await stopChild(child)
  }
  assert.is(child.exitCode, 0, stderr)
  assert.ok(readdirSync(made).some((f) => f.startsWith('snapshot-')), `${readdirSync(made).join(' ')}\n${stderr}`)
})

test.run()
