// memcached 1.6.18's getopt loop stops at the first -h, -V or -i and prints its text: the
// first of them wins (`-V -h` prints the version), a mistake after it is never read, and
// the checks the loop makes on the flags before it (`-c 0`, `-t 0`, a bad `-B`, `-o`
// suboptions…) exit first (`-c 0 -V` exits 1). Checks memcached makes after its loop
// (`-m`, `-I`, logins, listeners) never run before such an exit.
import { parseArgs } from 'node:util'
import { atof, atoi } from './c-numbers'
import { memcachedError } from './errors'
import { parseExtended } from './extended'

type Options = NonNullable<Parameters<typeof parseArgs>[0]>['options']
type Token = { kind: 'option'; name: string; value?: string | undefined } | { kind: 'positional' | 'option-terminator' }

const EXITS = { help: 'help', version: 'version', license: 'license' } as const
/** The spellings that can stand alone (for a command line with a mistake after one). */
const ALONE: ReadonlySet<string> = new Set(['-h', '--help', '-V', '--version', '-i', '--license'])

function tokensOf(args: readonly string[], options: Options): Token[] {
  return parseArgs({ args: [...args], options, strict: true, allowPositionals: false, tokens: true }).tokens as Token[]
}

/**
 * What memcached does with `args` when one of its early exits is in them: `help`,
 * `version` or `license` for the first one, or memcached's error for a flag before it;
 * `undefined` when there is none, or the command line fails to parse before it.
 */
export function earlyExit(args: readonly string[], options: Options): 'help' | 'version' | 'license' | undefined {
  let tokens: Token[]
  try {
    tokens = tokensOf(args, options)
  } catch {
    // a mistake somewhere: fine if it comes after an early exit (getopt never reads it)
    const at = args.findIndex((a) => ALONE.has(a))
    if (at < 0) return undefined
    try {
      tokens = tokensOf(args.slice(0, at + 1), options)
    } catch {
      return undefined
    }
  }
  const at = tokens.findIndex((t) => t.kind === 'option' && t.name in EXITS)
  if (at < 0) return undefined
  for (const t of tokens.slice(0, at)) if (t.kind === 'option' && t.value !== undefined) checkInLoop(t.name, t.value)
  return EXITS[(tokens[at] as { name: keyof typeof EXITS }).name]
}

/** The checks memcached's getopt loop makes on a flag's value (its words; exit 1, `-B` 64). */
function checkInLoop(name: string, value: string): void {
  const refuse = (what: string): never => {
    throw memcachedError(`${what}, got "${value}" (memcached checks it before the -h/-V/-i after it)`)
  }
  switch (name) {
    case 'conn-limit':
      if (atoi(value) <= 0) refuse('Maximum connections must be greater than 0 (-c)')
      break
    case 'threads':
      if (atoi(value) <= 0) refuse('Number of threads must be greater than 0 (-t)')
      break
    case 'max-reqs-per-event':
      if (atoi(value) === 0) refuse('Number of requests per event must be greater than 0 (-R)')
      break
    case 'factor':
    case 'slab-growth-factor':
      if (atof(value) <= 1) refuse('Factor must be greater than 1 (-f)')
      break
    case 'slab-min-size':
      if (atoi(value) === 0) refuse('Chunk size must be greater than 0 (-n)')
      break
    case 'napi-ids':
      if (atoi(value) <= 0) refuse('Maximum number of NAPI IDs must be greater than 0 (-N)')
      break
    case 'prefix-delimiter':
      if (value === '') refuse('No delimiter specified (-D)')
      break
    case 'protocol':
      if (!['auto', 'binary', 'ascii'].includes(value)) {
        throw memcachedError(`Invalid value for binding protocol: ${value} -- should be one of auto, binary, or ascii (-B/--protocol)`, 64)
      }
      break
    case 'extended':
      try {
        parseExtended([value])
      } catch (err) {
        // a suboption memcached refuses as it reads it (exit 1); its checks across them
        // (exit 64) come after the loop
        if ((err as { exitCode?: number }).exitCode === 1) throw err
      }
      break
  }
}
