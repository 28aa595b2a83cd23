//! Writing a snapshot: walk the store a few hundred items per shard-lock hold, frame them
//! into checksummed chunks, write them to a temp file, then fsync, rename, fsync the
//! directory. Until the rename the previous snapshot is the newest file; after it the new
//! one is complete on disk.

use super::files;
use super::format::{self, Header, CHUNK_HEADER_LEN, CHUNK_TARGET, HEADER_LEN};
use super::output::{self, AlignedBuf, Mode, ALIGN};
use super::{io_err, Progress, SaveReport, SnapshotError};
use crate::journal::ItemState;
use crate::{ShardCursor, Store};
use parking_lot::Mutex;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Items copied out per shard-lock hold: some 10-20 µs, so a reader waits little.
const ITEMS_PER_HOLD: usize = 128;

/// One save at a time in this process: two would pick the same generation.
static SAVING: Mutex<()> = Mutex::new(());

pub fn save(
    store: &Store,
    dir: &Path,
    keep: usize,
    progress: Option<&Progress>,
    mode: Mode,
) -> Result<SaveReport, SnapshotError> {
    let _one_at_a_time = SAVING.lock();
    super::files::create_dir(dir).map_err(|e| io_err(dir, "create the data directory", e))?;
    let gen = files::next_generation(dir).map_err(|e| io_err(dir, "list", e))?;
    let Some(journal) = store.journal() else {
        return save_locked(store, dir, gen, keep, progress, mode);
    };
    // the append-only log seals the records this snapshot will cover as segment `gen` and
    // starts a new file; segments go once no kept snapshot needs them (crate::aof)
    journal
        .before_snapshot(gen)
        .map_err(|e| io_err(dir, "start a new append-only log in", e))?;
    let r = save_locked(store, dir, gen, keep, progress, mode);
    journal.after_snapshot(r.is_ok());
    r
}

fn save_locked(
    store: &Store,
    dir: &Path,
    gen: u64,
    keep: usize,
    progress: Option<&Progress>,
    mode: Mode,
) -> Result<SaveReport, SnapshotError> {
    let began = Instant::now();
    let path = dir.join(files::name(gen));
    let tmp = dir.join(format!("{}{}", files::name(gen), files::TMP_SUFFIX));
    // before this file takes space: a killed save's temp file could hold what it needs
    let mut removed = files::remove_stale_tmp(dir, gen);
    let (file, direct) = output::create(&tmp, mode).map_err(|e| io_err(&tmp, "create", e))?;
    let created_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let written = write_file(store, file, direct, &tmp, created_ms, progress);
    let (header, sums) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    files::step(dir, "snapshot temp file durable");
    let fsync_began = Instant::now();
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&path, "rename the temp file to", e));
    }
    files::step(dir, "snapshot renamed");
    files::sync_dir(dir).map_err(|e| io_err(dir, "fsync", e))?;
    files::step(dir, "snapshot directory entry durable");
    let pruned = files::prune(dir, keep, gen);
    if !pruned.is_empty() {
        let _ = files::sync_dir(dir);
    }
    files::step(dir, "older snapshots pruned");
    removed.extend(pruned);
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

/// A buffer the walk filled, for the writer: its first `whole` bytes are final and a
/// multiple of [`ALIGN`] (all of them in the `last` one); the rest start the next buffer.
struct Filled {
    buf: AlignedBuf,
    whole: usize,
    last: bool,
}

/// What the walk counted.
struct Walked {
    items: u64,
    data_bytes: u64,
    file_bytes: u64,
}

/// Writes the whole file (header, chunks, trailer; then the real header at offset 0) and
/// fsyncs it. The walk fills and seals chunks in aligned buffers while a second thread
/// writes the previous ones.
fn write_file(
    store: &Store,
    file: File,
    direct: bool,
    tmp: &Path,
    created_ms: u64,
    progress: Option<&Progress>,
) -> Result<(Header, Sums), SnapshotError> {
    let werr = |e| io_err(tmp, "write", e);
    // a fixed set of buffers goes round: filled by the walk, written, handed back (fresh
    // allocations of this size are mmaps whose pages the kernel must zero on first touch)
    let (full_tx, full_rx) = mpsc::sync_channel::<Filled>(BUFFERS);
    let (empty_tx, empty_rx) = mpsc::channel::<AlignedBuf>();
    for _ in 1..BUFFERS {
        let _ = empty_tx.send(AlignedBuf::with_capacity(BUF_CAPACITY));
    }
    let (walked, written) = std::thread::scope(|scope| {
        // the walker owns the sender: when it ends, the writer's loop ends
        let walker = scope.spawn(move || {
            lower_priority();
            walk(store, progress, &full_tx, &empty_rx)
        });
        let writer = scope.spawn(move || -> Result<File, SnapshotError> {
            lower_priority();
            let (mut file, mut direct) = (file, direct);
            let mut offset = 0u64;
            for Filled { buf, whole, last } in full_rx {
                let bytes = buf.as_slice();
                output::write(&mut file, &mut direct, &bytes[..whole]).map_err(werr)?;
                if last {
                    // the unaligned end (and then the header) through the page cache
                    output::set_buffered(&file, &mut direct).map_err(werr)?;
                    file.write_all(&bytes[whole..]).map_err(werr)?;
                }
                offset += if last { bytes.len() } else { whole } as u64;
                if let Some(p) = progress {
                    p.bytes.store(offset, Ordering::Relaxed);
                }
                let _ = empty_tx.send(buf);
            }
            Ok(file)
        });
        (
            walker.join().expect("snapshot walker thread panicked"),
            writer.join().expect("snapshot writer thread panicked"),
        )
    });
    // a write error stops the writer, which stops the walk: report the write error
    let mut file = written?;
    let w = walked.expect("the walk stops only when the writer fails");
    // read after the walk: at least every CAS an item in the file carries
    let header = Header {
        created_ms,
        items: w.items,
        cas_high_water: store.cas_high_water(),
    };
    file.seek(SeekFrom::Start(0)).map_err(werr)?;
    file.write_all(&header.encode()).map_err(werr)?;
    let sync_began = Instant::now();
    file.sync_all().map_err(|e| io_err(tmp, "fsync", e))?;
    Ok((
        header,
        Sums {
            file_bytes: w.file_bytes,
            data_bytes: w.data_bytes,
            sync_duration: sync_began.elapsed(),
        },
    ))
}

/// How much nicer than the thread that starts a save the snapshot threads run: serving
/// threads get about ten times their CPU share and preempt them at once on wakeup, so a
/// snapshot adds little latency to requests (at the same niceness p99 rose 2-6x under load,
/// measured); not 19, which on a busy machine starved snapshots for many seconds. Relative,
/// so a server run at nice -10 against other work snapshots at nice 0, not behind it.
const SNAPSHOT_NICE: i32 = 10;

/// Lowers this (snapshot) thread's CPU priority by [`SNAPSHOT_NICE`] (this thread only).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls about the calling thread itself, and errno of this thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        // -1 is a valid niceness: errno tells it from a failure
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS as _, tid as _);
        let now = if now == -1 && *libc::__errno_location() != 0 {
            0
        } else {
            now
        };
        libc::setpriority(
            libc::PRIO_PROCESS as _,
            tid as _,
            (now + SNAPSHOT_NICE).min(19),
        );
    }
}

/// How long the walk runs before it offers the CPU to a runnable thread sharing its core.
/// The scheduler lets a running thread finish its slice (milliseconds) before a woken
/// serving thread gets the core, even at a lower niceness; yielding this often bounds that
/// wait near this figure.
const YIELD_EVERY: Duration = Duration::from_micros(50);

/// Offers the CPU to another runnable thread; returns at once when there is none.
fn yield_cpu() {
    std::thread::yield_now();
}

/// Bytes a walk buffer starts with: a chunk and a batch of items past it.
const BUF_CAPACITY: usize = CHUNK_TARGET + (256 << 10);
/// Buffers in use: one being filled, the rest queued for or in a write.
const BUFFERS: usize = 4;

/// Copies every live item into chunks in aligned buffers and hands each buffer with a
/// sealed chunk to the writer. `None` if the writer stopped (it failed).
fn walk(
    store: &Store,
    progress: Option<&Progress>,
    full: &SyncSender<Filled>,
    empty: &Receiver<AlignedBuf>,
) -> Option<Walked> {
    let mut buf = AlignedBuf::with_capacity(BUF_CAPACITY);
    buf.put_zeros(HEADER_LEN); // filled in at the end
                               // the open chunk: where its header sits in `buf`, its items so far
    let mut chunk_at = buf.len();
    buf.put_zeros(CHUNK_HEADER_LEN);
    let mut chunk_items = 0u32;
    // chunks closed during a lock hold, sealed (checksummed) after it
    let mut closed: Vec<(usize, u32)> = Vec::new();
    let (mut items, mut data_bytes, mut chunks, mut handed) = (0u64, 0u64, 0u32, 0u64);
    let mut last_yield = Instant::now();
    for shard in 0..store.shard_count() {
        let mut cur = ShardCursor::default();
        loop {
            let done = store.visit_shard_batch(shard, &mut cur, ITEMS_PER_HOLD, |it| {
                let state = ItemState {
                    stale: it.stale,
                    // the walk's view: whether a request holds the token now
                    win_token: it.win_taken,
                    key_binary: it.key_binary,
                };
                let rec = format::Record {
                    key: it.key,
                    value: it.value,
                    flags: it.flags,
                    exptime: store.to_clock(it.exptime),
                    cas: it.cas,
                    state,
                };
                format::encode_record(&mut buf, &rec);
                chunk_items += 1;
                items += 1;
                data_bytes += (it.key.len() + it.value.len()) as u64;
                // close a full chunk at once, so one made of large items stays near the
                // target (a reader refuses chunks over CHUNK_MAX)
                if buf.len() - chunk_at - CHUNK_HEADER_LEN >= CHUNK_TARGET {
                    closed.push((chunk_at, chunk_items));
                    chunk_at = buf.len();
                    buf.put_zeros(CHUNK_HEADER_LEN);
                    chunk_items = 0;
                }
            });
            if let Some(p) = progress {
                p.items.store(items, Ordering::Relaxed);
            }
            if last_yield.elapsed() >= YIELD_EVERY {
                yield_cpu();
                last_yield = Instant::now();
            }
            if !closed.is_empty() {
                for &(at, n) in &closed {
                    let end = closed_end(&closed, at, chunk_at);
                    format::seal_chunk(&mut buf.as_mut_slice()[at..end], n);
                }
                chunks += closed.len() as u32;
                closed.clear();
                // everything before the open chunk's block is final: hand it over
                let whole = chunk_at / ALIGN * ALIGN;
                // none free: the writer is behind (or gone, then the walk ends)
                let mut next = empty.recv().ok()?;
                next.truncate(0);
                next.put(&buf.as_slice()[whole..]);
                chunk_at -= whole;
                handed += whole as u64;
                let filled = std::mem::replace(&mut buf, next);
                full.send(Filled {
                    buf: filled,
                    whole,
                    last: false,
                })
                .ok()?;
            }
            if done {
                break;
            }
        }
    }
    if chunk_items > 0 {
        let end = buf.len();
        format::seal_chunk(&mut buf.as_mut_slice()[chunk_at..end], chunk_items);
        chunks += 1;
    } else {
        buf.truncate(chunk_at); // an empty open chunk is dropped
    }
    let trailer_at = handed + buf.len() as u64;
    buf.put(&format::encode_trailer(chunks, items, trailer_at));
    let file_bytes = handed + buf.len() as u64;
    let whole = buf.len() / ALIGN * ALIGN;
    full.send(Filled {
        buf,
        whole,
        last: true,
    })
    .ok()?;
    Some(Walked {
        items,
        data_bytes,
        file_bytes,
    })
}

/// Where the closed chunk starting at `at` ends: at the next closed one, else at the open one.
fn closed_end(closed: &[(usize, u32)], at: usize, open_at: usize) -> usize {
    closed
        .iter()
        .map(|c| c.0)
        .find(|&a| a > at)
        .unwrap_or(open_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, StoreMode, StoreRequest};

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("ferrocache-writer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn store_with(sizes: impl Iterator<Item = usize>) -> Store {
        let s = Store::new(
            Config::default()
                .memory_limit(256 << 20)
                .shards(1)
                .background(false),
        )
        .unwrap();
        for (i, n) in sizes.enumerate() {
            let value: Vec<u8> = (0..n).map(|j| (i * 7 + j) as u8).collect();
            let key = format!("key-{i}");
            s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &value))
                .unwrap();
        }
        s
    }

    /// Writes `store` in `mode` to `dir/name`; returns the bytes and whether I/O was direct.
    fn written(store: &Store, dir: &Path, name: &str, mode: Mode) -> (Vec<u8>, bool) {
        let path = dir.join(name);
        let (file, direct) = output::create(&path, mode).unwrap();
        let (header, sums) = write_file(store, file, direct, &path, 1234, None).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, sums.file_bytes);
        let summary = super::super::verify(&path).unwrap();
        assert_eq!(summary.header, header);
        assert_eq!(summary.items, store.stats().curr_items);
        (bytes, direct)
    }

    #[test]
    fn direct_and_buffered_files_are_identical() {
        let dir = tmpdir("modes");
        // small files (under one aligned block, empty), and one of many chunks with items
        // of every size, so buffers carry unaligned ends across chunks
        let cases = [
            store_with(std::iter::empty()),
            store_with((0..3).map(|i| i * 10 + 1)),
            store_with((0..6000).map(|i| (i * 7919) % 3000 + 1)),
        ];
        for (n, s) in cases.iter().enumerate() {
            let (a, direct) = written(s, &dir, &format!("d{n}"), Mode::DirectIfPossible);
            let (b, buffered_direct) = written(s, &dir, &format!("b{n}"), Mode::Buffered);
            assert!(!buffered_direct);
            assert!(
                a == b,
                "case {n}: direct ({direct}) and buffered files differ"
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn chunks_of_large_items_stay_under_the_readers_limit() {
        // one lock hold visits up to ITEMS_PER_HOLD items: 80 items of ~1 MB in one shard
        // would make a chunk over CHUNK_MAX (64 MiB) if chunks closed only between holds
        let dir = tmpdir("large");
        let s = store_with((0..80).map(|_| 1_000_000));
        let (bytes, _) = written(&s, &dir, "large", Mode::DirectIfPossible);
        assert!(bytes.len() > 80_000_000);
        let _ = fs::remove_dir_all(&dir);
    }
}
