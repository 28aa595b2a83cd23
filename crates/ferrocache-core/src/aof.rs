//! The append-only log: every change of a store ([`crate::journal`] records) appended to
//! `appendonly.aof` in the data directory, replayed over the snapshot loaded at start.
//!
//! Files: `appendonly.aof` takes the records; sealed segments `appendonly-<G>.aof` hold the
//! records written before snapshot generation `G` began its walk (and after the segment
//! before). Each starts with a 12-byte header (magic `"\x89FCAOF\r\n"`, version u32).
//! Compaction, crash-safe at every step: before snapshot `G` walks the store the current
//! log is fsynced and renamed to segment `G`, and a fresh `.aof` takes the new records; once
//! the snapshot is durable and older snapshots are pruned, the segments no kept snapshot
//! needs (`G` at most the oldest kept snapshot's generation) are deleted. So the log holds
//! every record since the walk of the *oldest* kept snapshot, and at start the segments
//! newer than the snapshot that loaded (whichever it is: an older one when the newest is
//! damaged) are replayed over it, oldest first, then `.aof`: a record is the key's
//! resulting state, so records the snapshot already holds replay harmlessly.
//!
//! `appendonly.aof.1`, where builds before segments kept the records of a snapshot in
//! progress, is replayed first and then renamed to a segment newer than every snapshot; so
//! is an `appendonly.aof` of an older format version (after it).
//!
//! A replica's full sync is not logged (its flush, its items, the stream after them until
//! the next snapshot begins): a replay would give the flush and the part that had arrived.
//! The log keeps the state before the sync (and the replica's own writes) until a snapshot
//! `G` begins its walk; then the log rotates as usual and the empty mark `synced-<G>` is
//! made durable before any record goes to the new `.aof`. The records after segment `G`
//! hold on to a snapshot of generation `G` or newer: at start, over an older one (or none),
//! the segments up to `G` are replayed (the state before the sync) and the later segments
//! and `.aof` deleted, with the marks from `G` on.
//!
//! A delayed flush_all's deadline is marked in the log (format 3, `Flushes`), so a replay
//! flushes what memcached flushes at the deadline: every item stored before it.
//!
//! Durability ([`Fsync`]): every record is written to the file (the kernel) before the
//! change's caller gets its reply, so a crash of the process loses nothing acknowledged.
//! `Always` also fdatasyncs it then; `EverySec` leaves that to a thread, once a second (an
//! OS crash or power loss loses about the last second); `No` leaves the flush to the OS.

use crate::journal::{self, Journal, JournalError, Record};
use crate::snapshot::files::retry_interrupted;
use crate::Store;
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

pub const FILE: &str = "appendonly.aof";
/// Where builds before segments kept the records a snapshot in progress had yet to cover.
pub const LEGACY_PREV_FILE: &str = "appendonly.aof.1";
const SEGMENT_PREFIX: &str = "appendonly-";
const SEGMENT_SUFFIX: &str = ".aof";
/// `synced-<G>`: the records after segment `G` need snapshot `G` or newer (a full sync).
const SYNCED_PREFIX: &str = "appendonly-synced-";
const MAGIC: &[u8; 8] = b"\x89FCAOF\r\n";
/// 2: records may be of type 4 (an item with meta state, [`journal::ItemState`]).
/// 3: a delayed flush_all's deadline is marked: the first record logged once it has passed
/// is preceded by an immediate flush (see [`Flushes`]).
/// 4: records may be of type 5 (a pending delayed flush_all dropped: `flush_all` with a
/// unix time before the server's start).
/// Files of an older version replay as they were written and never take new records: at
/// open an older `.aof` is sealed as a segment and a new one started, so a build that reads
/// only older versions refuses the directory rather than misreading a file.
const VERSION: u32 = 4;
/// The first version that marks delayed flushes' deadlines.
const MARKS_DEADLINES: u32 = 3;
/// The oldest version this build reads.
const OLDEST_VERSION: u32 = 1;
const HEADER_LEN: u64 = 12;
/// The errno of a deleted log file (Linux, macOS and the BSDs agree).
const ENOENT: i32 = 2;

/// When the log is fsynced (`--appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    EverySec,
    No,
}

impl Fsync {
    pub fn parse(s: &str) -> Option<Fsync> {
        match s {
            "always" => Some(Fsync::Always),
            "everysec" => Some(Fsync::EverySec),
            "no" => Some(Fsync::No),
            _ => None,
        }
    }
}

/// The name of the segment sealed when snapshot generation `gen` began.
pub fn segment_name(gen: u64) -> String {
    format!("{SEGMENT_PREFIX}{gen:010}{SEGMENT_SUFFIX}")
}

fn parse_segment(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The name of the mark made when the log rotates for snapshot `gen` after a full sync.
pub fn synced_name(gen: u64) -> String {
    format!("{SYNCED_PREFIX}{gen:010}")
}

/// The full-sync marks in `dir`, oldest first: (generation, path).
pub fn synced_marks(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    numbered(dir, |name| {
        let digits = name.strip_prefix(SYNCED_PREFIX)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    })
}

/// The sealed log segments in `dir`, oldest first: (generation, path). A missing directory
/// has none.
pub fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    numbered(dir, parse_segment)
}

/// The files of `dir` whose names `generation` reads, oldest first: (generation, path). A
/// missing directory has none.
fn numbered(
    dir: &Path,
    generation: impl Fn(&str) -> Option<u64>,
) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let list = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for e in list {
        let e = e?;
        if let Some(gen) = e.file_name().to_str().and_then(&generation) {
            out.push((gen, e.path()));
        }
    }
    out.sort_by_key(|s| s.0);
    Ok(out)
}

fn segments_size(dir: &Path) -> u64 {
    segments(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, p)| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// What [`open`] replayed.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub records: u64,
    /// Sets of live items the store refused (larger than its item size limit, a log written
    /// under a larger `-I`; or no memory with evictions off): the key is left deleted.
    pub not_stored: u64,
    /// A torn or damaged tail cut off: (file, reason, bytes dropped).
    pub truncated: Vec<(PathBuf, String, u64)>,
    /// The deadline of a delayed flush_all that passed after the last record (the server
    /// was down, or idle until it stopped): applied at the end of the replay; its mark (an
    /// immediate flush record) goes before the next record.
    pub deadline_passed: Option<u32>,
    /// The log of a full sync whose snapshot did not load (killed before it was durable, or
    /// damaged): (the sync's generation, files deleted). The state is the one before it.
    pub sync_dropped: Option<(u64, usize)>,
}

struct Writer {
    file: File,
    /// Records not yet written to the file: the one being added, or those a failed write
    /// left (retried with the next record and on every tick).
    pending: Vec<u8>,
    /// Bytes of whole records in the file (where a failed write is cut back to).
    written: u64,
    /// The deadline (the store's time, [`crate::Store::time`]) of a delayed flush_all not
    /// yet marked in the log.
    deadline: Option<u32>,
    /// [`StoreTime`]'s step when `deadline` was last written in the clock's seconds.
    ///
    /// [`StoreTime`]: crate::clock::StoreTime
    stated_skew: u32,
    /// Inside [`Journal::begin_batch`]: `Always` defers its fdatasync to the batch's end.
    batch: bool,
    /// Records written in a batch and not fdatasynced yet.
    unsynced: bool,
    /// fdatasyncs of records made so far ([`Aof::record_syncs`]).
    syncs: u64,
    /// A replica's full sync began and no snapshot has begun since: its records are not
    /// logged ([`Journal::full_sync_begins`]).
    quiet: bool,
    /// The replica's applier is making the records ([`Journal::applying`]).
    applying: bool,
    /// While `quiet`: the delayed flush the sync left pending (the engine's, restated in
    /// the new log at the rotation; `deadline` stays the old log's).
    sync_deadline: Option<u32>,
}

/// The open log of one store; installed as its [`Journal`] by [`open`].
pub struct Aof {
    dir: PathBuf,
    mode: Fsync,
    /// The store's time: a delayed flush's deadline is judged as the store judges it, also
    /// after the clock stepped back (the store's time then runs ahead of the clock).
    time: crate::clock::StoreTime,
    w: Mutex<Writer>,
    /// Bytes of `.aof` (written and buffered), and of the sealed segments.
    size: AtomicU64,
    prev_size: AtomicU64,
    ok: AtomicBool,
    /// Why the last write or fsync failed (meaningful while `ok` is false).
    error: Mutex<Option<JournalError>>,
    /// `.aof` was deleted or moved under the open file (its directory removed or renamed):
    /// records written to it are in no file a restart reads, so writes are refused until the
    /// next snapshot starts a new log ([`Aof::rotate`]); a retry cannot help.
    gone: AtomicBool,
}

/// A failed write or fsync: which of the two, and the OS error.
type Fault = (&'static str, io::Error);

/// Whether `file` is no longer the file at `path`, the one a restart replays: deleted, its
/// directory removed or renamed away, or another file put in its place.
fn unlinked(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(open) = file.metadata() else {
            return false;
        };
        match fs::metadata(path) {
            Ok(named) => {
                open.nlink() == 0 || (named.dev(), named.ino()) != (open.dev(), open.ino())
            }
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        false
    }
}

/// Whether `file` has no name left anywhere (deleted, not moved).
fn unnamed(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        file.metadata().is_ok_and(|m| m.nlink() == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

fn err_at(path: &Path, action: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {action} {}: {e}", path.display()))
}

/// The bytes a log of the current format starts with (magic and version).
pub fn header() -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&VERSION.to_le_bytes());
    h
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `path` holding just the header, durable.
fn create(path: &Path) -> io::Result<File> {
    let mut f = crate::snapshot::files::private(
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true),
        0,
    )
    .open(path)
    .map_err(|e| err_at(path, "create", e))?;
    f.write_all(&header())
        .and_then(|_| f.sync_data())
        .map_err(|e| err_at(path, "write", e))?;
    Ok(f)
}

/// A delayed flush_all across the files of one replay.
///
/// memcached's `flush_all <delay>` invalidates, once the deadline comes, every item stored
/// (or last accessed) before it, including the ones set after the command. The engine does
/// that while it runs; the log (from version 3) marks the moment: the first record logged
/// once the deadline has passed is preceded by an immediate flush record (also at open
/// and before a rotation, see [`Aof`]). So on replay a delayed flush whose deadline is
/// still ahead is handed to the engine as is, and one whose deadline has passed takes
/// effect at its mark, or at the end of the log if none was written (no record followed
/// the deadline: the server was down, or idle until a crash).
#[derive(Debug, Default)]
struct Flushes {
    /// A deadline that has passed and was not marked yet.
    passed: Option<u32>,
    /// A deadline still ahead (the engine has it).
    ahead: Option<u32>,
}

/// Replays one log file into `store` and cuts off a torn tail. Returns the file's length and
/// format version.
fn replay(
    store: &Store,
    path: &Path,
    report: &mut ReplayReport,
    flushes: &mut Flushes,
) -> io::Result<(u64, u32)> {
    let mut f = crate::snapshot::files::private(OpenOptions::new().read(true).write(true), 0)
        .open(path)
        .map_err(|e| err_at(path, "open", e))?;
    let len = f.metadata().map_err(|e| err_at(path, "stat", e))?.len();
    let mut h = [0u8; HEADER_LEN as usize];
    let got = journal::read_full(&mut f, &mut h).map_err(|e| err_at(path, "read", e))?;
    let magic = got.min(MAGIC.len());
    if (got as u64) < HEADER_LEN && h[..magic] == MAGIC[..magic] {
        // killed while creating it: nothing in it yet (a short file of other bytes is
        // someone else's, refused below rather than overwritten)
        drop(f);
        create(path)?;
        return Ok((HEADER_LEN, VERSION));
    }
    if &h[..8] != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a ferrocache append-only log", path.display()),
        ));
    }
    let v = u32::from_le_bytes(h[8..12].try_into().unwrap());
    if !(OLDEST_VERSION..=VERSION).contains(&v) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} has log format version {v}; this build reads {OLDEST_VERSION} to {VERSION}",
                path.display()
            ),
        ));
    }
    let now = store.now();
    let mut max_cas = 0u64;
    let mut not_stored = 0u64;
    let mut apply = |r: &Record<'_>, max_cas: &mut u64| {
        not_stored += u64::from(journal::apply(store, now, r, max_cas));
    };
    let end = journal::scan(BufReader::with_capacity(1 << 20, &mut f), |r| match *r {
        Record::Flush { at } if v >= MARKS_DEADLINES => {
            // the latest flush_all replaces an earlier deadline, as in memcached
            *flushes = Flushes::default();
            // `at` is the clock's second (Core::to_clock), as the writer's deadline checks
            if at != 0 && store.of_clock(at) <= now {
                // takes effect at its mark (or the log's end), not here: items set until
                // the deadline go with it
                flushes.passed = Some(at);
            } else {
                if at != 0 {
                    flushes.ahead = Some(at);
                }
                apply(r, &mut max_cas);
            }
        }
        Record::FlushCancel => {
            // neither a passed deadline not marked yet nor one ahead acts
            *flushes = Flushes::default();
            apply(r, &mut max_cas);
        }
        _ => apply(r, &mut max_cas),
    })
    .map_err(|e| err_at(path, "read", e))?;
    store.raise_cas(max_cas);
    report.records += end.records;
    report.not_stored += not_stored;
    let good = HEADER_LEN + end.valid_len;
    if let Some(mut reason) = end.torn {
        if let Some(aside) = keep_damage_aside(&mut f, path, good, len)? {
            if let Some(at) = reason.strip_prefix("record cut short") {
                // its length ran past the end, but whole records follow
                reason = format!("record length damaged{at} (whole records follow it)");
            }
            reason = format!(
                "{reason}; the bytes cut off are kept in {}",
                aside.display()
            );
        }
        f.set_len(good)
            .and_then(|_| f.sync_all())
            .map_err(|e| err_at(path, "truncate", e))?;
        report
            .truncated
            .push((path.to_path_buf(), reason, len - good));
    }
    Ok((good, v))
}

/// A log file as [`keep_damage_aside`] reads it: a trait so that a test can interrupt the
/// copy as a signal does.
trait DamagedLog: Read + Seek {
    /// Copies from the position to the end into `to`. Between two files `io::copy` is
    /// `copy_file_range(2)` (or `sendfile`), which std does not restart when a signal
    /// interrupts it (EINTR); the file offsets are then past what it copied.
    fn copy_rest(&mut self, to: &mut File) -> io::Result<u64>;
}

impl DamagedLog for File {
    fn copy_rest(&mut self, to: &mut File) -> io::Result<u64> {
        io::copy(self, to)
    }
}

/// Before a replay cuts `path` back to `good` (of `len` bytes): if the cut part is not a
/// torn tail (a last record cut short by a crash) but whole records behind a damaged one
/// (a flipped bit, a bad sector), copies it to `path.corrupt` (numbered if taken) so the
/// acknowledged records after the damage can still be recovered by hand. If that copy
/// cannot be made, fails (the start is refused) rather than destroy them. Returns the copy.
fn keep_damage_aside(
    f: &mut impl DamagedLog,
    path: &Path,
    good: u64,
    len: u64,
) -> io::Result<Option<PathBuf>> {
    let mut frame = [0u8; journal::FRAME_HEADER];
    if len - good < frame.len() as u64 {
        return Ok(None); // a record header cut short
    }
    f.seek(SeekFrom::Start(good))
        .and_then(|_| f.read_exact(&mut frame))
        .map_err(|e| err_at(path, "read", e))?;
    // a plausible length running past the end: the body cut short, unless a whole record
    // follows (a flipped bit in the length field made it run past the end) or the tail is
    // longer than any one record (whole ones too large for the scan follow)
    let body = u32::from_le_bytes(frame[..4].try_into().unwrap());
    let end = good + (frame.len() as u64) + u64::from(body);
    if body != 0
        && body <= journal::MAX_BODY
        && end > len
        && len - good <= TAIL_SCAN
        && !whole_record_after(f, good).map_err(|e| err_at(path, "read", e))?
    {
        return Ok(None);
    }
    let base = path.as_os_str().to_string_lossy().into_owned();
    let mut aside = PathBuf::from(format!("{base}.corrupt"));
    let mut n = 1;
    while aside.exists() {
        aside = PathBuf::from(format!("{base}.corrupt.{n}"));
        n += 1;
    }
    // streamed: a log can be hundreds of megabytes
    let kept = f
        .seek(SeekFrom::Start(good))
        .and_then(|_| {
            // the log's own mode (records hold cached values), never through a symlink
            crate::snapshot::files::private(OpenOptions::new().write(true).create_new(true), 0)
                .open(&aside)
        })
        .and_then(|mut a| retry_interrupted(|| f.copy_rest(&mut a)).and_then(|_| a.sync_all()))
        .and_then(|_| sync_dir(path.parent().unwrap_or(Path::new("."))));
    if let Err(e) = kept {
        let _ = fs::remove_file(&aside);
        return Err(io::Error::new(
            e.kind(),
            format!(
                "{} is damaged at byte {good} with {} bytes of records after it, which cannot be kept aside in {} before it is cut there ({e}); nothing was cut: free space or move the file away",
                path.display(),
                len - good,
                aside.display()
            ),
        ));
    }
    Ok(Some(aside))
}

/// Bytes of a cut tail [`whole_record_after`] reads: more than a record under ferrocached's
/// largest `-I` (16 MiB) and its key, so a longer tail is not one record cut short.
const TAIL_SCAN: u64 = 17 << 20;
/// Body bytes it checksums at most; past that the tail counts as damage (kept aside: a copy
/// too many is cheap, records destroyed are not).
const TAIL_CRC_BUDGET: usize = 64 << 20;

/// Whether the bytes after `good`, whose first record claims a length past
/// the end, hold a whole record further on: then they are not one record cut short by a
/// crash but records behind a damaged length field.
fn whole_record_after(f: &mut impl DamagedLog, good: u64) -> io::Result<bool> {
    let mut tail = Vec::new();
    f.seek(SeekFrom::Start(good))?;
    (&mut *f).take(TAIL_SCAN).read_to_end(&mut tail)?;
    let mut crc_bytes = 0usize;
    for at in 1..tail.len().saturating_sub(journal::FRAME_HEADER) {
        let n = u32::from_le_bytes(tail[at..at + 4].try_into().unwrap()) as usize;
        let start = at + journal::FRAME_HEADER;
        let Some(body) = tail.get(start..start.saturating_add(n)) else {
            continue;
        };
        if n == 0 || journal::decode_body(body).is_none() {
            continue;
        }
        crc_bytes += n;
        if crc_bytes > TAIL_CRC_BUDGET {
            return Ok(true);
        }
        if crc32c::crc32c(body) == u32::from_le_bytes(tail[at + 4..start].try_into().unwrap()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Replays `dir`'s whole log into `store` (every segment kept, then `.aof`), then opens the
/// log and installs it as the store's journal: [`open_after`] with no snapshot loaded.
pub fn open(store: &Store, dir: &Path, mode: Fsync) -> io::Result<(Arc<Aof>, ReplayReport)> {
    open_after(store, dir, mode, None)
}

/// Replays `dir`'s log into `store` over the snapshot of generation `loaded` that was just
/// loaded into it (`None`: none was): the segments newer than it, oldest first, then `.aof`.
/// Then opens the log and installs it as the store's journal, with a flush thread for
/// `EverySec` and `No`.
pub fn open_after(
    store: &Store,
    dir: &Path,
    mode: Fsync,
    loaded: Option<u64>,
) -> io::Result<(Arc<Aof>, ReplayReport)> {
    crate::snapshot::files::create_dir(dir).map_err(|e| err_at(dir, "create", e))?;
    let mut report = ReplayReport::default();
    let mut flushes = Flushes::default();
    let legacy = dir.join(LEGACY_PREV_FILE);
    if legacy.exists() {
        // records since the walk of a snapshot that was in progress or failed: newer than
        // every segment (an older build wrote none)
        replay(store, &legacy, &mut report, &mut flushes)?;
    }
    // a full sync after the loaded snapshot: its records (after segment `cut`) need a
    // snapshot that did not load; the state before the sync is the one to come up with
    let marks = synced_marks(dir).map_err(|e| err_at(dir, "list", e))?;
    let cut = marks
        .iter()
        .map(|m| m.0)
        .find(|&g| loaded.is_none_or(|l| g > l));
    let cur = dir.join(FILE);
    if let Some(cut) = cut {
        let mut dropped = 0;
        let later = segments(dir).map_err(|e| err_at(dir, "list", e))?;
        let later = later.into_iter().filter(|s| s.0 > cut).map(|s| s.1);
        for path in later.chain(std::iter::once(cur.clone())) {
            match fs::remove_file(&path) {
                Ok(()) => dropped += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(err_at(&path, "delete", e)),
            }
        }
        // the marks go last: a kill before leaves them to cut again
        sync_dir(dir).map_err(|e| err_at(dir, "fsync", e))?;
        for (_, path) in marks.iter().filter(|m| m.0 >= cut) {
            fs::remove_file(path).map_err(|e| err_at(path, "delete", e))?;
        }
        sync_dir(dir).map_err(|e| err_at(dir, "fsync", e))?;
        report.sync_dropped = Some((cut, dropped));
    }
    for (gen, path) in segments(dir).map_err(|e| err_at(dir, "list", e))? {
        // segment `gen` was sealed before snapshot `gen` began: a loaded snapshot at least
        // as new holds all of it
        if loaded.is_none_or(|l| gen > l) {
            replay(store, &path, &mut report, &mut flushes)?;
        }
    }
    let cur_version = if cur.exists() {
        Some(replay(store, &cur, &mut report, &mut flushes)?.1)
    } else {
        None
    };
    // a file of an older version takes no new records (it would be read by its version's
    // rules): it becomes a segment newer than every snapshot, after `.aof.1`
    let mut seal = vec![legacy];
    if cur_version.is_some_and(|v| v < VERSION) {
        seal.push(cur.clone());
    }
    for from in seal.into_iter().filter(|p| p.exists()) {
        let gen =
            crate::snapshot::files::next_generation(dir).map_err(|e| err_at(dir, "list", e))?;
        fs::rename(&from, dir.join(segment_name(gen)))
            .and_then(|_| sync_dir(dir))
            .map_err(|e| err_at(&from, "rename", e))?;
    }
    let (mut file, written) = if cur.exists() {
        let f = crate::snapshot::files::private(OpenOptions::new().read(true).write(true), 0)
            .open(&cur)
            .map_err(|e| err_at(&cur, "open", e))?;
        let len = f.metadata().map_err(|e| err_at(&cur, "stat", e))?.len();
        (f, len)
    } else {
        let f = create(&cur)?;
        sync_dir(dir).map_err(|e| err_at(dir, "fsync", e))?;
        (f, HEADER_LEN)
    };
    file.seek(SeekFrom::Start(written))
        .map_err(|e| err_at(&cur, "seek", e))?;
    if flushes.passed.is_some() {
        // the deadline passed after the last record: it takes effect now, and its mark goes
        // before the next record (which is later than the deadline)
        store.flush_all_at_once();
        report.deadline_passed = flushes.passed;
    }
    let writer = Writer {
        file,
        pending: Vec::with_capacity(64 << 10),
        written,
        deadline: flushes.passed.or(flushes.ahead).map(|t| store.of_clock(t)),
        stated_skew: store.time().skew(),
        batch: false,
        unsynced: false,
        syncs: 0,
        quiet: false,
        applying: false,
        sync_deadline: None,
    };
    let aof = Arc::new(Aof {
        dir: dir.to_path_buf(),
        mode,
        time: store.time(),
        w: Mutex::new(writer),
        size: AtomicU64::new(written),
        prev_size: AtomicU64::new(segments_size(dir)),
        ok: AtomicBool::new(true),
        error: Mutex::new(None),
        gone: AtomicBool::new(false),
    });
    if !store.set_journal(aof.clone()) {
        return Err(io::Error::other("the store already has a journal"));
    }
    if mode != Fsync::Always {
        let weak = Arc::downgrade(&aof);
        std::thread::Builder::new()
            .name("ferrocache-aof".into())
            .spawn(move || tick_loop(weak))
            .map_err(|e| err_at(dir, "start the log thread for", e))?;
    }
    Ok((aof, report))
}

fn tick_loop(weak: Weak<Aof>) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Some(aof) = weak.upgrade() else { return };
        aof.tick();
    }
}

impl Writer {
    /// Writes the pending records; on failure cuts the file back to its last whole record and
    /// keeps them for the next try.
    fn write_out(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        match self.file.write_all(&self.pending) {
            Ok(()) => {
                self.written += self.pending.len() as u64;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.written);
                let _ = self.file.seek(SeekFrom::Start(self.written));
                Err(e)
            }
        }
    }

    /// `write_out`, then an fdatasync if `durable`.
    fn flush(&mut self, durable: bool) -> Result<(), Fault> {
        self.write_out().map_err(|e| ("write", e))?;
        if durable {
            self.syncs += 1;
            self.file.sync_data().map_err(|e| ("fsync", e))?;
        }
        Ok(())
    }
}

impl Aof {
    /// Sets `ok` (and `error`) from the outcome of a write or fsync of the current log.
    /// While the file is deleted ([`Aof::gone`]) a success changes nothing.
    fn note(&self, r: &Result<(), Fault>) -> bool {
        if let Err((action, e)) = r {
            // while the file is gone its reason stands: a write into it failing (a full disk
            // the deleted file still takes space on) is cured by the same snapshot, which
            // that reason (ENOENT) starts
            if !self.gone.load(Ordering::Relaxed) {
                let path = self.dir.join(FILE);
                *self.error.lock() = Some(JournalError {
                    message: format!("cannot {action} {}: {e}", path.display()),
                    errno: e.raw_os_error(),
                    path,
                });
            }
        } else if self.gone.load(Ordering::Relaxed) {
            return false;
        }
        self.ok.store(r.is_ok(), Ordering::Relaxed);
        r.is_ok()
    }

    /// Checks that the open file is still `.aof` in the data directory; if not, refuses
    /// writes from now until a snapshot starts a new log (or the file is back in its place:
    /// a directory renamed back). Returns whether it is gone.
    fn check_gone(&self, w: &Writer) -> bool {
        let path = self.dir.join(FILE);
        if !unlinked(&w.file, &path) {
            // the next good write or fsync clears the refusal (`note`)
            self.gone.store(false, Ordering::Relaxed);
            return false;
        }
        if self.gone.load(Ordering::Relaxed) {
            return true;
        }
        *self.error.lock() = Some(JournalError {
            message: format!(
                "cannot write {}: the file was deleted or moved (its directory removed, emptied or renamed); the changes since the last snapshot are in memory only, writes are refused until a snapshot starts a new log",
                path.display()
            ),
            errno: Some(ENOENT),
            path,
        });
        self.gone.store(true, Ordering::Relaxed);
        self.ok.store(false, Ordering::Relaxed);
        true
    }

    /// Writes records a failed write left (and fdatasyncs with `EverySec`): the log thread's
    /// second.
    pub fn tick(&self) {
        let file = {
            let mut w = self.w.lock();
            let r = w.write_out().map_err(|e| ("write", e));
            // a failed write too if the file was deleted: on a full disk it always fails (the
            // deleted file keeps its space), and only the snapshot the check asks for frees it
            if (r.is_ok() || unnamed(&w.file)) && self.check_gone(&w) {
                return;
            }
            if r.is_err() || self.mode != Fsync::EverySec {
                self.note(&r);
                return;
            }
            match w.file.try_clone() {
                Ok(f) => f,
                Err(e) => {
                    self.note(&Err(("fsync", e)));
                    return;
                }
            }
        };
        // the fsync runs without the lock: writers keep appending meanwhile
        if let Err(e) = file.sync_data() {
            self.note(&Err(("fsync", e)));
            return;
        }
        // all good, unless a write failed meanwhile: its records are still pending, and
        // setting `ok` now would let writes be acknowledged while they are
        let w = self.w.lock();
        if w.pending.is_empty() {
            self.note(&Ok(()));
        }
    }

    /// Writes and fsyncs everything buffered (at close).
    pub fn sync(&self) -> io::Result<()> {
        let mut w = self.w.lock();
        let r = w.flush(true);
        self.note(&r);
        r.map_err(|(_, e)| e)
    }

    /// How many fdatasyncs records have cost so far (`Always`: one per change, or per
    /// batch; tests check the batching with it).
    pub fn record_syncs(&self) -> u64 {
        self.w.lock().syncs
    }

    /// Bytes of the log files, buffered records included.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed) + self.prev_size.load(Ordering::Relaxed)
    }

    /// Whether the last write (and fsync) succeeded.
    pub fn last_write_ok(&self) -> bool {
        self.ok.load(Ordering::Relaxed)
    }

    /// Before a record: a delayed flush still pending when the clock stepped back since its
    /// deadline was written is written again, in the clock's seconds of now. A restart's
    /// time starts at the clock, so it would act on the old second late by the step (the
    /// store acts on it by its own time, ahead of the clock by the step). A replay takes
    /// the later record, as a later flush_all. The caller counts the bytes.
    fn restate_deadline(&self, w: &mut Writer) {
        let Some(d) = w.deadline else { return };
        let skew = self.time.skew();
        if skew != w.stated_skew {
            w.stated_skew = skew;
            let at = self.time.to_clock(d);
            journal::encode(&Record::Flush { at }, &mut w.pending);
        }
    }

    /// Before a record: if a delayed flush's deadline has passed since the last record, its
    /// mark (an immediate flush) goes first. Judged by the store's clock after the change
    /// the record follows was made. The caller counts the bytes.
    fn mark_deadline(&self, w: &mut Writer) {
        if w.deadline.is_some_and(|d| self.time.now() >= d) {
            w.deadline = None;
            journal::encode(&Record::Flush { at: 0 }, &mut w.pending);
        }
    }

    /// Seals the current log as segment `gen` (snapshot `gen` is about to walk the store)
    /// and starts a new one. A `kill -9` between any two steps leaves every record in a file
    /// that is replayed: the segment (newer than every snapshot) or `.aof`.
    fn rotate(&self, gen: u64) -> io::Result<()> {
        let mut w = self.w.lock();
        let cur = self.dir.join(FILE);
        let seg = self.dir.join(segment_name(gen));
        // a deadline passed meanwhile is marked in the segment it belongs to
        let before = w.pending.len();
        self.mark_deadline(&mut w);
        self.size
            .fetch_add((w.pending.len() - before) as u64, Ordering::Relaxed);
        let gone = self.check_gone(&w);
        let fresh = if gone {
            // `.aof` was deleted: nothing to seal. This snapshot walks every change the
            // deleted file held (they are in memory), pending ones too (the snapshot made
            // the directory again if it was removed)
            w.pending.clear();
            // a deleted file still holds its space until closed: on a full disk (the usual
            // reason to delete a data directory) not even the new log's header would fit.
            // Its records are in this snapshot; a file moved elsewhere keeps its bytes
            if unnamed(&w.file) {
                let _ = w.file.set_len(0);
            }
            create(&cur)?
        } else {
            self.seal(&mut w, &cur, &seg)?
        };
        crate::snapshot::files::step(&self.dir, "new log created");
        if !gone {
            self.prev_size.fetch_add(w.written, Ordering::Relaxed);
        }
        w.file = fresh;
        w.written = HEADER_LEN;
        self.size.store(HEADER_LEN, Ordering::Relaxed);
        w.file
            .seek(SeekFrom::Start(HEADER_LEN))
            .map_err(|e| err_at(&cur, "seek", e))?;
        // before the first record goes to the new file, so a power loss cannot keep that
        // record and lose the rename
        sync_dir(&self.dir).map_err(|e| err_at(&self.dir, "fsync", e))?;
        crate::snapshot::files::step(&self.dir, "log rotation durable");
        if w.quiet {
            // the new log holds on to this snapshot: durable before its first record
            let mark = self.dir.join(synced_name(gen));
            crate::snapshot::files::private(
                OpenOptions::new().write(true).create(true).truncate(true),
                0,
            )
            .open(&mark)
            .and_then(|_| sync_dir(&self.dir))
            .map_err(|e| err_at(&mark, "create", e))?;
            crate::snapshot::files::step(&self.dir, "full sync mark created");
            w.quiet = false;
            w.deadline = w.sync_deadline.take();
        }
        if let Some(at) = w.deadline {
            // a snapshot does not keep a pending delayed flush: the new log restates it, so
            // a replay over the snapshot applies it to the snapshot's items too
            w.stated_skew = self.time.skew();
            let at = self.time.to_clock(at);
            journal::encode(&Record::Flush { at }, &mut w.pending);
            self.size
                .fetch_add(w.pending.len() as u64, Ordering::Relaxed);
            w.flush(true)
                .map_err(|(action, e)| err_at(&cur, action, e))?;
        }
        if gone {
            // the new file has a name again: writes are durable from here
            self.gone.store(false, Ordering::Relaxed);
            self.note(&Ok(()));
        }
        Ok(())
    }

    /// The first steps of [`Aof::rotate`]: `.aof` made durable and renamed to `seg`, and a
    /// fresh `.aof` created (on failure the records stay where they were).
    fn seal(&self, w: &mut Writer, cur: &Path, seg: &Path) -> io::Result<File> {
        w.write_out()
            .and_then(|_| w.file.sync_data())
            .map_err(|e| err_at(cur, "write", e))?;
        if seg.exists() {
            // cannot happen: a snapshot's generation is above every segment's
            return Err(err_at(
                seg,
                "create",
                io::Error::from(io::ErrorKind::AlreadyExists),
            ));
        }
        fs::rename(cur, seg).map_err(|e| err_at(cur, "rename", e))?;
        crate::snapshot::files::step(&self.dir, "log sealed as a segment");
        create(cur).inspect_err(|_| {
            // keep appending where the records are: put the file back
            let _ = fs::rename(seg, cur);
        })
    }

    /// Deletes the segments no kept snapshot needs: those sealed before the oldest one began
    /// (it holds their records, and so does every newer one).
    fn drop_covered_segments(&self) {
        let Ok(snapshots) = crate::snapshot::files::snapshots(&self.dir) else {
            return;
        };
        let Some(&(oldest, _)) = snapshots.last() else {
            return;
        };
        let mut removed = false;
        for (gen, path) in segments(&self.dir).unwrap_or_default() {
            if gen <= oldest && fs::remove_file(&path).is_ok() {
                removed = true;
                crate::snapshot::files::step(&self.dir, "a covered segment deleted");
            }
        }
        for (gen, path) in synced_marks(&self.dir).unwrap_or_default() {
            // every kept snapshot is at least as new as that sync
            if gen <= oldest && fs::remove_file(&path).is_ok() {
                removed = true;
            }
        }
        if removed {
            let _ = sync_dir(&self.dir);
        }
        self.prev_size
            .store(segments_size(&self.dir), Ordering::Relaxed);
    }
}

impl Journal for Aof {
    fn record(&self, r: &Record<'_>) {
        let mut w = self.w.lock();
        if w.quiet && w.applying {
            // a full sync's: the next snapshot holds it (and the rotation restates this)
            if let Some(d) = r.flush_deadline() {
                w.sync_deadline = d.map(|t| self.time.of_clock(t));
            }
            return;
        }
        let before = w.pending.len();
        self.mark_deadline(&mut w);
        if let Some(d) = r.flush_deadline() {
            w.stated_skew = self.time.skew();
            // an immediate flush marks itself; a later flush_all (or a cancel) replaces
            // the deadline (the record's clock second as the store's time: a step back
            // after it must not make the mark late)
            w.deadline = d.map(|t| self.time.of_clock(t));
        } else {
            self.restate_deadline(&mut w);
        }
        journal::encode(r, &mut w.pending);
        self.size
            .fetch_add((w.pending.len() - before) as u64, Ordering::Relaxed);
        // into the kernel before the change is acknowledged (one write per change, under
        // the lock that orders the records); the fsync is per record only with `Always`,
        // and inside a batch once at its end
        let durable = self.mode == Fsync::Always && !w.batch;
        w.unsynced |= self.mode == Fsync::Always && w.batch;
        let res = w.flush(durable);
        // a failure always counts; a success clears an earlier one only if it was durable:
        // with `EverySec` a failed fsync is cleared by the next good fsync (the log thread's,
        // or `accepting`'s retry), not by a write that only reached the kernel
        if res.is_err() || durable {
            self.note(&res);
        }
        // `Always` promises this record is on disk: not if the file was deleted or moved (an
        // fstat and a stat beside each fdatasync, a batch's at its end; the other policies
        // check once a second, in `tick`)
        if durable && res.is_ok() {
            self.check_gone(&w);
        }
    }

    fn begin_batch(&self) {
        self.w.lock().batch = true;
    }

    fn end_batch(&self) {
        let mut w = self.w.lock();
        w.batch = false;
        if std::mem::take(&mut w.unsynced) {
            let res = w.flush(true);
            if self.note(&res) {
                self.check_gone(&w);
            }
        }
    }

    fn full_sync_begins(&self) {
        let mut w = self.w.lock();
        w.quiet = true;
        w.sync_deadline = None;
    }

    fn applying(&self, on: bool) {
        self.w.lock().applying = on;
    }

    fn accepting(&self) -> bool {
        if self.ok.load(Ordering::Relaxed) {
            return true;
        }
        // the last write or fsync failed: try the records it left once more, durably
        let mut w = self.w.lock();
        let r = w.flush(true);
        // a failed retry too if the file was deleted: see `tick`
        if (r.is_ok() || unnamed(&w.file)) && self.check_gone(&w) {
            return false;
        }
        self.note(&r)
    }

    fn last_error(&self) -> Option<JournalError> {
        if self.ok.load(Ordering::Relaxed) {
            return None;
        }
        self.error.lock().clone()
    }

    fn before_snapshot(&self, generation: u64) -> io::Result<()> {
        let r = self.rotate(generation);
        if let Err(e) = &r {
            // the message names the file (`err_at`)
            *self.error.lock() = Some(JournalError {
                path: self.dir.clone(),
                errno: e.raw_os_error(),
                message: e.to_string(),
            });
            self.ok.store(false, Ordering::Relaxed);
        }
        r
    }

    fn after_snapshot(&self, ok: bool) {
        // after a failed save its segment stays: the next snapshot covers it
        if ok {
            self.drop_covered_segments();
        }
    }

    fn status(&self) -> Option<(u64, bool)> {
        Some((self.size(), self.last_write_ok()))
    }
}

impl Drop for Aof {
    fn drop(&mut self) {
        let _ = self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArithRequest, Config, DeleteRequest, GetOptions, StoreMode, StoreRequest};

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrocache-aof-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn store() -> Store {
        Store::new(Config::default().memory_limit(64 << 20)).unwrap()
    }

    fn set(s: &Store, k: &[u8], v: &[u8], flags: u32) {
        s.store(&StoreRequest {
            mode: StoreMode::Set,
            key: k,
            value: v,
            flags,
            exptime: 0,
            cas: None,
            invalidate: false,
            new_cas: None,
            vivify: None,
        })
        .unwrap();
    }

    fn get(s: &Store, k: &[u8]) -> Option<(Vec<u8>, u32, u64)> {
        s.get(k, &GetOptions::default(), |v| {
            (v.value.to_vec(), v.flags, v.cas)
        })
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_log_that_cannot_write_refuses_writes_until_a_retry_succeeds() {
        let dir = tmpdir("refuse");
        let s = store();
        let (aof, _) = open(&s, &dir, Fsync::Always).unwrap();
        set(&s, b"a", b"1", 0);
        assert!(s.accepting_writes());
        // the disk fills: every write fails (/dev/full answers ENOSPC)
        let good = {
            let mut w = aof.w.lock();
            let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
            std::mem::replace(&mut w.file, full)
        };
        assert_eq!(s.journal().unwrap().last_error(), None);
        set(&s, b"b", b"2", 0);
        assert!(!aof.last_write_ok());
        assert!(!s.accepting_writes(), "a retry on a full disk fails too");
        let e = s
            .journal()
            .unwrap()
            .last_error()
            .expect("the failure is kept");
        assert_eq!(e.errno, Some(28), "ENOSPC");
        assert_eq!(e.path, dir.join(FILE));
        assert!(e.message.starts_with("cannot write "), "{}", e.message);
        assert!(e.message.contains("appendonly.aof"), "{}", e.message);
        // space again: the next check writes the record the failure left, durably
        aof.w.lock().file = good;
        assert!(s.accepting_writes());
        assert!(aof.last_write_ok());
        assert_eq!(s.journal().unwrap().last_error(), None);
        drop(aof);
        drop(s);
        let s = store();
        open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(get(&s, b"b").map(|v| v.0), Some(b"2".to_vec()));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn changes_replay_after_a_restart() {
        let dir = tmpdir("replay");
        let cas_a;
        {
            let s = store();
            open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"a", b"1", 5);
            set(&s, b"b", b"2", 0);
            set(&s, b"gone", b"x", 0);
            s.delete(&DeleteRequest {
                key: b"gone",
                ..Default::default()
            });
            s.arith(&ArithRequest {
                key: b"a",
                incr: true,
                delta: 41,
                cas: None,
                vivify: None,
                touch: None,
                new_cas: None,
            })
            .unwrap();
            cas_a = get(&s, b"a").unwrap().2;
        }
        let s = store();
        let (_aof, rep) = open(&s, &dir, Fsync::EverySec).unwrap();
        assert_eq!(rep.records, 5);
        assert!(rep.truncated.is_empty());
        assert_eq!(get(&s, b"a"), Some((b"42".to_vec(), 5, cas_a)));
        assert_eq!(get(&s, b"b").unwrap().0, b"2");
        assert_eq!(get(&s, b"gone"), None);
        assert!(s.cas_high_water() >= cas_a);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_later_records_append_after_it() {
        let dir = tmpdir("torn");
        {
            let s = store();
            open(&s, &dir, Fsync::No).unwrap();
            set(&s, b"a", b"1", 0);
            set(&s, b"b", b"2", 0);
        } // dropped: buffered records written
        let path = dir.join(FILE);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        {
            let s = store();
            let (_aof, rep) = open(&s, &dir, Fsync::Always).unwrap();
            assert_eq!(rep.records, 1);
            assert_eq!(rep.truncated.len(), 1);
            assert_eq!(get(&s, b"b"), None);
            set(&s, b"c", b"3", 0);
        }
        let s = store();
        let (_aof, rep) = open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(rep.records, 2);
        assert!(rep.truncated.is_empty());
        assert!(get(&s, b"a").is_some() && get(&s, b"c").is_some());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A log whose copy aside a signal interrupts (EINTR) `interrupts` times, each after a
    /// few bytes: as `copy_file_range` fails once earlier calls of the same copy moved some.
    struct Interrupted {
        file: File,
        interrupts: u32,
    }

    impl Read for Interrupted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.file.read(buf)
        }
    }

    impl Seek for Interrupted {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.file.seek(pos)
        }
    }

    impl DamagedLog for Interrupted {
        fn copy_rest(&mut self, to: &mut File) -> io::Result<u64> {
            if self.interrupts == 0 {
                return self.file.copy_rest(to);
            }
            self.interrupts -= 1;
            io::copy(&mut (&mut self.file).take(10), to)?;
            Err(io::ErrorKind::Interrupted.into())
        }
    }

    /// Met once under the fuzzer (docs/reliability.md): the copy aside of a damaged log's
    /// records failed with EINTR and the start was refused ("cannot be kept aside").
    #[test]
    fn a_copy_aside_a_signal_interrupts_goes_on_where_it_stopped() {
        let dir = tmpdir("eintr");
        {
            let s = store();
            open(&s, &dir, Fsync::Always).unwrap();
            for i in 0..10 {
                set(
                    &s,
                    format!("k{i}").as_bytes(),
                    format!("value-{i}").as_bytes(),
                    0,
                );
            }
        }
        let path = dir.join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        // the fourth record's value damaged: its CRC fails, six whole records follow it
        let at = bytes.windows(7).position(|w| w == b"value-3").unwrap();
        bytes[at] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let end = journal::scan(&bytes[HEADER_LEN as usize..], |_| ()).unwrap();
        assert!(end.torn.unwrap().contains("CRC mismatch"));
        let good = HEADER_LEN + end.valid_len;
        let mut f = Interrupted {
            file: File::open(&path).unwrap(),
            interrupts: 3,
        };
        let aside = keep_damage_aside(&mut f, &path, good, bytes.len() as u64)
            .expect("kept aside, the signals notwithstanding")
            .expect("whole records follow the damage");
        assert_eq!(fs::read(&aside).unwrap(), bytes[good as usize..]);
        assert_eq!(f.interrupts, 0);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_version_1_log_replays_and_is_sealed_before_new_records() {
        let dir = tmpdir("v1");
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE);
        // what the first build wrote: version 1, a plain item
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        journal::encode(
            &Record::Set {
                key: b"old",
                value: b"v1",
                flags: 3,
                exptime: 0,
                cas: 7,
                state: journal::ItemState::default(),
            },
            &mut v1,
        );
        fs::write(&path, &v1).unwrap();
        {
            let s = store();
            let (_aof, rep) = open(&s, &dir, Fsync::Always).unwrap();
            assert_eq!(rep.records, 1);
            assert_eq!(get(&s, b"old"), Some((b"v1".to_vec(), 3, 7)));
            // kept as written, as a segment; new records go to a new file of this version
            let segs = segments(&dir).unwrap();
            assert_eq!(segs.len(), 1);
            assert_eq!(fs::read(&segs[0].1).unwrap(), v1);
            assert_eq!(fs::read(&path).unwrap()[8..12], VERSION.to_le_bytes());
            // meta md I: a type-4 record
            s.delete(&DeleteRequest {
                key: b"old",
                invalidate: true,
                exptime: Some(300),
                ..Default::default()
            });
        }
        let s = store();
        let (_aof, rep) = open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(rep.records, 2);
        assert!(rep.truncated.is_empty());
        let mg = GetOptions {
            may_win: true,
            ..Default::default()
        };
        let stale = s.get(b"old", &mg, |v| (v.stale, v.won));
        assert_eq!(stale, Some((true, true)), "replayed as stale, token free");
        drop(_aof);
        // a later format is refused, not cut off
        let mut bytes = fs::read(&path).unwrap();
        bytes[8..12].copy_from_slice(&(VERSION + 1).to_le_bytes());
        fs::write(&path, &bytes).unwrap();
        let err = open(&store(), &dir, Fsync::Always).err().unwrap();
        assert!(
            err.to_string()
                .contains(&format!("log format version {}", VERSION + 1)),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_snapshot_compacts_the_log_and_both_replay_together() {
        let dir = tmpdir("compact");
        {
            let s = store();
            open(&s, &dir, Fsync::Always).unwrap();
            for i in 0..100u32 {
                set(&s, format!("k{i}").as_bytes(), b"old", i);
            }
            crate::snapshot::save(&s, &dir, 2, None).unwrap();
            // the only snapshot holds everything sealed before it began
            assert!(segments(&dir).unwrap().is_empty());
            set(&s, b"k1", b"new", 1);
            s.flush_all(0);
            set(&s, b"after", b"flush", 0);
        }
        let s = store();
        let loaded = crate::snapshot::load(&s, &dir, false).unwrap();
        assert_eq!(loaded.generation, Some(1));
        let (_aof, rep) = open_after(&s, &dir, Fsync::Always, loaded.generation).unwrap();
        assert_eq!(rep.records, 3);
        assert_eq!(get(&s, b"k1"), None);
        assert_eq!(get(&s, b"after").unwrap().0, b"flush");
        let _ = fs::remove_dir_all(&dir);
    }

    /// What `get` answers for each key: value, flags, CAS.
    type Dump = Vec<Option<(Vec<u8>, u32, u64)>>;

    fn dump(s: &Store, keys: &[Vec<u8>]) -> Dump {
        keys.iter().map(|k| get(s, k)).collect()
    }

    fn delete(s: &Store, k: &[u8]) {
        s.delete(&DeleteRequest {
            key: k,
            ..Default::default()
        });
    }

    fn incr(s: &Store, k: &[u8], delta: u64) {
        s.arith(&ArithRequest {
            key: k,
            incr: true,
            delta,
            cas: None,
            vivify: None,
            touch: None,
            new_cas: None,
        })
        .unwrap();
    }

    /// Three rounds of writes (sets, overwrites, deletes of keys an older snapshot holds,
    /// incr), `after(store, dir, round)` called after each. Returns every key touched.
    fn three_rounds(
        s: &Store,
        dir: &Path,
        after: &mut dyn FnMut(&Store, &Path, u32),
    ) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        for round in 0..3u32 {
            for i in 0..150u32 {
                let k = format!("r{round}k{i}").into_bytes();
                set(s, &k, format!("v{round}.{i}").as_bytes(), round * 1000 + i);
                keys.push(k);
            }
            if round > 0 {
                // overwrite and delete keys of the round before
                for i in 0..20u32 {
                    let k = format!("r{}k{i}", round - 1).into_bytes();
                    set(s, &k, format!("again{round}.{i}").as_bytes(), 7);
                }
                for i in 20..30u32 {
                    delete(s, format!("r{}k{i}", round - 1).as_bytes());
                }
                incr(s, b"counter", 10);
            } else {
                set(s, b"counter", b"5", 0);
                keys.push(b"counter".to_vec());
            }
            after(s, dir, round);
        }
        keys
    }

    fn corrupt(path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
        fs::write(path, bytes).unwrap();
    }

    /// Loads `dir` as a restart does (newest valid snapshot, then the log over it) into a
    /// fresh store.
    fn restart(dir: &Path) -> (Store, crate::snapshot::LoadReport, Arc<Aof>) {
        let s = store();
        let loaded = crate::snapshot::load(&s, dir, false).unwrap();
        let (aof, _) = open_after(&s, dir, Fsync::Always, loaded.generation).unwrap();
        (s, loaded, aof)
    }

    #[test]
    fn a_damaged_newest_snapshot_falls_back_to_an_older_one_and_loses_no_logged_write() {
        let dir = tmpdir("fallback");
        let (keys, want, high) = {
            let s = store();
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            // snapshots after the first two rounds; the third is only in the log
            let keys = three_rounds(&s, &dir, &mut |s, d, round| {
                if round < 2 {
                    crate::snapshot::save(s, d, 2, None).unwrap();
                }
            });
            (keys.clone(), dump(&s, &keys), s.cas_high_water())
        };
        assert!(
            want.iter().filter(|v| v.is_none()).count() == 20,
            "the deletes"
        );
        let snaps = crate::snapshot::files::snapshots(&dir).unwrap();
        assert_eq!(snaps.len(), 2);
        // kept: the segment the older snapshot needs (sealed before the newer one began)
        assert_eq!(
            segments(&dir)
                .unwrap()
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            [2]
        );
        corrupt(&snaps[0].1);
        let (s, loaded, _aof) = restart(&dir);
        assert_eq!(loaded.generation, Some(1), "the older snapshot");
        assert_eq!(loaded.rejected.len(), 1);
        let got = dump(&s, &keys);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(got[i], want[i], "{}", String::from_utf8_lossy(k));
        }
        assert_eq!(get(&s, b"counter").unwrap().0, b"25");
        assert!(s.cas_high_water() >= high, "CAS values stay unique");
        set(&s, b"new", b"x", 0);
        assert!(get(&s, b"new").unwrap().2 > high);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_flush_the_fallback_replays_removes_what_the_older_snapshot_holds() {
        let dir = tmpdir("fallback-flush");
        {
            let s = store();
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"before", b"1", 0);
            crate::snapshot::save(&s, &dir, 3, None).unwrap();
            s.flush_all(0);
            set(&s, b"after", b"2", 0);
            crate::snapshot::save(&s, &dir, 3, None).unwrap();
            delete(&s, b"after");
            set(&s, b"last", b"3", 0);
            crate::snapshot::save(&s, &dir, 3, None).unwrap();
            set(&s, b"tail", b"4", 0);
        }
        // keep 3: the log goes back to the oldest; the two newest are damaged
        let snaps = crate::snapshot::files::snapshots(&dir).unwrap();
        assert_eq!(snaps.len(), 3);
        corrupt(&snaps[0].1);
        corrupt(&snaps[1].1);
        let (s, loaded, _aof) = restart(&dir);
        assert_eq!(loaded.generation, Some(1));
        assert_eq!(get(&s, b"before"), None, "flushed after the snapshot");
        assert_eq!(get(&s, b"after"), None, "deleted after the second");
        assert_eq!(get(&s, b"last").unwrap().0, b"3");
        assert_eq!(get(&s, b"tail").unwrap().0, b"4");
        let _ = fs::remove_dir_all(&dir);
    }

    /// Copies the files of `from` into a fresh directory `to`.
    fn copy_dir(from: &Path, to: &Path) {
        let _ = fs::remove_dir_all(to);
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }

    #[test]
    fn a_kill_between_any_two_file_steps_of_a_save_loses_nothing_even_on_fallback() {
        let dir = tmpdir("crash");
        let states = tmpdir("crash-states");
        // (directory as a kill -9 after the step left it, step, what was acknowledged then)
        let mut crashes: Vec<(PathBuf, &'static str, usize)> = Vec::new();
        let mut wants: Vec<Dump> = Vec::new();
        let keys = {
            let s = store();
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            three_rounds(&s, &dir, &mut |s, d, round| {
                if round == 0 {
                    crate::snapshot::save(s, d, 2, None).unwrap();
                    return;
                }
                // the rounds' keys are r<round>k<i> and counter: name them all
                let all: Vec<Vec<u8>> = (0..3u32)
                    .flat_map(|r| (0..150u32).map(move |i| format!("r{r}k{i}").into_bytes()))
                    .chain([b"counter".to_vec()])
                    .collect();
                wants.push(dump(s, &all));
                let which = wants.len() - 1;
                let (tx, rx) = std::sync::mpsc::channel();
                let states = states.clone();
                let mut n = crashes.len();
                crate::snapshot::files::CRASH_HOOK.with(|h| {
                    *h.borrow_mut() = Some(Box::new(move |dir: &Path, what| {
                        n += 1;
                        let to = states.join(format!("{n}"));
                        copy_dir(dir, &to);
                        tx.send((to, what, which)).unwrap();
                    }))
                });
                crate::snapshot::save(s, d, 2, None).unwrap();
                crate::snapshot::files::CRASH_HOOK.with(|h| *h.borrow_mut() = None);
                crashes.extend(rx.try_iter());
            });
            (0..3u32)
                .flat_map(|r| (0..150u32).map(move |i| format!("r{r}k{i}").into_bytes()))
                .chain([b"counter".to_vec()])
                .collect::<Vec<_>>()
        };
        // the second save walks over snapshot 1; the third also prunes it and the segment
        // only it needed
        let names: Vec<_> = crashes.iter().map(|c| c.1).collect();
        let save = [
            "log sealed as a segment",
            "new log created",
            "log rotation durable",
            "snapshot temp file durable",
            "snapshot renamed",
            "snapshot directory entry durable",
            "older snapshots pruned",
        ];
        let mut expected: Vec<_> = save.iter().chain(save.iter()).copied().collect();
        expected.push("a covered segment deleted");
        assert_eq!(names, expected, "the steps of two saves");
        let mut fallbacks = 0;
        for (state, what, which) in &crashes {
            let want = &wants[*which];
            {
                let (s, _, _aof) = restart(state);
                assert!(
                    dump(&s, &keys) == *want,
                    "restart after {what:?} ({state:?})"
                );
            }
            // and with the newest snapshot damaged, if an older one is there to fall back to
            let snaps = crate::snapshot::files::snapshots(state).unwrap();
            if snaps.len() >= 2 {
                corrupt(&snaps[0].1);
                let (s, loaded, _aof) = restart(state);
                assert_eq!(loaded.rejected.len(), 1);
                assert!(
                    dump(&s, &keys) == *want,
                    "fallback to {:?} after {what:?} ({state:?})",
                    loaded.path
                );
                fallbacks += 1;
            }
        }
        assert!(
            fallbacks >= 10,
            "{fallbacks} states with a snapshot to fall back to"
        );
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&states);
    }

    #[test]
    fn a_kill_at_any_step_of_the_snapshot_after_a_full_sync_gives_a_whole_state() {
        use crate::replication::{Applier, FullSync, ReplLog};
        let dir = tmpdir("sync-crash");
        let states = tmpdir("sync-crash-states");
        let keys: Vec<Vec<u8>> = (0..200u32)
            .map(|i| format!("old{i}").into_bytes())
            .chain((0..300u32).map(|i| format!("new{i}").into_bytes()))
            .collect();
        let mut crashes: Vec<(PathBuf, &'static str)> = Vec::new();
        let (before, after) = {
            let s = store();
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            for i in 0..200u32 {
                set(&s, format!("old{i}").as_bytes(), b"o", 0);
                if i == 99 {
                    crate::snapshot::save(&s, &dir, 2, None).unwrap();
                }
            }
            let before = dump(&s, &keys);
            let p = store();
            for i in 0..300u32 {
                set(&p, format!("new{i}").as_bytes(), b"n", 0);
            }
            // the replica's full sync, applied whole
            let (mut ap, rlog, mut fs) = (Applier::new(), ReplLog::new(1 << 20), FullSync::new());
            ap.begin(&s, true);
            loop {
                let mut out = Vec::new();
                let done = fs.next(&p, 4096, &mut out);
                ap.feed(&s, &rlog, &out).unwrap();
                if done {
                    break;
                }
            }
            let after = dump(&s, &keys);
            let (tx, rx) = std::sync::mpsc::channel();
            let states = states.clone();
            let mut n = 0;
            crate::snapshot::files::CRASH_HOOK.with(|h| {
                *h.borrow_mut() = Some(Box::new(move |dir: &Path, what| {
                    n += 1;
                    let to = states.join(format!("{n}"));
                    copy_dir(dir, &to);
                    tx.send((to, what)).unwrap();
                }))
            });
            crate::snapshot::save(&s, &dir, 2, None).unwrap();
            crate::snapshot::files::CRASH_HOOK.with(|h| *h.borrow_mut() = None);
            crashes.extend(rx.try_iter());
            (before, after)
        };
        assert!(before != after);
        let names: Vec<_> = crashes.iter().map(|c| c.1).collect();
        assert_eq!(names[3], "full sync mark created", "{names:?}");
        for (i, (state, what)) in crashes.iter().enumerate() {
            let (s, _, _aof) = restart(state);
            // the state before the sync until the snapshot is in place, then the new one
            let want = if i < 5 { &before } else { &after };
            assert!(
                dump(&s, &keys) == *want,
                "restart after {what:?} ({state:?})"
            );
        }
        // and once the new snapshot is the one that loads
        let (s, _, _aof) = restart(&dir);
        assert!(dump(&s, &keys) == after);
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&states);
    }

    fn store_at(clock: &crate::Clock) -> Store {
        let mut c = Config::default().memory_limit(64 << 20);
        c.clock = clock.clone();
        Store::new(c).unwrap()
    }

    /// Unix seconds the delayed-flush tests start at (a manual clock).
    const T0: u32 = 1_900_000_000;

    #[test]
    fn a_delayed_flush_replays_at_its_deadline_when_the_server_ran_past_it() {
        let clock = crate::Clock::manual(T0);
        let dir = tmpdir("flush-ran-past");
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"before", b"1", 0);
            s.flush_all(60);
            clock.advance(10);
            set(&s, b"meanwhile", b"2", 0);
            clock.advance(60);
            assert_eq!(
                get(&s, b"meanwhile"),
                None,
                "memcached's rule: stored before the deadline"
            );
            set(&s, b"after", b"3", 0);
        }
        clock.advance(30);
        let s = store_at(&clock);
        let _aof = open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(get(&s, b"before"), None);
        assert_eq!(
            get(&s, b"meanwhile"),
            None,
            "set between the command and its deadline"
        );
        assert_eq!(get(&s, b"after").unwrap().0, b"3", "set after the deadline");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_delayed_flush_whose_deadline_passed_while_down_takes_what_was_set_before_it() {
        let clock = crate::Clock::manual(T0);
        let dir = tmpdir("flush-while-down");
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"before", b"1", 0);
            s.flush_all(60);
            clock.advance(10);
            set(&s, b"meanwhile", b"2", 0);
        }
        clock.advance(100);
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            assert_eq!(get(&s, b"before"), None);
            assert_eq!(get(&s, b"meanwhile"), None);
            set(&s, b"restarted", b"3", 0);
        }
        // the deadline was marked at open: what was set after it survives the next restart
        let s = store_at(&clock);
        let _aof = open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(get(&s, b"meanwhile"), None);
        assert_eq!(get(&s, b"restarted").unwrap().0, b"3");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cancelled_delayed_flush_never_acts_on_replay() {
        // memcached 1.6.18: `flush_all <unix time before its start>` drops a pending delayed
        // flush (its mark becomes 0); the log says so, whether the deadline passes while the
        // server runs or while it is down
        for down in [false, true] {
            let clock = crate::Clock::manual(T0);
            let dir = tmpdir(&format!("flush-cancel-{down}"));
            {
                let s = store_at(&clock);
                let _aof = open(&s, &dir, Fsync::Always).unwrap();
                set(&s, b"before", b"1", 0);
                s.flush_all_as_memcached(60);
                clock.advance(10);
                s.flush_all_as_memcached(2_592_001);
                assert_eq!(s.pending_flush_deadline(), None);
                set(&s, b"meanwhile", b"2", 0);
                if !down {
                    clock.advance(60);
                    assert_eq!(get(&s, b"before").unwrap().0, b"1", "never acts");
                    set(&s, b"after", b"3", 0);
                }
            }
            clock.advance(100);
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            assert_eq!(get(&s, b"before").unwrap().0, b"1", "down: {down}");
            assert_eq!(get(&s, b"meanwhile").unwrap().0, b"2", "down: {down}");
            let _ = fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_delayed_flush_still_ahead_at_a_restart_keeps_its_deadline() {
        let clock = crate::Clock::manual(T0);
        let dir = tmpdir("flush-ahead");
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"before", b"1", 0);
            s.flush_all(60);
            clock.advance(10);
            set(&s, b"meanwhile", b"2", 0);
        }
        clock.advance(10);
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            assert_eq!(get(&s, b"meanwhile").unwrap().0, b"2", "not due yet");
            clock.advance(50);
            assert_eq!(get(&s, b"meanwhile"), None, "due now");
            set(&s, b"after", b"3", 0);
        }
        let s = store_at(&clock);
        let _aof = open(&s, &dir, Fsync::Always).unwrap();
        assert_eq!(get(&s, b"before"), None);
        assert_eq!(get(&s, b"meanwhile"), None);
        assert_eq!(get(&s, b"after").unwrap().0, b"3");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_delayed_flush_pending_at_a_snapshot_applies_to_the_snapshot_on_replay() {
        let clock = crate::Clock::manual(T0);
        let dir = tmpdir("flush-snapshot");
        {
            let s = store_at(&clock);
            let _aof = open(&s, &dir, Fsync::Always).unwrap();
            set(&s, b"before", b"1", 0);
            s.flush_all(60);
            clock.advance(10);
            set(&s, b"meanwhile", b"2", 0);
            crate::snapshot::save(&s, &dir, 2, None).unwrap();
            set(&s, b"later", b"3", 0);
        }
        clock.advance(100);
        let (s, loaded, _aof) = {
            let s = store_at(&clock);
            let loaded = crate::snapshot::load(&s, &dir, false).unwrap();
            let (aof, _) = open_after(&s, &dir, Fsync::Always, loaded.generation).unwrap();
            (s, loaded, aof)
        };
        assert_eq!(loaded.items, 2, "the snapshot holds both");
        assert_eq!(get(&s, b"before"), None);
        assert_eq!(get(&s, b"meanwhile"), None);
        assert_eq!(get(&s, b"later"), None, "set before the deadline too");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_of_an_earlier_build_replays_and_its_files_become_segments() {
        let dir = tmpdir("earlier-build");
        fs::create_dir_all(&dir).unwrap();
        // what the build before segments left after a failed save: snapshot 1, the records
        // since its walk in .aof.1 and the newer ones in .aof, both format 2
        {
            let s = store();
            set(&s, b"snap", b"0", 0);
            crate::snapshot::save(&s, &dir, 2, None).unwrap();
        }
        let v2 = |recs: &[Record<'_>]| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&2u32.to_le_bytes());
            for r in recs {
                journal::encode(r, &mut out);
            }
            out
        };
        let item = |key: &'static [u8], value: &'static [u8], cas| Record::Set {
            key,
            value,
            flags: 0,
            exptime: 0,
            cas,
            state: journal::ItemState::default(),
        };
        fs::write(
            dir.join(LEGACY_PREV_FILE),
            v2(&[item(b"a", b"1", 10), item(b"b", b"1", 11)]),
        )
        .unwrap();
        fs::write(dir.join(FILE), v2(&[item(b"a", b"2", 12)])).unwrap();
        {
            let (s, loaded, _aof) = restart(&dir);
            assert_eq!(loaded.generation, Some(1));
            assert_eq!(get(&s, b"a").unwrap().0, b"2", ".aof after .aof.1");
            assert_eq!(get(&s, b"b").unwrap().0, b"1");
            assert!(!dir.join(LEGACY_PREV_FILE).exists());
            let gens: Vec<_> = segments(&dir).unwrap().iter().map(|s| s.0).collect();
            assert_eq!(gens, [2, 3], "newer than the snapshot, in their order");
            assert_eq!(fs::read(dir.join(FILE)).unwrap(), header(), "a new file");
            set(&s, b"c", b"3", 0);
            // the next snapshot takes a generation above them
            let saved = crate::snapshot::save(&s, &dir, 2, None).unwrap();
            assert!(saved.path.ends_with(crate::snapshot::files::name(4)));
            set(&s, b"d", b"4", 0);
        }
        // and a damaged newest snapshot still falls back with nothing lost
        corrupt(&dir.join(crate::snapshot::files::name(4)));
        let (s, loaded, _aof) = restart(&dir);
        assert_eq!(loaded.generation, Some(1));
        for (k, v) in [
            (&b"snap"[..], &b"0"[..]),
            (b"a", b"2"),
            (b"b", b"1"),
            (b"c", b"3"),
            (b"d", b"4"),
        ] {
            assert_eq!(
                get(&s, k).map(|g| g.0),
                Some(v.to_vec()),
                "{}",
                String::from_utf8_lossy(k)
            );
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
