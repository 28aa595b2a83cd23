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
//! `2 | key` (delete) or `3 | at u32` (flush_all; `at` = 0 at once, else the absolute unix
//! second a delayed flush takes effect).

use crate::{DeleteRequest, Store, StoreMode, StoreRequest};
use std::io::{self, Read};

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
    },
    Delete {
        key: &'a [u8],
    },
    Flush {
        at: u32,
    },
}

/// Receives every change of a store (see [`crate::Store::set_journal`]). Called with a
/// shard lock held (a flush: every shard lock): it must not call back into the store.
pub trait Journal: Send + Sync {
    fn record(&self, r: &Record<'_>);
    /// A snapshot is about to walk the store: changes from now on must be kept until it is
    /// durable. An error aborts the snapshot.
    fn before_snapshot(&self) -> io::Result<()> {
        Ok(())
    }
    /// The snapshot begun after the last [`Journal::before_snapshot`] ended (`ok`: durable).
    fn after_snapshot(&self, _ok: bool) {}
    /// Bytes logged and whether the last write succeeded (for `stats`), if it keeps them.
    fn status(&self) -> Option<(u64, bool)> {
        None
    }
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
    fn before_snapshot(&self) -> io::Result<()> {
        for j in self.sinks.read().iter() {
            j.before_snapshot()?;
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
}

const TAG_SET: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_FLUSH: u8 = 3;
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
        } => {
            out.push(TAG_SET);
            out.extend_from_slice(&cas.to_le_bytes());
            out.extend_from_slice(&exptime.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
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
    }
    let body = &out[start + FRAME_HEADER..];
    let len = (body.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c(body).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Parses one body (its CRC already checked).
pub fn decode_body(b: &[u8]) -> Option<Record<'_>> {
    let (&tag, rest) = b.split_first()?;
    match tag {
        TAG_SET if rest.len() >= 17 => {
            let cas = u64::from_le_bytes(rest[0..8].try_into().ok()?);
            let exptime = u32::from_le_bytes(rest[8..12].try_into().ok()?);
            let flags = u32::from_le_bytes(rest[12..16].try_into().ok()?);
            let klen = rest[16] as usize;
            let kv = &rest[17..];
            if klen == 0 || kv.len() < klen {
                return None;
            }
            Some(Record::Set {
                key: &kv[..klen],
                value: &kv[klen..],
                flags,
                exptime,
                cas,
            })
        }
        TAG_DELETE if !rest.is_empty() && rest.len() <= 250 => Some(Record::Delete { key: rest }),
        TAG_FLUSH if rest.len() == 4 => Some(Record::Flush {
            at: u32::from_le_bytes(rest.try_into().ok()?),
        }),
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
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Applies one change as the key's resulting state (log replay and replicas alike): a set
/// keeps the recorded CAS and absolute expiry; an item already expired, or one this store
/// cannot hold (a smaller item limit, no memory), is deleted so no older value survives.
pub(crate) fn apply(store: &Store, now: u32, r: &Record<'_>, max_cas: &mut u64) {
    match *r {
        Record::Set {
            key,
            value,
            flags,
            exptime,
            cas,
        } => {
            if cas < 1 << 63 {
                *max_cas = (*max_cas).max(cas);
            }
            let live = exptime == 0 || exptime > now;
            let stored = live
                && store
                    .store(&StoreRequest {
                        flags,
                        exptime: exptime as i64,
                        new_cas: Some(cas),
                        ..StoreRequest::new(StoreMode::Set, key, value)
                    })
                    .is_ok();
            if !stored {
                store.delete(&DeleteRequest {
                    key,
                    ..Default::default()
                });
            }
        }
        Record::Delete { key } => {
            store.delete(&DeleteRequest {
                key,
                ..Default::default()
            });
        }
        Record::Flush { at } => store.flush_all(if at > now { at as i64 } else { 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        encode(
            &Record::Set {
                key: b"k1",
                value: b"hello",
                flags: 7,
                exptime: 1_900_000_000,
                cas: 42,
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
            },
            &mut out,
        );
        out
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
        assert_eq!(seen.len(), 4);
        assert!(seen[0].contains("cas: 42") && seen[0].contains("flags: 7"));
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
            assert!(!seen.is_empty() && seen.len() < 4, "flip at {i}");
            assert!(end.torn.is_some());
            assert!(end.valid_len < b.len() as u64);
        }
    }
}
