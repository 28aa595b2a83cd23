//! The snapshot file format, byte by byte (little-endian throughout):
//!
//! ```text
//! header   48 B  magic "\x89FCSNAP\n" | version u32 | header length u32 | created (unix ms) u64
//!                | items u64 | CAS high-water mark u64 | reserved u32 | CRC32C of bytes 0..44
//! chunk*         tag "CHNK" | items u32 | payload length u32 | CRC32C of the tag, counts and
//!                payload | payload: records
//! record   22 B+ cas u64 | exptime u32 (absolute unix s, 0 never) | flags u32 | value length u32
//!                | key length u8 | state u8 | key | value
//! trailer  32 B  tag "END!" | chunks u32 | items u64 | bytes before the trailer u64
//!                | reserved u32 | CRC32C of bytes 0..28; then the end of the file
//! ```
//!
//! `state` is the item's meta state, the bits of the append-only log's type-4 records
//! ([`ItemState::bits`]: 1 stale after `md … I`, 2 win token held, 4 base64 key; 0 for a
//! plain item); a bit this build does not know makes the file corrupt, as loading the item
//! without it would serve it differently. Version 1 (the first) had no `state` byte (21-byte
//! record headers, every item plain); [`scan`] reads both, the writer writes version 2 only.
//!
//! [`scan`] reads a file front to back and checks every field it can: a flipped bit fails a
//! checksum, a cut file ends before the trailer, and each error names its byte offset.

use super::files::retry_interrupted;
use crate::journal::ItemState;
use std::io::{self, Read};

pub const MAGIC: [u8; 8] = *b"\x89FCSNAP\n";
/// The version the writer writes.
pub const VERSION: u32 = 2;
/// The oldest version [`scan`] reads (every version from it to [`VERSION`]).
pub const OLDEST_VERSION: u32 = 1;
pub const HEADER_LEN: usize = 48;
pub const CHUNK_HEADER_LEN: usize = 16;
pub const TRAILER_LEN: usize = 32;
pub const RECORD_HEADER_LEN: usize = 22;
/// A version-1 record header: no state byte.
pub const RECORD_HEADER_LEN_V1: usize = 21;
pub const CHUNK_TAG: [u8; 4] = *b"CHNK";
pub const TRAILER_TAG: [u8; 4] = *b"END!";
/// A chunk is closed once its payload reaches this size (one item may make it larger).
pub const CHUNK_TARGET: usize = 1 << 20;
/// Largest payload a reader accepts: a few items of the largest size the engine allows.
pub const CHUNK_MAX: usize = 64 << 20;

/// What the header says about the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub created_ms: u64,
    pub items: u64,
    pub cas_high_water: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..24].copy_from_slice(&self.created_ms.to_le_bytes());
        b[24..32].copy_from_slice(&self.items.to_le_bytes());
        b[32..40].copy_from_slice(&self.cas_high_water.to_le_bytes());
        let crc = crc32c::crc32c(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }
}

/// The end trailer.
pub fn encode_trailer(chunks: u32, items: u64, bytes_before: u64) -> [u8; TRAILER_LEN] {
    let mut b = [0u8; TRAILER_LEN];
    b[0..4].copy_from_slice(&TRAILER_TAG);
    b[4..8].copy_from_slice(&chunks.to_le_bytes());
    b[8..16].copy_from_slice(&items.to_le_bytes());
    b[16..24].copy_from_slice(&bytes_before.to_le_bytes());
    let crc = crc32c::crc32c(&b[..28]);
    b[28..32].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Where records are appended: a `Vec`, or the writer's aligned buffer.
pub trait RecordSink {
    fn put(&mut self, bytes: &[u8]);
}

impl RecordSink for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes)
    }
}

/// Appends one record to a chunk payload.
#[inline]
pub fn encode_record(out: &mut impl RecordSink, r: &Record<'_>) {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[0..8].copy_from_slice(&r.cas.to_le_bytes());
    h[8..12].copy_from_slice(&r.exptime.to_le_bytes());
    h[12..16].copy_from_slice(&r.flags.to_le_bytes());
    h[16..20].copy_from_slice(&(r.value.len() as u32).to_le_bytes());
    h[20] = r.key.len() as u8;
    h[21] = r.state.bits();
    let (key, value) = (r.key, r.value);
    out.put(&h);
    out.put(key);
    out.put(value);
}

/// Fills in the 16-byte chunk header reserved at the front of `buf` (tag, counts, CRC).
pub fn seal_chunk(buf: &mut [u8], items: u32) {
    let len = (buf.len() - CHUNK_HEADER_LEN) as u32;
    buf[0..4].copy_from_slice(&CHUNK_TAG);
    buf[4..8].copy_from_slice(&items.to_le_bytes());
    buf[8..12].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&buf[..12]), &buf[CHUNK_HEADER_LEN..]);
    buf[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// One item, as written and as read back.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    /// Absolute unix seconds; 0 = never.
    pub exptime: u32,
    pub cas: u64,
    /// Meta state (stale, win token, base64 key); plain in a version-1 file.
    pub state: ItemState,
}

/// Why a file cannot be used.
#[derive(Debug)]
pub enum ScanError {
    Io(io::Error),
    /// Damaged or cut short at this byte offset.
    Corrupt {
        offset: u64,
        reason: String,
    },
    /// A format version this build does not read.
    Unsupported {
        version: u32,
    },
}

fn corrupt(offset: u64, reason: impl Into<String>) -> ScanError {
    ScanError::Corrupt {
        offset,
        reason: reason.into(),
    }
}

/// Totals of a scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub header: Header,
    /// The file's format version ([`OLDEST_VERSION`]..=[`VERSION`]).
    pub version: u32,
    pub chunks: u32,
    pub items: u64,
    pub file_bytes: u64,
    /// Key and value bytes of all records.
    pub data_bytes: u64,
}

/// A reader that knows its offset and tells a short read from an error.
struct Cursor<R> {
    inner: R,
    offset: u64,
}

impl<R: Read> Cursor<R> {
    /// Reads exactly `buf.len()` bytes; a short file is corrupt at the offset where it ends.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ScanError> {
        let mut got = 0;
        while got < buf.len() {
            match retry_interrupted(|| self.inner.read(&mut buf[got..])) {
                Ok(0) => {
                    let end = self.offset + got as u64;
                    let reason = if end == 0 {
                        "empty file".to_string()
                    } else {
                        format!("truncated: the file ends at byte {end} inside the {what}")
                    };
                    return Err(corrupt(end, reason));
                }
                Ok(n) => got += n,
                Err(e) => return Err(ScanError::Io(e)),
            }
        }
        self.offset += got as u64;
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, ScanError> {
        let mut b = [0u8; 1];
        match retry_interrupted(|| self.inner.read(&mut b)) {
            Ok(n) => Ok(n == 0),
            Err(e) => Err(ScanError::Io(e)),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Reads a whole snapshot, checking every checksum, count and length, and calls `each` for
/// every record of a chunk once that chunk has passed its checks. A verifying pass passes
/// a no-op `each`; applying runs after a verifying pass succeeded.
pub fn scan<R: Read>(input: R, mut each: impl FnMut(&Record<'_>)) -> Result<Summary, ScanError> {
    let mut r = Cursor {
        inner: input,
        offset: 0,
    };
    let mut h = [0u8; HEADER_LEN];
    r.fill(&mut h[..12], "header")?;
    if h[..8] != MAGIC {
        return Err(corrupt(0, "not a ferrocache snapshot (bad magic)"));
    }
    let version = u32_at(&h, 8);
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(ScanError::Unsupported { version });
    }
    let record_header = if version == 1 {
        RECORD_HEADER_LEN_V1
    } else {
        RECORD_HEADER_LEN
    };
    r.fill(&mut h[12..], "header")?;
    if u32_at(&h, 44) != crc32c::crc32c(&h[..44]) {
        return Err(corrupt(0, "header checksum mismatch"));
    }
    if u32_at(&h, 12) as usize != HEADER_LEN {
        return Err(corrupt(12, "unexpected header length"));
    }
    let header = Header {
        created_ms: u64_at(&h, 16),
        items: u64_at(&h, 24),
        cas_high_water: u64_at(&h, 32),
    };
    let mut sum = Summary {
        header,
        version,
        ..Summary::default()
    };
    let mut payload = Vec::new();
    loop {
        let start = r.offset;
        let mut ch = [0u8; CHUNK_HEADER_LEN];
        r.fill(&mut ch[..4], "block tag (chunk or trailer)")?;
        if ch[..4] == TRAILER_TAG {
            let mut t = [0u8; TRAILER_LEN];
            t[..4].copy_from_slice(&TRAILER_TAG);
            r.fill(&mut t[4..], "trailer")?;
            if u32_at(&t, 28) != crc32c::crc32c(&t[..28]) {
                return Err(corrupt(start, "trailer checksum mismatch"));
            }
            let (chunks, items, before) = (u32_at(&t, 4), u64_at(&t, 8), u64_at(&t, 16));
            if chunks != sum.chunks || items != sum.items || before != start {
                return Err(corrupt(
                    start,
                    format!(
                        "trailer says {chunks} chunks, {items} items, {before} bytes; read {} chunks, {} items, {start} bytes",
                        sum.chunks, sum.items
                    ),
                ));
            }
            if items != header.items {
                return Err(corrupt(
                    start,
                    format!("header says {} items, file holds {items}", header.items),
                ));
            }
            if !r.at_end()? {
                return Err(corrupt(r.offset, "data after the trailer"));
            }
            sum.file_bytes = r.offset;
            return Ok(sum);
        }
        if ch[..4] != CHUNK_TAG {
            return Err(corrupt(start, "expected a chunk or the trailer"));
        }
        r.fill(&mut ch[4..], "chunk header")?;
        let (count, len, crc) = (u32_at(&ch, 4), u32_at(&ch, 8) as usize, u32_at(&ch, 12));
        if len > CHUNK_MAX {
            return Err(corrupt(start, format!("chunk length {len} is too large")));
        }
        payload.resize(len, 0);
        // a cut file or a damaged length: name the chunk, not just where the file ends
        r.fill(&mut payload, "chunk").map_err(|e| match e {
            ScanError::Corrupt { offset: end, .. } => corrupt(
                start,
                format!("truncated: the chunk at byte {start} ({len} bytes) runs past the end of the file at byte {end}"),
            ),
            e => e,
        })?;
        if crc32c::crc32c_append(crc32c::crc32c(&ch[..12]), &payload) != crc {
            return Err(corrupt(start, "chunk checksum mismatch"));
        }
        let body = start + CHUNK_HEADER_LEN as u64;
        // structure first, so `each` never sees a record of a chunk that fails
        let n = records(&payload, body, record_header, |_| ())?;
        if n != count {
            return Err(corrupt(
                start,
                format!("chunk says {count} items, holds {n}"),
            ));
        }
        records(&payload, body, record_header, |rec| {
            sum.data_bytes += (rec.key.len() + rec.value.len()) as u64;
            each(rec)
        })?;
        sum.chunks += 1;
        sum.items += n as u64;
    }
}

/// Walks the records of one chunk payload (which starts at file offset `body`) whose
/// record headers are `head` bytes long (version 1: no state byte).
fn records(
    payload: &[u8],
    body: u64,
    head: usize,
    mut f: impl FnMut(&Record<'_>),
) -> Result<u32, ScanError> {
    let mut at = 0usize;
    let mut n = 0u32;
    while at < payload.len() {
        let rec_at = body + at as u64;
        if payload.len() - at < head {
            return Err(corrupt(rec_at, "record header runs past its chunk"));
        }
        let p = &payload[at..];
        let (vlen, klen) = (u32_at(p, 16) as usize, p[20] as usize);
        let end = head + klen + vlen;
        if klen == 0 || end > p.len() {
            return Err(corrupt(rec_at, "record length runs past its chunk"));
        }
        let state = if head == RECORD_HEADER_LEN_V1 {
            ItemState::default()
        } else {
            ItemState::from_bits(p[21]).ok_or_else(|| {
                corrupt(
                    rec_at + 21,
                    format!("unknown item state bits {:#04x}", p[21]),
                )
            })?
        };
        f(&Record {
            key: &p[head..head + klen],
            value: &p[head + klen..end],
            flags: u32_at(p, 12),
            exptime: u32_at(p, 8),
            cas: u64_at(p, 0),
            state,
        });
        at += end;
        n += 1;
    }
    Ok(n)
}
