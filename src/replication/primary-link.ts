// The primary's side of one replica: answers its PSYNC with a full sync (snapshot frames,
// then the stream) or a continuation, then keeps writing the stream from the backlog, and
// reads the replica's acknowledgements (`REPLCONF ACK <offset>` lines) and keepalives,
// which tell it the replica is alive (the manager drops a link silent for the link timeout).
import type { Socket } from 'node:net'
import type { NativeCache, NativeFullSync, NativeReplication } from '../../native/index'
import { native } from '../native'
import { divertReads } from '../server/connection'
import type { Logger } from '../server/log'

/** Bytes taken from the backlog or the snapshot per call. */
const CHUNK = 256 << 10
/**
 * Stop filling the socket past this many queued bytes; 'drain' resumes. One chunk: any
 * client may send `psync`, and a link whose peer does not read holds about this much
 * plus a chunk (at 4 MiB, 50 such links held +248 MB).
 */
const HIGH_WATER = CHUNK
/** A line from the replica longer than this is not an acknowledgement: the link is dropped. */
const MAX_ACK_LINE = 256

export type LinkState = 'sync' | 'online' | 'closed'

/** Counters the manager shows in `stats`. */
export interface SyncCounters {
  full: number
  partialOk: number
  partialErr: number
  /** Links dropped because the replica's next byte left the backlog (it reads too slowly). */
  overruns: number
}

export class ReplicaLink {
  state: LinkState = 'sync'
  /** Stream offset of the next byte to write to this replica. */
  private offset = 0
  private fullSync: NativeFullSync | undefined
  private counters: SyncCounters | undefined
  private waitingDrain = false
  /** Stream offset the replica last said it applied (`REPLCONF ACK`); -1: none yet (an older replica never sends one). */
  ackedOffset = -1
  /** Date.now() of that acknowledgement (0: none). */
  ackedAt = 0
  /** Date.now() of the last byte from the replica (or of the link's start). */
  heardAt = Date.now()
  /** The start of an acknowledgement line not complete yet. */
  private ackLine = ''
  readonly addr: string

  constructor(
    private readonly socket: Socket,
    private readonly repl: NativeReplication,
    private readonly cache: NativeCache,
    private readonly log: Logger,
    private readonly onClosed: (link: ReplicaLink) => void,
  ) {
    this.addr = `${socket.remoteAddress}:${socket.remotePort}`
    socket.on('close', () => this.closed())
    socket.on('error', (err: Error) => this.log.info({ replica: this.addr, err: err.message }, 'replica link error'))
    socket.on('drain', () => {
      this.waitingDrain = false
      if (this.state === 'sync') this.sendSnapshot()
      else this.pump()
    })
    // the text session is done with the socket: what the replica sends now is ours
    if (!divertReads(socket, (bytes) => this.onReplicaBytes(bytes))) {
      this.log.warn({ replica: this.addr }, 'cannot read acknowledgements on this link')
    }
  }

  /**
   * Bytes from the replica: `REPLCONF ACK <offset>\r\n` lines (Redis's words), the stream
   * offset it has applied, and during a full sync empty lines (keepalives). Other lines are
   * ignored (a later replica may say more); any byte says the replica is alive.
   */
  private onReplicaBytes(bytes: Buffer): void {
    this.heardAt = Date.now()
    let text = this.ackLine + bytes.toString('latin1')
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const words = text.slice(0, nl).trim().split(' ')
      text = text.slice(nl + 1)
      if (words.length === 3 && words[0]!.toUpperCase() === 'REPLCONF' && words[1]!.toUpperCase() === 'ACK' && /^\d{1,16}$/.test(words[2]!)) {
        this.ackedOffset = Number(words[2])
        this.ackedAt = Date.now()
      }
    }
    if (text.length > MAX_ACK_LINE) {
      this.log.warn({ replica: this.addr }, 'replica sent an over-long line, dropping its link')
      this.socket.destroy()
      return
    }
    this.ackLine = text
  }

  /** Answers `PSYNC replid offset`; counts the outcome in `counters`. */
  start(replid: string, offset: number, counters: SyncCounters): void {
    this.counters = counters
    const answer = this.repl.psync(replid, offset)
    if (!answer.full) {
      counters.partialOk++
      this.offset = offset
      this.state = 'online'
      this.socket.write(`CONTINUE ${answer.replid}\r\n`)
      this.log.info({ replica: this.addr, offset }, 'replica continues from the backlog')
      this.pump()
      return
    }
    counters.full++
    if (replid !== '?') counters.partialErr++
    this.offset = answer.offset
    this.socket.write(`FULLRESYNC ${answer.replid} ${answer.offset}\r\n`)
    this.log.info({ replica: this.addr, offset: answer.offset }, 'full sync to a replica')
    this.fullSync = new native.NativeFullSync(this.cache, this.repl)
    this.sendSnapshot()
  }

  /** Writes snapshot frames a chunk per turn of the event loop (clients keep being served). */
  private sendSnapshot(): void {
    if (this.state !== 'sync' || this.waitingDrain || this.fullSync === undefined) return
    const chunk = this.fullSync.next(CHUNK)
    if (chunk === null) {
      this.log.info({ replica: this.addr, items: this.fullSync.items }, 'snapshot sent, streaming')
      this.fullSync = undefined
      this.state = 'online'
      this.pump()
      return
    }
    if (!this.socket.write(chunk) && this.socket.writableLength > HIGH_WATER) {
      this.waitingDrain = true
      return
    }
    setImmediate(() => this.sendSnapshot())
  }

  /** Writes the stream bytes the replica has not had yet. */
  pump(): void {
    if (this.state !== 'online' || this.waitingDrain) return
    for (;;) {
      const bytes = this.repl.read(this.offset, CHUNK)
      if (bytes === null) return this.overrun()
      if (bytes.length === 0) return
      this.offset += bytes.length
      if (!this.socket.write(bytes) && this.socket.writableLength > HIGH_WATER) {
        this.waitingDrain = true
        return
      }
    }
  }

  /** Stream bytes produced that have not reached the kernel for this replica yet. */
  lagBytes(primaryOffset: number): number {
    return this.state === 'online' ? Math.max(0, primaryOffset - this.offset + this.socket.writableLength) : 0
  }

  /** Stream offset written to the socket so far. */
  get sentOffset(): number {
    return this.offset
  }

  /** Stream bytes produced that the replica has not acknowledged applying; -1 without an acknowledgement. */
  ackLagBytes(primaryOffset: number): number {
    return this.ackedOffset < 0 ? -1 : Math.max(0, primaryOffset - this.ackedOffset)
  }

  close(): void {
    this.socket.destroy()
  }

  /**
   * The replica fell behind further than the backlog reaches (its next byte is gone): it
   * must resync, so the link is dropped. This bounds what a slow reader costs the primary
   * (Redis's client-output-buffer-limit for replicas): the shared backlog, plus the bytes
   * queued here (about two chunks).
   */
  overrun(): void {
    if (this.dropped) return
    if (this.counters !== undefined) this.counters.overruns++
    this.log.warn({ replica: this.addr, state: this.state, offset: this.offset }, 'replica fell out of the backlog, dropping its link')
    this.socket.destroy()
  }

  /** Closed, or closing ('close' comes later). */
  get dropped(): boolean {
    return this.state === 'closed' || this.socket.destroyed
  }

  /** Bytes queued for this replica in this process (not yet taken by the kernel). */
  get queuedBytes(): number {
    return this.socket.writableLength
  }

  private closed(): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.fullSync = undefined
    this.log.info({ replica: this.addr }, 'replica link closed')
    this.onClosed(this)
  }
}
