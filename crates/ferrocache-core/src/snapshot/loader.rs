//! Loading: the newest snapshot that passes a full verifying read is applied; one that
//! fails is moved aside and the next older one tried. Nothing is stored until a whole
//! file has been checked, so a damaged file is never half-loaded.

use super::files;
use super::format::{self, Record, ScanError, Summary};
use super::{io_err, LoadReport, Rejected, SnapshotError};
use crate::journal::ItemState;
use crate::{Store, StoreMode, StoreRequest, StoreStatus};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

const READ_BUFFER: usize = 1 << 20;

/// Reads and checks a whole file without applying it.
pub fn verify(path: &Path) -> Result<Summary, SnapshotError> {
    let file = File::open(path).map_err(|e| io_err(path, "open", e))?;
    format::scan(BufReader::with_capacity(READ_BUFFER, file), |_| ()).map_err(|e| scan_err(path, e))
}

pub(super) fn scan_err(path: &Path, e: ScanError) -> SnapshotError {
    match e {
        ScanError::Io(e) => io_err(path, "read", e),
        ScanError::Corrupt { offset, reason } => SnapshotError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        },
        ScanError::Unsupported { version } => SnapshotError::Unsupported {
            path: path.to_path_buf(),
            version,
        },
    }
}

pub fn load(store: &Store, dir: &Path, strict: bool) -> Result<LoadReport, SnapshotError> {
    let began = Instant::now();
    let mut report = LoadReport::default();
    let list = match files::snapshots(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(io_err(dir, "list", e)),
    };
    for (gen, path) in list {
        let sum = match verify(&path) {
            Ok(s) => s,
            Err(e) => {
                if strict {
                    return Err(e);
                }
                let suffix = match e {
                    SnapshotError::Corrupt { .. } => Some("corrupt"),
                    SnapshotError::Unsupported { .. } => Some("unsupported"),
                    // unreadable (permissions, an I/O error): left in place it would count as
                    // a kept snapshot, and pruning would delete a good older one for it
                    SnapshotError::Io { .. } => Some("unreadable"),
                    SnapshotError::Locked { .. } => None,
                };
                let moved_to = suffix.and_then(|s| files::move_aside(&path, s).ok());
                if moved_to.is_some() {
                    let _ = files::sync_dir(dir);
                }
                report.rejected.push(Rejected {
                    path: path.clone(),
                    moved_to,
                    error: e,
                });
                continue;
            }
        };
        apply(store, &path, &sum, &mut report)?;
        report.path = Some(path);
        report.generation = Some(gen);
        report.file_bytes = sum.file_bytes;
        report.created_ms = sum.header.created_ms;
        report.cas_high_water = sum.header.cas_high_water;
        break;
    }
    report.duration = began.elapsed();
    Ok(report)
}

/// Stores every record of a verified file: same key, value, flags, CAS, absolute exptime
/// and meta state; items that expired meanwhile are skipped, and so are keys that hold a live
/// item already (written during an async load: newer). A smaller memory limit evicts as any
/// insert would.
fn apply(
    store: &Store,
    path: &Path,
    sum: &Summary,
    report: &mut LoadReport,
) -> Result<(), SnapshotError> {
    store.raise_cas(sum.header.cas_high_water);
    // the records come in hash order (the writer's walk): a table sized as they come would
    // pile them into one cluster at its start
    store.reserve(sum.items + store.stats().curr_items);
    let file = File::open(path).map_err(|e| io_err(path, "open", e))?;
    let now = store.now();
    // with --load-async clients may flush_all while the load runs (a load starts on a store
    // no flush has touched): every record not stored yet is older than that flush, so none
    // of them may come back. So is a replica's full sync or a streamed immediate flush,
    // which unlink everything at once and leave no flush mark
    let mut flushed = false;
    let mut put = |r: &Record<'_>| {
        flushed = flushed || store.flush_in_effect().is_some() || store.flushed_at_once();
        if flushed {
            return;
        }
        // the file's times are the clock's; this store's may be ahead of it (a step back)
        let exptime = store.of_clock(r.exptime);
        if exptime != 0 && exptime <= now {
            report.expired += 1;
            return;
        }
        let req = StoreRequest {
            // never over a live item: with --load-async clients write while the load runs,
            // and what they stored is newer than the snapshot's copy (an empty store, the
            // usual case, takes every record either way)
            mode: StoreMode::Add,
            key: r.key,
            value: r.value,
            flags: r.flags,
            // absolute unix seconds (far above memcached's 30-day relative range)
            exptime: exptime as i64,
            cas: None,
            invalidate: false,
            new_cas: Some(r.cas),
            vivify: None,
        };
        let stored = if r.state == ItemState::default() {
            store.store(&req)
        } else {
            // stale, win token and base64 key set under the same lock hold as the value
            store.store_restored(&req, r.state)
        };
        match stored {
            Ok(o) if o.status == StoreStatus::Stored => report.items += 1,
            // a client stored the key during the load: its value stays
            Ok(_) => {}
            // a smaller item size limit (-I) or no room without evicting (-M)
            Err(_) => report.not_stored += 1,
        }
    };
    // the file was verified a moment ago and snapshots are never written in place, so this
    // read fails only if the disk does
    format::scan(BufReader::with_capacity(READ_BUFFER, file), &mut put)
        .map(|_| ())
        .map_err(|e| scan_err(path, e))
}
