//! Writing a snapshot: walk the store a few hundred items per shard-lock hold, frame them
//! into checksummed chunks, write them to a temp file, then fsync, rename, fsync the
//! directory. Until the rename the previous snapshot is the newest file; after it the new
//! one is complete on disk.

use super::files;
use super::format::{self, Header, CHUNK_HEADER_LEN, CHUNK_TARGET, HEADER_LEN};
use super::{io_err, Progress, SaveReport, SnapshotError};
use crate::{ShardCursor, Store};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Items copied out per shard-lock hold: about 100 µs, so a reader waits little.
const ITEMS_PER_HOLD: usize = 512;

pub fn save(
    store: &Store,
    dir: &Path,
    keep: usize,
    progress: Option<&Progress>,
) -> Result<SaveReport, SnapshotError> {
    let began = Instant::now();
    fs::create_dir_all(dir).map_err(|e| io_err(dir, "create the data directory", e))?;
    let gen = files::next_generation(dir).map_err(|e| io_err(dir, "list", e))?;
    let path = dir.join(files::name(gen));
    let tmp = dir.join(format!("{}{}", files::name(gen), files::TMP_SUFFIX));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| io_err(&tmp, "create", e))?;
    let created_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let written = write_all(store, file, &tmp, created_ms, progress);
    let (header, sums) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let fsync_began = Instant::now();
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path, "rename the temp file to", e));
    }
    files::sync_dir(dir).map_err(|e| io_err(dir, "fsync", e))?;
    let removed = files::prune(dir, keep, gen);
    if !removed.is_empty() {
        let _ = files::sync_dir(dir);
    }
    Ok(SaveReport {
        path,
        items: header.items,
        file_bytes: sums.file_bytes,
        data_bytes: sums.data_bytes,
        cas_high_water: header.cas_high_water,
        created_ms,
        duration: began.elapsed(),
        sync_duration: sums.sync_duration + fsync_began.elapsed(),
        removed,
    })
}

struct Sums {
    file_bytes: u64,
    data_bytes: u64,
    sync_duration: std::time::Duration,
}

/// Writes header, chunks and trailer to `file`, then the real header, then fsyncs.
fn write_all(
    store: &Store,
    mut file: File,
    tmp: &Path,
    created_ms: u64,
    progress: Option<&Progress>,
) -> Result<(Header, Sums), SnapshotError> {
    let werr = |e| io_err(tmp, "write", e);
    file.write_all(&[0u8; HEADER_LEN]).map_err(werr)?;
    let mut offset = HEADER_LEN as u64;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK_TARGET + (64 << 10));
    buf.resize(CHUNK_HEADER_LEN, 0);
    let (mut chunk_items, mut chunks, mut items, mut data_bytes) = (0u32, 0u32, 0u64, 0u64);
    let mut flush = |buf: &mut Vec<u8>, n: &mut u32| -> Result<(), SnapshotError> {
        format::seal_chunk(buf, *n);
        file.write_all(buf).map_err(werr)?;
        offset += buf.len() as u64;
        chunks += 1;
        if let Some(p) = progress {
            p.bytes.store(offset, Ordering::Relaxed);
        }
        buf.truncate(CHUNK_HEADER_LEN);
        *n = 0;
        Ok(())
    };
    for shard in 0..store.shard_count() {
        let mut cur = ShardCursor::default();
        loop {
            let done = store.visit_shard_batch(shard, &mut cur, ITEMS_PER_HOLD, |it| {
                format::encode_record(&mut buf, it.key, it.value, it.flags, it.exptime, it.cas);
                chunk_items += 1;
                items += 1;
                data_bytes += (it.key.len() + it.value.len()) as u64;
            });
            if let Some(p) = progress {
                p.items.store(items, Ordering::Relaxed);
            }
            if buf.len() - CHUNK_HEADER_LEN >= CHUNK_TARGET {
                flush(&mut buf, &mut chunk_items)?;
            }
            if done {
                break;
            }
        }
    }
    if chunk_items > 0 {
        flush(&mut buf, &mut chunk_items)?;
    }
    drop(flush);
    file.write_all(&format::encode_trailer(chunks, items, offset))
        .map_err(werr)?;
    let file_bytes = offset + format::TRAILER_LEN as u64;
    // read after the walk: at least every CAS an item in the file carries
    let header = Header {
        created_ms,
        items,
        cas_high_water: store.cas_high_water(),
    };
    file.seek(SeekFrom::Start(0)).map_err(werr)?;
    file.write_all(&header.encode()).map_err(werr)?;
    let sync_began = Instant::now();
    file.sync_all().map_err(|e| io_err(tmp, "fsync", e))?;
    if let Some(p) = progress {
        p.bytes.store(file_bytes, Ordering::Relaxed);
    }
    Ok((
        header,
        Sums {
            file_bytes,
            data_bytes,
            sync_duration: sync_began.elapsed(),
        },
    ))
}
