// --replica-auth user:pass on the command line: any local user reads a process's arguments
// (`ps`, /proc/<pid>/cmdline), while its environment is readable only by its owner. So the
// password is masked in the process title as soon as the command line is read, and a -d
// copy gets it through FERROCACHE_REPLICA_AUTH instead of its arguments. The flag is found as
// the parser finds it: a getopt prefix (`--replica-au`) names it too.
import { optionValues } from './options'

const OPTION = 'replica-auth'
const ENV = 'FERROCACHE_REPLICA_AUTH'

/** `user:pass` → `user:***` (a value without a colon is masked whole). */
function mask(value: string): string {
  const colon = value.indexOf(':')
  return colon < 0 ? '***' : `${value.slice(0, colon)}:***`
}

/** `argv` with the --replica-auth password masked, or null when it has none. */
export function maskedArgs(argv: readonly string[]): string[] | null {
  const values = optionValues(argv, OPTION)
  if (values.length === 0) return null
  const out = [...argv]
  for (const { at, inline } of values) {
    const arg = argv[at]!
    const eq = arg.indexOf('=')
    // in place, so the title is no longer than the arguments (a prefix stays a prefix)
    out[at] = inline ? `${arg.slice(0, eq + 1)}${mask(arg.slice(eq + 1))}` : mask(arg)
  }
  return out
}

/**
 * Masks the password in this process's title (what `ps` and /proc/<pid>/cmdline show; it
 * can only get shorter, which masking does). The arguments are visible for the moment
 * between exec and this call: FERROCACHE_REPLICA_AUTH avoids even that.
 */
export function hideSecretArgs(argv: readonly string[]): void {
  const masked = maskedArgs(argv)
  if (masked === null) return
  process.title = [process.argv0, ...process.execArgv, process.argv[1] ?? '', ...masked].join(' ')
}

/** For a -d copy: the arguments without --replica-auth and the environment carrying it (the flag won over the variable). */
export function moveSecretToEnv(argv: readonly string[], env: NodeJS.ProcessEnv): { argv: string[]; env: NodeJS.ProcessEnv } {
  const values = optionValues(argv, OPTION)
  const last = values[values.length - 1]
  if (last === undefined) return { argv: [...argv], env }
  const arg = argv[last.at]!
  const value = last.inline ? arg.slice(arg.indexOf('=') + 1) : arg
  // each occurrence goes: the --name=value word, or the name and its value word
  const drop = new Set(values.flatMap(({ at, inline }) => (inline ? [at] : [at - 1, at])))
  return { argv: argv.filter((_, i) => !drop.has(i)), env: { ...env, [ENV]: value } }
}
