// A server's replication: its role, the replica links it serves, its link to a primary,
// the `replicaof` / `psync` commands and the `stats` lines. See docs/replication.md.
import type { Socket } from 'node:net'
import type { NativeCache, NativeReplication, NativeServerInfo } from '../../native/index'
import { native } from '../native'
import type { Logger } from '../server/log'
import { parseTarget, sameTarget, type ResolvedReplicationOptions, type ReplicaTarget } from './options'
import { ReplicaLink, type SyncCounters } from './primary-link'
import { Upstream } from './upstream'

/** How often replica links are topped up from the backlog (ms). */
const PUMP_INTERVAL_MS = 2
/** How often a primary with replicas writes a heartbeat into the stream (ms; upstream.ts counts on it). */
const HEARTBEAT_INTERVAL_MS = 100
/** How often the `stats` lines are refreshed while replication is in use (ms). */
const STATS_INTERVAL_MS = 100
/** The link-timeout check of replica links runs at most this far apart (ms). */
const WATCH_MAX_MS = 1_000

export class Replication {
  private repl: NativeReplication | undefined
  private readonly links = new Set<ReplicaLink>()
  private upstream: Upstream | undefined
  private readonly counters: SyncCounters = { full: 0, partialOk: 0, partialErr: 0, overruns: 0 }
  private pumpTimer: NodeJS.Timeout | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private statsTimer: NodeJS.Timeout | undefined
  private watchTimer: NodeJS.Timeout | undefined
  /** Date.now() of the last link-timeout check. */
  private watchedAt = 0
  /** Replica links dropped because the replica was silent for the link timeout. */
  private timeouts = 0
  /** This node has applied a full data set from its primary (or is a primary). */
  private synced = true
  /** The store was emptied for a full sync that has not completed since (a cut keeps it). */
  private partial = false
  private closed = false
  /**
   * Told when the store starts or stops holding part of a data set (the server holds the
   * snapshots meanwhile: one taken then would be the newest, and short); a promise returned
   * when it starts delays the emptying until a save already being written is done. Set
   * before `start`.
   */
  onPartialStore: ((partial: boolean) => Promise<void> | undefined) | undefined

  constructor(
    private readonly cache: NativeCache,
    private readonly info: NativeServerInfo,
    private readonly options: ResolvedReplicationOptions,
    private readonly log: Logger,
    /** Called when the stats lines may have changed. */
    private readonly onStatsChanged: () => void,
  ) {}

  /** Follows the configured primary, if any. */
  start(): void {
    if (this.options.replicaOf !== undefined) this.follow(this.options.replicaOf)
  }

  /**
   * The native log, created on first need: until a replica syncs or this node follows a
   * primary, the store records nothing for replication (and `stats` has no lines for it).
   */
  private native(): NativeReplication {
    if (this.repl === undefined) {
      this.repl = new native.NativeReplication(this.cache, this.options.backlogSize)
      // `stats` reads the offsets when it runs: a primary's and a replica's compared say
      // whether the replica has every write so far
      this.info.setLiveReplOffset(this.repl)
      // offsets move all the time: refresh the stats lines a few times a second
      this.statsTimer = setInterval(() => this.onStatsChanged(), STATS_INTERVAL_MS)
      this.statsTimer.unref()
    }
    return this.repl
  }

  get role(): 'primary' | 'replica' {
    return this.upstream === undefined ? 'primary' : 'replica'
  }

  /**
   * A `replicaof` or `psync` line a session stopped for. Resolves with the reply; a psync
   * that succeeds takes the socket over and never resolves (the connection stays paused).
   */
  command(line: string, socket: Socket, identified: boolean): Promise<string> {
    const words = line.trim().split(/\s+/)
    if (words[0] === 'replicaof') return Promise.resolve(this.replicaof(words[1]!, words[2]!, identified))
    if (this.closed) return Promise.resolve('SERVER_ERROR shutting down\r\n')
    if (!this.synced) return Promise.resolve('SERVER_ERROR replica not synced yet\r\n')
    const offset = Number(words[2])
    if (!/^\d+$/.test(words[2]!) || !Number.isSafeInteger(offset)) return Promise.resolve('CLIENT_ERROR bad offset\r\n')
    const link = new ReplicaLink(socket, this.native(), this.cache, this.log, (l) => {
      this.links.delete(l)
      if (this.links.size === 0) this.stopTimers()
      this.onStatsChanged()
    })
    this.links.add(link)
    link.start(words[1]!, offset, this.counters)
    this.startTimers()
    this.onStatsChanged()
    return new Promise<string>(() => {})
  }

  /**
   * `identified`: the client logged in (`-Y`) or showed a verified certificate. Only then may
   * it point the link at a server other than the configured primary with the link's login:
   * else anyone who reaches a replica could point it at a server of theirs that asks for a
   * login and read `--replica-auth` off the wire.
   */
  private replicaof(a: string, b: string, identified: boolean): string {
    if (a.toLowerCase() === 'no' && b.toLowerCase() === 'one') {
      this.promote()
      return 'OK\r\n'
    }
    let target: ReplicaTarget
    try {
      target = parseTarget(`${a.includes(':') ? `[${a}]` : a}:${b}`)
    } catch {
      return 'CLIENT_ERROR bad command line format\r\n'
    }
    this.follow(target, identified)
    return 'OK\r\n'
  }

  /**
   * Becomes (or re-points) a replica of `target`; the link logs in (if asked) when `withAuth`
   * or `target` is the configured primary (host and port as written, a name's case aside).
   */
  follow(target: ReplicaTarget, withAuth = true): void {
    const configured = this.options.replicaOf
    const auth = withAuth || (configured !== undefined && sameTarget(configured, target)) ? this.options.auth : undefined
    if (auth === undefined && this.options.auth !== undefined) {
      this.log.warn(
        { primary: `${target.host}:${target.port}` },
        'replicaof from a client without a login or client certificate: the link does not send --replica-auth to a server other than the configured primary',
      )
    }
    this.upstream?.stop()
    // a node that never kept a history has nothing to continue: it asks for a full sync;
    // so does one re-pointed inside a full sync (or before its first sync with the last
    // target finished): its store holds part of a snapshot, and the position FULLRESYNC gave
    // would let a sibling of the old primary continue from there, short of the rest for good
    const fresh = this.repl === undefined || !this.synced
    const repl = this.native()
    repl.demote()
    this.synced = false
    this.info.setReadOnly(!this.options.replicaWritable)
    // our replicas follow whatever we follow: they reconnect and resync through us
    this.dropLinks()
    this.log.info({ primary: `${target.host}:${target.port}` }, 'following a primary')
    this.upstream = new Upstream(target, repl, fresh, auth, this.options.tls, this.options.linkTimeout, this.log, {
      // saves are held from FULLRESYNC on, and one being written ends before the store empties
      beforeFullSync: () => this.setPartial(true),
      onSyncStart: (full) => {
        // during a full sync the store is partial: a replica of ours that synced from it now
        // would get a snapshot of the part loaded so far, and the rest never (those records
        // are not in our stream), so it is told "not synced yet" until the sync is done
        this.synced = !full
        if (full) this.dropLinks()
        this.onStatsChanged()
      },
      onSyncDone: () => {
        this.synced = true
        this.setPartial(false)
        this.onStatsChanged()
      },
      onApplied: () => this.pumpLinks(),
    })
    this.onStatsChanged()
  }

  /** `replicaof no one`: keeps the data, starts a new history (the old one stays valid up to here). */
  promote(): void {
    if (this.upstream === undefined) return
    this.upstream.stop()
    this.upstream = undefined
    this.synced = true
    // promoted inside a full sync: what arrived is this primary's data set now, and its
    // writes must reach snapshots again
    if (this.partial) this.log.warn('promoted inside a full sync: the data set holds only the part that had arrived')
    this.setPartial(false)
    const id = this.native().promote()
    this.info.setReadOnly(false)
    // replicas of ours reconnect and continue under the new id
    this.dropLinks()
    this.log.info({ replid: id }, 'promoted to primary')
    this.onStatsChanged()
  }

  private setPartial(partial: boolean): Promise<void> | undefined {
    // already partial (a link re-pointed or cut inside its full sync): a save begun before
    // still must end before the next FULLRESYNC empties the store
    if (partial === this.partial) return partial ? this.onPartialStore?.(true) : undefined
    this.partial = partial
    return this.onPartialStore?.(partial)
  }

  /** Cuts the link to the primary (it reconnects with backoff). */
  cutUpstream(): void {
    this.upstream?.cut()
  }

  private dropLinks(): void {
    for (const l of this.links) l.close()
  }

  private pumpLinks(): void {
    for (const l of this.links) l.pump()
  }

  private startTimers(): void {
    if (this.pumpTimer !== undefined) return
    this.pumpTimer = setInterval(() => this.pumpLinks(), PUMP_INTERVAL_MS)
    this.heartbeatTimer = setInterval(() => {
      if (this.upstream === undefined) this.repl?.heartbeat()
    }, HEARTBEAT_INTERVAL_MS)
    const timeout = this.options.linkTimeout
    const every = timeout > 0 ? Math.max(10, Math.min(WATCH_MAX_MS, Math.floor(timeout / 4))) : WATCH_MAX_MS
    this.watchedAt = Date.now()
    this.watchTimer = setInterval(() => this.watchLinks(timeout, every), every)
  }

  private stopTimers(): void {
    clearInterval(this.pumpTimer)
    clearInterval(this.heartbeatTimer)
    clearInterval(this.watchTimer)
    this.pumpTimer = undefined
    this.heartbeatTimer = undefined
    this.watchTimer = undefined
  }

  /**
   * Drops replica links that cannot go on. One whose next byte left the backlog must resync
   * (a link waiting for 'drain' would only find out once its replica reads again). And the
   * link timeout, primary side (Redis's repl-timeout; 0: none): a replica acks every 100 ms
   * once online and sends a keepalive line as often during a full sync, so one silent for
   * the timeout is stopped or cut off (SIGSTOP, a network that drops packets); its link is
   * dropped, and with it the link's queued bytes and its place in `connected_slaves`. A slow
   * replica in a full sync still sends keepalives and is not cut. A check that runs late
   * (this event loop was blocked) is skipped: acks that arrived meanwhile are read after
   * timers, so they would not have counted yet.
   */
  private watchLinks(timeout: number, every: number): void {
    const info = this.repl?.info()
    if (info?.backlogActive) {
      for (const l of this.links) if (!l.dropped && l.sentOffset < info.backlogFirst) l.overrun()
    }
    const now = Date.now()
    const late = now - this.watchedAt > 2 * every
    this.watchedAt = now
    if (late || timeout === 0) return
    for (const l of this.links) {
      if (l.dropped || now - l.heardAt < timeout) continue
      this.timeouts++
      this.log.warn(
        { replica: l.addr, state: l.state, silentMs: now - l.heardAt, queuedBytes: l.queuedBytes },
        'replica silent for the link timeout, dropping its link',
      )
      l.close()
    }
  }

  /** The replication lines of `stats` (Redis's names where it has one; docs/replication.md). */
  statsLines(): Array<[string, string]> {
    if (this.repl === undefined) return []
    const i = this.repl.info()
    const offset = i?.offset ?? 0
    const lines: Array<[string, string]> = [
      ['role', this.role],
      ['connected_slaves', String(this.links.size)],
    ]
    let n = 0
    let maxLag = 0
    let maxAckLag = 0
    const now = Date.now()
    for (const l of this.links) {
      const lag = l.lagBytes(offset)
      const ackLag = l.ackLagBytes(offset)
      maxLag = Math.max(maxLag, lag)
      maxAckLag = Math.max(maxAckLag, ackLag)
      const ackAge = l.ackedAt === 0 ? -1 : now - l.ackedAt
      lines.push([
        `slave${n++}`,
        `addr=${l.addr},state=${l.state},offset=${l.sentOffset},lag_bytes=${lag},ack_offset=${l.ackedOffset},ack_lag_bytes=${ackLag},ack_age_ms=${ackAge}`,
      ])
    }
    lines.push(
      ['master_replid', i?.replid ?? ''],
      ['master_replid2', i?.replid2 ?? ''],
      ['master_repl_offset', String(offset)],
      ['repl_second_offset', String(i?.secondOffset ?? 0)],
      ['repl_backlog_active', i?.backlogActive ? '1' : '0'],
      ['repl_backlog_size', String(i?.backlogSize ?? this.options.backlogSize)],
      ['repl_backlog_first_byte_offset', String(i?.backlogFirst ?? 0)],
      ['repl_backlog_histlen', String(i?.backlogLen ?? 0)],
      ['repl_max_lag_bytes', String(maxLag)],
      ['repl_max_ack_lag_bytes', String(maxAckLag)],
      ['repl_sync_full', String(this.counters.full)],
      ['repl_sync_partial_ok', String(this.counters.partialOk)],
      ['repl_sync_partial_err', String(this.counters.partialErr)],
      ['repl_replica_timeouts', String(this.timeouts)],
      ['repl_replica_overruns', String(this.counters.overruns)],
    )
    const u = this.upstream
    if (u !== undefined) {
      lines.push(
        ['master_host', u.target.host],
        ['master_port', String(u.target.port)],
        ['master_link_status', u.linkUp ? 'up' : 'down'],
        ['master_last_io_seconds_ago', u.lastIo === 0 ? '-1' : String(Math.floor((Date.now() - u.lastIo) / 1000))],
        ['master_sync_in_progress', u.state === 'sync' ? '1' : '0'],
        ['slave_repl_offset', String(offset)],
        ['slave_read_only', this.options.replicaWritable ? '0' : '1'],
        ['slave_full_syncs', String(u.fullSyncs)],
        ['slave_partial_syncs', String(u.partialSyncs)],
        ['repl_not_stored', String(u.notStored)],
        ['repl_lag_ms', String(u.lagMs)],
      )
    }
    return lines
  }

  close(): void {
    this.closed = true
    this.stopTimers()
    clearInterval(this.statsTimer)
    this.upstream?.stop()
    this.dropLinks()
  }
}
