// ferrocached's command line: memcached's flags and defaults, long forms, and FERROCACHE_*
// environment variables (flags win over the environment). Pure: no I/O, easy to test.
import { parseArgs } from 'node:util'
import { parseSaveRules } from '../persistence/rules'
import { loginProblem, parseTarget } from '../replication/options'
import type { CommandSwitches, ListenAddress } from '../server/options'
import type { TlsFiles, TlsSettings } from '../server/tls'
import { earlyExit } from './early-exit'
import { memcachedError, UsageError } from './errors'
import { checkSlabSizes, parseExtended, type EngineTuning, type ExtendedResult } from './extended'
import { flagFloat, flagInt, flagItemSize } from './flag-numbers'
import { applyMemcachedFlags, joinListen } from './memcached'

export { UsageError }

/** Everything the command line decides. Sizes in bytes, times in seconds, as memcached. */
export interface CliSettings {
  port: number
  listen: string
  /** Item memory in bytes (`-m` is megabytes). */
  memoryLimit: number
  connLimit: number
  maxItemSize: number
  growthFactor: number
  slabMinSize: number
  /** `-o slab_sizes=100-200-…`: explicit slab class chunk sizes instead of `-f`/`-n`. */
  slabSizes?: number[]
  /** memcached's `slab_chunk_max` as `-I` and `-o` leave it (checked as memcached checks it). */
  slabChunkMax?: number
  /** `-M` turns this off: errors instead of evictions when memory is full. */
  evictions: boolean
  verbosity: number
  enableShutdown: boolean
  /** `-o idle_timeout=N`, seconds; 0 = never. */
  idleTimeout: number
  /** `--data-dir` and friends; absent = no persistence (memcached's behaviour). */
  persistence?: CliPersistence
  /** `--metrics-port`: serve /metrics and the status page; absent = off. */
  metricsPort?: number
  /** `--metrics-host` (default: the `-l` address). */
  metricsHost?: string
  /** `-U`: memcached's UDP protocol on this port; absent (or `-U 0`): no UDP. */
  udpPort?: number
  /** `-Y/--auth-file`: connections must log in as one of its users (`-S` needs it). */
  authFile?: string
  /** `--tls-cert`/`--tls-key`/`--tls-ca` (or `-Z` with `-o ssl_chain_cert=,ssl_key=,ssl_ca_cert=`). */
  tls?: TlsFiles
  /** `--replica-of host:port` and friends; absent = a primary with the default backlog. */
  replication?: CliReplication
  /** `--no-replication-commands`: false (`replicaof`/`psync` answer `ERROR`); absent = on. */
  replicationCommands?: false
  // memcached's other flags, absent when not given (src/cli/memcached.ts):
  /** `-l a,b:port,[::1]:port,notls:c`: every address (`listen` is the first's host). */
  listenAddresses?: ListenAddress[]
  /** `-s <path>` and `-a <octal mask>` (default 0o700): a Unix socket instead of TCP. */
  unixSocket?: { path: string; mode: number }
  /** `-b`. */
  backlog?: number
  /** `-P`: written once listening (after `-u`), removed at stop. */
  pidFile?: string
  /** `-d`: the command returns once a detached copy of the server listens. */
  daemonize?: boolean
  /** `-u`: switch to this user after binding, when started as root. */
  user?: string
  /** `-C`, `-F`, `-X`, `-W`, `-R`, `-B`. */
  switches?: Partial<CommandSwitches>
  /** `-o` settings of the engine (LRU, slab automover, LRU crawler). */
  tuning?: EngineTuning
  /** `-o hashpower=N`: the hash table's first size, 2^N slots. */
  hashPower?: number
  /** `-o no_hashexpand`: false. */
  hashExpand?: boolean
  /** `-o no_slab_reassign` / `no_modern`: false (`slab_reassign` after them: true). */
  slabReassign?: boolean
  /** `-o slab_automove_window=N` (`cacheOptions.slabAutomoveWindow`). */
  slabAutomoveWindow?: number
  /** `-L`: slab pages in 2 MiB pairs advised for transparent huge pages (`cacheOptions.largePages`). */
  largePages?: boolean
  /** `-D`. */
  prefixDelimiter?: string
  /** Options accepted without effect: one log line each at start, saying why. */
  notes?: string[]
  /** `stats settings` values shown as memcached shows them (`-o ext_wbuf_size`…). */
  settingsShown?: [string, string][]
}

/** `--replica-of`, `--replica-writable`, `--repl-backlog`, `--repl-timeout`, `--replica-auth`. */
export interface CliReplication {
  replicaOf?: { host: string; port: number }
  replicaWritable: boolean
  /** Bytes (`--repl-backlog 64mb`). */
  backlogSize?: number
  /** ms (`--repl-timeout <seconds>`; 0: none). */
  linkTimeout?: number
  auth?: { username: string; password: string }
  /** `--replica-tls` / `--replica-tls-ca|cert|key <file>`: TLS on the link (file paths). */
  tls?: { ca?: string; cert?: string; key?: string }
}

/** Snapshot settings, present only with `--data-dir`. */
export interface CliPersistence {
  dataDir: string
  /** `--save` rules (Redis syntax); `undefined` = the default rules. */
  save: string | undefined
  /** `--keep-snapshots` (default 2). */
  keepSnapshots: number
  /** `--strict-load`: refuse to start when the newest snapshot is damaged. */
  strictLoad: boolean
  /** `--load-async`: open the port at once and load meanwhile. */
  loadAsync: boolean
  /** `--appendfsync`: the append-only log and its fsync policy; absent = no log. */
  appendfsync?: 'always' | 'everysec' | 'no'
}

export type CliCommand =
  | { kind: 'run'; settings: CliSettings }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'license' }

export const DEFAULTS: Readonly<CliSettings> = {
  port: 11211,
  listen: '127.0.0.1',
  memoryLimit: 64 * 1024 * 1024,
  connLimit: 1024,
  maxItemSize: 1024 * 1024,
  growthFactor: 1.25,
  slabMinSize: 48,
  evictions: true,
  verbosity: 0,
  enableShutdown: false,
  idleTimeout: 0,
}

const OPTIONS = {
  port: { type: 'string', short: 'p' },
  // repeated -l add addresses, as memcached's (joinListen)
  listen: { type: 'string', short: 'l', multiple: true },
  'memory-limit': { type: 'string', short: 'm' },
  'conn-limit': { type: 'string', short: 'c' },
  'max-item-size': { type: 'string', short: 'I' },
  factor: { type: 'string', short: 'f' },
  // memcached's own long name for -f, so existing service files keep working.
  'slab-growth-factor': { type: 'string' },
  'slab-min-size': { type: 'string', short: 'n' },
  'disable-evictions': { type: 'boolean', short: 'M' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  'udp-port': { type: 'string', short: 'U' },
  'enable-shutdown': { type: 'boolean', short: 'A' },
  extended: { type: 'string', short: 'o', multiple: true },
  'data-dir': { type: 'string' },
  save: { type: 'string' },
  'keep-snapshots': { type: 'string' },
  'strict-load': { type: 'boolean' },
  'load-async': { type: 'boolean' },
  appendfsync: { type: 'string' },
  'metrics-port': { type: 'string' },
  'metrics-host': { type: 'string' },
  'auth-file': { type: 'string', short: 'Y' },
  'enable-sasl': { type: 'boolean', short: 'S' },
  'enable-ssl': { type: 'boolean', short: 'Z' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'replica-of': { type: 'string' },
  'replica-writable': { type: 'boolean' },
  'repl-backlog': { type: 'string' },
  'repl-timeout': { type: 'string' },
  'replica-auth': { type: 'string' },
  'replica-tls': { type: 'boolean' },
  'no-replication-commands': { type: 'boolean' },
  'replica-tls-ca': { type: 'string' },
  'replica-tls-cert': { type: 'string' },
  'replica-tls-key': { type: 'string' },
  // memcached's remaining flags, with its long names (-D has none in memcached)
  'unix-socket': { type: 'string', short: 's' },
  'unix-mask': { type: 'string', short: 'a' },
  'listen-backlog': { type: 'string', short: 'b' },
  pidfile: { type: 'string', short: 'P' },
  daemon: { type: 'boolean', short: 'd' },
  user: { type: 'string', short: 'u' },
  threads: { type: 'string', short: 't' },
  'max-reqs-per-event': { type: 'string', short: 'R' },
  protocol: { type: 'string', short: 'B' },
  'disable-cas': { type: 'boolean', short: 'C' },
  'disable-flush-all': { type: 'boolean', short: 'F' },
  'disable-dumping': { type: 'boolean', short: 'X' },
  'disable-watch': { type: 'boolean', short: 'W' },
  'prefix-delimiter': { type: 'string', short: 'D' },
  'enable-largepages': { type: 'boolean', short: 'L' },
  'lock-memory': { type: 'boolean', short: 'k' },
  'enable-coredumps': { type: 'boolean', short: 'r' },
  'memory-file': { type: 'string', short: 'e' },
  // memcached's getopt name (its -h spells it --napi_ids, which normalizeArgv also takes)
  'napi-ids': { type: 'string', short: 'N' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  license: { type: 'boolean', short: 'i' },
} as const

/** The long options (`--port` is `port`). */
export const LONG_OPTIONS = Object.keys(OPTIONS) as ReadonlyArray<keyof typeof OPTIONS>

/** Environment variable → the long option it stands for. */
export const ENV_VARS: Readonly<Record<string, keyof typeof OPTIONS>> = {
  FERROCACHE_PORT: 'port',
  FERROCACHE_LISTEN: 'listen',
  FERROCACHE_MEMORY_LIMIT: 'memory-limit',
  FERROCACHE_CONN_LIMIT: 'conn-limit',
  FERROCACHE_MAX_ITEM_SIZE: 'max-item-size',
  FERROCACHE_FACTOR: 'factor',
  FERROCACHE_SLAB_GROWTH_FACTOR: 'slab-growth-factor',
  FERROCACHE_SLAB_MIN_SIZE: 'slab-min-size',
  FERROCACHE_DISABLE_EVICTIONS: 'disable-evictions',
  FERROCACHE_VERBOSE: 'verbose',
  FERROCACHE_UDP_PORT: 'udp-port',
  FERROCACHE_ENABLE_SHUTDOWN: 'enable-shutdown',
  FERROCACHE_EXTENDED: 'extended',
  FERROCACHE_DATA_DIR: 'data-dir',
  FERROCACHE_SAVE: 'save',
  FERROCACHE_KEEP_SNAPSHOTS: 'keep-snapshots',
  FERROCACHE_STRICT_LOAD: 'strict-load',
  FERROCACHE_LOAD_ASYNC: 'load-async',
  FERROCACHE_APPENDFSYNC: 'appendfsync',
  FERROCACHE_METRICS_PORT: 'metrics-port',
  FERROCACHE_METRICS_HOST: 'metrics-host',
  FERROCACHE_AUTH_FILE: 'auth-file',
  FERROCACHE_ENABLE_SASL: 'enable-sasl',
  FERROCACHE_ENABLE_SSL: 'enable-ssl',
  FERROCACHE_TLS_CERT: 'tls-cert',
  FERROCACHE_TLS_KEY: 'tls-key',
  FERROCACHE_TLS_CA: 'tls-ca',
  FERROCACHE_REPLICA_OF: 'replica-of',
  FERROCACHE_REPLICA_WRITABLE: 'replica-writable',
  FERROCACHE_REPL_BACKLOG: 'repl-backlog',
  FERROCACHE_REPL_TIMEOUT: 'repl-timeout',
  FERROCACHE_REPLICA_AUTH: 'replica-auth',
  FERROCACHE_REPLICA_TLS: 'replica-tls',
  FERROCACHE_NO_REPLICATION_COMMANDS: 'no-replication-commands',
  FERROCACHE_REPLICA_TLS_CA: 'replica-tls-ca',
  FERROCACHE_REPLICA_TLS_CERT: 'replica-tls-cert',
  FERROCACHE_REPLICA_TLS_KEY: 'replica-tls-key',
  FERROCACHE_UNIX_SOCKET: 'unix-socket',
  FERROCACHE_UNIX_MASK: 'unix-mask',
  FERROCACHE_LISTEN_BACKLOG: 'listen-backlog',
  FERROCACHE_PIDFILE: 'pidfile',
  FERROCACHE_DAEMON: 'daemon',
  FERROCACHE_USER: 'user',
  FERROCACHE_THREADS: 'threads',
  FERROCACHE_MAX_REQS_PER_EVENT: 'max-reqs-per-event',
  FERROCACHE_PROTOCOL: 'protocol',
  FERROCACHE_DISABLE_CAS: 'disable-cas',
  FERROCACHE_DISABLE_FLUSH_ALL: 'disable-flush-all',
  FERROCACHE_DISABLE_DUMPING: 'disable-dumping',
  FERROCACHE_DISABLE_WATCH: 'disable-watch',
  FERROCACHE_PREFIX_DELIMITER: 'prefix-delimiter',
  FERROCACHE_ENABLE_LARGEPAGES: 'enable-largepages',
  FERROCACHE_LOCK_MEMORY: 'lock-memory',
  FERROCACHE_ENABLE_COREDUMPS: 'enable-coredumps',
  FERROCACHE_MEMORY_FILE: 'memory-file',
  FERROCACHE_NAPI_IDS: 'napi-ids',
}

const MB = 1024 * 1024

function integer(name: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${name} must be a whole number, got "${text}"`)
  const n = Number(text.trim())
  if (n < min || n > max) throw new UsageError(`${name} must be between ${min} and ${max}, got ${n}`)
  return n
}

/**
 * `-p`/`-U`: memcached's `atoi` (`-p 11211x` is 11211, logged). memcached reads a text
 * without a number as 0: no UDP for `-U`, as here, and no TCP for `-p`, where ferrocached's
 * `-p 0` is a port the system picks, so `-p` refuses it (exit 2). Past 65535 (memcached's
 * port wraps) exits 2; a negative one other than -1 (the system's pick) exits 71 as
 * memcached's failed listen ("getaddrinfo(): Servname not supported for ai_socktype").
 */
function port(flag: string, text: string, notes: string[], garbageIsZero: boolean): number {
  const n = flagInt(flag, text, notes)
  if (n === 0 && !garbageIsZero && text.trim() !== '0') throw new UsageError(`${flag} must be a whole number, got "${text}"`)
  if (n < 0) throw memcachedError(`${flag}: bad port "${text}" (getaddrinfo(): Servname not supported for ai_socktype)`, 71)
  if (n > 65535) throw new UsageError(`${flag} must be between 0 and 65535, got ${n}`)
  return n
}

/** memcached's size syntax: bytes, or a number with a k/m/g suffix (`1m`, `512k`). */
export function parseSize(name: string, text: string, unitIfBare: number): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim())
  // -m counts megabytes: '512k' would be refused as under 1 MB
  const examples = unitIfBare === MB ? '64 (megabytes), 512m or 2g' : '1024, 512k or 1m'
  if (!m) throw new UsageError(`${name} must be a size such as ${examples}, got "${text}"`)
  const unit = { '': unitIfBare, k: 1024, m: MB, g: 1024 * MB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']
  return Number(m[1]) * unit
}

/** Runs a check whose UsageError memcached refuses too: its exit code becomes memcached's. */
function asMemcached<T>(check: () => T, exitCode: number): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof UsageError) throw memcachedError(err.message, exitCode)
    throw err
  }
}

function boolEnv(name: string, text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true
  if (/^(0|false|no|off|)$/i.test(text)) return false
  throw new UsageError(`${name} must be 1/true or 0/false, got "${text}"`)
}

export type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true }>>['values']

/** Turns environment variables into the same shape parseArgs produces for flags. */
function fromEnv(env: NodeJS.ProcessEnv): Partial<Record<keyof typeof OPTIONS, unknown>> {
  const out: Partial<Record<keyof typeof OPTIONS, unknown>> = {}
  for (const [name, option] of Object.entries(ENV_VARS)) {
    const text = env[name]
    if (text === undefined) continue
    const spec = OPTIONS[option]
    if (option === 'verbose') out.verbose = Array(integer(name, text, 0, 3)).fill(true)
    else if (option === 'extended' || option === 'listen') out[option] = [text]
    else if (spec.type === 'boolean') out[option] = boolEnv(name, text)
    else out[option] = text
  }
  return out
}

/**
 * A start-up note per FERROCACHE_* variable that names no option (`FERROCACHE_MEMORYLIMIT`
 * was ignored without a word: the server started with the default), with the variable meant
 * when only underscores differ. FERROCACHE_TEST_, _MODEL_ and _STRESS_ are the test tools'.
 */
function unknownEnvNotes(env: NodeJS.ProcessEnv): string[] {
  const bare = (name: string): string => name.replace(/_/g, '')
  return Object.keys(env)
    .filter((name) => name.startsWith('FERROCACHE_') && !(name in ENV_VARS) && !/^FERROCACHE_(TEST|MODEL|STRESS)_/.test(name))
    .map((name) => {
      const meant = Object.keys(ENV_VARS).find((known) => bare(known) === bare(name))
      return `${name}: no such variable, ignored${meant === undefined ? ' (ferrocached --help: FERROCACHE_<LONG_OPTION>)' : ` (${meant}?)`}`
    })
}

/** memcached 1.6.18's getopt_long names (its `longopts`), all of them options here too. */
const MEMCACHED_LONG_OPTIONS: readonly string[] = [
  'unix-mask', 'enable-shutdown', 'enable-ssl', 'port', 'unix-socket', 'udp-port', 'threads', 'memory-limit',
  'disable-evictions', 'conn-limit', 'enable-coredumps', 'pidfile', 'daemon', 'memory-file', 'license', 'help',
  'enable-largepages', 'disable-dumping', 'disable-watch', 'slab-growth-factor', 'slab-min-size', 'auth-file',
  'enable-sasl', 'max-item-size', 'version', 'verbose', 'listen', 'listen-backlog', 'user', 'max-reqs-per-event',
  'disable-cas', 'lock-memory', 'protocol', 'extended', 'napi-ids', 'disable-flush-all',
]

/**
 * The option a long name stands for: itself, or the one long option it is a prefix of. A
 * prefix memcached reads as one of its options is that option here too, though ferrocached's
 * own names share it (`--t` is `--threads`, not ambiguous with `--tls-cert`): a command line
 * memcached starts with must mean the same here.
 */
function longOption(name: string): string | undefined {
  if (name === 'napi_ids') return 'napi-ids'
  if ((LONG_OPTIONS as readonly string[]).includes(name)) return name
  const memcached = MEMCACHED_LONG_OPTIONS.filter((o) => o.startsWith(name))
  if (memcached.length === 1) return memcached[0]
  const matches = LONG_OPTIONS.filter((o) => o.startsWith(name))
  if (matches.length > 1) {
    throw memcachedError(`option '--${name}' is ambiguous; possibilities: ${matches.map((m) => `'--${m}'`).join(' ')}`)
  }
  return matches[0]
}

function takesValue(option: string): boolean {
  return OPTIONS[option as keyof typeof OPTIONS]?.type === 'string'
}

const SHORT_TAKES_VALUE: ReadonlySet<string> = new Set<string>(Object.values(OPTIONS).flatMap((o) => ('short' in o && o.type === 'string' ? [o.short] : [])))

/**
 * Rewrites argv where memcached's getopt_long reads it otherwise than Node's parseArgs: a
 * unique prefix of a long option is that option (`--enable-shut`; an ambiguous one is
 * refused, exit 1), `--verbose` takes an optional value and ignores it (`--verbose=2` is
 * one `-v`), and an option that takes a value takes the next word whatever it starts with
 * (`-p -1`, `--port -1`, `-D -`), where parseArgs refuses a value starting with `-`.
 */
export function normalizeArgv(argv: readonly string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      out.push(...argv.slice(i))
      break
    }
    const next = argv[i + 1]
    const long = /^--([^=]+)(=.*)?$/s.exec(arg)
    if (long !== null) {
      const option = longOption(long[1]!)
      if (option === undefined) {
        out.push(arg)
        continue
      }
      if (option === 'verbose') out.push('--verbose')
      else if (long[2] === undefined && takesValue(option) && next !== undefined && next.startsWith('-')) {
        out.push(`--${option}=${next}`)
        i++
      } else out.push(`--${option}${long[2] ?? ''}`)
      continue
    }
    // a group of short flags whose last one takes the next word as its value
    const short = /^-([A-Za-z]+)$/.exec(arg)
    const letters = short?.[1] ?? ''
    const valueAt = [...letters].findIndex((c) => SHORT_TAKES_VALUE.has(c))
    if (short !== null && valueAt === letters.length - 1 && next !== undefined && next.startsWith('-')) {
      out.push(arg + next)
      i++
      continue
    }
    out.push(arg)
  }
  return out
}

/**
 * Where the parser finds `option`'s values in argv, getopt's prefixes included
 * (`--replica-au u:p`): `at` is the word holding the value, `inline` when it is the
 * `--name=value` word itself. For masking a secret in place (secret-args.ts).
 */
export function optionValues(argv: readonly string[], option: keyof typeof OPTIONS): { at: number; inline: boolean }[] {
  const found: { at: number; inline: boolean }[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') break
    const long = /^--([^=]+)(=.*)?$/s.exec(arg)
    if (long !== null) {
      let name: string | undefined
      try {
        name = longOption(long[1]!)
      } catch {
        continue // ambiguous: the parser refuses the command line
      }
      if (name === undefined || !takesValue(name)) continue
      if (long[2] !== undefined) {
        if (name === option) found.push({ at: i, inline: true })
      } else if (i + 1 < argv.length) {
        if (name === option) found.push({ at: i + 1, inline: false })
        i++
      }
      continue
    }
    // a group of short flags whose last one takes the next word
    const letters = /^-([A-Za-z]+)$/.exec(arg)?.[1] ?? ''
    if (letters !== '' && SHORT_TAKES_VALUE.has(letters[letters.length - 1]!) && [...letters].findIndex((c) => SHORT_TAKES_VALUE.has(c)) === letters.length - 1) i++
  }
  return found
}

/**
 * `--verbose 2`: memcached's getopt takes `--verbose`'s value only after `=` and ignores
 * the stray word (one `-v`); refused here as any stray word, saying how to get more.
 */
function strayValueHint(argv: readonly string[], message: string): string {
  const stray = /^Unexpected argument '(.*)'/s.exec(message)?.[1]
  const i = stray === undefined ? -1 : argv.indexOf(stray)
  if (i <= 0 || !/^--verb/.test(argv[i - 1]!) || argv[i - 1]!.includes('=')) return message
  return `Unexpected argument '${stray}': --verbose takes no value (memcached counts it as one -v and ignores '${stray}'); repeat -v for more: -vv`
}

/**
 * Parses argv (without node and the script) and the environment. Throws [[UsageError]]
 * for anything memcached would reject or ferrocached cannot honour.
 */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv = {}): CliCommand {
  let flags: Values
  const args = normalizeArgv(argv)
  // memcached's getopt loop acts on the first -h, -V or -i where it meets it: a mistake
  // after it is never read (`-h --bogus` prints the help, exit 0), one before it is
  // refused first (`-c 0 -V` exits 1)
  const early = earlyExit(args, OPTIONS)
  if (early !== undefined) return { kind: early }
  try {
    flags = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values
  } catch (err) {
    // unknown option, missing argument: memcached's getopt error exits 1
    throw memcachedError(strayValueHint(argv, (err as Error).message))
  }
  const v = { ...fromEnv(env), ...dropUndefined(flags) } as Values
  // Errors name the environment variable when that is where a value came from.
  const given = flags as Record<string, unknown>
  const envName = (o: string): string | undefined =>
    given[o] === undefined ? Object.keys(ENV_VARS).find((k) => ENV_VARS[k] === o && env[k] !== undefined) : undefined
  const name = (o: string, flag: string): string => envName(o) ?? flag

  const s: CliSettings = { ...DEFAULTS }
  // how numbers that are not plain were read (flag-numbers.ts), logged at start
  const notes: string[] = []
  if (v.port !== undefined && ephemeral(v.port)) {
    s.port = 0
    s.settingsShown = [...(s.settingsShown ?? []), ['tcpport', '-1']]
  } else if (v.port !== undefined) s.port = port(name('port', '-p/--port'), v.port, notes, false)
  if (v.listen !== undefined) {
    if (v.listen.some((l) => l.trim() === '')) throw new UsageError(`${name('listen', '-l/--listen')} needs an address`)
    s.listen = joinListen(v.listen).trim()
  }
  // (-l lists and host:port forms: applyMemcachedFlags, once -p is known)
  if (v['memory-limit'] !== undefined) {
    // memcached reads a bad -m as 0 and then refuses it (exit 64), as a bad -I
    s.memoryLimit = asMemcached(() => parseSize(name('memory-limit', '-m/--memory-limit'), v['memory-limit']!, MB), 64)
    if (s.memoryLimit < MB) throw memcachedError('-m/--memory-limit must be at least 1 (megabyte)', 64)
  }
  // memcached's atoi and check (exit 1); a limit past what the open-file limit can be raised
  // to is memcached's exit 71, at start (file-limit.ts)
  if (v['conn-limit'] !== undefined) {
    const flag = name('conn-limit', '-c/--conn-limit')
    s.connLimit = flagInt(flag, v['conn-limit'], notes)
    if (s.connLimit <= 0) throw memcachedError(`Maximum connections must be greater than 0 (${flag}), got "${v['conn-limit']}"`)
  }
  if (v['max-item-size'] !== undefined) {
    s.maxItemSize = flagItemSize(name('max-item-size', '-I/--max-item-size'), v['max-item-size'], notes)
    // memcached: "Item max size cannot be less than 1024 bytes.", exit 64
    if (s.maxItemSize < 1024) throw memcachedError(`-I/--max-item-size cannot be smaller than 1k (1024 bytes), got "${v['max-item-size']}"`, 64)
    // past half of -m memcached refuses too (exit 64, checked again below); else a size
    // memcached takes and ferrocache cannot honour (exit 2)
    if (s.maxItemSize > 16 * MB && s.maxItemSize <= s.memoryLimit / 2) throw new UsageError('-I/--max-item-size cannot be larger than 16m')
  }
  // -f and its memcached alias: a flag wins over either variable, -f over the alias.
  const factorOption =
    flags.factor !== undefined ? 'factor'
    : flags['slab-growth-factor'] !== undefined ? 'slab-growth-factor'
    : v.factor !== undefined ? 'factor' : 'slab-growth-factor'
  const factor = v[factorOption]
  if (factor !== undefined) {
    const flag = name(factorOption, factorOption === 'factor' ? '-f/--factor' : '--slab-growth-factor')
    // memcached's atof, then "Factor must be greater than 1" (exit 1); inf and nan too here
    const f = flagFloat(flag, factor, notes)
    if (!(f > 1) || !Number.isFinite(f)) throw memcachedError(`${flag} must be a number greater than 1, got "${factor}"`)
    s.growthFactor = f
  }
  if (v['slab-min-size'] !== undefined) {
    const flag = name('slab-min-size', '-n/--slab-min-size')
    // memcached's atoi; it refuses 0 ("Chunk size must be greater than 0", exit 1) and starts
    // with a negative size, refused here too
    s.slabMinSize = flagInt(flag, v['slab-min-size'], notes)
    if (s.slabMinSize <= 0) throw memcachedError(`Chunk size must be greater than 0 (${flag}), got "${v['slab-min-size']}"`)
    if (s.slabMinSize > MB) throw memcachedError(`${flag} must be at most ${MB}, got ${s.slabMinSize}`)
  }
  if (v['disable-evictions'] !== undefined) s.evictions = !v['disable-evictions']
  // memcached counts every v (-vvvv: verbosity 4); past -vv the logs are the same
  if (v.verbose !== undefined) s.verbosity = v.verbose.length
  if (v['enable-shutdown'] !== undefined) s.enableShutdown = v['enable-shutdown']
  const tlsFiles: Partial<Record<'tls-cert' | 'tls-key' | 'tls-ca', string | undefined>> = { 'tls-cert': v['tls-cert'], 'tls-key': v['tls-key'], 'tls-ca': v['tls-ca'] }
  let tlsSettings: TlsSettings = {}
  let extended: ExtendedResult | undefined
  if (v.extended !== undefined) {
    const x = parseExtended(v.extended)
    extended = x
    if (x.idleTimeout !== undefined) s.idleTimeout = x.idleTimeout
    // memcached reads its ssl_* files only with -Z: without it they are set and unused
    if (v['enable-ssl']) for (const [flag, file] of Object.entries(x.tlsFiles)) tlsFiles[flag as keyof typeof tlsFiles] ??= file
    if (v['enable-ssl']) tlsSettings = x.tlsSettings
    if (Object.keys(x.tuning).length > 0) s.tuning = x.tuning
    if (x.hashPower !== undefined) s.hashPower = x.hashPower
    if (x.hashExpand !== undefined) s.hashExpand = x.hashExpand
    if (x.slabReassign !== undefined) s.slabReassign = x.slabReassign
    if (x.slabAutomoveWindow !== undefined) s.slabAutomoveWindow = x.slabAutomoveWindow
    if (x.shown !== undefined) s.settingsShown = [...(s.settingsShown ?? []), ...x.shown]
    if (x.notes.length > 0) s.notes = [...(s.notes ?? []), ...x.notes]
  }
  notes.push(...unknownEnvNotes(env))
  if (notes.length > 0) s.notes = [...notes, ...(s.notes ?? [])]
  applyMemcachedFlags(s, v, name)
  if (extended?.lruMaintainer === false) s.switches = { ...s.switches, lruMaintainer: false }
  applyAccessControl(s, v, tlsFiles, tlsSettings, name)
  const noTls = s.listenAddresses?.find((a) => a.tls === false)
  if (noTls !== undefined) {
    // memcached refuses it when it listens (exit 71), and an empty address after it too
    if (s.tls === undefined) throw memcachedError(`'notls' option is valid only when SSL is enabled (${name('listen', '-l/--listen')} "notls:${noTls.host}")`, 71)
    if (noTls.host === '') throw memcachedError(`${name('listen', '-l/--listen')} "notls:": needs an address`)
  }
  applyUdp(s, v, name)
  if (v['data-dir'] !== undefined) {
    if (v['data-dir'].trim() === '') throw new UsageError(`${name('data-dir', '--data-dir')} needs a directory`)
    const p: CliPersistence = { dataDir: v['data-dir'], save: undefined, keepSnapshots: 2, strictLoad: false, loadAsync: false }
    if (v.save !== undefined) {
      try {
        parseSaveRules(v.save)
      } catch (err) {
        throw new UsageError(`${name('save', '--save')}: ${(err as Error).message}`)
      }
      p.save = v.save
    }
    if (v['keep-snapshots'] !== undefined) p.keepSnapshots = integer(name('keep-snapshots', '--keep-snapshots'), v['keep-snapshots'], 1, 1000)
    p.strictLoad = v['strict-load'] ?? false
    p.loadAsync = v['load-async'] ?? false
    if (v.appendfsync !== undefined) {
      const m = v.appendfsync.trim()
      if (m !== 'always' && m !== 'everysec' && m !== 'no') {
        throw new UsageError(`${name('appendfsync', '--appendfsync')} must be always, everysec or no, got "${v.appendfsync}"`)
      }
      if (p.loadAsync) throw new UsageError('--appendfsync cannot be used with --load-async (the log is replayed before the port opens)')
      p.appendfsync = m
    }
    s.persistence = p
  } else if (v.save !== undefined || v['keep-snapshots'] !== undefined || v['strict-load'] || v['load-async'] || v.appendfsync !== undefined) {
    throw new UsageError('--save, --keep-snapshots, --strict-load, --load-async and --appendfsync need --data-dir')
  }
  if (v['metrics-port'] !== undefined) s.metricsPort = integer(name('metrics-port', '--metrics-port'), v['metrics-port'], 0, 65535)
  if (v['metrics-host'] !== undefined) {
    if (v['metrics-host'].trim() === '') throw new UsageError(`${name('metrics-host', '--metrics-host')} needs an address`)
    if (s.metricsPort === undefined) throw new UsageError('--metrics-host needs --metrics-port')
    s.metricsHost = v['metrics-host'].trim()
  }
  // memcached 1.6.18 refuses to start the same way ("Cannot set item size limit higher than
  // 1/2 of memory max."), so `-m 1` with the default 1m items is an error in both
  if (s.maxItemSize > s.memoryLimit / 2) {
    throw memcachedError('-I/--max-item-size cannot be larger than half of -m/--memory-limit', 64)
  }
  applyChunkOptions(s, extended)
  applyReplication(s, v, name)
  if (v['no-replication-commands']) {
    if (s.replication?.replicaOf !== undefined) {
      throw new UsageError(`${name('no-replication-commands', '--no-replication-commands')} cannot be used with ${name('replica-of', '--replica-of')}`)
    }
    s.replicationCommands = false
  }
  checkReplicaFlagsWithoutPrimary(s, v, name)
  return { kind: 'run', settings: s }
}

/**
 * memcached 1.6.18's `slab_chunk_max` (its largest slab class: 512 KiB, the 1 MiB page
 * with `no_chunked_items` or `no_modern`, or `-o slab_chunk_max`) against `-I` and its
 * 1 MiB page, with its messages and exit code 64 (measured: `-I 256k` alone is refused,
 * `-I 1000k` too), then `slab_sizes` up to it. Values memcached starts with and then
 * divides by or crashes on (0, below 64 bytes, negative) exit 1 here.
 */
function applyChunkOptions(s: CliSettings, x: ExtendedResult | undefined): void {
  const I = s.maxItemSize
  // memcached: items past its page are chunked at half a page unless slab_chunk_max was given
  const chunkMax = I > MB && x?.slabChunkMaxGiven !== true ? MB / 2 : (x?.chunkMax?.bytes ?? MB / 2)
  const from = x?.chunkMax === undefined || (I > MB && x.slabChunkMaxGiven !== true) ? '-I/--max-item-size' : `-o ${x.chunkMax.from}`
  if (chunkMax === 0) throw memcachedError(`${from}: slab_chunk_max 0 (memcached 1.6.18 divides by it: SIGFPE)`)
  if (chunkMax > I) throw memcachedError(`${from}: slab_chunk_max (bytes: ${chunkMax}) cannot be larger than -I (item_size_max ${I})`, 64)
  if (I % chunkMax !== 0) throw memcachedError(`${from}: -I (item_size_max: ${I}) must be evenly divisible by slab_chunk_max (bytes: ${chunkMax})`, 64)
  if (MB % chunkMax !== 0) throw memcachedError(`${from}: slab_chunk_max (bytes: ${chunkMax}) must divide evenly into ${MB} (slab_page_size)`, 64)
  if (chunkMax < MIN_CHUNK_MAX) {
    throw memcachedError(`${from}: slab_chunk_max (bytes: ${chunkMax}) must be at least ${MIN_CHUNK_MAX} (memcached 1.6.18 starts and crashes or overruns its chunks)`)
  }
  // (512 KiB, with -I at least that, is the engine's default)
  if (chunkMax !== MB / 2) s.slabChunkMax = chunkMax
  if (x?.slabSizes !== undefined) s.slabSizes = checkSlabSizes(x.slabSizes, s.slabMinSize, chunkMax)
}

/** The smallest `slab_chunk_max` ferrocached takes (the engine's `MIN_CHUNK_MAX`). */
const MIN_CHUNK_MAX = 64

const REPLICATION_FLAGS = [
  'replica-of', 'replica-writable', 'repl-backlog', 'repl-timeout', 'replica-auth', 'replica-tls', 'replica-tls-ca', 'replica-tls-cert', 'replica-tls-key',
] as const

/**
 * --replica-of host:port, --replica-writable, --repl-backlog <size>, --repl-timeout <seconds>
 * (0: none), --replica-auth user:pass,
 * --replica-tls and --replica-tls-ca|cert|key <file> (any of the files turns TLS on).
 */
function applyReplication(s: CliSettings, v: Values, name: (option: string, flag: string) => string): void {
  const of = v['replica-of']
  if (REPLICATION_FLAGS.every((f) => v[f] === undefined)) return
  const r: CliReplication = { replicaWritable: v['replica-writable'] ?? false }
  if (of !== undefined) {
    try {
      r.replicaOf = parseTarget(of.trim())
    } catch {
      throw new UsageError(`${name('replica-of', '--replica-of')} must be host:port, got "${of}"`)
    }
  }
  if (v['repl-backlog'] !== undefined) {
    r.backlogSize = parseSize(name('repl-backlog', '--repl-backlog'), v['repl-backlog'].replace(/b$/i, ''), 1)
    if (r.backlogSize < 1024) throw new UsageError('--repl-backlog must be at least 1k')
  }
  if (v['repl-timeout'] !== undefined) {
    r.linkTimeout = integer(name('repl-timeout', '--repl-timeout'), v['repl-timeout'], 0, 2_147_483) * 1000
  }
  const auth = v['replica-auth']
  if (auth !== undefined) {
    const colon = auth.indexOf(':')
    if (colon <= 0) throw new UsageError(`${name('replica-auth', '--replica-auth')} must be user:password`)
    r.auth = { username: auth.slice(0, colon), password: auth.slice(colon + 1) }
    const problem = loginProblem(r.auth.username, r.auth.password)
    if (problem !== undefined) throw new UsageError(`${name('replica-auth', '--replica-auth')}: ${problem}`)
  }
  const tlsFiles = { ca: v['replica-tls-ca'], cert: v['replica-tls-cert'], key: v['replica-tls-key'] }
  if (v['replica-tls'] || Object.values(tlsFiles).some((f) => f !== undefined)) {
    if ((tlsFiles.cert === undefined) !== (tlsFiles.key === undefined)) {
      throw new UsageError('--replica-tls-cert and --replica-tls-key go together')
    }
    r.tls = Object.fromEntries(Object.entries(tlsFiles).filter(([, f]) => f !== undefined))
  }
  s.replication = r
}

/**
 * The replica's flags without `--replica-of`: a primary keeps them for a later `replicaof`
 * (a failover makes it a replica), so they start it with a log line saying so; with
 * `--no-replication-commands` nothing can use them, so they are refused (exit 2).
 */
function checkReplicaFlagsWithoutPrimary(s: CliSettings, v: Values, name: (option: string, flag: string) => string): void {
  if (v['replica-of'] !== undefined) return
  // (--repl-backlog and --repl-timeout are a primary's settings too)
  const given = REPLICATION_FLAGS.filter((f) => !['replica-of', 'repl-backlog', 'repl-timeout'].includes(f) && v[f] !== undefined && v[f] !== false)
  if (given.length === 0) return
  const flags = given.map((f) => name(f, `--${f}`)).join(', ')
  if (s.replicationCommands === false) {
    throw new UsageError(`${flags}: set how this server follows a primary, and there is none: no --replica-of, and --no-replication-commands turns replicaof off`)
  }
  s.notes = [...(s.notes ?? []), `${flags} without --replica-of: this server starts as a primary; they apply once a replicaof command makes it a replica`]
}

/**
 * -U: UDP on that port (0: off, memcached 1.6.18's default). As memcached: without -p the
 * TCP port is -U's too; logins (-Y, -S) refuse to start with it (exit 64); -s turns it off.
 */
function applyUdp(s: CliSettings, v: Values, name: (option: string, flag: string) => string): void {
  if (v['udp-port'] === undefined) return
  const any = ephemeral(v['udp-port'])
  const notes: string[] = []
  const udp = any ? 0 : port(name('udp-port', '-U/--udp-port'), v['udp-port'], notes, true)
  if (notes.length > 0) s.notes = [...(s.notes ?? []), ...notes]
  if (udp === 0 && !any) return
  if (v['enable-sasl']) throw memcachedError('ERROR: Cannot enable UDP while using binary SASL authentication.', 64)
  if (s.authFile !== undefined) throw memcachedError('Cannot use UDP with ascii authentication enabled (-U 0 to disable)', 64)
  if (s.unixSocket !== undefined) {
    s.notes = [...(s.notes ?? []), `-U ${v['udp-port'].trim()}: ignored, as memcached does: a Unix socket (-s) turns TCP and UDP off`]
    // served or not, memcached's settings hold -U, and -p takes it when not given
    const shown = any ? '-1' : String(udp)
    s.settingsShown = [...(s.settingsShown ?? []), ['udpport', shown]]
    if (v.port === undefined) s.settingsShown.push(['tcpport', shown])
    return
  }
  s.udpPort = udp
  if (any) s.settingsShown = [...(s.settingsShown ?? []), ['udpport', '-1']]
  if (v.port === undefined) {
    s.port = udp
    if (any) s.settingsShown = [...(s.settingsShown ?? []), ['tcpport', '-1']]
  }
}

/**
 * memcached's `-p -1` / `-U -1` (its test suite's way to start on a free port, read back
 * from the `MEMCACHED_PORT_FILENAME` file): the system picks the port, `stats settings`
 * shows -1. (`-p 0` is memcached's "no TCP"; here it picks a port too.)
 */
function ephemeral(text: string): boolean {
  return text.trim() === '-1'
}

/** -Y/-S (logins) and -Z/--tls-* (TLS). */
function applyAccessControl(
  s: CliSettings,
  v: Values,
  files: Partial<Record<'tls-cert' | 'tls-key' | 'tls-ca', string>>,
  tlsSettings: TlsSettings,
  name: (option: string, flag: string) => string,
): void {
  if (v['auth-file'] !== undefined) {
    if (v['auth-file'].trim() === '') throw new UsageError(`${name('auth-file', '-Y/--auth-file')} needs a file`)
    s.authFile = v['auth-file']
  }
  if (v['enable-sasl'] && s.authFile === undefined) {
    // memcached without its SASL database: "Error initializing sasl.", exit 1
    throw memcachedError('-S/--enable-sasl needs the users: -Y/--auth-file <file> (username:password lines)')
  }
  const cert = files['tls-cert']
  const key = files['tls-key']
  if (v['enable-ssl'] || cert !== undefined || key !== undefined || files['tls-ca'] !== undefined) {
    if (cert === undefined || key === undefined) {
      // memcached's -Z without them fails to load the (null) files: exit 64
      throw memcachedError('TLS needs --tls-cert <pem> and --tls-key <pem> (or -Z -o ssl_chain_cert=<pem>,ssl_key=<pem>)', v['enable-ssl'] ? 64 : 2)
    }
    const ca = files['tls-ca']
    const mode = tlsSettings.verifyMode
    if (mode !== undefined && mode > 0 && ca === undefined) {
      // memcached would refuse every client certificate, node would check them against public CAs
      throw new UsageError(`-o ssl_verify_mode=${mode} needs the CA file: -o ssl_ca_cert=<pem> (or --tls-ca)`)
    }
    s.tls = { cert, key, ...(ca === undefined ? {} : { ca }), ...tlsSettings }
  }
}

function dropUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as Partial<T>
}
