// --replica-auth user:pass on the command line: any local user reads a process's arguments
// (`ps`, /proc/<pid>/cmdline), while its environment is readable only by its owner. So the
// password is masked in the process title as soon as the command line is read, and a -d
// copy gets it through FERROCACHE_REPLICA_AUTH instead of its arguments.

const FLAG = '--replica-auth'
const ENV = 'FERROCACHE_REPLICA_AUTH'

/** `user:pass` → `user:***` (a value without a colon is masked whole). */
function mask(value: string): string {
  const colon = value.indexOf(':')
  return colon < 0 ? '***' : `${value.slice(0, colon)}:***`
}

/** `argv` with the --replica-auth password masked, or null when it has none. */
export function maskedArgs(argv: readonly string[]): string[] | null {
  let found = false
  const out = argv.map((arg, i) => {
    if (arg.startsWith(`${FLAG}=`)) {
      found = true
      return `${FLAG}=${mask(arg.slice(FLAG.length + 1))}`
    }
    if (i > 0 && argv[i - 1] === FLAG) {
      found = true
      return mask(arg)
    }
    return arg
  })
  return found ? out : null
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
  const rest: string[] = []
  let value: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      rest.push(...argv.slice(i))
      break
    }
    if (arg.startsWith(`${FLAG}=`)) value = arg.slice(FLAG.length + 1)
    else if (arg === FLAG && i + 1 < argv.length) value = argv[++i]
    else rest.push(arg)
  }
  return value === undefined ? { argv: rest, env } : { argv: rest, env: { ...env, [ENV]: value } }
}
