// A replica's link to its primary: connect, log in if asked, PSYNC from our position,
// then apply what arrives (one native call per read). Reconnects with backoff, and when the
// primary falls silent for the link timeout (Redis's repl-timeout).
import * as net from 'node:net'
import * as tls from 'node:tls'
import type { NativeReplication } from '../../native/index'
import type { Logger } from '../server/log'
import type { ReplicaTarget, ReplicaTlsOptions } from './options'

const BACKOFF_MIN_MS = 50
const BACKOFF_MAX_MS = 2_000
/**
 * After a refusal that retrying will not change (a login refused, no login to send, `psync`
 * not allowed, a server without replication commands), the backoff goes on doubling up to
 * this: only the primary's operator (or a `replicaof`) can end it.
 */
const REFUSED_BACKOFF_MAX_MS = 30_000
/** A failed try that fails as the one logged before is logged again at most this often. */
const REPEAT_LOG_MS = 60_000
/** How often a primary with replicas writes a heartbeat into the stream (ms). */
const HEARTBEAT_INTERVAL_MS = 100
/** How often an online replica tells its primary the offset it applied (the heartbeat's cadence). */
const ACK_INTERVAL_MS = HEARTBEAT_INTERVAL_MS
/** After applying stream bytes, acknowledge at most this often. */
const ACK_MIN_GAP_MS = 10
/** A handshake line longer than this is not from a ferrocached. */
const MAX_LINE = 1024
/** At most one warning a minute about items the store refused. */
const NOT_STORED_WARN_MS = 60_000
/** The link-timeout check runs at most this far apart (ms). */
const WATCH_MAX_MS = 1_000

export type UpstreamState = 'connecting' | 'handshake' | 'sync' | 'online' | 'stopped'

export interface UpstreamEvents {
  /**
   * FULLRESYNC arrived, the store is not emptied yet: a promise delays that (and the sync)
   * until it settles (a snapshot being written, whose walk the emptying would cut short).
   */
  beforeFullSync(): Promise<void> | undefined
  /** A sync began: `full` (the store was emptied; downstream replicas must resync). */
  onSyncStart(full: boolean): void
  /** A full sync's snapshot section was applied whole: the store holds the primary's data set. */
  onSyncDone(): void
  /** Stream bytes were applied (downstream replicas can be fed). */
  onApplied(): void
}

export class Upstream {
  state: UpstreamState = 'connecting'
  fullSyncs = 0
  partialSyncs = 0
  /** Items from the primary this store refused and left deleted (larger than its `-I`:
   * a primary with a larger one): where the replica differs from its primary. */
  notStored = 0
  /** Date.now() of the last warning about them (at most one a minute). */
  private notStoredWarnedAt = 0
  /** Delay of the last heartbeat applied (primary's clock to ours), ms; -1 = none yet. */
  private beatDelayMs = -1
  /** The primary's clock (unix ms) in the last heartbeat applied; -1 = none yet. */
  private beatAtMs = -1
  /** Date.now() of the last byte received. */
  lastIo = 0
  /** Date.now() of the last sign of the primary on this connection (its start, connected, a byte). */
  private heardAt = 0
  /**
   * FULLRESYNC arrived and this side holds the link's reads (paused) until a snapshot being
   * written is done: the primary's silence meanwhile is ours, not a dead link.
   */
  private holdingReads = false
  /** Checks the link timeout (undefined: no timeout). */
  private readonly watchTimer: NodeJS.Timeout | undefined
  /** Date.now() of the last check. */
  private watchedAt = 0
  private socket: net.Socket | undefined
  private timer: NodeJS.Timeout | undefined
  private backoff = BACKOFF_MIN_MS
  /** The primary's last refusal will not change by retrying: back off up to REFUSED_BACKOFF_MAX_MS. */
  private refusedForGood = false
  /** Tries that failed (an error or a refusal) since the link was last accepted. */
  private failedTries = 0
  /** How the failure logged last failed (its error or reply), and Date.now() then. */
  private failureLogged = ''
  private failureLoggedAt = 0
  private line = ''
  private loginSent = false
  private readonly ackTimer: NodeJS.Timeout
  /** A throttled acknowledgement waiting to go out. */
  private ackSoon: NodeJS.Timeout | undefined
  private lastAckAt = 0

  constructor(
    readonly target: ReplicaTarget,
    private readonly repl: NativeReplication,
    /** No history of ours yet: the first PSYNC asks for a full sync (`psync ? 0`). */
    private fresh: boolean,
    private readonly auth: { username: string; password: string } | undefined,
    /** TLS on the link (a primary with a certificate); undefined: plain TCP. */
    private readonly tlsOptions: ReplicaTlsOptions | undefined,
    /** Drop the link after this long without a byte from the primary (ms; 0: never). */
    private readonly linkTimeoutMs: number,
    private readonly log: Logger,
    private readonly events: UpstreamEvents,
  ) {
    this.ackTimer = setInterval(() => this.ack(), ACK_INTERVAL_MS)
    this.ackTimer.unref()
    if (linkTimeoutMs > 0) {
      const every = Math.max(10, Math.min(WATCH_MAX_MS, Math.floor(linkTimeoutMs / 4)))
      this.watchedAt = Date.now()
      this.watchTimer = setInterval(() => this.watch(every), every)
      this.watchTimer.unref()
    }
    this.connect()
  }

  /**
   * The link timeout: a connection (connecting, handshake, full sync or stream) that has had
   * nothing from the primary for `linkTimeoutMs` is closed; 'close' reconnects with backoff.
   * A check that runs late (this event loop was blocked) is skipped: bytes that arrived
   * meanwhile are read after timers, so they would not have counted yet.
   */
  private watch(every: number): void {
    const now = Date.now()
    const late = now - this.watchedAt > 2 * every
    this.watchedAt = now
    const socket = this.socket
    if (this.holdingReads) this.heardAt = now
    if (late || socket === undefined || this.state === 'stopped' || now - this.heardAt < this.linkTimeoutMs) return
    // a stopped primary's kernel takes every reconnect into its backlog, silent again
    const silentMs = now - this.heardAt
    this.failed('silent', () => this.log.warn({ primary: this.where(), state: this.state, silentMs, tries: this.failedTries }, 'primary silent for the link timeout, reconnecting'))
    socket.destroy()
  }

  /**
   * Tells the primary the stream offset applied: `REPLCONF ACK <offset>\r\n` (Redis's
   * words), once the link is online; during a full sync, where no offset is applied yet, an
   * empty line (as a loading Redis replica sends "\n"). Either tells the primary this
   * replica is alive (its link timeout). Skipped while earlier bytes are still queued: each
   * is only the latest news, and a primary that does not read them must not make them pile
   * up here.
   */
  private ack(): void {
    const socket = this.socket
    if ((this.state !== 'online' && this.state !== 'sync') || socket === undefined || socket.writableLength > 0) return
    this.lastAckAt = Date.now()
    socket.write(this.state === 'online' ? `REPLCONF ACK ${this.repl.offset()}\r\n` : '\r\n')
  }

  /** An ack after applied bytes, at most one per ACK_MIN_GAP_MS. */
  private ackApplied(): void {
    if (this.ackSoon !== undefined) return
    const wait = this.lastAckAt + ACK_MIN_GAP_MS - Date.now()
    if (wait <= 0) return this.ack()
    this.ackSoon = setTimeout(() => {
      this.ackSoon = undefined
      this.ack()
    }, wait)
  }

  /**
   * `repl_lag_ms`: the last heartbeat's delay, or, once the next heartbeat is overdue (a
   * stopped primary, a silent network: the link stays open), how long it has been due: the
   * primary may have made changes since that this replica has not seen. -1 before the first.
   */
  get lagMs(): number {
    if (this.beatAtMs < 0) return -1
    return Math.max(this.beatDelayMs, Date.now() - this.beatAtMs - HEARTBEAT_INTERVAL_MS)
  }

  get linkUp(): boolean {
    return this.state === 'online' || this.state === 'sync'
  }

  private connect(): void {
    if (this.state === 'stopped') return
    this.state = 'connecting'
    this.line = ''
    this.heardAt = Date.now()
    const { host, port } = this.target
    const socket = this.tlsOptions === undefined ? net.connect({ host, port }) : tls.connect({ host, port, ...this.tlsOptions })
    this.socket = socket
    socket.setNoDelay(true)
    // over TLS nothing may be sent before the primary's certificate is verified
    socket.on(this.tlsOptions === undefined ? 'connect' : 'secureConnect', () => {
      this.state = 'handshake'
      this.heardAt = Date.now()
      this.loginSent = false
      this.sendPsync(socket)
    })
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk))
    socket.on('error', (err: Error) => this.failed(`error ${err.message}`, () => this.log.info({ primary: this.where(), err: err.message, tries: this.failedTries }, 'link to the primary failed')))
    socket.on('close', () => {
      if (this.socket !== socket) return
      this.socket = undefined
      this.holdingReads = false
      if (this.state === 'stopped') return
      // cut inside a full sync's snapshot section: the position FULLRESYNC gave is not ours
      // (part of the data set never arrived), so continuing from it would keep the store
      // short of those items for good; ask for a new full sync instead
      if (this.state === 'sync') this.fresh = true
      this.state = 'connecting'
      const max = this.refusedForGood ? REFUSED_BACKOFF_MAX_MS : BACKOFF_MAX_MS
      this.refusedForGood = false
      const delay = Math.min(this.backoff, max)
      this.timer = setTimeout(() => this.connect(), delay)
      this.backoff = Math.min(delay * 2, max)
    })
  }

  /**
   * A try failed (`how`: its error, the primary's reply, or its silence for the link
   * timeout). Logged (`logIt`) the first time, when it fails otherwise than the try logged
   * before, and else at most once a REPEAT_LOG_MS: a replica with a wrong password retries
   * for as long as it runs, and logged every try (1,800 lines an hour at the 2 s backoff);
   * one of a SIGSTOPped primary logged every link timeout. Each line says how many tries
   * have failed so far (`tries`).
   */
  private failed(how: string, logIt: () => void): void {
    this.failedTries++
    const now = Date.now()
    if (how === this.failureLogged && now - this.failureLoggedAt < REPEAT_LOG_MS) return
    this.failureLogged = how
    this.failureLoggedAt = now
    logIt()
  }

  /** The primary accepted the link (FULLRESYNC or CONTINUE): says so if tries had failed. */
  private accepted(): void {
    if (this.failedTries > 0) {
      this.log.info({ primary: this.where(), failedTries: this.failedTries }, 'primary accepted the replication link after failed tries')
    }
    this.failedTries = 0
    this.failureLogged = ''
  }

  private sendPsync(socket: net.Socket): void {
    const info = this.repl.info()
    socket.write(this.fresh ? 'psync ? 0\r\n' : `psync ${info.replid} ${info.offset}\r\n`)
  }

  /**
   * The primary wants a login (`-Y`): memcached's text login, a set whose value is
   * "user pass", then the psync again. Sent only when asked, so a primary without logins
   * never sees the set (it would store it).
   */
  private login(socket: net.Socket): boolean {
    if (this.auth === undefined || this.loginSent) return false
    this.loginSent = true
    const token = `${this.auth.username} ${this.auth.password}`
    socket.write(`set ferrocache-replica 0 0 ${Buffer.byteLength(token)}\r\n${token}\r\n`)
    this.sendPsync(socket)
    return true
  }

  private where(): string {
    return `${this.target.host}:${this.target.port}`
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (this.socket !== socket) return
    this.lastIo = Date.now()
    this.heardAt = this.lastIo
    if (this.state === 'handshake') {
      let rest: Buffer | undefined = chunk
      while (rest !== undefined && this.state === 'handshake') rest = this.handshake(socket, rest)
      if (rest === undefined || rest.length === 0) return
      chunk = rest
    }
    const r = this.repl.apply(chunk)
    if (r.error != null) {
      this.log.error({ primary: this.where(), err: r.error, offset: r.offset }, 'damaged replication stream, resyncing')
      socket.destroy()
      return
    }
    if (r.notStored > 0) this.noteNotStored(r.notStored)
    if (r.heartbeatMs >= 0) {
      this.beatAtMs = r.heartbeatMs
      this.beatDelayMs = Math.max(0, Date.now() - r.heartbeatMs)
    }
    if (r.syncDone) {
      this.state = 'online'
      this.backoff = BACKOFF_MIN_MS
      this.log.info({ primary: this.where(), offset: r.offset }, 'full sync done')
      this.events.onSyncDone()
    }
    if (r.streamBytes > 0) this.events.onApplied()
    if (r.streamBytes > 0 || r.syncDone) this.ackApplied()
  }

  /** Counts items the store refused and says so, once a minute at most (a primary with a
   * larger `-I` may send them all the time). */
  private noteNotStored(n: number): void {
    this.notStored += n
    const now = Date.now()
    if (now - this.notStoredWarnedAt < NOT_STORED_WARN_MS) return
    this.notStoredWarnedAt = now
    this.log.warn(
      { primary: this.where(), notStored: this.notStored },
      "items from the primary not stored (larger than this server's -I, or no memory under -M): this replica lacks them (stats: repl_not_stored)",
    )
  }

  /** Empties the store and applies what follows as the primary's snapshot section. */
  private beginFullSync(replid: string, offset: number): void {
    this.repl.follow(replid, offset, true)
    this.log.info({ primary: this.where(), replid, offset }, 'full sync from the primary')
    this.events.onSyncStart(true)
  }

  /** Consumes one reply line of the handshake; returns the bytes after it (undefined: need more). */
  private handshake(socket: net.Socket, chunk: Buffer): Buffer | undefined {
    const nl = chunk.indexOf(10)
    if (nl < 0) {
      this.line += chunk.toString('latin1')
      if (this.line.length > MAX_LINE) socket.destroy()
      return undefined
    }
    const line = (this.line + chunk.subarray(0, nl).toString('latin1')).replace(/\r$/, '')
    this.line = ''
    const rest = chunk.subarray(nl + 1)
    const words = line.split(' ')
    if (words[0] === 'STORED' && this.loginSent) return rest
    if (line === 'CLIENT_ERROR unauthenticated' && this.login(socket)) return rest
    if (words[0] === 'FULLRESYNC' && words.length === 3) {
      this.accepted()
      this.fullSyncs++
      this.fresh = false
      // from here a cut asks for a full sync again (see 'close'); keepalives go on
      this.state = 'sync'
      const wait = this.events.beforeFullSync()
      if (wait === undefined) {
        this.beginFullSync(words[1]!, Number(words[2]))
        return rest
      }
      this.log.info({ primary: this.where() }, 'full sync waits for the snapshot being written')
      socket.pause()
      this.holdingReads = true
      void wait.then(() => {
        if (this.socket !== socket || this.state !== 'sync' || socket.destroyed) return
        this.holdingReads = false
        this.heardAt = Date.now()
        this.beginFullSync(words[1]!, Number(words[2]))
        if (rest.length > 0) this.onData(socket, rest)
        socket.resume()
      })
      return undefined
    }
    if (words[0] === 'CONTINUE' && words.length === 2) {
      this.accepted()
      this.partialSyncs++
      this.state = 'online'
      this.backoff = BACKOFF_MIN_MS
      const offset = this.repl.offset()
      this.repl.follow(words[1]!, offset, false)
      this.log.info({ primary: this.where(), replid: words[1], offset }, 'partial resync from the primary')
      this.events.onSyncStart(false)
      return rest
    }
    // a refusal the next try gets too (a login, psync not allowed, no replication commands)
    // backs off further; SERVER_ERROR (not synced yet, shutting down) passes
    this.refusedForGood = words[0] === 'CLIENT_ERROR' || line === 'ERROR'
    const reply = line.slice(0, 200)
    this.failed(`reply ${reply}`, () => this.log.warn({ primary: this.where(), reply, tries: this.failedTries }, 'primary refused the replication link'))
    socket.destroy()
    return undefined
  }

  /** Drops the link and stops reconnecting. */
  stop(): void {
    this.state = 'stopped'
    clearTimeout(this.timer)
    clearInterval(this.ackTimer)
    clearInterval(this.watchTimer)
    clearTimeout(this.ackSoon)
    this.socket?.destroy()
    this.socket = undefined
  }

  /** Cuts the link (it reconnects): for tests and operators. */
  cut(): void {
    this.socket?.destroy()
  }
}
