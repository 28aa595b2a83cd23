//! The mutation journal: what the store reports after each successful change, and the
//! byte format of one record in the append-only log ([`crate::aof`]).
//!
//! A record carries the key's *resulting* state, not the command: a set, append, incr, touch
//! or cas becomes [`Record::Set`] with the item as it now is (value, flags, absolute expiry,
//! CAS); a delete, or a change that left no live item, becomes [`Record::Delete`]. So
//! replaying a log over any state the key went through on the way (a snapshot taken while
//! the log was written) ends in the same final state. The store calls the sink with the
//! shard lock held, so per key the log order is the apply order. Evictions and expiry are
//! not logged.
//!
//! Frame (little-endian): body length u32 | CRC32C(body) u32 | body, where body is
//! `1 | cas u64 | exptime u32 | flags u32 | key length u8 | key | value` (set),
//! `2 | key` (delete), `3 | at u32` (flush_all; `at` = 0 at once, else the absolute unix
//! second a delayed flush takes effect) or
//! `4 | cas u64 | exptime u32 | flags u32 | state u8 | key length u8 | key | value` (set of
//! an item with meta state bits, [`ItemState`]; never with state 0: such an item is a `1`,
//! so each record has exactly one encoding and logs without meta state stay byte for byte
//! what the first format wrote).
//!
//! Type 4 came second: readers of type 4 read every log and stream written before it. The
//! append-only log's header version says a file may hold type 4 ([`crate::aof`]), so an
//! older build refuses the file instead of cutting it off at the first record it cannot
//! read; a replica must run a build at least as new as its primary's (as in Redis).

use crate::snapshot::files::retry_interrupted;
use crate::{DeleteRequest, Store, StoreMode, StoreRequest};
use std::io::{self, Read};

/// The meta-protocol state of an item that a set record carries besides its value, so a
/// replica and a log replay serve it as the primary does (`mg` flags `X`, `W`, `Z`, and
/// keys echoed in base64).
///
/// - `stale`: invalidated by `md … I` (or `ms … I` with an older CAS): served with `X`.
/// - `win_token`: a request holds the right to recache the item (`Z` to the others). It is
///   the token as the *change* left it: `md … I` frees it (the next `mg` anywhere gets `W`),
///   `mg … N` on a miss creates a placeholder whose creator holds it (readers of a replica get
///   `Z`, not an empty value as if it were real). Winning it by a plain read is not a change
///   and is not recorded: that would turn every `mg` of a stale item into a write to the log
///   and the link. So each node hands out the token of an item the primary invalidated once
///   (per node, not per cluster), and a token taken on the primary reaches replicas with the
///   key's next change.
/// - `key_binary`: the key was stored base64-encoded (meta `b`).
///
/// Not carried: whether the item was fetched and when it was last accessed (`h`, `l`,
/// `t`'s LRU position): each node's own reads.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ItemState {
    pub stale: bool,
    pub win_token: bool,
    pub key_binary: bool,
}

const STATE_STALE: u8 = 1;
const STATE_WIN_TOKEN: u8 = 2;
const STATE_KEY_BINARY: u8 = 4;

impl ItemState {
    /// The state byte of a type-4 record (0: a plain item, written as type 1).
    pub fn bits(self) -> u8 {
        (self.stale as u8 * STATE_STALE)
            | (self.win_token as u8 * STATE_WIN_TOKEN)
            | (self.key_binary as u8 * STATE_KEY_BINARY)
    }

    /// The state of a state byte; `None` for bits this build does not know (damage, or a
    /// newer writer: applying the record without them would serve the item differently).
    pub fn from_bits(b: u8) -> Option<ItemState> {
        (b & !(STATE_STALE | STATE_WIN_TOKEN | STATE_KEY_BINARY) == 0).then_some(ItemState {
            stale: b & STATE_STALE != 0,
            win_token: b & STATE_WIN_TOKEN != 0,
            key_binary: b & STATE_KEY_BINARY != 0,
        })
    }
}

/// One change, borrowed from the store for the duration of the sink call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    Set {
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        /// Absolute unix seconds; 0 = never.
        exptime: u32,
        cas: u64,
        /// Meta state (stale, win token, base64 key); default for a plain item.
        state: ItemState,
    },
    Delete {
        key: &'a [u8],
    },
    Flush {
        at: u32,
    },
    /// A delayed flush_all still pending is dropped: memcached's `flush_all <unix time
    /// before its start>` sets its flush mark to 0. Only logged when one was pending.
    FlushCancel,
}

impl Record<'_> {
    /// The flush deadline this record leaves (`Some(None)`: none pending, as after an
    /// immediate flush or a cancel), or `None` if it is no flush record.
    pub fn flush_deadline(&self) -> Option<Option<u32>> {
        match *self {
            Record::Flush { at } => Some((at != 0).then_some(at)),
            Record::FlushCancel => Some(None),
            _ => None,
        }
    }
}

/// Receives every change of a store (see [`crate::Store::set_journal`]). Called with a
/// shard lock held (a flush: every shard lock): it must not call back into the store.
pub trait Journal: Send + Sync {
    fn record(&self, r: &Record<'_>);
    /// Snapshot `generation` is about to walk the store: changes from now on must be kept
    /// until it is durable. An error aborts the snapshot.
    fn before_snapshot(&self, _generation: u64) -> io::Result<()> {
        Ok(())
    }
    /// The snapshot begun after the last [`Journal::before_snapshot`] ended (`ok`: durable).
    fn after_snapshot(&self, _ok: bool) {}
    /// Bytes logged and whether the last write succeeded (for `stats`), if it keeps them.
    fn status(&self) -> Option<(u64, bool)> {
        None
    }
    /// Whether a change may be made and acknowledged now: `false` while the journal cannot
    /// keep changes (its last write failed and a retry fails too), so servers refuse writes
    /// instead of acknowledging ones a crash would lose (Redis's rule for its log).
    fn accepting(&self) -> bool {
        true
    }
    /// Why [`Journal::accepting`] is `false`: the failed write or fsync; `None` while the
    /// last one succeeded.
    fn last_error(&self) -> Option<JournalError> {
        None
    }
    /// The records until [`Journal::end_batch`] are acknowledged together, after it (a
    /// replica applying one read of its stream): a journal may make them durable once, at
    /// the end, instead of one by one. Only for a caller that makes every change of the
    /// batch itself (no other thread's acknowledged writes in between).
    fn begin_batch(&self) {}
    /// Ends the batch begun by [`Journal::begin_batch`]: its records are durable after it.
    fn end_batch(&self) {}
    /// A replica's full sync begins (before its flush): until the next snapshot begins its
    /// walk ([`Journal::before_snapshot`]), the records made between [`Journal::applying`]
    /// `true` and `false` (the sync's flush, its items, the stream after them) need not be
    /// kept; the replica's own writes still are. A log keeps the previous complete state
    /// rather than a part of the new one (see [`crate::aof`]).
    fn full_sync_begins(&self) {}
    /// The records until `applying(false)` are a replica applying its primary's stream.
    fn applying(&self, _on: bool) {}
}

/// A journal's failed write or fsync (e.g. a full disk), for the error writes are refused
/// with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalError {
    /// The file that could not be written.
    pub path: std::path::PathBuf,
    /// The OS error number (28 = ENOSPC), when there is one.
    pub errno: Option<i32>,
    /// Names the file and the OS error, e.g. `cannot write /d/appendonly.aof: No space
    /// left on device (os error 28)`.
    pub message: String,
}

/// Several journals behind one: the store has one journal slot, and the append-only log
/// ([`crate::aof`]) and replication ([`crate::replication`]) both want every change. Each
/// change goes to every sink in the order they were added.
#[derive(Default)]
pub struct Hub {
    sinks: parking_lot::RwLock<Vec<std::sync::Arc<dyn Journal>>>,
}

impl Hub {
    pub fn add(&self, j: std::sync::Arc<dyn Journal>) {
        self.sinks.write().push(j);
    }
}

impl Journal for Hub {
    fn record(&self, r: &Record<'_>) {
        for j in self.sinks.read().iter() {
            j.record(r);
        }
    }
    fn before_snapshot(&self, generation: u64) -> io::Result<()> {
        for j in self.sinks.read().iter() {
            j.before_snapshot(generation)?;
        }
        Ok(())
    }
    fn after_snapshot(&self, ok: bool) {
        for j in self.sinks.read().iter() {
            j.after_snapshot(ok);
        }
    }
    fn status(&self) -> Option<(u64, bool)> {
        self.sinks.read().iter().find_map(|j| j.status())
    }
    fn accepting(&self) -> bool {
        self.sinks.read().iter().all(|j| j.accepting())
    }
    fn last_error(&self) -> Option<JournalError> {
        self.sinks.read().iter().find_map(|j| j.last_error())
    }
    fn begin_batch(&self) {
        for j in self.sinks.read().iter() {
            j.begin_batch();
        }
    }
    fn end_batch(&self) {
        for j in self.sinks.read().iter() {
            j.end_batch();
        }
    }
    fn full_sync_begins(&self) {
        for j in self.sinks.read().iter() {
            j.full_sync_begins();
        }
    }
    fn applying(&self, on: bool) {
        for j in self.sinks.read().iter() {
            j.applying(on);
        }
    }
}

const TAG_SET: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_FLUSH: u8 = 3;
const TAG_SET_STATE: u8 = 4;
const TAG_FLUSH_CANCEL: u8 = 5;
/// Frame header: body length, CRC.
pub const FRAME_HEADER: usize = 8;
/// No body is longer than this (a 250-byte key, a value under 1 GiB): a larger length is
/// damage, not a record.
pub const MAX_BODY: u32 = 1 << 30;

/// Appends the framed record to `out`.
pub fn encode(r: &Record<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    match *r {
        Record::Set {
            key,
            value,
            flags,
            exptime,
            cas,
            state,
        } => {
            let bits = state.bits();
            out.push(if bits == 0 { TAG_SET } else { TAG_SET_STATE });
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&exptime.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            if bits != 0 {
                out.push(bits);
            }
            out.push(key.len() as u8);
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
        Record::Delete { key } => {
            out.push(TAG_DELETE);
            out.extend_from_slice(key);
        }
        Record::Flush { at } => {
            out.push(TAG_FLUSH);
            out.extend_from_slice(&at.to_le_bytes());
        }
        Record::FlushCancel => out.push(TAG_FLUSH_CANCEL),
    }
    let body = &out[start + FRAME_HEADER..];
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(body).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Whether a record body (after the frame header) is a flush_all or a cancel of one.
pub fn is_flush(body: &[u8]) -> bool {
    matches!(body.first(), Some(&(TAG_FLUSH | TAG_FLUSH_CANCEL)))
}

/// Parses one body (its CRC already checked).
pub fn decode_body(b: &[u8]) -> Option<Record<'_>> {
    let (&tag, rest) = b.split_first()?;
    match tag {
        TAG_SET | TAG_SET_STATE if rest.len() >= 17 => {
            let cas = u64::from_le_bytes(rest[0..8].try_into().ok()?);
            let exptime = u32::from_le_bytes(rest[8..12].try_into().ok()?);
            let flags = u32::from_le_bytes(rest[12..16].try_into().ok()?);
            let (state, rest) = if tag == TAG_SET_STATE {
                let (&bits, rest) = rest[16..].split_first()?;
                // state 0 is written as type 1: one encoding per record
                (ItemState::from_bits(bits).filter(|_| bits != 0)?, rest)
            } else {
                (ItemState::default(), &rest[16..])
            };
            let (&klen, kv) = rest.split_first()?;
            let klen = klen as usize;
            if klen == 0 || kv.len() < klen {
                return None;
            }
            Some(Record::Set {
                key: &kv[..klen],
                value: &kv[klen..],
                flags,
                exptime,
                cas,
                state,
            })
        }
        TAG_DELETE if !rest.is_empty() && rest.len() <= 250 => Some(Record::Delete { key: rest }),
        TAG_FLUSH if rest.len() == 4 => Some(Record::Flush {
            at: u32::from_le_bytes(rest.try_into().ok()?),
        }),
        TAG_FLUSH_CANCEL if rest.is_empty() => Some(Record::FlushCancel),
        _ => None,
    }
}

/// How a [`scan`] ended.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanEnd {
    /// Records applied.
    pub records: u64,
    /// Bytes of whole, valid records from the start of the stream: where the next record goes.
    pub valid_len: u64,
    /// Why the stream stopped before its end (torn or damaged tail), if it did.
    pub torn: Option<String>,
}

/// Reads framed records from `r` and calls `f` for each, stopping at the end or at the first
/// record that is cut short or fails its CRC (nothing after it is applied).
pub fn scan<R: Read>(mut r: R, mut f: impl FnMut(&Record<'_>)) -> io::Result<ScanEnd> {
    let mut end = ScanEnd::default();
    let mut head = [0u8; FRAME_HEADER];
    let mut body = Vec::new();
    loop {
        let got = read_full(&mut r, &mut head)?;
        if got == 0 {
            return Ok(end);
        }
        if got < FRAME_HEADER {
            end.torn = Some(format!("record header cut short at byte {}", end.valid_len));
            return Ok(end);
        }
        let len = u32::from_le_bytes(head[0..4].try_into().unwrap());
        let crc = u32::from_le_bytes(head[4..8].try_into().unwrap());
        if len == 0 || len > MAX_BODY {
            end.torn = Some(format!("bad record length {len} at byte {}", end.valid_len));
            return Ok(end);
        }
        // read what is there rather than allocate the declared length first: a damaged
        // length field must not make a restart allocate up to MAX_BODY (found by fuzzing)
        body.clear();
        if (&mut r).take(len as u64).read_to_end(&mut body)? < len as usize {
            end.torn = Some(format!("record cut short at byte {}", end.valid_len));
            return Ok(end);
        }
        if crc32c::crc32c(&body) != crc {
            end.torn = Some(format!("record CRC mismatch at byte {}", end.valid_len));
            return Ok(end);
        }
        let Some(rec) = decode_body(&body) else {
            end.torn = Some(format!("undecodable record at byte {}", end.valid_len));
            return Ok(end);
        };
        f(&rec);
        end.records += 1;
        end.valid_len += (FRAME_HEADER + body.len()) as u64;
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match retry_interrupted(|| r.read(&mut buf[n..]))? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Applies one change as the key's resulting state (log replay and replicas alike): a set
/// keeps the recorded CAS, absolute expiry and meta state; an item already expired, or one
/// this store cannot hold (a smaller item limit, no memory), is deleted so no older value
/// survives. Returns whether a live item was refused so (the caller counts it: a replica of
/// a primary with a larger `-I`, a log written under one, would lose it unseen).
pub(crate) fn apply(store: &Store, now: u32, r: &Record<'_>, max_cas: &mut u64) -> bool {
    match *r {
        Record::Set {
            key,
            value,
            flags,
            exptime,
            cas,
            state,
        } => {
            if cas < 1 << 63 {
                *max_cas = (*max_cas).max(cas);
            }
            let exptime = store.of_clock(exptime);
            let live = exptime == 0 || exptime > now;
            let req = StoreRequest {
                flags,
                exptime: exptime as i64,
                new_cas: Some(cas),
                ..StoreRequest::new(StoreMode::Set, key, value)
            };
            let stored = live && store.store_restored(&req, state).is_ok();
            if !stored {
                store.delete(&DeleteRequest {
                    key,
                    ..Default::default()
                });
            }
            live && !stored
        }
        Record::Delete { key } => {
            store.delete(&DeleteRequest {
                key,
                ..Default::default()
            });
            false
        }
        // (as memcached's command: an embedded Cache's flush(delay) replayed acts a
        // second early too, hiding the same items)
        Record::Flush { at } if store.of_clock(at) > now => {
            store.flush_all_as_memcached(store.of_clock(at) as i64);
            false
        }
        Record::Flush { .. } => {
            store.flush_all_at_once();
            false
        }
        Record::FlushCancel => {
            store.cancel_pending_flush();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GetOptions;

    /// An 8 MiB store with no background thread on `clock`: a primary or a replica.
    fn on_clock(clock: &crate::Clock) -> Store {
        Store::new(
            crate::Config::default()
                .memory_limit(8 << 20)
                .background(false)
                .clock(clock.clone()),
        )
        .unwrap()
    }

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            &Record::Set {
                key: b"k1",
                value: b"hello",
                flags: 7,
                exptime: 1_900_000_000,
                cas: 42,
                state: ItemState::default(),
            },
            &mut out,
        );
        encode(&Record::Delete { key: b"k2" }, &mut out);
        encode(&Record::Flush { at: 0 }, &mut out);
        encode(
            &Record::Set {
                key: b"k3",
                value: b"",
                flags: 0,
                exptime: 0,
                cas: 43,
                state: ItemState::default(),
            },
            &mut out,
        );
        encode(
            &Record::Set {
                key: b"k4",
                value: b"old",
                flags: 9,
                exptime: 1_900_000_030,
                cas: 44,
                state: ItemState {
                    stale: true,
                    win_token: false,
                    key_binary: true,
                },
            },
            &mut out,
        );
        out
    }

    /// Records a store's changes as log bytes.
    #[derive(Default)]
    struct Capture(parking_lot::Mutex<Vec<u8>>);

    impl Journal for Capture {
        fn record(&self, r: &Record<'_>) {
            encode(r, &mut self.0.lock());
        }
    }

    /// What a fresh `mg` sees: value, cas, exptime, X, W, Z, base64 key.
    type MetaView = (Vec<u8>, u64, u32, bool, bool, bool, bool);

    /// What a meta `mg` sees (and takes: the win token).
    fn meta_view(s: &Store, k: &[u8]) -> Option<MetaView> {
        let mg = GetOptions {
            may_win: true,
            ..Default::default()
        };
        s.get(k, &mg, |v| {
            (
                v.value.to_vec(),
                v.cas,
                v.exptime,
                v.stale,
                v.won,
                v.win_taken,
                v.key_binary,
            )
        })
    }

    #[test]
    fn item_state_records_round_trip_and_have_one_encoding() {
        for bits in 1..8u8 {
            let state = ItemState::from_bits(bits).unwrap();
            assert_eq!(state.bits(), bits);
            let r = Record::Set {
                key: b"k",
                value: b"v",
                flags: 1,
                exptime: 2,
                cas: 3,
                state,
            };
            let mut out = Vec::new();
            encode(&r, &mut out);
            assert_eq!(out[FRAME_HEADER], TAG_SET_STATE);
            assert_eq!(decode_body(&out[FRAME_HEADER..]), Some(r));
            // a body with a state bit this build does not know, or state 0 under type 4
            for bad in [0u8, 8, 0x80] {
                let mut b = out[FRAME_HEADER..].to_vec();
                b[17] = bad;
                assert_eq!(decode_body(&b), None, "state {bad:#x}");
            }
        }
        // without state: the first format's bytes, unchanged
        let mut out = Vec::new();
        let plain = Record::Set {
            key: b"k",
            value: b"v",
            flags: 1,
            exptime: 2,
            cas: 3,
            state: ItemState::default(),
        };
        encode(&plain, &mut out);
        let mut v1 = vec![TAG_SET];
        v1.extend_from_slice(&3u64.to_le_bytes());
        v1.extend_from_slice(&2u32.to_le_bytes());
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(b"\x01kv");
        assert_eq!(&out[FRAME_HEADER..], &v1[..]);
    }

    #[test]
    fn a_cancel_applied_after_the_deadline_keeps_what_the_primary_kept() {
        use crate::Clock;
        // A replica that applies `flush_all 2` and the `flush_all <before the start>` that
        // cancelled it on the primary only once its own clock reached the deadline (it
        // lagged) kept the flush and hid the items the primary kept (review-gaps, a full run).
        let clock = Clock::manual(1_800_000_000);
        let new_store = || on_clock(&clock);
        let primary = new_store();
        let log = std::sync::Arc::new(Capture::default());
        primary.set_journal(log.clone());
        let set = |store: &Store, key: &[u8]| {
            store
                .store(&StoreRequest::new(StoreMode::Set, key, b"v"))
                .unwrap();
        };
        set(&primary, b"b");
        primary.flush_all_as_memcached(2);
        primary.flush_all_as_memcached(2_592_001);
        set(&primary, b"c");
        let bytes = log.0.lock().clone();
        let replica = new_store();
        clock.advance(1);
        let mut max_cas = 0;
        scan(&bytes[..], |r| {
            if matches!(r, Record::FlushCancel) {
                clock.advance(1); // the deadline's second
            }
            apply(&replica, clock.now(), r, &mut max_cas);
        })
        .unwrap();
        clock.advance(1);
        for key in [&b"b"[..], b"c"] {
            let seen = |store: &Store| store.get(key, &GetOptions::default(), |_| ()).is_some();
            assert!(seen(&primary), "{key:?} on the primary");
            assert!(seen(&replica), "{key:?} on the replica");
        }
    }

    #[test]
    fn invalidated_vivified_and_base64_items_apply_as_on_the_primary() {
        use crate::Clock;
        let clock = Clock::manual(1_800_000_000);
        let new_store = || on_clock(&clock);
        let primary = new_store();
        let log = std::sync::Arc::new(Capture::default());
        primary.set_journal(log.clone());
        primary
            .store(&StoreRequest::new(StoreMode::Set, b"inv", b"v1"))
            .unwrap();
        // md inv I T30: stale, fresh cas, new ttl, token free
        assert_eq!(
            primary.delete(&DeleteRequest {
                key: b"inv",
                invalidate: true,
                exptime: Some(30),
                ..Default::default()
            }),
            crate::DeleteStatus::Deleted
        );
        // mg viv N30: an empty placeholder whose creator holds the token
        let created = primary.get(
            b"viv",
            &GetOptions {
                vivify: Some(30),
                ..Default::default()
            },
            |v| v.won,
        );
        assert_eq!(created, Some(true));
        primary
            .store(&StoreRequest::new(StoreMode::Set, b"b64", b"x"))
            .unwrap();
        assert!(primary.mark_key_binary(b"b64"));

        let bytes = log.0.lock().clone();
        let replica = new_store();
        let mut max_cas = 0;
        let end = scan(&bytes[..], |r| {
            apply(&replica, clock.now(), r, &mut max_cas);
        })
        .unwrap();
        assert_eq!((end.records, end.torn), (5, None));
        for key in [&b"inv"[..], b"viv", b"b64"] {
            let (p, r) = (meta_view(&primary, key), meta_view(&replica, key));
            assert!(p.is_some(), "{key:?}");
            assert_eq!(p, r, "first mg of {:?}", String::from_utf8_lossy(key));
        }
        let inv = meta_view(&replica, b"inv").unwrap();
        // the second mg: stale, token taken (X Z), on both
        assert!(inv.3 && !inv.4 && inv.5);
        assert_eq!(inv.2, clock.now() + 30);
        assert_eq!(meta_view(&primary, b"inv"), Some(inv));
        // the first: stale and won (X W); the placeholder: Z; base64 key remembered
        let mut max_cas = 0;
        let fresh = new_store();
        scan(&bytes[..], |r| {
            apply(&fresh, clock.now(), r, &mut max_cas);
        })
        .unwrap();
        let first = meta_view(&fresh, b"inv").unwrap();
        assert!(first.3 && first.4 && !first.5);
        assert!(meta_view(&fresh, b"viv").unwrap().5);
        assert!(meta_view(&fresh, b"b64").unwrap().6);
        // a later plain set clears it all, on the replica too
        primary
            .store(&StoreRequest::new(StoreMode::Set, b"inv", b"v2"))
            .unwrap();
        let bytes = log.0.lock().clone();
        scan(&bytes[..], |r| {
            apply(&fresh, clock.now(), r, &mut max_cas);
        })
        .unwrap();
        let after = meta_view(&fresh, b"inv").unwrap();
        assert_eq!(&after.0, b"v2");
        assert!(!after.3 && !after.4 && !after.5);
    }

    fn all(b: &[u8]) -> (Vec<String>, ScanEnd) {
        let mut seen = Vec::new();
        let end = scan(b, |r| seen.push(format!("{r:?}"))).unwrap();
        (seen, end)
    }

    #[test]
    fn records_round_trip() {
        let b = sample();
        let (seen, end) = all(&b);
        assert_eq!(seen.len(), 5);
        assert!(seen[0].contains("cas: 42") && seen[0].contains("flags: 7"));
        assert!(seen[4].contains("stale: true") && seen[4].contains("key_binary: true"));
        assert!(seen[1].starts_with("Delete"));
        assert!(seen[2].starts_with("Flush"));
        assert_eq!(end.valid_len, b.len() as u64);
        assert_eq!(end.torn, None);
    }

    #[test]
    fn every_torn_tail_stops_at_the_last_whole_record() {
        let b = sample();
        // record boundaries
        let mut bounds = vec![0u64];
        let _ = scan(&b[..], |_| ()).unwrap();
        let mut pos = 0usize;
        while pos < b.len() {
            let len = u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
            pos += FRAME_HEADER + len;
            bounds.push(pos as u64);
        }
        for cut in 0..b.len() {
            let (seen, end) = all(&b[..cut]);
            let whole = bounds.iter().filter(|&&x| x <= cut as u64).count() - 1;
            assert_eq!(seen.len(), whole, "cut at {cut}");
            assert_eq!(end.valid_len, bounds[whole]);
            assert_eq!(end.torn.is_some(), cut as u64 != bounds[whole]);
        }
    }

    #[test]
    fn a_flipped_bit_stops_the_scan_there() {
        let b = sample();
        let first_len = FRAME_HEADER + u32::from_le_bytes(b[0..4].try_into().unwrap()) as usize;
        for i in first_len..b.len() {
            let mut d = b.clone();
            d[i] ^= 0x10;
            let (seen, end) = all(&d);
            // the first record is intact; nothing from the damaged one on is applied
            assert!(!seen.is_empty() && seen.len() < 5, "flip at {i}");
            assert!(end.torn.is_some());
            assert!(end.valid_len < b.len() as u64);
        }
    }
}
