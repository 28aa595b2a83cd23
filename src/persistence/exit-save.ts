// A Cache with a data directory that is still open when the process exits writes its last
// snapshot then, as close() would: a script that sets keys and returns (or calls
// process.exit) would otherwise lose every write since the last save. 'exit' listeners run
// synchronously, and the save is synchronous, so this needs no event loop. Signals that
// kill the process (SIGTERM without a handler, SIGKILL) run nothing, nor does a worker
// thread ended by terminate() or by the main thread's exit.
//
// The caches stay open: an 'exit' listener registered after the first cache runs after
// this one and may still read them (what it writes then is not saved). A failed save makes
// the exit status 1 when it would have been 0, as ferrocached's stop does: writes are lost.

/** A cache's save at exit: returns the error when the save failed (it was reported). */
type ExitSave = () => Error | undefined

const atExit = new Set<ExitSave>()

function saveAll(): void {
  let failed = false
  for (const save of [...atExit]) {
    try {
      if (save() !== undefined) failed = true
    } catch {
      failed = true // the other caches still save
    }
  }
  if (failed && !process.exitCode) process.exitCode = 1
}

/** Runs `save` when the process exits; the returned function takes it back (at `close()`). */
export function saveAtExit(save: ExitSave): () => void {
  if (atExit.size === 0) process.on('exit', saveAll)
  atExit.add(save)
  return () => {
    if (atExit.delete(save) && atExit.size === 0) process.off('exit', saveAll)
  }
}
