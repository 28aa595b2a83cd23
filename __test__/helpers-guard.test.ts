// helpers/guard.ts, checked on the uvu runs of fixtures/guard/*.ts in a child process: a
// failing setUp fails its tests, an error outside any assertion (an 'error' event nobody
// listens to, a throw in a timer, an unhandled rejection) or a failing tearDown is reported
// and fails the run without ending it, leftovers of a failed test do not hang it nor
// outlive a run stopped by a signal, and a test that waits for ever ends the run after the
// stall limit.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ROOT } from './helpers/servers'

const UVU = join(ROOT, 'node_modules', 'uvu', 'bin.js')

/** Runs uvu on the fixtures matching `pattern` (killed after 60 s: code null); its exit code and output. */
function uvu(
  pattern: string,
  env: NodeJS.ProcessEnv = {},
  onOutput: (out: string, child: ChildProcess) => void = () => {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [UVU, join('__test__', 'fixtures', 'guard'), pattern, '-r', 'tsx/cjs', '-c', 'false'], {
      cwd: ROOT,
      env: { ...process.env, FORCE_COLOR: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      onOutput(out, child)
    })
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out })
    })
  })
}

/** Whether a process with this PID is running: it exists and is no zombie (killed, not yet reaped). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

test('a setUp that throws fails every test of its suite (uvu alone reports success)', async () => {
  const r = await uvu('a-setup-fails\\.ts$')
  assert.is(r.code, 1, r.out)
  assert.match(r.out, 'setup failed on purpose')
  assert.match(r.out, /\(0 \/ 1\)/)
})

test('an error event, a throw in a timer and a rejection nobody handles fail the run, which goes on', async () => {
  const r = await uvu('(b-uncaught|c-teardown-fails|d-next-file)\\.ts$')
  assert.is(r.code, 1, r.out)
  assert.match(r.out, 'error event nobody listens to')
  assert.match(r.out, 'thrown in a timer')
  assert.match(r.out, 'rejection nobody handles')
  assert.match(r.out, 'teardown failed on purpose')
  assert.match(r.out, /\(2 \/ 2\)/, 'the test after the errors ran')
  assert.match(r.out, 'NEXT FILE RAN')
})

test('a child process and a server a test left running neither hang the run nor outlive it', async () => {
  // (the run waits FERROCACHE_TEST_EXIT_GRACE_MS for what keeps it alive: 1 s, not 10)
  const r = await uvu('e-leaks\\.ts$', { FERROCACHE_TEST_EXIT_GRACE_MS: '1000' })
  const pid = Number(/LEAKED PID (\d+)/.exec(r.out)?.[1])
  assert.ok(pid > 0, r.out)
  assert.is.not(r.code, null, 'uvu did not end within 60 s')
  assert.not.ok(alive(pid), `the leaked child ${pid} still runs`)
  assert.match(r.out, /killed what a test left running: \/bin\/sleep 600/)
  assert.match(r.out, /open handles keep the process alive/)
  assert.is(r.code, 0, 'a leak after passing tests is reported, not a failure')
})

test('a run stopped by SIGTERM kills the children its tests started', async () => {
  let signalled = false
  const r = await uvu('h-signalled\\.ts$', {}, (out, child) => {
    if (!signalled && /STARTED PID \d+/.test(out)) {
      signalled = true
      child.kill('SIGTERM')
    }
  })
  const pid = Number(/STARTED PID (\d+)/.exec(r.out)?.[1])
  assert.ok(pid > 0, r.out)
  assert.is(r.code, 143, r.out)
  assert.match(r.out, /SIGTERM: the run stops; killed \/bin\/sleep 600/)
  assert.not.ok(alive(pid), `the child ${pid} outlived the run`)
})

test('a test that waits for ever ends the run once nothing was printed for the stall limit', async () => {
  const r = await uvu('f-stuck\\.ts$', { FERROCACHE_TEST_STALL_MS: '2000' })
  assert.is(r.code, 1, r.out)
  assert.match(r.out, /no test finished for 2 s: the run is stuck \(open: .*TCPServerWrap/)
  // tests that keep finishing are no stall, however long they take together
  const slow = await uvu('g-slow\\.ts$', { FERROCACHE_TEST_STALL_MS: '2000' })
  assert.is(slow.code, 0, slow.out)
  assert.match(slow.out, /\(4 \/ 4\)/)
})

test.run()
