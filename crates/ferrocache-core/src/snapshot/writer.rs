//! Writing a snapshot: walk the store a few hundred items per shard-lock hold, frame them
//! into checksummed chunks, write them to a temp file, then fsync, rename, fsync the
//! directory. Until the rename the previous snapshot is the newest file; after it the new
//! one is complete on disk.

use super::files;
use super::format::{self, Header, CHUNK_HEADER_LEN, CHUNK_TARGET, HEADER_LEN};
use super::{io_err, Progress, SaveReport, SnapshotError};
use crate::{ShardCursor, Store};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Items copied out per shard-lock hold: some 10-20 µs, so a reader waits little.
const ITEMS_PER_HOLD: usize = 128;

/// One save at a time in this process: two would pick the same generation.
static SAVING: Mutex<()> = Mutex::new(());

pub fn save(
    store: &Store,
    dir: &Path,
    keep: usize,
    progress: Option<&Progress>,
) -> Result<SaveReport, SnapshotError> {
    let _one_at_a_time = SAVING.lock();
    let Some(journal) = store.journal() else {
        return save_locked(store, dir, keep, progress);
    };
    // the append-only log starts a new file the snapshot will cover; the old one goes once
    // the snapshot is durable (crate::aof)
    journal
        .before_snapshot()
        .map_err(|e| io_err(dir, "start a new append-only log in", e))?;
    let r = save_locked(store, dir, keep, progress);
    journal.after_snapshot(r.is_ok());
    r
}

fn save_locked(
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

/// Writes header, chunks and trailer to `file`, then the real header, then fsyncs. The
/// walk fills chunk buffers while a second thread checksums and writes the previous ones.
fn write_all(
    store: &Store,
    mut file: File,
    tmp: &Path,
    created_ms: u64,
    progress: Option<&Progress>,
) -> Result<(Header, Sums), SnapshotError> {
    let werr = |e| io_err(tmp, "write", e);
    file.write_all(&[0u8; HEADER_LEN]).map_err(werr)?;
    // full buffers go to the writer, emptied ones come back: at most 3 chunks in memory
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, u32)>(1);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    let (walked, written) = std::thread::scope(|scope| {
        // the walker owns the sender: when it ends, the writer's loop ends
        let walker = scope.spawn(move || {
            lower_priority();
            walk(store, progress, &full_tx, &empty_rx)
        });
        let writer = scope.spawn(move || -> Result<(File, u64, u32), SnapshotError> {
            lower_priority();
            let mut offset = HEADER_LEN as u64;
            let mut chunks = 0u32;
            for (mut buf, n) in full_rx {
                format::seal_chunk(&mut buf, n);
                file.write_all(&buf).map_err(werr)?;
                offset += buf.len() as u64;
                chunks += 1;
                if let Some(p) = progress {
                    p.bytes.store(offset, Ordering::Relaxed);
                }
                let _ = empty_tx.send(buf);
            }
            Ok((file, offset, chunks))
        });
        (
            walker.join().expect("snapshot walker thread panicked"),
            writer.join().expect("snapshot writer thread panicked"),
        )
    });
    // a write error stops the writer, which stops the walk: report the write error
    let (mut file, offset, chunks) = written?;
    let (items, data_bytes) = walked.expect("the walk stops only when the writer fails");
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

/// Niceness of the snapshot threads: serving threads (nice 0) get about ten times their CPU
/// share and preempt them at once on wakeup, so a snapshot adds little latency to requests;
/// not 19, which on a busy machine starved snapshots for many seconds (measured).
const SNAPSHOT_NICE: i32 = 10;

/// Lowers this (snapshot) thread's CPU priority to [`SNAPSHOT_NICE`] (this thread only).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls about the calling thread itself; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        libc::setpriority(libc::PRIO_PROCESS as _, tid as _, SNAPSHOT_NICE);
    }
}

/// Copies every live item into chunk buffers and hands each full one to the writer.
/// Returns (items, key + value bytes), or `None` if the writer stopped (it failed).
fn walk(
    store: &Store,
    progress: Option<&Progress>,
    full: &SyncSender<(Vec<u8>, u32)>,
    empty: &Receiver<Vec<u8>>,
) -> Option<(u64, u64)> {
    let fresh = || {
        let mut b = Vec::with_capacity(CHUNK_TARGET + (64 << 10));
        b.resize(CHUNK_HEADER_LEN, 0);
        b
    };
    let mut buf = fresh();
    let (mut chunk_items, mut items, mut data_bytes) = (0u32, 0u64, 0u64);
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
                let mut next = empty.try_recv().unwrap_or_else(|_| fresh());
                next.truncate(CHUNK_HEADER_LEN);
                full.send((std::mem::replace(&mut buf, next), chunk_items))
                    .ok()?;
                chunk_items = 0;
            }
            if done {
                break;
            }
        }
    }
    if chunk_items > 0 {
        full.send((buf, chunk_items)).ok()?;
    }
    Some((items, data_bytes))
}
