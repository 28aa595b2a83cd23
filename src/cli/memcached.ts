// memcached 1.6.18's flags beyond the basic ones: listening (-l lists, -s/-a, -b), the
// process (-P, -d, -u), reply switches (-C, -F, -X, -W, -R, -B, -D), huge pages (-L), and
// the ones ferrocache accepts without effect (-t, -k, -r, -N), each with a note.
import type { ListenAddress } from '../server/options'
import { atoi, safeStrtol } from './c-numbers'
import { memcachedError, UsageError } from './errors'
import { flagInt, flagOctal, octalShown } from './flag-numbers'
import type { CliSettings, Values } from './options'

const MAX_PORT = 65535

/**
 * An `-l` address's port, read as memcached's `safe_strtol`: not a number is its `Invalid
 * port number` and exit 71 (its failed listen); outside 0-65535 (memcached wraps it) exit 2.
 */
function port(text: string, what: string): number {
  const n = safeStrtol(text)
  if (n === undefined) throw memcachedError(`${what}: Invalid port number: "${text}"`, 71)
  if (n < 0 || n > MAX_PORT) throw new UsageError(`${what}: bad port "${text}" (0 to ${MAX_PORT})`)
  return n
}

/**
 * Repeated `-l` flags as memcached joins them: one comma-separated list, a repeat left out
 * (memcached leaves out any `-l` whose text is already in the list, even as a part of an
 * address: `-l 127.0.0.10 -l 127.0.0.1` listens on 127.0.0.10 alone; here only the same
 * text is left out).
 */
export function joinListen(values: readonly string[]): string {
  return values.filter((v, i) => values.indexOf(v) === i).join(',')
}

/**
 * memcached's `-l`: addresses separated by commas, each `host`, `host:port`, `[v6]`,
 * `[v6]:port` or a bare IPv6 address, optionally prefixed `notls:`. Port-less ones take -p.
 */
export function parseListen(text: string): ListenAddress[] {
  return text.split(',').filter((part) => part !== '').map((part): ListenAddress => {
    let rest = part.trim()
    let tls: boolean | undefined
    if (rest.startsWith('notls:')) {
      tls = false
      rest = rest.slice('notls:'.length)
    }
    const what = `-l/--listen "${part}"`
    let host: string
    let p: number | undefined
    const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
    if (v6) {
      host = v6[1]!
      if (v6[2] !== undefined) p = port(v6[2], what)
    } else if (rest.split(':').length === 2) {
      const [h, pt] = rest.split(':') as [string, string]
      host = h
      p = port(pt, what)
    } else {
      host = rest
    }
    // (`notls:` alone: refused once TLS is known, as memcached: parseCommandLine)
    if (host === '' && tls !== false) throw memcachedError(`${what}: needs an address`)
    return { host, ...(p === undefined ? {} : { port: p }), ...(tls === undefined ? {} : { tls }) }
  })
}

/** Applies memcached's flags (see the file comment); `name` names a flag or its variable. */
export function applyMemcachedFlags(s: CliSettings, v: Values, name: (option: string, flag: string) => string): void {
  const notes: string[] = s.notes ?? []
  if (v.listen !== undefined) {
    const addresses = parseListen(joinListen(v.listen))
    if (addresses.length === 0) throw memcachedError(`${name('listen', '-l/--listen')} needs an address`)
    s.listen = addresses[0]!.host
    if (addresses.length > 1 || addresses.some((a) => a.port !== undefined || a.tls === false)) s.listenAddresses = addresses
    // memcached's `inter` is the -l text as joined, a trailing comma kept, with -s too
    s.settingsShown = [...(s.settingsShown ?? []), ['inter', joinListen(v.listen)]]
  }
  if (v['unix-socket'] !== undefined) {
    if (v['unix-socket'] === '') throw memcachedError(`${name('unix-socket', '-s/--unix-socket')} needs a path`)
    let mode = 0o700
    if (v['unix-mask'] !== undefined) {
      // memcached's strtol base 8: the socket gets the low 9 bits, `umask` shows the whole int
      const given = flagOctal(name('unix-mask', '-a/--unix-mask'), v['unix-mask'], notes)
      mode = given & 0o777
      if (given !== mode) s.settingsShown = [...(s.settingsShown ?? []), ['umask', octalShown(given)]]
    }
    s.unixSocket = { path: v['unix-socket'], mode }
  } else if (v['unix-mask'] !== undefined) {
    notes.push('-a: accepted and ignored; it sets the permissions of a Unix socket (-s), and there is none')
    // memcached's settings keep it all the same
    s.settingsShown = [...(s.settingsShown ?? []), ['umask', octalShown(flagOctal(name('unix-mask', '-a/--unix-mask'), v['unix-mask'], notes))]]
  }
  if (v['listen-backlog'] !== undefined) {
    // memcached's atoi, unchecked: listen(2) takes 0 (one pending connection, Node's 1 here:
    // its listen() reads 0 as its default 511) and a negative one (the system's maximum)
    const b = flagInt(name('listen-backlog', '-b/--listen-backlog'), v['listen-backlog'], notes)
    s.backlog = b === 0 ? 1 : b < 0 ? 2 ** 31 - 1 : b
    if (b !== s.backlog) s.settingsShown = [...(s.settingsShown ?? []), ['tcp_backlog', String(b)]]
  }
  if (v.pidfile !== undefined) {
    if (v.pidfile === '') throw memcachedError(`${name('pidfile', '-P/--pidfile')} needs a file`)
    s.pidFile = v.pidfile
  }
  if (v.daemon) s.daemonize = true
  if (v.user !== undefined) {
    if (v.user === '') throw memcachedError(`${name('user', '-u/--user')} needs a user name`)
    s.user = v.user
  }
  if (v.threads !== undefined) {
    const flag = name('threads', '-t/--threads')
    const n = flagInt(flag, v.threads, notes)
    if (n <= 0) throw memcachedError(`Number of threads must be greater than 0 (${flag}), got "${v.threads}"`)
    notes.push(`-t ${n}: accepted and ignored; ferrocache serves every connection on one event loop (stats settings: num_threads 1)`)
  }
  const switches: NonNullable<CliSettings['switches']> = {}
  if (v['max-reqs-per-event'] !== undefined) {
    // memcached's atoi; it refuses 0 and starts with a negative count, then answers nothing
    // (measured: `stats settings` unanswered); refused here
    const flag = name('max-reqs-per-event', '-R/--max-reqs-per-event')
    switches.reqsPerEvent = flagInt(flag, v['max-reqs-per-event'], notes)
    if (switches.reqsPerEvent <= 0) throw memcachedError(`Number of requests per event must be greater than 0 (${flag}), got "${v['max-reqs-per-event']}"`)
  }
  if (v.protocol !== undefined) {
    const p = v.protocol
    if (p !== 'auto' && p !== 'ascii' && p !== 'binary') {
      throw memcachedError(`Invalid value for binding protocol: ${p} -- should be one of auto, binary, or ascii (-B/--protocol)`, 64)
    }
    switches.protocol = p
  }
  if (v['disable-cas']) switches.cas = false
  if (v['disable-flush-all']) switches.flush = false
  if (v['disable-dumping']) switches.dump = false
  if (v['disable-watch']) switches.watch = false
  if (Object.keys(switches).length > 0) s.switches = switches
  if (v['prefix-delimiter'] !== undefined) {
    if (v['prefix-delimiter'] === '') throw memcachedError(`No delimiter specified (${name('prefix-delimiter', '-D')})`)
    // memcached takes the first character, and turns per-prefix stats on
    s.prefixDelimiter = v['prefix-delimiter'][0]!
  }
  // memcached's -L advises its slab memory for huge pages (and preallocates it; here pages
  // still come as items need them)
  if (v['enable-largepages']) s.largePages = true
  if (v['lock-memory']) notes.push('-k: accepted and ignored; ferrocache does not lock its memory (no mlockall), pages may be swapped')
  if (v['enable-coredumps']) notes.push('-r: accepted and ignored; the core file limit is left as the process got it (ulimit -c)')
  if (v['napi-ids'] !== undefined) {
    // memcached's atoi, then its check against the threads it would start (-t, default 4)
    const n = atoi(v['napi-ids'])
    if (n <= 0) throw memcachedError(`Maximum number of NAPI IDs must be greater than 0 (-N/--napi-ids), got "${v['napi-ids']}"`)
    const threads = v.threads === undefined ? 4 : atoi(v.threads)
    if (n > threads) throw memcachedError(`Number of napi_ids(${n}) cannot be greater than number of threads(${threads}) (-N/--napi-ids)`, 64)
    notes.push('-N: accepted and ignored; ferrocache does not group connections by NAPI id')
  }
  if (v['memory-file'] !== undefined) {
    throw memcachedError(
      `${name('memory-file', '-e/--memory-file')}: ferrocache has no memory-mapped item memory; for a cache that survives restarts use --data-dir <dir> (a snapshot written at stop and loaded at start)`,
    )
  }
  if (notes.length > 0) s.notes = notes
}
