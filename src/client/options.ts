// Options of `new Client()`: which servers, and how patient to be with them. Errors are
// TypeError / RangeError naming the option, as for `new Cache()`.
import { checkEncoding } from '../encoding'
import type { Encoding } from '../types'
import { DEFAULT_PORT, hostPort, plainHost, splitAddress } from './address'
import { ketamaName } from './ketama'
import type { Login } from './login'
import type { NodeAddress, NodeSettings } from './node'
import { parseTls, type TlsOption, type TlsSettings } from './tls'
import { wireFor, type Protocol } from './wire'

/** A server: `'host:port'`, `'host:port:weight'` (twemproxy's form), `'[ipv6]:port'`, a
 * bare IPv6 address (port 11211), or an object. */
export type ServerSpec =
  | string
  | {
      /** Host name or address (IPv6 with or without brackets). */
      host: string
      /** TCP port (default 11211). */
      port?: number
      /** Ketama weight: a server with weight 2 gets about twice the keys (default 1). */
      weight?: number
      /** The name ketama hashes instead of `host:port` (twemproxy's server names). */
      name?: string
      /** This server's own `tls` option, in place of the Client's (`false`: plain TCP). */
      tls?: TlsOption
      /** Replicas of this server (`'host:port'` or `{ host, port }`), read with `readFrom: 'replica'`. */
      replicas?: ReadonlyArray<
        | string
        | {
            /** Host name or address of the replica. */
            host: string
            /** TCP port (default 11211). */
            port?: number
            /** This replica's own `tls` option, in place of the Client's. */
            tls?: TlsOption
          }
      >
    }

/** Options of `new Client()`: the servers, timeouts and failover policy. */
export interface ClientOptions<E extends Encoding = Encoding> {
  /** The pool; keys are spread over it by ketama (libmemcached/twemproxy compatible). */
  servers: readonly ServerSpec[]
  /** Default encoding of values read (default `'buffer'`). */
  encoding?: E | undefined
  /** Connections per server; requests are pipelined on each, a key's on one while it has
   * requests in flight, so they are answered in the order they were made (default 2). */
  poolSize?: number | undefined
  /** Milliseconds to wait for a reply before failing the request (default 1000). */
  timeout?: number | undefined
  /** Milliseconds to wait for a connection (default 1000). */
  connectTimeout?: number | undefined
  /** After a failure, milliseconds during which the server is not tried again (default 1000). */
  retry?: number | undefined
  /** Failures in a row after which a server is marked dead (default 2). */
  removeAfter?: number | undefined
  /** Milliseconds a dead server stays out before a probe tries to bring it back (default 10000). */
  reconnect?: number | undefined
  /** Take dead servers out of the continuum so their keys go to the others (default false:
   * their keys fail fast with FERROCACHE_SERVER_DEAD), libmemcached's REMOVE_FAILED_SERVERS. */
  remove?: boolean | undefined
  /**
   * Requests waiting for one server's replies (a batch counts its keys) at which new ones
   * to it are refused at once with FERROCACHE_QUEUE_FULL (default 1000000, ~1 GB of small
   * requests). Bounds the memory held for a server that stopped reading or answers slower
   * than requests come, which `timeout` alone frees only as it passes (with a long
   * `timeout`). A batch is refused only when the bound is reached already, so one larger
   * than it still goes.
   */
  maxPending?: number | undefined
  /**
   * Where `get`/`getMany`/`fetch` read: `'primary'` (default) or `'replica'` — a live replica of
   * the key's server, in turn (its copy may lag the primary by the replication delay; writes,
   * `gets`, `gat` and `touch` always go to the primary). A server with no live replica is read itself.
   */
  readFrom?: 'primary' | 'replica' | undefined
  /**
   * The dialect spoken (default `'meta'`): `'meta'` — memcached's meta commands, one reply
   * per request; `'text'` — the classic text commands (`get`/`set`/`incr`…), for servers and
   * proxies without meta commands, with the same results; `'twemproxy'` — the text commands
   * twemproxy (nutcracker) 0.5 forwards: `gat`, `flush`, `stats` and `statsByServer` reject
   * with FERROCACHE_NOT_FORWARDED instead of being sent (the proxy would close the connection);
   * `'binary'` — memcached's binary protocol, with SASL PLAIN logins (servers started with `-S`).
   */
  protocol?: 'meta' | 'text' | 'twemproxy' | 'binary' | undefined
  /** With `password`: sent first on every connection — memcached's text login (`-Y` user
   * file) with `'meta'` or `'text'` (no spaces or control characters), SASL PLAIN with
   * `'binary'` (no NUL characters); not with `'twemproxy'` (the proxy does not log in). */
  username?: string | undefined
  /** With `username`: the password of the login (text: no spaces or control characters;
   * binary: no NUL characters). */
  password?: string | undefined
  /**
   * TLS to every server (memcached `-Z`, ferrocached `--tls-cert`): `true` trusts the system's
   * CAs; an object is `tls.connect`'s options — `ca`, `cert`/`key` for servers that ask for a
   * client certificate, `servername` (default: the host, unless it is an IP address),
   * `rejectUnauthorized`… A server object's own `tls` replaces this one for that server.
   * Default `false`: plain TCP.
   */
  tls?: TlsOption | undefined
}

const NAMES = new Set([
  'servers', 'encoding', 'poolSize', 'timeout', 'connectTimeout', 'retry', 'removeAfter', 'reconnect', 'remove', 'maxPending', 'readFrom',
  'protocol', 'username', 'password', 'tls',
])
const SERVER_NAMES = new Set(['host', 'port', 'weight', 'name', 'tls', 'replicas'])
const REPLICA_NAMES = new Set(['host', 'port', 'tls'])
const PROTOCOLS: readonly Protocol[] = ['meta', 'text', 'twemproxy', 'binary']

/** Measured with a server that never reads: ~1 KB of memory per request waiting (a get, or
 * a set of 100 bytes; a set's value adds about its size), so ~1 GB per stuck server. High
 * on purpose: a batch counts its keys, and a lower default refused the other requests to a
 * healthy server while a large `getMany` was answered (100 000 keys take 0.2-0.5 s); at the
 * Client's top rate (~500k requests/s) it takes a stall of ~2 s, past the default
 * `timeout`, so it is the backstop of long timeouts. */
export const DEFAULT_MAX_PENDING = 1_000_000

function int(name: string, value: unknown, fallback: number, min: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`)
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`)
  }
  return value
}

/** A server (or a replica: `known` lists the fields it may have); `tls` is the Client's
 * TLS, used unless the object has its own. */
function parseServer(spec: unknown, name: string, tls: TlsSettings | undefined, known = SERVER_NAMES): NodeAddress {
  if (typeof spec === 'string') {
    const a = splitAddress(spec, name)
    return {
      host: a.host,
      port: int(`${name} port`, a.port === undefined ? undefined : Number(a.port), DEFAULT_PORT, 1, 65535),
      weight: int(`${name} weight`, a.weight === undefined ? undefined : Number(a.weight), 1, 1),
      ...(tls === undefined ? {} : { tls }),
    }
  }
  if (typeof spec !== 'object' || spec === null) throw new TypeError(`${name} must be a string or an object`)
  const o = spec as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!known.has(key)) throw new TypeError(`${name} has an unknown field '${key}' (known: ${[...known].join(', ')})`)
  }
  if (typeof o.host !== 'string' || o.host === '') throw new TypeError(`${name}.host must be a non-empty string`)
  if (o.name !== undefined && typeof o.name !== 'string') throw new TypeError(`${name}.name must be a string`)
  if (o.replicas !== undefined && !Array.isArray(o.replicas)) throw new TypeError(`${name}.replicas must be an array`)
  const own = o.tls === undefined ? tls : parseTls(o.tls, `${name}.tls`)
  const replicas = (o.replicas as unknown[] | undefined)?.map((r, i) => parseServer(r, `${name}.replicas[${i}]`, tls, REPLICA_NAMES))
  return {
    host: plainHost(o.host, `${name}.host`),
    port: int(`${name}.port`, o.port, DEFAULT_PORT, 1, 65535),
    weight: int(`${name}.weight`, o.weight, 1, 1),
    ...(o.name === undefined ? {} : { name: o.name as string }),
    ...(replicas === undefined || replicas.length === 0 ? {} : { replicas }),
    ...(own === undefined ? {} : { tls: own }),
  }
}

export function parseClientOptions(options: unknown): {
  servers: NodeAddress[]
  settings: NodeSettings
  encoding: Encoding
  remove: boolean
  readFromReplica: boolean
  protocol: Protocol
} {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object with servers')
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!NAMES.has(key)) throw new TypeError(`unknown option '${key}' (known: ${[...NAMES].join(', ')})`)
  }
  if (!Array.isArray(o.servers) || o.servers.length === 0) {
    throw new TypeError('servers must be a non-empty array of \'host:port\' strings or { host, port } objects')
  }
  const tls = parseTls(o.tls, 'tls')
  const servers = o.servers.map((s, i) => parseServer(s, `servers[${i}]`, tls))
  const seen = new Set<string>()
  for (const s of servers) {
    const id = hostPort(s.host, s.port)
    if (seen.has(id)) throw new RangeError(`servers lists ${id} twice`)
    seen.add(id)
  }
  // ketama places a server by this name alone: two with one name share every point and
  // the first takes all their keys, the other none (nutcracker refuses such a pool too)
  const placedAs = new Map<string, number>()
  servers.forEach((s, i) => {
    const name = ketamaName(s)
    const other = placedAs.get(name)
    if (other !== undefined) {
      throw new RangeError(`servers[${i}] is placed by ketama as '${name}', as servers[${other}] is: one of them would get no keys (give each its own name)`)
    }
    placedAs.set(name, i)
  })
  if (o.remove !== undefined && typeof o.remove !== 'boolean') throw new TypeError('remove must be a boolean')
  if (o.readFrom !== undefined && o.readFrom !== 'primary' && o.readFrom !== 'replica') {
    throw new TypeError(`readFrom must be 'primary' or 'replica', got ${String(o.readFrom)}`)
  }
  if (o.protocol !== undefined && !PROTOCOLS.includes(o.protocol as Protocol)) {
    throw new TypeError(`protocol must be 'meta', 'text', 'twemproxy' or 'binary', got ${String(o.protocol)}`)
  }
  const protocol = (o.protocol ?? 'meta') as Protocol
  const login = parseLogin(o.username, o.password, protocol === 'binary')
  if (login !== undefined && protocol === 'twemproxy') {
    throw new TypeError("username/password cannot be used with protocol 'twemproxy': the proxy keeps its own connections to the servers and does not log in")
  }
  return {
    protocol,
    readFromReplica: o.readFrom === 'replica',
    servers,
    encoding: o.encoding === undefined ? 'buffer' : checkEncoding(o.encoding, 'encoding'),
    remove: o.remove === true,
    settings: {
      poolSize: int('poolSize', o.poolSize, 2, 1, 64),
      timeout: int('timeout', o.timeout, 1000, 1),
      connectTimeout: int('connectTimeout', o.connectTimeout, 1000, 1),
      retry: int('retry', o.retry, 1000, 0),
      removeAfter: int('removeAfter', o.removeAfter, 2, 1),
      reconnect: int('reconnect', o.reconnect, 10_000, 1),
      maxPending: int('maxPending', o.maxPending, DEFAULT_MAX_PENDING, 1),
      wire: wireFor(protocol),
      login,
    },
  }
}

/** A login credential: what `user pass` can carry (memcached splits it on spaces), or
 * with `sasl` what SASL PLAIN's `\0user\0password` can. */
function credential(name: string, value: unknown, sasl: boolean): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeof value}`)
  if (value === '') throw new TypeError(`${name} must not be empty`)
  if (sasl) {
    if (value.includes('\0')) throw new TypeError(`${name} must not contain NUL characters (SASL PLAIN separates the fields with them)`)
    return value
  }
  if (/[\x00-\x20\x7f]/.test(value)) {
    throw new TypeError(`${name} must not contain spaces or control characters (memcached's text login sends 'username password' split on spaces)`)
  }
  return value
}

function parseLogin(username: unknown, password: unknown, sasl: boolean): Login | undefined {
  if (username === undefined && password === undefined) return undefined
  if (username === undefined) throw new TypeError('password needs username')
  if (password === undefined) throw new TypeError('username needs password')
  return { username: credential('username', username, sasl), password: credential('password', password, sasl) }
}
