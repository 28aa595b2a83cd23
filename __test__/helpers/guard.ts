// Keeps one broken test from ending or hanging the whole run: uvu runs every test file in
// one process, so a single uncaught error would kill it and skip every file after it.
// - An uncaught exception or unhandled rejection is printed where it happened and fails
//   the run at exit (exit code 1); the remaining tests still run.
// - `setUp`/`tearDown`/`tearDownEach` wrap uvu 0.5's hooks, which skip a suite silently
//   (exit code 0) when `before` throws and end the whole run when `after` throws.
// - Child processes the helpers start (`ownChild`) are killed by PID if still running at
//   exit, and once uvu has finished, so a test that failed before stopping its servers
//   neither hangs the run nor leaves processes behind; also when the run is stopped by
//   SIGINT or SIGTERM.
// - A run with no test finishing for 10 minutes is stuck: it ends with exit code 1.
import type { ChildProcess } from 'node:child_process'
import type { Callback, Test } from 'uvu'

const failures: string[] = []
const unhandled = new Map<Promise<unknown>, string>()

function describe(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err)
}

/** Prints `err` at once and makes the run fail at exit. */
export function fail(what: string, err: unknown): void {
  const text = `${what}: ${describe(err)}`
  failures.push(text)
  process.stderr.write(`\n✘ ${text}\n  (the run goes on; it fails at the end)\n`)
}

process.on('uncaughtException', (err) => fail('uncaught exception', err))
process.on('unhandledRejection', (reason, promise) => {
  const text = describe(reason)
  unhandled.set(promise, text)
  process.stderr.write(`\n✘ unhandled rejection: ${text}\n  (the run fails at the end unless it is handled later)\n`)
})
process.on('rejectionHandled', (promise) => unhandled.delete(promise))

const children = new Map<ChildProcess, string>()

/** Registers a child process to be killed if it is still running when the run ends. */
export function ownChild(child: ChildProcess, what: string): void {
  children.set(child, what)
  child.once('exit', () => children.delete(child))
}

function killLeftovers(): string[] {
  const left: string[] = []
  for (const [child, what] of children) {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue
    left.push(`${what} (pid ${child.pid})`)
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
  children.clear()
  return left
}

// Stopped from outside (Ctrl-C, a CI time limit): node would exit without 'exit' handlers
// and leave the servers running.
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15]] as const) {
  process.once(signal, () => {
    const left = killLeftovers()
    process.stderr.write(`\n${signal}: the run stops${left.length > 0 ? `; killed ${left.join(', ')}` : ''}\n`)
    process.exit(128 + number)
  })
}

process.on('exit', () => {
  const left = killLeftovers()
  if (left.length > 0) process.stderr.write(`\nkilled at exit, still running: ${left.join(', ')}\n`)
  const total = failures.length + unhandled.size
  if (total > 0) {
    process.stderr.write(`\n✘ ${total} error(s) outside the tests' own assertions (printed above) fail this run\n`)
    process.exitCode = 1
  }
})

// uvu sets process.exitCode when its last file is done. Whatever a failed test left behind
// then (a child process, a listening server) would keep the process alive for ever: kill the
// children, and if something still holds the event loop after a grace period (10 s;
// FERROCACHE_TEST_EXIT_GRACE_MS), exit anyway.
const EXIT_GRACE_MS = Number(process.env.FERROCACHE_TEST_EXIT_GRACE_MS) || 10_000
const endWatch = setInterval(() => {
  if (process.exitCode === undefined) return
  clearInterval(endWatch)
  const left = killLeftovers()
  if (left.length > 0) process.stderr.write(`\nthe run is over; killed what a test left running: ${left.join(', ')}\n`)
  setTimeout(() => {
    process.stderr.write('\nthe run is over but open handles keep the process alive (a test did not close a server or socket); exiting\n')
    process.exit()
  }, EXIT_GRACE_MS).unref()
}, 500)
endWatch.unref()

// uvu has no time limit per test: a test awaiting something that never comes would hold the
// run (and CI) until killed from outside. uvu prints a mark per finished test; with no
// output at all for STALL_MS (10 min: the slowest test takes about 1 min on a loaded
// machine), the run is stuck: say so, with what still holds the event loop, and exit 1.
const STALL_MS = Number(process.env.FERROCACHE_TEST_STALL_MS) || 600_000
let lastOutput = Date.now()
const write = process.stdout.write.bind(process.stdout)
process.stdout.write = ((...args: Parameters<typeof process.stdout.write>) => {
  lastOutput = Date.now()
  return write(...args)
}) as typeof process.stdout.write
const stallWatch = setInterval(() => {
  if (Date.now() - lastOutput < STALL_MS) return
  process.stderr.write(
    `\n✘ no test finished for ${STALL_MS / 1000} s: the run is stuck (open: ${process.getActiveResourcesInfo().join(', ')}); exiting\n`,
  )
  process.exit(1)
}, Math.min(10_000, STALL_MS / 4))
stallWatch.unref()

/**
 * `test.before(fn)`, except that a failure fails every test of the suite with its error
 * (uvu would skip them all and report success).
 */
export function setUp<T>(test: Test<T>, fn: Callback<T>): void {
  let failure: { err: unknown } | undefined
  test.before(async (context) => {
    try {
      await fn(context)
    } catch (err) {
      failure = { err }
    }
  })
  test.before.each(() => {
    if (failure !== undefined) throw failure.err
  })
}

/** `test.after(fn)`, except that a failure is reported and fails the run instead of ending it. */
export function tearDown<T>(test: Test<T>, fn: Callback<T>): void {
  test.after(async (context) => {
    try {
      await fn(context)
    } catch (err) {
      fail('a test.after hook failed', err)
    }
  })
}

/**
 * `test.after.each(fn)`, except that a failure is reported and fails the run (in uvu a
 * throwing after.each hook skips the rest of the suite without a word).
 */
export function tearDownEach<T>(test: Test<T>, fn: Callback<T>): void {
  test.after.each(async (context) => {
    try {
      await fn(context)
    } catch (err) {
      fail('a test.after.each hook failed', err)
    }
  })
}
