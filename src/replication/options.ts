// Replication settings of a server (createServer's `replication`, ferrocached's
// --replica-of, --replica-writable, --repl-backlog, --replica-auth, --repl-timeout).
import { isIPv6 } from 'node:net'
import { parseSize } from '../size'

/** Replication settings of a server (`createServer({ replication })`); see docs/replication.md. */
export interface ReplicationOptions {
  /** Follow this primary (`host:port` or `{ host, port }`); default: be a primary. */
  replicaOf?: string | ReplicaTarget
  /** A replica accepts writes of its own (not replicated further; default false: read-only). */
  replicaWritable?: boolean
  /** Bytes of recent stream kept for replicas that reconnect (default 64 MiB; `'64mb'` too). */
  backlogSize?: number | string
  /**
   * The link timeout, ms (Redis's `repl-timeout`; default 10 000; 0: never), on both sides:
   * a replica drops its link and reconnects when nothing (record, heartbeat, full-sync data,
   * handshake reply) has arrived from the primary for this long (a primary writes a
   * heartbeat every 100 ms), and a primary drops the link of a replica that has sent
   * nothing for this long (a replica acks every 100 ms, and sends keepalives during a full
   * sync).
   */
  linkTimeout?: number
  /**
   * TLS on the link, for a primary started with a certificate (`--tls-cert`): `true` verifies
   * it against the system's CAs; an object adds a CA, and a client certificate for a primary
   * that asks for one (`--tls-ca`). Default: plain TCP.
   */
  tls?: boolean | ReplicaTlsOptions
  /** Login on the link when the primary requires authentication (`-Y`); sent only when asked. */
  auth?: {
    /** A user of the primary's user file. */
    username: string
    /** Its password. */
    password: string
  }
}

/** TLS settings of a replica's link to its primary (PEM contents). */
export interface ReplicaTlsOptions {
  /** CA certificate(s) the primary's certificate must chain to (default: the system's). */
  ca?: string | Buffer
  /** Client certificate, for a primary that requires one. */
  cert?: string | Buffer
  /** Its private key. */
  key?: string | Buffer
  /** Name the primary's certificate must carry (default: the host). */
  servername?: string
}

/** The primary a replica follows. */
export interface ReplicaTarget {
  /** Host name or address. */
  host: string
  /** Its memcached port. */
  port: number
}

export interface ResolvedReplicationOptions {
  replicaOf: ReplicaTarget | undefined
  replicaWritable: boolean
  backlogSize: number
  /** ms; 0: no read timeout on links (to the primary or from replicas). */
  linkTimeout: number
  auth: { username: string; password: string } | undefined
  /** TLS on the link (`undefined`: plain TCP). */
  tls: ReplicaTlsOptions | undefined
}

export const DEFAULT_BACKLOG_SIZE = 64 << 20
/** A replica's read timeout on its link (ms): 100 heartbeats missed (docs/replication.md). */
export const DEFAULT_LINK_TIMEOUT_MS = 10_000

/** `host:port` (IPv6 in brackets: `[::1]:11211`) → a target; a bad one is a TypeError. */
export function parseTarget(text: string): ReplicaTarget {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text)
  const port = m ? Number(m[2]) : NaN
  if (!m || !(port >= 1 && port <= 65535)) throw new TypeError(`replicaOf must be host:port, got "${text}"`)
  return { host: m[1]!, port }
}

/**
 * Why the link could never log in with this user and password, if so: it logs in with
 * memcached's text login (`user pass` as a `set`'s data), which splits at a space and ends
 * at a NUL, so a primary (ferrocached or memcached) refuses every try.
 */
export function loginProblem(username: string, password: string): string | undefined {
  if (username === '' || /[ \0]/.test(username)) return 'the user name must be non-empty, without a space or NUL'
  if (/[ \0]/.test(password)) return 'the password cannot hold a space or NUL (the text login splits at spaces: the primary would refuse every login)'
  return undefined
}

/** `host` as compared between two spellings of one target: a name in lower case (DNS is
 * case-insensitive), an IPv6 literal in its canonical form (`0:0::1` is `::1`). Names are not
 * resolved: a name and its address stay different. */
function hostKey(host: string): string {
  const h = host.toLowerCase()
  if (!isIPv6(h)) return h
  try {
    return new URL(`http://[${h}]/`).hostname
  } catch {
    return h // a zone id (`fe80::1%eth0`): as written
  }
}

/** Whether `a` and `b` name the same host and port as written (see `hostKey`). */
export function sameTarget(a: ReplicaTarget, b: ReplicaTarget): boolean {
  return a.port === b.port && hostKey(a.host) === hostKey(b.host)
}

export function resolveReplicationOptions(o: ReplicationOptions | undefined): ResolvedReplicationOptions {
  const r = o ?? {}
  const replicaOf = r.replicaOf === undefined ? undefined : typeof r.replicaOf === 'string' ? parseTarget(r.replicaOf) : r.replicaOf
  if (replicaOf !== undefined && (typeof replicaOf.host !== 'string' || !Number.isInteger(replicaOf.port))) {
    throw new TypeError('replicaOf needs a host and an integer port')
  }
  const backlogSize = r.backlogSize === undefined ? DEFAULT_BACKLOG_SIZE : parseSize('replication.backlogSize', r.backlogSize)
  if (backlogSize > 2 ** 40) {
    throw new RangeError(`replication.backlogSize must be 1 byte to 1 TiB, got ${String(r.backlogSize)}`)
  }
  const linkTimeout = r.linkTimeout ?? DEFAULT_LINK_TIMEOUT_MS
  if (typeof linkTimeout !== 'number' || !Number.isInteger(linkTimeout) || linkTimeout < 0 || linkTimeout > 2 ** 31 - 1) {
    throw new RangeError(`replication.linkTimeout must be an integer number of ms, 0 (off) to 2^31-1, got ${String(r.linkTimeout)}`)
  }
  if (r.auth !== undefined && (typeof r.auth.username !== 'string' || typeof r.auth.password !== 'string')) {
    throw new TypeError('replication.auth needs username and password strings')
  }
  const unsendable = r.auth === undefined ? undefined : loginProblem(r.auth.username, r.auth.password)
  if (unsendable !== undefined) throw new TypeError(`replication.auth: ${unsendable}`)
  if (r.tls !== undefined && typeof r.tls !== 'boolean' && (typeof r.tls !== 'object' || r.tls === null)) {
    throw new TypeError('replication.tls must be true, false or { ca, cert, key, servername }')
  }
  if (typeof r.tls === 'object' && (r.tls.cert === undefined) !== (r.tls.key === undefined)) {
    throw new TypeError('replication.tls needs cert and key together')
  }
  const tls = r.tls === true ? {} : r.tls === false ? undefined : r.tls
  return { replicaOf, replicaWritable: r.replicaWritable ?? false, backlogSize, linkTimeout, auth: r.auth, tls }
}
