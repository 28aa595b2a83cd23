//! Snapshots: the whole store in one crash-safe file, and back.
//!
//! [`save`] walks the store a shard at a time in short lock holds (the store keeps serving)
//! and writes `snapshot-<generation>.fcs` in a data directory: a temp file, fsynced, renamed,
//! the directory fsynced, the newest `keep` files kept. [`load`] applies the newest file
//! that passes a full check (format in [`format`]); a damaged one is renamed `*.corrupt`,
//! reported with its byte offset, and the next older one is tried.
//!
//! A snapshot is per key consistent, not a point in time: each key is in the file once, in
//! the state it had at the moment its part of the hash table was walked. Items keep their
//! value, flags, CAS, absolute expiry and meta state (stale, win token, base64 key); the
//! store's CAS counter is raised to the file's high-water mark so CAS values stay unique
//! across a restart. Files of the previous format version (no meta state) still load.

pub(crate) mod files;
pub mod format;
mod loader;
mod lock;
mod output;
mod writer;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::Store;

pub use loader::verify;
pub use lock::{lock as lock_dir, DirLock, LOCK_FILE};

/// Writes a snapshot of `store` into `dir` (created if missing) and keeps the newest `keep`
/// (at least 1). Returns once the file and its directory entry are durable. On failure the
/// temp file is removed and the older snapshots are untouched.
pub fn save(
    store: &Store,
    dir: &Path,
    keep: usize,
    progress: Option<&Progress>,
) -> Result<SaveReport, SnapshotError> {
    writer::save(store, dir, keep, progress, output::Mode::DirectIfPossible)
}

/// Loads the newest valid snapshot of `dir` into `store` (normally empty). A missing
/// directory or no snapshot is an empty report. Damaged files are moved aside and listed in
/// [`LoadReport::rejected`]; with `strict` the first damaged file is an error instead and
/// nothing is moved or loaded.
pub fn load(store: &Store, dir: &Path, strict: bool) -> Result<LoadReport, SnapshotError> {
    loader::load(store, dir, strict)
}

/// Live figures of a running [`save`], readable from another thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Items copied out of the store so far.
    pub items: AtomicU64,
    /// Bytes written to the temp file so far.
    pub bytes: AtomicU64,
}

/// A finished [`save`].
#[derive(Debug, Clone)]
pub struct SaveReport {
    pub path: PathBuf,
    pub items: u64,
    pub file_bytes: u64,
    /// Key and value bytes of the items.
    pub data_bytes: u64,
    pub cas_high_water: u64,
    /// Unix milliseconds, as in the header.
    pub created_ms: u64,
    pub duration: Duration,
    /// Part of `duration` spent in fsync and rename.
    pub sync_duration: Duration,
    /// Older snapshots (and leftover temp files) deleted.
    pub removed: Vec<PathBuf>,
}

/// What [`load`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The snapshot applied, if any.
    pub path: Option<PathBuf>,
    /// Its generation (the number in its name): replay the append-only log over it with
    /// [`crate::aof::open_after`].
    pub generation: Option<u64>,
    /// Items stored.
    pub items: u64,
    /// Items skipped because they expired while the store was down.
    pub expired: u64,
    /// Items the store refused (larger than its item size limit, or no memory with
    /// evictions off).
    pub not_stored: u64,
    pub file_bytes: u64,
    pub created_ms: u64,
    pub cas_high_water: u64,
    pub duration: Duration,
    /// Newer files that failed their check, newest first.
    pub rejected: Vec<Rejected>,
}

/// A snapshot file that could not be loaded.
#[derive(Debug)]
pub struct Rejected {
    pub path: PathBuf,
    /// Where it was moved (`*.corrupt`, `*.unsupported`, `*.unreadable`); `None` if it
    /// stayed.
    pub moved_to: Option<PathBuf>,
    pub error: SnapshotError,
}

/// Why a snapshot could not be written or read. The message names the file.
#[derive(Debug)]
pub enum SnapshotError {
    Io {
        path: PathBuf,
        /// What was being done: "create", "write", "fsync", …
        action: &'static str,
        source: io::Error,
    },
    /// Damaged or cut short; `offset` is the byte where the damage was found.
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// Written by a different format version (a newer ferrocache, or not ours).
    Unsupported { path: PathBuf, version: u32 },
    /// The data directory is in use: another cache holds its lock file `path`
    /// ([`lock_dir`]); `holder` is the process id written in it, if readable.
    Locked { path: PathBuf, holder: Option<u32> },
}

pub(crate) fn io_err(path: &Path, action: &'static str, source: io::Error) -> SnapshotError {
    SnapshotError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
            SnapshotError::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "snapshot {} is corrupt at byte {offset}: {reason}",
                path.display()
            ),
            SnapshotError::Unsupported { path, version } => write!(
                f,
                "snapshot {} has format version {version}; this build reads versions {} to {}",
                path.display(),
                format::OLDEST_VERSION,
                format::VERSION
            ),
            SnapshotError::Locked { path, holder } => {
                let dir = path.parent().unwrap_or(path);
                write!(
                    f,
                    "data directory {} is in use by another cache (",
                    dir.display()
                )?;
                if let Some(pid) = holder {
                    write!(f, "process {pid}")?;
                } else {
                    write!(f, "another process or this one")?;
                }
                write!(
                    f,
                    " holds the lock on {}); give each cache its own directory",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
