// A command line's verdict from each server, for tests that hold ferrocached's command line
// to memcached's: whether it starts, or the exit code and message of its refusal.
import { parseCommandLine, UsageError } from '../../src/cli/options'
import { MEMCACHED, run } from './servers'

export interface Verdict {
  /** null: it starts; else the exit code of the refusal. */
  code: number | null
  message: string
}

/** ferrocached's verdict, from its command-line parser (no process). */
export function ferrocachedVerdict(argv: string[]): Verdict {
  try {
    const c = parseCommandLine(argv)
    if (c.kind !== 'run') throw new Error(c.kind)
    return { code: null, message: '' }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    return { code: err.exitCode, message: err.message }
  }
}

/**
 * memcached's: code null when it is still running after `ms` (it started; stopped then),
 * else its exit code and stderr. It listens on no port (`-p 0 -U 0`), as root as nobody. A
 * refusal takes a few ms, but on a loaded machine it came after 0.4 s (90ebb9e).
 */
export async function memcachedVerdict(argv: string[], ms = 1_500): Promise<Verdict> {
  const asRoot = process.getuid?.() === 0 ? ['-u', 'nobody'] : []
  const r = await run(MEMCACHED, [...asRoot, '-p', '0', '-U', '0', ...argv], { ms })
  return { code: r.code, message: r.stderr.trim() }
}
