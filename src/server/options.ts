// Options of createServer(), their defaults (memcached's) and validation.
import type { Cache, CacheOptions } from '../cache'
import { parseSize } from '../size'
import { describe } from '../encoding'
import type { Encoding } from '../types'
import { resolveReplicationOptions, type ReplicationOptions, type ResolvedReplicationOptions } from '../replication/options'
import type { Logger } from './log'
import type { TlsOptions } from './tls'

/** Options of `createServer()`: memcached's settings (port, interface, limits) and the cache to
 * serve. `E`: that cache's encoding (any: the server reads and writes its bytes as they are). */
export interface ServerOptions<E extends Encoding = 'buffer'> {
  /** Serve this cache (it stays open after the server closes). Default: a new one. */
  cache?: Cache<E> | undefined
  /** TCP port (default 11211; 0 picks a free one). */
  port?: number | undefined
  /** Interface to listen on (default `127.0.0.1`: never all interfaces unless asked). */
  host?: string | undefined
  /** Simultaneous connections; further ones get memcached's error (default 1024). */
  connLimit?: number | undefined
  /** Close connections idle this long, in milliseconds; 0 = never (default). */
  idleTimeout?: number | undefined
  /** Honour the `shutdown` command (memcached `-A`; default false). */
  enableShutdown?: boolean | undefined
  /** Replies queued for a client that does not read them before it is dropped (default 64 MiB). */
  maxPendingReplyBytes?: number | undefined
  /** Verbosity shown in `stats settings` (default 0; memcached's count of `-v`, 2 and above log alike). */
  verbosity?: number | undefined
  /** Where logs go (default: nowhere). */
  logger?: Logger | undefined
  /** Let the `verbosity` command set the logger's level, as memcached's does (default false). */
  followVerbosity?: boolean | undefined
  /** Settings of the cache created when `cache` is not given. */
  cacheOptions?: CacheOptions<'buffer'> | undefined
  /**
   * Serve Prometheus metrics (`/metrics`), a status page (`/`) and its JSON (`/stats.json`)
   * over HTTP on this port (0 picks a free one). Default: no metrics server.
   */
  metricsPort?: number | undefined
  /** Interface for the metrics port (default: `host`). */
  metricsHost?: string | undefined
  /**
   * A memcached user file (`username:password` per line, memcached's `-Y`): every
   * connection must log in, text ones with `set <any> 0 0 <len>` + `user pass`, binary ones
   * with SASL PLAIN. Default: no logins (fine on 127.0.0.1).
   */
  authFile?: string | undefined
  /** Serve TLS (PEM contents) on every listener but `listen`'s `tls: false` ones; with
   * `ca`, clients need a certificate it signed. */
  tls?: TlsOptions | undefined
  /** Follow a primary, backlog size, replica login (docs/replication.md). Default: a primary. */
  replication?: ReplicationOptions | undefined
  /**
   * false: `replicaof` and `psync` answer `ERROR` like any unknown command (plain memcached):
   * no client can make this server follow another or read every item with `psync`. Default:
   * true. Not with `replication.replicaOf`.
   */
  replicationCommands?: boolean | undefined
  /**
   * Listen on each of these instead of `host`:`port` (memcached's `-l a,b:port`); an
   * address without `port` takes `port`; `tls: false` serves it without TLS (`notls:`).
   */
  listen?: ReadonlyArray<ListenAddress> | undefined
  /** Listen on this Unix socket only, no TCP (memcached's `-s`). */
  unixSocket?: UnixSocketOptions | undefined
  /**
   * Also serve memcached's UDP protocol (`-U`) on this port, on every `listen` address
   * (one that names its own port uses that one, as memcached does); 0 picks a free one.
   * Default: no UDP. Not with `unixSocket`, nor with `authFile` (UDP has no logins).
   */
  udpPort?: number | undefined
  /** The listen backlog (memcached's `-b`; default 1024). */
  backlog?: number | undefined
  /** memcached's `-C`, `-F`, `-X`, `-W`, `-R`, `-B` and its LRU maintainer (default: all on, 20, auto). */
  switches?: Partial<CommandSwitches> | undefined
  /**
   * Text admin commands run on the engine before the port opens (`lru tune 10 30 0.3 1.5`,
   * `slabs automove 2`…: what memcached's `-o` settings set); a reply other than `OK` throws.
   */
  startupCommands?: readonly string[] | undefined
  /**
   * memcached's `-D`: per-prefix stats (`stats detail dump`) on from the start, keys split
   * at this character. Default: off until `stats detail on`, split at `:`.
   */
  prefixDelimiter?: string | undefined
  /**
   * `stats settings` lines to show with these values instead of the server's own, by
   * name (names the list does not have are ignored): memcached's command line sets some
   * that ferrocache has no use for (`-o ext_wbuf_size`, `ext_max_sleep`, a negative
   * `idle_timeout`), and its clients may read them back.
   */
  settingsShown?: ReadonlyArray<readonly [string, string]> | undefined
}

/** A Unix socket to listen on (memcached's `-s` and `-a`). */
export interface UnixSocketOptions {
  /** The socket file (a stale socket left there is removed first, as memcached does). */
  path: string
  /** Its permissions (memcached's `-a` mask; default 0o700). */
  mode?: number | undefined
}

/** One listening address (`-l host[:port]`). */
export interface ListenAddress {
  /** An interface address (IPv4, IPv6 or a name). */
  host: string
  /** Its port (default: the server's `port`). */
  port?: number | undefined
  /** false: no TLS on this one even when `tls` is set (memcached's `notls:`). */
  tls?: boolean | undefined
}

/** memcached's switches that change replies. */
export interface CommandSwitches {
  /** `-C` turns it off: CAS values read 0 and CAS comparisons fail. */
  cas: boolean
  /** `-F` turns it off: `flush_all` is refused. */
  flush: boolean
  /** `-X` turns it off: `stats cachedump` and `lru_crawler metadump` are refused. */
  dump: boolean
  /** `-W` turns it off: `watch` is refused. */
  watch: boolean
  /** `-R`: requests of one read before its replies are written out. */
  reqsPerEvent: number
  /** `-B`: which protocols connections may speak. */
  protocol: 'auto' | 'ascii' | 'binary'
  /**
   * memcached's LRU maintainer thread; `-o no_lru_maintainer` and `no_modern` turn it off,
   * and then `lru mode` and `lru temp_ttl` answer `ERROR` as memcached's do (set after
   * `startupCommands`, which may use them).
   */
  lruMaintainer: boolean
}

/** The options a server runs with, defaults filled in (`server.options`). */
export interface ResolvedServerOptions {
  port: number
  host: string
  connLimit: number
  idleTimeout: number
  enableShutdown: boolean
  maxPendingReplyBytes: number
  verbosity: number
  followVerbosity: boolean
  cacheOptions: CacheOptions<'buffer'>
  /** `undefined`: no metrics server. */
  metricsPort: number | undefined
  metricsHost: string
  authFile: string | undefined
  tls: TlsOptions | undefined
  replication: ResolvedReplicationOptions
  /** false: `replicaof`/`psync` answer `ERROR`. */
  replicationCommands: boolean
  /** The interfaces as memcached's `stats settings` prints its `-l` (`a,b:port,[::1]:port`). */
  inter: string
  /** Every TCP address, or none with a Unix socket. */
  listen: ReadonlyArray<ListenAddress & { port: number }>
  unixSocket: Required<UnixSocketOptions> | undefined
  /** `undefined`: no UDP. */
  udpPort: number | undefined
  /** Where UDP is served: each `listen` host, on its own port if it names one, else `udpPort`. */
  udpListen: ReadonlyArray<{ host: string; port: number }>
  backlog: number
  switches: CommandSwitches
  startupCommands: readonly string[]
  prefixDelimiter: string | undefined
  settingsShown: ReadonlyArray<readonly [string, string]>
  /** For `stats settings`: */
  memoryLimit: number
  maxItemSize: number
  /** memcached's `slab_chunk_max` (`cacheOptions.slabChunkMax`). */
  slabChunkMax: number
  growthFactor: number
  slabMinSize: number
  evictions: boolean
  /** `hashpower_init`: `cacheOptions.hashPower`, 0 when not given (as memcached). */
  hashPowerInit: number
  /** `slab_automove_window`: `cacheOptions.slabAutomoveWindow`, 30 when not given. */
  slabAutomoveWindow: number
}

function count(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${typeof value === 'number' ? value : typeof value}`)
  }
  if (value < min || value > max) throw new RangeError(`${name} must be between ${min} and ${max}, got ${value}`)
  return value
}

const KNOWN = new Set([
  'cache', 'port', 'host', 'connLimit', 'idleTimeout', 'enableShutdown',
  'maxPendingReplyBytes', 'verbosity', 'logger', 'followVerbosity', 'cacheOptions',
  'metricsPort', 'metricsHost', 'authFile', 'tls', 'replication', 'replicationCommands',
  'listen', 'unixSocket', 'udpPort', 'backlog', 'switches', 'startupCommands', 'prefixDelimiter',
  'settingsShown',
])

function resolveSwitches(w: Partial<CommandSwitches> = {}): CommandSwitches {
  const protocol = w.protocol ?? 'auto'
  if (!['auto', 'ascii', 'binary'].includes(protocol)) throw new TypeError(`switches.protocol must be auto, ascii or binary, got ${String(protocol)}`)
  return {
    cas: w.cas ?? true,
    flush: w.flush ?? true,
    dump: w.dump ?? true,
    watch: w.watch ?? true,
    reqsPerEvent: w.reqsPerEvent === undefined ? 20 : count('switches.reqsPerEvent', w.reqsPerEvent, 1, 2 ** 31 - 1),
    protocol,
    lruMaintainer: w.lruMaintainer ?? true,
  }
}

export function resolveServerOptions(o: ServerOptions<Encoding>): ResolvedServerOptions {
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown server option '${key}' (known: ${[...KNOWN].join(', ')})`)
  }
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) {
    throw new TypeError('host must be a non-empty string')
  }
  if (o.metricsHost !== undefined && (typeof o.metricsHost !== 'string' || o.metricsHost === '')) {
    throw new TypeError('metricsHost must be a non-empty string')
  }
  if (o.authFile !== undefined && (typeof o.authFile !== 'string' || o.authFile === '')) {
    throw new TypeError('authFile must be the path of a user file')
  }
  if (o.tls !== undefined && (typeof o.tls !== 'object' || o.tls === null || !o.tls.cert || !o.tls.key)) {
    throw new TypeError('tls needs cert and key (PEM contents)')
  }
  if (o.cache !== undefined && o.cacheOptions !== undefined) {
    throw new TypeError('pass either cache or cacheOptions, not both')
  }
  // a Client, an lru-cache or a Keyv store here failed as "o.cache?.statsSync is not a function"
  if (o.cache !== undefined && typeof (o.cache as Partial<Cache> | null)?.statsSync !== 'function') {
    throw new TypeError(`cache must be an embedded Cache (new Cache()), got ${describe(o.cache)}`)
  }
  const c = o.cacheOptions ?? {}
  const stats = o.cache?.statsSync()
  const port = o.port === undefined ? 11211 : count('port', o.port, 0, 65535)
  const host = o.host ?? '127.0.0.1'
  if (o.prefixDelimiter !== undefined && (typeof o.prefixDelimiter !== 'string' || o.prefixDelimiter.length !== 1)) {
    throw new TypeError('prefixDelimiter must be one character')
  }
  if (o.unixSocket !== undefined && (typeof o.unixSocket.path !== 'string' || o.unixSocket.path === '')) {
    throw new TypeError('unixSocket needs a path')
  }
  if (o.udpPort !== undefined && o.unixSocket !== undefined) throw new TypeError('udpPort cannot be used with unixSocket (memcached: a Unix socket turns the network off)')
  if (o.udpPort !== undefined && o.authFile !== undefined) throw new TypeError('udpPort cannot be used with authFile: UDP has no logins (memcached refuses -U with -Y or -S)')
  if (o.replicationCommands === false && o.replication?.replicaOf !== undefined) {
    throw new TypeError('replicationCommands: false cannot be used with replication.replicaOf (a replica needs `replicaof no one` to be promoted)')
  }
  const udpPort = o.udpPort === undefined ? undefined : count('udpPort', o.udpPort, 0, 65535)
  const listen = (o.listen ?? [{ host }]).map((a) => ({ ...a, port: a.port === undefined ? port : count('listen port', a.port, 0, 65535) }))
  if (listen.length === 0) throw new TypeError('listen needs at least one address')
  // as given: a port only where the address named one
  const given = o.listen ?? [{ host }]
  const inter = given.map((a) => (a.port === undefined ? a.host : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`)).join(',')
  return {
    inter,
    listen: o.unixSocket === undefined ? listen : [],
    unixSocket: o.unixSocket === undefined ? undefined : { path: o.unixSocket.path, mode: o.unixSocket.mode ?? 0o700 },
    udpPort,
    udpListen: udpPort === undefined ? [] : given.map((a) => ({ host: a.host, port: a.port ?? udpPort })),
    backlog: o.backlog === undefined ? 1024 : count('backlog', o.backlog, 1, 2 ** 31 - 1),
    switches: resolveSwitches(o.switches),
    startupCommands: o.startupCommands ?? [],
    prefixDelimiter: o.prefixDelimiter,
    settingsShown: o.settingsShown ?? [],
    port,
    host,
    connLimit: o.connLimit === undefined ? 1024 : count('connLimit', o.connLimit, 1, 2 ** 31 - 1),
    idleTimeout: o.idleTimeout === undefined ? 0 : count('idleTimeout', o.idleTimeout, 0, 2 ** 31 - 1),
    enableShutdown: o.enableShutdown ?? false,
    maxPendingReplyBytes:
      o.maxPendingReplyBytes === undefined ? 64 << 20 : count('maxPendingReplyBytes', o.maxPendingReplyBytes, 1024, 2 ** 40),
    verbosity: o.verbosity === undefined ? 0 : count('verbosity', o.verbosity, 0, 2 ** 31 - 1),
    followVerbosity: o.followVerbosity ?? false,
    cacheOptions: c,
    metricsPort: o.metricsPort === undefined ? undefined : count('metricsPort', o.metricsPort, 0, 65535),
    metricsHost: o.metricsHost ?? o.host ?? '127.0.0.1',
    authFile: o.authFile,
    tls: o.tls,
    replication: resolveReplicationOptions(o.replication),
    replicationCommands: o.replicationCommands ?? true,
    memoryLimit: Number(stats?.limit_maxbytes ?? sizeOf('memoryLimit', c.memoryLimit, 64 << 20)),
    maxItemSize: sizeOf('maxItemSize', c.maxItemSize, 1 << 20),
    slabChunkMax: sizeOf('slabChunkMax', c.slabChunkMax, Math.min(sizeOf('maxItemSize', c.maxItemSize, 1 << 20), 512 << 10)),
    growthFactor: c.growthFactor ?? 1.25,
    slabMinSize: c.slabMinSize ?? 48,
    evictions: c.evict ?? true,
    hashPowerInit: c.hashPower ?? 0,
    slabAutomoveWindow: c.slabAutomoveWindow ?? 30,
  }
}

function sizeOf(name: string, v: number | string | undefined, dflt: number): number {
  return v === undefined ? dflt : parseSize(`cacheOptions.${name}`, v)
}
