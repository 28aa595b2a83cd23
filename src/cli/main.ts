// ferrocached's entry point: parse the command line, run the server, stop on a signal.
import { SnapshotError } from '../persistence'
import { createServer } from '../server'
import { createLogger } from '../server/logger'
import { readTlsFiles } from '../server/tls'
import { FILE_LIMIT_EXIT, FILE_LIMIT_REFUSED, roomForConnections } from './file-limit'
import { HELP } from './help'
import { parseCommandLine, UsageError, type CliReplication, type CliSettings } from './options'
import type { ReplicationOptions } from '../replication'
import { readFileSync } from 'node:fs'
import { LISTEN_FAILED_EXIT } from './errors'
import { tuningCommands } from './extended'
import { hideSecretArgs, moveSecretToEnv } from './secret-args'
import { daemonize, dataDirProblem, DAEMON_CHILD, lookUpUser, removePidFile, switchUser, tellParentListening, writePidFile, writePortFile, type UserIds } from './process'

/** How long a graceful stop may take before connections are cut. */
const SHUTDOWN_DEADLINE_MS = 5_000

const VERSION = (require('../../package.json') as { version: string }).version

/** `-i`: ferrocached's license (memcached prints its own and libevent's). */
const LICENSE = `ferrocached ${VERSION}: MIT License (see the package's package.json and repository).
ferrocache is not memcached: it implements memcached 1.6.18's protocols and command line,
and contains no memcached or libevent code.
`

/** createServer's errors in the command line's words: `-Y/--auth-file`, not `authFile`. */
function flagWords(message: string): string {
  return message.replace(/^authFile /, '-Y/--auth-file ')
}

/** Prints a usage mistake and sets the exit code (2, or memcached's for its own mistakes: UsageError.exitCode). */
function usage(message: string, exitCode = 2): void {
  process.stderr.write(`ferrocached: ${message}\nTry 'ferrocached --help' for the list of options.\n`)
  process.exitCode = exitCode
}

/** The command line's replication settings, with the link's TLS files read (a bad path is a TypeError). */
function replicationOptions(r: CliReplication): ReplicationOptions {
  if (r.tls === undefined) return r
  const read = (what: string, path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (err) {
      throw new TypeError(`cannot read the replica link's TLS ${what}: ${(err as Error).message}`)
    }
  }
  const tls = { ca: read('CA', r.tls.ca), cert: read('certificate', r.tls.cert), key: read('key', r.tls.key) }
  return { ...r, tls: Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) }
}

/** Runs ferrocached with `argv` (without node and the script). */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  // First thing, as memcached sets its handlers: Node's default for SIGUSR1 opens the
  // inspector on 127.0.0.1:9229 (code execution for any local user, as root before -u) and
  // for SIGHUP ends the process. The -d parent, waiting for its copy to listen, ignores
  // both; run() adds the server's own handlers.
  process.on('SIGUSR1', ignoreSignal)
  process.on('SIGHUP', ignoreSignal)
  hideSecretArgs(argv)
  let command
  try {
    command = parseCommandLine(argv, env)
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message, err.exitCode)
    throw err
  }
  if (command.kind === 'help') {
    process.stdout.write(HELP)
    return
  }
  if (command.kind === 'version') {
    process.stdout.write(`ferrocached ${VERSION}\n`)
    return
  }
  if (command.kind === 'license') {
    process.stdout.write(LICENSE)
    return
  }
  const s = command.settings
  // -c: room for that many sockets, or stop (before -u and -d, as memcached)
  if (!roomForConnections(s.connLimit)) {
    process.stderr.write(`${FILE_LIMIT_REFUSED}\n`)
    process.exitCode = FILE_LIMIT_EXIT
    return
  }
  // -u: an unknown user is fatal before anything is bound (or detached), as memcached
  const user = s.user === undefined ? undefined : lookUpUser(s.user)
  if (user === null) return usage(`can't find the user ${s.user} to switch to (-u/--user)`, 67)
  // -d: this process starts a detached copy and returns once it listens
  if (s.daemonize && env[DAEMON_CHILD] !== '1') {
    const copy = moveSecretToEnv(argv, env)
    process.exitCode = await daemonize(copy.argv, copy.env, s.verbosity > 0)
    return
  }
  await run(s, user)
}

/** A signal main() takes from Node's default action before run() handles it. */
function ignoreSignal(): void {}

/**
 * The fatal line when a `--load-async` load rejects (the port was open and served
 * meanwhile): what refused it, by its code. Only `--strict-load` refuses a damaged
 * snapshot; a log segment with writes the snapshot that loaded lacks refuses the directory
 * after the load (docs/persistence.md).
 */
function asyncLoadRefusal(code: string | undefined, strict: boolean): string {
  switch (code) {
    case 'FERROCACHE_SNAPSHOT_CORRUPT':
    case 'FERROCACHE_SNAPSHOT_UNSUPPORTED':
      return strict ? 'cannot load the snapshot (--strict-load), exiting' : 'cannot load the snapshot, exiting'
    case 'FERROCACHE_LOG_NOT_REPLAYED':
      return 'the snapshot loaded, then the data directory was refused: its append-only log holds writes that snapshot lacks, exiting'
    default:
      return 'cannot load the snapshot, exiting'
  }
}

async function run(s: CliSettings, user: UserIds | undefined): Promise<void> {
  const log = createLogger(s.verbosity)
  // memcached 1.6.18 takes SIGHUP and carries on (its handler, set first thing, only flags a
  // proxy reload); node's default ends the process at once: during a snapshot load too
  process.on('SIGHUP', () => log.info({ signal: 'SIGHUP' }, 'ignored, as memcached does'))
  // The stop's handlers go in before the server (and its snapshot load, which holds the
  // thread: a signal meanwhile is handled once it is done) and before listen(): a SIGTERM
  // then is the graceful stop, not Node's default (killed by the signal), and a SIGUSR1 is
  // not the inspector. A signal sent as soon as "listening" is logged (a supervisor's
  // readiness check) gets the graceful stop too.
  let server: ReturnType<typeof createServer> | undefined
  // Set when the server closes on purpose (a stop, a failed listen or -u): a load still
  // running then rejects for the closed cache, which is no fault of the snapshot.
  let closing = false
  let stopping = false
  let listening: Promise<unknown> = Promise.resolve()
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal, exiting at once')
      process.exit(1)
    }
    stopping = true
    closing = true
    log.info({ signal }, 'stopping: no new connections, finishing replies')
    // Whatever happens, the process is gone shortly after the deadline.
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS + 1_000).unref()
    // During listen() the close waits for it (a failed listen closes the server itself).
    void listening.then(
      () => server?.close(SHUTDOWN_DEADLINE_MS),
      () => undefined,
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  // memcached's restart convention: SIGUSR1 = stop gracefully (here: snapshot, then exit)
  process.on('SIGUSR1', () => stop('SIGUSR1'))
  for (const note of s.notes ?? []) log.info(note)
  const dirProblem = user === undefined || s.persistence === undefined ? null : dataDirProblem(s.persistence.dataDir, user)
  if (dirProblem !== null) {
    log.fatal({ dataDir: s.persistence?.dataDir, user: s.user }, dirProblem)
    process.exitCode = 1
    return
  }
  try {
    server = createServer({
      port: s.port,
      host: s.listen,
      ...(s.listenAddresses === undefined ? {} : { listen: s.listenAddresses }),
      ...(s.unixSocket === undefined ? {} : { unixSocket: s.unixSocket }),
      ...(s.udpPort === undefined ? {} : { udpPort: s.udpPort }),
      ...(s.backlog === undefined ? {} : { backlog: s.backlog }),
      ...(s.switches === undefined ? {} : { switches: s.switches }),
      ...(s.replicationCommands === undefined ? {} : { replicationCommands: s.replicationCommands }),
      ...(s.tuning === undefined ? {} : { startupCommands: tuningCommands(s.tuning) }),
      ...(s.prefixDelimiter === undefined ? {} : { prefixDelimiter: s.prefixDelimiter }),
      ...(s.settingsShown === undefined ? {} : { settingsShown: s.settingsShown }),
      connLimit: s.connLimit,
      idleTimeout: s.idleTimeout * 1000,
      enableShutdown: s.enableShutdown,
      verbosity: s.verbosity,
      logger: log,
      followVerbosity: true,
      ...(s.metricsPort === undefined ? {} : { metricsPort: s.metricsPort, metricsHost: s.metricsHost ?? s.listen }),
      ...(s.authFile === undefined ? {} : { authFile: s.authFile }),
      ...(s.tls === undefined ? {} : { tls: readTlsFiles(s.tls) }),
      ...(s.replication === undefined ? {} : { replication: replicationOptions(s.replication) }),
      cacheOptions: {
        memoryLimit: s.memoryLimit,
        maxItemSize: s.maxItemSize,
        growthFactor: s.growthFactor,
        slabMinSize: s.slabMinSize,
        ...(s.slabSizes === undefined ? {} : { slabSizes: s.slabSizes }),
        ...(s.slabChunkMax === undefined ? {} : { slabChunkMax: s.slabChunkMax }),
        evict: s.evictions,
        ...(s.hashPower === undefined ? {} : { hashPower: s.hashPower }),
        ...(s.hashExpand === undefined ? {} : { hashExpand: s.hashExpand }),
        ...(s.slabReassign === undefined ? {} : { slabReassign: s.slabReassign }),
        ...(s.slabAutomoveWindow === undefined ? {} : { slabAutomoveWindow: s.slabAutomoveWindow }),
        ...(s.largePages === undefined ? {} : { largePages: s.largePages }),
        // persistence: loaded here, before the port opens (unless --load-async); the last
        // snapshot is written when the server closes the cache, after the last reply (not
        // at a bare exit: a second signal exits at once, the stop deadline gives up)
        ...(s.persistence === undefined ? {} : { ...s.persistence, saveOnExit: false, logger: log }),
      },
    })
  } catch (err) {
    // -o hashpower larger than this machine can hold: memcached's words and exit code 1
    if (err instanceof RangeError && err.message.includes('Failed to init hashtable.')) return usage(err.message, 1)
    // -Y: memcached's "Could not open authfile [...] for reading" exits 1
    if (err instanceof TypeError && s.authFile !== undefined && err.message.includes('cannot read the user file')) return usage(flagWords(err.message), 1)
    // past the pages the engine's item handles address (262143 megabytes with the default
    // slab classes); memcached 1.6.18 starts, its memory taken as items come
    if (err instanceof RangeError && err.message.includes('memory limit is too large for the page size')) {
      return usage(`-m/--memory-limit ${s.memoryLimit / 2 ** 20}: more memory than ferrocache's engine addresses with these slab classes (at most 262143 with the default -n)`)
    }
    // The engine refused a combination of settings (e.g. -I larger than a slab page allows).
    if (err instanceof RangeError || err instanceof TypeError) return usage(flagWords(err.message))
    // --strict-load and a damaged snapshot, or a data directory that is locked, not a
    // directory or cannot be made (logged)
    if (err instanceof SnapshotError) {
      log.fatal({ err: err.message, dataDir: s.persistence?.dataDir }, 'cannot use the data directory or its snapshot, not starting')
      process.exitCode = 1
      return
    }
    throw err
  }
  if (s.persistence?.loadAsync) {
    server.cache.loaded.catch((err: Error) => {
      if (closing) return
      const code = err instanceof SnapshotError ? err.code : undefined
      log.fatal({ err: err.message, code }, asyncLoadRefusal(code, s.persistence?.strictLoad === true))
      process.exit(1)
    })
  }
  server.on('shutdown', () => {
    stopping = true
    closing = true
  })
  try {
    listening = server.listen()
    await listening
  } catch (err) {
    log.fatal({ err: (err as Error).message, host: s.listen, port: s.port, ...(s.unixSocket ? { socket: s.unixSocket.path } : {}) }, 'cannot listen')
    // memcached's "failed to listen on …" exit code (EX_OSERR): a port in use, an
    // address not on this machine, a socket path that cannot be bound
    process.exitCode = LISTEN_FAILED_EXIT
    closing = true
    await server.close(0)
    return
  }
  // bound: now -u (ports under 1024 and root-owned socket directories work), then -P
  if (user !== undefined) {
    try {
      switchUser(user, log, s.unixSocket === undefined ? [] : [s.unixSocket.path])
    } catch (err) {
      log.fatal({ err: (err as Error).message, user: s.user }, 'cannot switch user')
      process.exitCode = 1
      closing = true
      await server.close(0)
      return
    }
  }
  if (s.pidFile !== undefined && writePidFile(s.pidFile, log)) {
    // however the process ends (a second signal, the stop deadline): removed if still ours
    const pidFile = s.pidFile
    process.once('exit', () => removePidFile(pidFile, log))
  }
  // memcached writes it for TCP and UDP listeners, none with -s
  const portFile = process.env.MEMCACHED_PORT_FILENAME
  if (portFile !== undefined && portFile !== '' && s.unixSocket === undefined) writePortFile(portFile, server.addresses(), log)
  tellParentListening()
  await new Promise<void>((resolve) => server.once('close', resolve))
  // the last snapshot failed (logged as 'snapshot failed; …'): a supervisor must see it
  const lastSave = server.cache.persistence?.closeSaveError
  log.info({ exitCode: lastSave === undefined ? 0 : 1 }, 'exiting')
  process.exit(lastSave === undefined ? 0 : 1)
}
