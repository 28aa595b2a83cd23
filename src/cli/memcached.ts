// memcached 1.6.18's flags beyond the basic ones: listening (-l lists, -s/-a, -b), the
// process (-P, -d, -u), reply switches (-C, -F, -X, -W, -R, -B, -D), huge pages (-L), and
// the ones ferrocache accepts without effect (-t, -k, -r, -N), each with a note.
import type { ListenAddress } from '../server/options'
import { atoi } from './c-numbers'
import { memcachedError } from './errors'
import type { CliSettings, Values } from './options'

const MAX_PORT = 65535

function port(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_PORT) throw memcachedError(`${what}: bad port "${text}"`)
  return Number(text)
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
    if (host === '') throw memcachedError(`${what}: needs an address`)
    return { host, ...(p === undefined ? {} : { port: p }), ...(tls === undefined ? {} : { tls }) }
  })
}

function positive(text: string, message: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1 || Number(text) > 2 ** 31 - 1) throw memcachedError(`${message}, got "${text}"`)
  return Number(text)
}

/** Applies memcached's flags (see the file comment); `name` names a flag or its variable. */
export function applyMemcachedFlags(s: CliSettings, v: Values, name: (option: string, flag: string) => string): void {
  const notes: string[] = s.notes ?? []
  if (v.listen !== undefined) {
    const addresses = parseListen(joinListen(v.listen))
    if (addresses.length === 0) throw memcachedError(`${name('listen', '-l/--listen')} needs an address`)
    s.listen = addresses[0]!.host
    if (addresses.length > 1 || addresses.some((a) => a.port !== undefined || a.tls === false)) s.listenAddresses = addresses
  }
  if (v['unix-socket'] !== undefined) {
    if (v['unix-socket'] === '') throw memcachedError(`${name('unix-socket', '-s/--unix-socket')} needs a path`)
    let mode = 0o700
    if (v['unix-mask'] !== undefined) {
      if (!/^[0-7]{1,4}$/.test(v['unix-mask'])) throw memcachedError(`${name('unix-mask', '-a/--unix-mask')} must be an octal mode such as 700, got "${v['unix-mask']}"`)
      mode = parseInt(v['unix-mask'], 8) & 0o777
    }
    s.unixSocket = { path: v['unix-socket'], mode }
  } else if (v['unix-mask'] !== undefined) {
    notes.push('-a: accepted and ignored; it sets the permissions of a Unix socket (-s), and there is none')
  }
  if (v['listen-backlog'] !== undefined) s.backlog = positive(v['listen-backlog'], `${name('listen-backlog', '-b/--listen-backlog')} must be a whole number above 0`)
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
    const n = positive(v.threads, 'Number of threads must be greater than 0 (-t/--threads)')
    notes.push(`-t ${n}: accepted and ignored; ferrocache serves every connection on one event loop (stats settings: num_threads 1)`)
  }
  const switches: NonNullable<CliSettings['switches']> = {}
  if (v['max-reqs-per-event'] !== undefined) {
    switches.reqsPerEvent = positive(v['max-reqs-per-event'], 'Number of requests per event must be greater than 0 (-R/--max-reqs-per-event)')
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
    const threads = v.threads === undefined ? 4 : Number(v.threads)
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
