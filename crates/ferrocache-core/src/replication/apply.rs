//! Both ends of a sync: [`FullSync`] turns a primary's store into snapshot frames, and
//! [`Applier`] applies a received stream to a replica's store, one call per socket read.

use super::log::ReplLog;
use super::stream::{self, DecodeError, Frame};
use crate::journal::{self, ItemState, Record};
use crate::{ShardCursor, Store};

/// Items copied out per shard-lock hold (as the snapshot writer does).
const ITEMS_PER_HOLD: usize = 128;

/// The snapshot part of a full sync: every live item as a set frame, then a sync-end frame.
/// Walks the store with [`Store::visit_shard_batch`] in short lock holds, so the primary
/// keeps serving; an item changed during the walk is sent in its old or new state, and the
/// stream from the sync's offset on brings it up to date.
#[derive(Debug, Default)]
pub struct FullSync {
    shard: usize,
    cursor: ShardCursor,
    items: u64,
    /// A delayed flush the sending node holds for its mark (it is a replica).
    held_flush: Option<u32>,
    started: bool,
    done: bool,
}

impl FullSync {
    pub fn new() -> FullSync {
        FullSync {
            // the replica's table starts small: items in hash order would pile up there
            cursor: ShardCursor::scattered(),
            ..FullSync::default()
        }
    }

    /// A full sync of the node whose applier is `applier`: a replica holding a delayed
    /// flush from its primary for the mark ([`Applier::held_flush`]; its store has none
    /// pending) sends it as a primary sends its pending one, so its own replica holds it
    /// too (promoted before the mark, it kept the items the primary dropped).
    pub fn of(applier: &Applier) -> FullSync {
        FullSync {
            held_flush: applier.held_flush(),
            ..FullSync::new()
        }
    }

    /// Appends frames to `out` until it holds about `max_bytes`; `true` once the sync-end
    /// frame has been appended (nothing more to send).
    pub fn next(&mut self, store: &Store, max_bytes: usize, out: &mut Vec<u8>) -> bool {
        if !self.started {
            self.started = true;
            // a delayed flush_all pending now is no item's state: without it the replica
            // would keep every item the primary drops at the deadline. Sent first, so the
            // replica's deadline covers the items that follow (as a streamed one does)
            if let Some(at) = self.held_flush.or_else(|| store.pending_flush_deadline()) {
                stream::encode(&Frame::Change(Record::Flush { at }), out);
            }
        }
        while !self.done && out.len() < max_bytes {
            if self.shard >= store.shard_count() {
                stream::encode(
                    &Frame::SyncEnd {
                        cas_high_water: store.cas_high_water(),
                        items: self.items,
                    },
                    out,
                );
                self.done = true;
                break;
            }
            let items = &mut self.items;
            let finished =
                store.visit_shard_batch(self.shard, &mut self.cursor, ITEMS_PER_HOLD, |it| {
                    *items += 1;
                    stream::encode(
                        &Frame::Change(Record::Set {
                            key: it.key,
                            value: it.value,
                            flags: it.flags,
                            exptime: store.to_clock(it.exptime),
                            cas: it.cas,
                            state: ItemState {
                                stale: it.stale,
                                win_token: it.win_taken,
                                key_binary: it.key_binary,
                            },
                        }),
                        out,
                    );
                });
            if finished {
                self.shard += 1;
                self.cursor = ShardCursor::scattered();
            }
        }
        self.done
    }

    pub fn items(&self) -> u64 {
        self.items
    }
}

/// What one [`Applier::feed`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Records applied (snapshot items, changes, heartbeats).
    pub records: u64,
    /// Stream bytes applied (not counting the snapshot section): the offset moved this far.
    pub stream_bytes: u64,
    /// Live items the store refused and left deleted (larger than its item size limit: a
    /// primary with a larger `-I`; or no memory with evictions off): the replica diverges.
    pub not_stored: u64,
    /// The snapshot section ended in this call.
    pub sync_done: bool,
    /// The last heartbeat applied: (primary's unix ms, its offset).
    pub heartbeat: Option<(u64, u64)>,
}

/// A replica's side of one link: partial frames kept between reads, the phase (snapshot
/// section or stream).
#[derive(Debug, Default)]
pub struct Applier {
    pending: Vec<u8>,
    in_snapshot: bool,
    /// A delayed flush_all from the primary (its deadline, the clock's second), held for
    /// its mark: the immediate flush the primary writes before its first frame once the
    /// deadline has come ([`ReplLog`]). So the stream position decides, not this store's
    /// clock: a cancel (`flush_all <before the start>`) or a later flush_all that followed
    /// on the primary ends the hold wherever this clock is. Handed to the store as a
    /// deadline instead, it hid the items at this clock's deadline and the crawler or a
    /// read unlinked them before a cancel that came late (a lagging replica, a replica of
    /// a stopped one) could keep them; applied at once when it arrived past its deadline,
    /// it dropped them all.
    held_flush: Option<u32>,
}

impl Applier {
    pub fn new() -> Applier {
        Applier::default()
    }

    /// A new link: `full` when a snapshot section comes first (the store is emptied); else
    /// a delayed flush pending in the store (this node was a primary) is held for its mark.
    pub fn begin(&mut self, store: &Store, full: bool) {
        self.pending.clear();
        self.in_snapshot = full;
        if full {
            // the store is emptied; the snapshot section restates a pending flush
            self.held_flush = None;
            // a log keeps the state before the sync until a snapshot holds the new one (a
            // replay to the flush and the part that had arrived would come up short)
            let journal = store.journal();
            if let Some(j) = journal {
                j.full_sync_begins();
                j.applying(true);
            }
            store.flush_all_at_once();
            if let Some(j) = journal {
                j.applying(false);
            }
        } else if let Some(at) = store.pending_flush_deadline() {
            // a former primary continuing from its promoted replica's backlog: a delayed
            // flush pending in its own store is held for the new primary's mark, as any
            // replica's (its clock's deadline would drop what a late cancel keeps)
            self.hold(store, at);
        }
    }

    pub fn in_snapshot(&self) -> bool {
        self.in_snapshot
    }

    /// This node stops following (a promotion): a held flush becomes the store's own, at
    /// once if its deadline has passed (this node's log marks it for its own replicas).
    pub fn end(&mut self, store: &Store) {
        match self.held_flush.take() {
            Some(at) if store.of_clock(at) > store.now() => {
                store.flush_all_as_memcached(store.of_clock(at) as i64)
            }
            Some(_) => store.flush_all_at_once(),
            None => {}
        }
    }

    /// The deadline of a delayed flush held for its mark (`held_flush`), if any.
    pub fn held_flush(&self) -> Option<u32> {
        self.held_flush
    }

    /// Applies one stream change (not of a snapshot section); returns whether a live item
    /// was refused (see [`journal::apply`]).
    fn change(&mut self, store: &Store, now: u32, r: &Record<'_>, max_cas: &mut u64) -> bool {
        match *r {
            Record::Flush { at } if at != 0 => {
                self.hold(store, at);
                return false;
            }
            // a mark (or an immediate flush) or a cancel: each ends a held one
            Record::Flush { .. } | Record::FlushCancel => self.held_flush = None,
            _ => {}
        }
        journal::apply(store, now, r, max_cas)
    }

    /// Holds a delayed flush for its mark; it replaces one the store has (the latest
    /// flush_all sets the one deadline, as in memcached).
    fn hold(&mut self, store: &Store, at: u32) {
        self.held_flush = Some(at);
        if store.pending_flush_deadline().is_some() {
            store.cancel_pending_flush();
        }
    }

    /// Bytes of a frame not complete yet.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Applies every whole frame of the held bytes followed by `input` to `store`, and
    /// hands the stream frames applied to `log` (a replica's history, for its own
    /// replicas). A damaged frame is an error: nothing after it is applied and the link
    /// must be dropped (what was applied stays, the offset says how far).
    pub fn feed(
        &mut self,
        store: &Store,
        log: &ReplLog,
        input: &[u8],
    ) -> Result<Applied, DecodeError> {
        let mut res = Applied::default();
        let mut owned = std::mem::take(&mut self.pending);
        let data: &[u8] = if owned.is_empty() {
            input
        } else {
            owned.extend_from_slice(input);
            &owned
        };
        let now = store.now();
        let mut max_cas = 0u64;
        let mut at = 0;
        // stream frames since `stream_from` are forwarded to the log in one piece
        let mut stream_from = 0;
        let mut err = None;
        // with `--appendfsync always`, one fdatasync for the read rather than one per
        // record (which held the event loop for seconds under a fast primary): the offset
        // is acknowledged to the primary only after `feed` returns
        let journal = store.journal();
        if let Some(j) = journal {
            j.begin_batch();
            j.applying(true);
        }
        while at < data.len() {
            let (frame, n) = match stream::decode(&data[at..]) {
                Ok(Some(x)) => x,
                Ok(None) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            };
            let in_snapshot = self.in_snapshot;
            match frame {
                Frame::Change(r) if in_snapshot => {
                    match r {
                        // a flush pending on the primary: the snapshot's items are from
                        // before its deadline, and its mark follows in the stream
                        Record::Flush { at } if at != 0 => {
                            log.note_flush(at);
                            self.hold(store, at);
                        }
                        _ => {
                            res.not_stored +=
                                u64::from(journal::apply(store, now, &r, &mut max_cas));
                        }
                    }
                }
                Frame::Change(r) => {
                    res.not_stored += u64::from(self.change(store, now, &r, &mut max_cas));
                }
                Frame::Heartbeat { unix_ms, offset } => {
                    // the primary marks a passed deadline before its next frame: a heartbeat
                    // a whole second past a held deadline with no mark before it comes from
                    // a primary that does not mark (an older build); act on it as it did
                    if self
                        .held_flush
                        .is_some_and(|at| unix_ms / 1000 > u64::from(at))
                    {
                        self.held_flush = None;
                        store.flush_all_at_once();
                    }
                    res.heartbeat = Some((unix_ms, offset))
                }
                Frame::SyncEnd { cas_high_water, .. } if in_snapshot => {
                    max_cas = max_cas.max(cas_high_water);
                    self.in_snapshot = false;
                    res.sync_done = true;
                }
                Frame::SyncEnd { .. } => {
                    err = Some(DecodeError::BadBody(17));
                    break;
                }
            }
            res.records += 1;
            at += n;
            if in_snapshot {
                stream_from = at;
            }
        }
        if let Some(j) = journal {
            j.applying(false);
            j.end_batch();
        }
        if at > stream_from {
            log.append_upstream(&data[stream_from..at]);
            res.stream_bytes = (at - stream_from) as u64;
        }
        if max_cas > 0 {
            store.raise_cas(max_cas);
        }
        if let Some(e) = err {
            return Err(e);
        }
        if at < data.len() {
            let rest = data[at..].to_vec();
            self.pending = rest;
        }
        Ok(res)
    }
}
