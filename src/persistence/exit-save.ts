// A Cache with a data directory that is still open when the process exits writes its last
// snapshot then, as close() would: a script that sets keys and returns (or calls
// process.exit) would otherwise lose every write since the last save. 'exit' listeners run
// synchronously, and Persistence.close(true) saves synchronously, so this needs no event
// loop. Signals that kill the process (SIGTERM without a handler, SIGKILL) run nothing.

const atExit = new Set<() => void>()

function saveAll(): void {
  for (const save of [...atExit]) {
    try {
      save()
    } catch {
      // logged by the save; the other caches still save
    }
  }
}

/** Runs `save` when the process exits; the returned function takes it back (at `close()`). */
export function saveAtExit(save: () => void): () => void {
  if (atExit.size === 0) process.on('exit', saveAll)
  atExit.add(save)
  return () => {
    if (atExit.delete(save) && atExit.size === 0) process.off('exit', saveAll)
  }
}
