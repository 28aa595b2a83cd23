//! [`ReplLog`]: a node's position in a replication history and its backlog.
//!
//! On a primary it is a [`Journal`] sink: every change of the store is framed
//! ([`super::stream`]) and appended to the backlog, advancing the offset. On a replica it
//! ignores the store's changes (its own writes, with `--replica-writable`, are not
//! replicated) and instead takes the upstream's bytes verbatim ([`ReplLog::append_upstream`]),
//! so a replica of a replica sees the same stream, with the same replication id and offsets.

use super::backlog::Backlog;
use super::stream::{self, Frame};
use crate::clock::StoreTime;
use crate::journal::{Journal, Record, FRAME_HEADER};
use crate::Clock;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a `PSYNC replid offset` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Psync {
    /// The backlog covers `offset` of that history: stream from there.
    Continue { replid: String },
    /// Send the whole data set, then stream from `offset`.
    Full { replid: String, offset: u64 },
}

/// A copy of the log's state, for `stats` and the links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogInfo {
    pub primary: bool,
    pub replid: String,
    /// The history this one continues (after a promotion), valid up to `second_offset`.
    pub replid2: String,
    pub second_offset: u64,
    /// Stream bytes produced (primary) or applied (replica) in this history.
    pub offset: u64,
    pub backlog_active: bool,
    pub backlog_size: u64,
    pub backlog_first: u64,
    pub backlog_len: u64,
}

struct State {
    primary: bool,
    replid: String,
    replid2: String,
    second_offset: u64,
    offset: u64,
    /// Created when the first replica syncs (as Redis does): until then a primary keeps no
    /// history and its offset stands still.
    backlog: Option<Backlog>,
    backlog_size: usize,
    /// Where the run of heartbeats ending the history starts, if it ends with any. They
    /// change no data, so a node that starts following another drops them: the new
    /// upstream (a promoted sibling) may not have received them, and asking it for a
    /// position beyond its history would cost a full sync.
    heartbeat_tail: Option<u64>,
    /// The deadline (the store's time, [`crate::Store::time`]) of a delayed flush_all in
    /// this history not marked yet.
    /// Once it has passed, the next frame is preceded by an immediate flush (the mark, as
    /// the append-only log does): a replica that applies the records from before the
    /// deadline only after it (lag, a partial resync) stores them after its own deadline,
    /// and the mark drops them where the primary's deadline dropped them.
    flush_deadline: Option<u32>,
    scratch: Vec<u8>,
}

pub struct ReplLog {
    st: Mutex<State>,
    /// The store's time: a delayed flush's deadline is judged as the store judges it, also
    /// after the clock stepped back (the store's time then runs ahead of the clock).
    time: StoreTime,
}

static REPLID_SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh 40-hex-digit replication id (time, pid and a counter, hashed).
pub fn new_replid() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seq = REPLID_SEQ.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{nanos}:{}:{seq}", std::process::id());
    let a = xxhash_rust::xxh3::xxh3_128(seed.as_bytes());
    let b = xxhash_rust::xxh3::xxh3_64_with_seed(seed.as_bytes(), 0x5eed);
    format!("{a:032x}{:08x}", b as u32)
}

impl ReplLog {
    /// A primary with a new replication id and no backlog yet, on the system clock.
    pub fn new(backlog_size: usize) -> ReplLog {
        ReplLog::with_clock(backlog_size, Clock::System)
    }

    /// As [`ReplLog::new`], judging delayed flush deadlines by `clock` (no store's steps).
    pub fn with_clock(backlog_size: usize, clock: Clock) -> ReplLog {
        ReplLog::with_time(backlog_size, StoreTime::new(clock))
    }

    /// As [`ReplLog::new`], judging delayed flush deadlines by the store's time
    /// ([`crate::Store::time`]).
    pub fn with_time(backlog_size: usize, time: StoreTime) -> ReplLog {
        ReplLog {
            time,
            st: Mutex::new(State {
                primary: true,
                replid: new_replid(),
                replid2: "0".repeat(40),
                second_offset: 0,
                offset: 0,
                backlog: None,
                backlog_size: backlog_size.max(1),
                heartbeat_tail: None,
                flush_deadline: None,
                scratch: Vec::new(),
            }),
        }
    }

    pub fn info(&self) -> LogInfo {
        let s = self.st.lock();
        LogInfo {
            primary: s.primary,
            replid: s.replid.clone(),
            replid2: s.replid2.clone(),
            second_offset: s.second_offset,
            offset: s.offset,
            backlog_active: s.backlog.is_some(),
            backlog_size: s.backlog_size as u64,
            backlog_first: s.backlog.as_ref().map_or(0, |b| b.first()),
            backlog_len: s.backlog.as_ref().map_or(0, |b| b.len() as u64),
        }
    }

    pub fn offset(&self) -> u64 {
        self.st.lock().offset
    }

    /// Changes the backlog's size (its content is dropped: replicas behind resync in full).
    pub fn set_backlog_size(&self, bytes: usize) {
        let mut s = self.st.lock();
        s.backlog_size = bytes.max(1);
        let end = s.offset;
        if s.backlog.is_some() {
            s.backlog = Some(Backlog::new(s.backlog_size, end));
        }
    }

    /// Answers a replica's `PSYNC replid offset`. A full sync starts the backlog if there is
    /// none, so every change after the returned offset is kept for the replica.
    pub fn psync(&self, replid: &str, offset: u64) -> Psync {
        let mut s = self.st.lock();
        let same_history = replid == s.replid || (replid == s.replid2 && offset <= s.second_offset);
        if same_history {
            if let Some(b) = &s.backlog {
                if offset >= b.first() && offset <= b.end() {
                    return Psync::Continue {
                        replid: s.replid.clone(),
                    };
                }
            }
        }
        if s.primary {
            // a passed deadline is marked for the replicas streaming now, before the offset
            // this one starts from (its snapshot holds what the deadline left)
            let now = self.time.now();
            s.mark_deadline(now);
        }
        if s.backlog.is_none() {
            let (size, end) = (s.backlog_size, s.offset);
            s.backlog = Some(Backlog::new(size, end));
        }
        Psync::Full {
            replid: s.replid.clone(),
            offset: s.offset,
        }
    }

    /// Copies up to `max` stream bytes from `offset` on into `out`; `false` when the
    /// backlog no longer (or never) covered `offset`.
    pub fn read(&self, offset: u64, max: usize, out: &mut Vec<u8>) -> bool {
        let s = self.st.lock();
        match &s.backlog {
            Some(b) => b.read(offset, max, out),
            None => false,
        }
    }

    /// On a primary with a backlog: appends a heartbeat (wall clock and offset) to the
    /// stream. Returns whether it did.
    pub fn heartbeat(&self, unix_ms: u64) -> bool {
        let mut s = self.st.lock();
        if !s.primary || s.backlog.is_none() {
            return false;
        }
        // an idle primary marks a passed deadline within a heartbeat
        let now = self.time.now();
        s.mark_deadline(now);
        let offset = s.offset;
        s.append_frame(&Frame::Heartbeat { unix_ms, offset });
        true
    }

    /// `replicaof no one`: this node now originates the stream under a new id; the history
    /// it followed stays valid up to the current offset (its own replicas, and a former
    /// primary pointed at it, can continue from there).
    pub fn promote(&self) -> String {
        let mut s = self.st.lock();
        if s.primary {
            return s.replid.clone();
        }
        s.replid2 = std::mem::replace(&mut s.replid, new_replid());
        s.second_offset = s.offset;
        s.primary = true;
        s.replid.clone()
    }

    /// This node follows another from now on: its store's changes are no longer recorded,
    /// and trailing heartbeats leave its history (see `State::heartbeat_tail`). Its own
    /// replicas must be dropped: they may hold bytes past the new end.
    pub fn demote(&self) {
        let mut s = self.st.lock();
        s.primary = false;
        if let Some(at) = s.heartbeat_tail.take() {
            s.offset = at;
            if let Some(b) = s.backlog.as_mut() {
                b.truncate(at);
            }
        }
    }

    /// The upstream accepted our PSYNC. `full`: a new data set follows and the stream goes
    /// on from `offset` in history `replid` (the backlog restarts there). Partial: the
    /// stream continues from our offset; if the upstream's id changed (it was promoted) the
    /// old one stays valid up to here.
    pub fn follow(&self, replid: &str, offset: u64, full: bool) {
        let mut s = self.st.lock();
        s.heartbeat_tail = None;
        // a replica keeps a backlog from its first sync on (as Redis does), so that after a
        // promotion its former primary and siblings can continue instead of a full sync
        if s.backlog.is_none() {
            let (size, end) = (s.backlog_size, s.offset);
            s.backlog = Some(Backlog::new(size, end));
        }
        if full {
            s.replid = replid.to_string();
            s.replid2 = "0".repeat(40);
            s.second_offset = 0;
            s.offset = offset;
            // the snapshot section restates a pending one (`note_flush`)
            s.flush_deadline = None;
            if let Some(b) = s.backlog.as_mut() {
                b.reset(offset);
            }
        } else if s.replid != replid {
            s.replid2 = std::mem::replace(&mut s.replid, replid.to_string());
            s.second_offset = s.offset;
        }
    }

    /// A delayed flush pending that the stream did not carry: on a replica, the flush record
    /// of a full sync's snapshot section (marked if this node is promoted); on a primary,
    /// one sent before this log existed. `0`: none.
    pub fn note_flush(&self, at: u32) {
        self.st.lock().flush_deadline = (at != 0).then(|| self.time.of_clock(at));
    }

    /// On a replica: whole frames of the upstream's stream, applied; they extend this
    /// node's history byte for byte (for its own replicas).
    pub fn append_upstream(&self, bytes: &[u8]) {
        let mut s = self.st.lock();
        s.note_frames(bytes, &self.time);
        s.offset += bytes.len() as u64;
        if let Some(b) = s.backlog.as_mut() {
            b.append(bytes);
        }
    }
}

impl State {
    /// Appends the mark of a delayed flush whose deadline has passed by `now` (see
    /// `flush_deadline`).
    fn mark_deadline(&mut self, now: u32) {
        if self.flush_deadline.is_some_and(|d| now >= d) {
            self.flush_deadline = None;
            self.append_frame(&Frame::Change(Record::Flush { at: 0 }));
        }
    }

    fn append_frame(&mut self, f: &Frame<'_>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        stream::encode(f, &mut scratch);
        if let Some(b) = self.backlog.as_mut() {
            self.heartbeat_tail = match f {
                Frame::Heartbeat { .. } => self.heartbeat_tail.or(Some(self.offset)),
                _ => None,
            };
            b.append(&scratch);
            self.offset += scratch.len() as u64;
        }
        self.scratch = scratch;
    }

    /// Updates `heartbeat_tail` for whole frames about to be appended at `self.offset`
    /// (only their headers and tags are read: the applier has checked them).
    fn note_frames(&mut self, mut bytes: &[u8], time: &StoreTime) {
        let mut at = self.offset;
        while bytes.len() > FRAME_HEADER {
            let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let frame = (FRAME_HEADER + len).min(bytes.len());
            let body = &bytes[FRAME_HEADER..frame];
            self.heartbeat_tail = if stream::is_heartbeat(body) {
                self.heartbeat_tail.or(Some(at))
            } else {
                None
            };
            // upstream's delayed flushes and their marks: kept for a promotion
            if let Some(d) = crate::journal::is_flush(body)
                .then(|| crate::journal::decode_body(body))
                .flatten()
                .and_then(|r| r.flush_deadline())
            {
                self.flush_deadline = d.map(|t| time.of_clock(t));
            }
            at += frame as u64;
            bytes = &bytes[frame..];
        }
    }
}

impl Journal for ReplLog {
    fn record(&self, r: &Record<'_>) {
        let mut s = self.st.lock();
        if !s.primary {
            return;
        }
        if s.flush_deadline.is_some() {
            let now = self.time.now();
            s.mark_deadline(now);
        }
        if let Some(d) = r.flush_deadline() {
            // an immediate flush is its own mark; a later flush_all (or a cancel) replaces
            // the deadline (the record's clock second as the store's time: a step back
            // after it must not make the mark late)
            s.flush_deadline = d.map(|t| self.time.of_clock(t));
        }
        if s.backlog.is_some() {
            s.append_frame(&Frame::Change(*r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(log: &ReplLog, key: &[u8]) {
        log.record(&Record::Set {
            key,
            value: b"v",
            flags: 0,
            exptime: 0,
            cas: 1,
            state: Default::default(),
        });
    }

    #[test]
    fn partial_only_within_the_backlog_and_history() {
        let log = ReplLog::new(100);
        set(&log, b"before-any-replica");
        assert_eq!(log.offset(), 0, "no backlog, no history");
        let id = log.info().replid;
        let Psync::Full { offset: 0, .. } = log.psync("?", 0) else {
            panic!()
        };
        set(&log, b"a");
        let mid = log.offset();
        assert!(mid > 0);
        assert_eq!(log.psync(&id, mid), Psync::Continue { replid: id.clone() });
        assert_eq!(log.psync(&id, 0), Psync::Continue { replid: id.clone() });
        assert!(matches!(log.psync("other", 0), Psync::Full { .. }));
        for _ in 0..10 {
            set(&log, b"fill-the-backlog");
        }
        assert!(matches!(log.psync(&id, 0), Psync::Full { .. }));
        let end = log.offset();
        assert!(matches!(log.psync(&id, end), Psync::Continue { .. }));
        let mut out = Vec::new();
        assert!(log.read(end, 10, &mut out) && out.is_empty());
        assert!(!log.read(0, 10, &mut out));
    }

    #[test]
    fn a_promoted_replica_continues_the_old_history() {
        let up = ReplLog::new(1 << 20);
        let _ = up.psync("?", 0);
        set(&up, b"k");
        let mut bytes = Vec::new();
        assert!(up.read(0, 1 << 20, &mut bytes));
        let old = up.info().replid;

        let r = ReplLog::new(1 << 20);
        r.demote();
        r.follow(&old, 0, true);
        let _ = r.psync(&old, 0); // a sub-replica: starts r's backlog
        set(&r, b"ignored on a replica");
        assert_eq!(r.offset(), 0);
        r.append_upstream(&bytes);
        assert_eq!(r.offset(), up.offset());
        let new = r.promote();
        assert_ne!(new, old);
        let at = r.offset();
        // the old primary, pointed at the promoted replica with its own id and offset
        assert_eq!(
            r.psync(&old, at),
            Psync::Continue {
                replid: new.clone()
            }
        );
        set(&r, b"after promotion");
        assert!(r.offset() > at);
        assert!(matches!(r.psync(&old, r.offset()), Psync::Full { .. }));
    }

    #[test]
    fn a_demoted_primary_drops_trailing_heartbeats_its_promoted_replica_missed() {
        let p = ReplLog::new(1 << 20);
        let _ = p.psync("?", 0);
        set(&p, b"k");
        let mut bytes = Vec::new();
        assert!(p.read(0, 1 << 20, &mut bytes));
        let old = p.info().replid;
        let data_end = p.offset();
        // the replica gets the data and one heartbeat, then is promoted; two more heartbeats
        // were written that it never received
        assert!(p.heartbeat(1));
        let mut beat = Vec::new();
        assert!(p.read(data_end, 1 << 20, &mut beat));
        assert!(p.heartbeat(2) && p.heartbeat(3));
        let r = ReplLog::new(1 << 20);
        r.demote();
        r.follow(&old, 0, true);
        r.append_upstream(&bytes);
        r.append_upstream(&beat);
        let _ = r.promote();
        assert!(
            r.info().backlog_active,
            "a replica keeps a backlog to be promoted with"
        );
        assert!(
            matches!(r.psync(&old, p.offset()), Psync::Full { .. }),
            "the gap is real"
        );
        p.demote();
        assert_eq!(
            p.offset(),
            data_end,
            "the heartbeats are gone, the data stays"
        );
        assert!(matches!(r.psync(&old, p.offset()), Psync::Continue { .. }));

        // on a replica the heartbeats came from upstream: the same holds one level down
        let q = ReplLog::new(1 << 20);
        q.demote();
        q.follow(&old, 0, true);
        q.append_upstream(&bytes);
        q.append_upstream(&beat);
        q.demote();
        assert_eq!(q.offset(), data_end);
        // a data frame after heartbeats keeps them (they are inside the history now)
        let s = ReplLog::new(1 << 20);
        s.demote();
        s.follow(&old, 0, true);
        s.append_upstream(&beat);
        s.append_upstream(&bytes);
        s.demote();
        assert_eq!(s.offset(), (beat.len() + bytes.len()) as u64);
    }
}
