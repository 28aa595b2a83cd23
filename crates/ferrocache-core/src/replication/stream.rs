//! The replication stream's records: the journal's frames ([`crate::journal`]: set, delete,
//! flush, each carrying the key's resulting state) plus two of replication's own.
//!
//! Frame (little-endian): body length u32 | CRC32C(body) u32 | body. Bodies 1-3 are the
//! journal's; replication adds `16 | unix_ms u64 | offset u64` (heartbeat: the primary's
//! clock and stream offset when it was written, for the replica's lag) and
//! `17 | cas_high_water u64 | items u64` (end of a full sync's snapshot section).
//!
//! [`decode`] is a pure function over a byte slice: it never panics, whatever the input
//! (the fuzz target calls it directly).

use crate::journal::{self, Record, FRAME_HEADER};
use std::fmt;

const TAG_HEARTBEAT: u8 = 16;
const TAG_SYNC_END: u8 = 17;
/// Longest body accepted: a 250-byte key and a value up to 1 GiB (the engine's item limit
/// is far below); anything longer is damage.
pub const MAX_BODY: u32 = journal::MAX_BODY;

/// One record of the stream, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A change: the journal's record.
    Change(Record<'a>),
    /// The primary's wall clock (unix ms) and stream offset when it wrote this.
    Heartbeat { unix_ms: u64, offset: u64 },
    /// The snapshot part of a full sync is over; the primary's CAS counter was at most this.
    SyncEnd { cas_high_water: u64, items: u64 },
}

/// Why the bytes are not a stream of records: the link is dropped and resynced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    BadLength(u32),
    BadChecksum,
    /// CRC fine but the body is not a record we know.
    BadBody(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadLength(n) => write!(f, "bad record length {n}"),
            DecodeError::BadChecksum => f.write_str("record checksum mismatch"),
            DecodeError::BadBody(tag) => write!(f, "undecodable record (tag {tag})"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Whether a frame body (after the header) is a heartbeat.
pub fn is_heartbeat(body: &[u8]) -> bool {
    body.first() == Some(&TAG_HEARTBEAT)
}

/// Decodes the first frame of `buf`: `Ok(Some((frame, bytes used)))`, `Ok(None)` when
/// `buf` holds only part of it (read more), or the damage found.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, DecodeError> {
    if buf.len() < FRAME_HEADER {
        return Ok(None);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_BODY {
        return Err(DecodeError::BadLength(len));
    }
    let end = FRAME_HEADER + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let body = &buf[FRAME_HEADER..end];
    if crc32c::crc32c(body) != crc {
        return Err(DecodeError::BadChecksum);
    }
    let frame = match body[0] {
        TAG_HEARTBEAT if body.len() == 17 => Frame::Heartbeat {
            unix_ms: u64_at(body, 1),
            offset: u64_at(body, 9),
        },
        TAG_SYNC_END if body.len() == 17 => Frame::SyncEnd {
            cas_high_water: u64_at(body, 1),
            items: u64_at(body, 9),
        },
        tag => Frame::Change(journal::decode_body(body).ok_or(DecodeError::BadBody(tag))?),
    };
    Ok(Some((frame, end)))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Appends the framed `frame` to `out`.
pub fn encode(frame: &Frame<'_>, out: &mut Vec<u8>) {
    let (tag, a, b) = match *frame {
        Frame::Change(ref r) => return journal::encode(r, out),
        Frame::Heartbeat { unix_ms, offset } => (TAG_HEARTBEAT, unix_ms, offset),
        Frame::SyncEnd {
            cas_high_water,
            items,
        } => (TAG_SYNC_END, cas_high_water, items),
    };
    let mut body = [0u8; 17];
    body[0] = tag;
    body[1..9].copy_from_slice(&a.to_le_bytes());
    body[9..17].copy_from_slice(&b.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<String>) {
        let frames = [
            Frame::Change(Record::Set {
                key: b"k",
                value: b"v1",
                flags: 3,
                exptime: 0,
                cas: 9,
                state: Default::default(),
            }),
            Frame::Heartbeat {
                unix_ms: 1_700_000_000_000,
                offset: 77,
            },
            Frame::Change(Record::Delete { key: b"k" }),
            Frame::Change(Record::Flush { at: 5 }),
            Frame::SyncEnd {
                cas_high_water: 12,
                items: 1,
            },
        ];
        let mut out = Vec::new();
        for f in &frames {
            encode(f, &mut out);
        }
        (out, frames.iter().map(|f| format!("{f:?}")).collect())
    }

    #[test]
    fn frames_round_trip_and_partial_input_asks_for_more() {
        let (buf, want) = sample();
        let mut at = 0;
        let mut got = Vec::new();
        while at < buf.len() {
            // every strict prefix of the next frame is "read more"
            let (f, n) = decode(&buf[at..]).unwrap().unwrap();
            for cut in 0..n {
                assert_eq!(decode(&buf[at..at + cut]), Ok(None));
            }
            got.push(format!("{f:?}"));
            at += n;
        }
        assert_eq!(got, want);
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let (buf, _) = sample();
        for i in 0..buf.len() {
            for bit in [0x01u8, 0x80] {
                let mut d = buf.clone();
                d[i] ^= bit;
                let mut at = 0;
                // walk until an error or the end; must not panic
                while let Ok(Some((_, n))) = decode(&d[at..]) {
                    at += n;
                }
            }
        }
        let mut bad = buf.clone();
        bad[9] ^= 1;
        assert_eq!(decode(&bad), Err(DecodeError::BadChecksum));
        assert_eq!(
            decode(&[0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::BadLength(0))
        );
    }
}
