//! Snapshots of an embedded cache's store (`src/persistence/`): `snapshotSave` and
//! `snapshotLoad` run on a libuv worker thread, so the event loop keeps serving while the
//! engine walks the store in short lock holds; `snapshotLoadSync` is for a load that must
//! finish before a port opens. Failures resolve as `{ error }` with the file and byte
//! offset, for TypeScript to turn into a thrown error with a code. `NativeDataDirLock`
//! keeps a second cache out of a data directory in use.

// napi-rs compiles its export registration out of test builds, so in `cargo test` and
// `clippy --all-targets` everything reached only from JS looks unused.
#![cfg_attr(test, allow(dead_code))]

use std::path::PathBuf;
use std::sync::Arc;

use ferrocache_core::aof;
use ferrocache_core::snapshot::{self, LoadReport, Progress, SaveReport, SnapshotError};
use ferrocache_core::Store;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Result, Task};
use napi_derive::napi;

use crate::cache::NativeCache;

/// Why a snapshot could not be written or read.
#[napi(object)]
pub struct NativeSnapshotError {
    /// `'io'` (the file system refused), `'corrupt'` (damaged or cut short),
    /// `'unsupported'` (another format version) or `'locked'` (the data directory is in use).
    pub kind: String,
    /// Names the file, and for `'corrupt'` the byte offset.
    pub message: String,
    /// The file (or directory, for `'locked'`) concerned.
    pub path: String,
    /// Byte offset of the damage (`'corrupt'`).
    pub offset: Option<f64>,
    /// The OS error number (`'io'`), e.g. 28 for ENOSPC.
    pub errno: Option<i32>,
}

/// A snapshot written and durable.
#[napi(object)]
pub struct NativeSaveReport {
    /// The snapshot file written.
    pub path: String,
    /// Items written.
    pub items: f64,
    /// Size of the file.
    pub file_bytes: f64,
    /// Key and value bytes of the items.
    pub data_bytes: f64,
    /// The highest CAS the store had handed out; a load resumes numbering above it.
    pub cas_high_water: f64,
    /// Unix milliseconds.
    pub created_ms: f64,
    /// From the start of the walk to the file being durable.
    pub duration_ms: f64,
    /// Part of `durationMs` spent making it durable (fsync, rename).
    pub sync_ms: f64,
    /// Older snapshots deleted to keep `keep`.
    pub removed: Vec<String>,
}

/// `report` or `error`.
#[napi(object)]
pub struct NativeSaveResult {
    /// What was written, when it succeeded.
    pub report: Option<NativeSaveReport>,
    /// Why not, when it failed.
    pub error: Option<NativeSnapshotError>,
}

/// A snapshot file that failed its check and was skipped.
#[napi(object)]
pub struct NativeRejectedSnapshot {
    /// Where it was moved (`*.corrupt`, `*.unsupported`, `*.unreadable`), if it was.
    pub moved_to: Option<String>,
    /// What was wrong with it.
    pub error: NativeSnapshotError,
}

/// What a load did.
#[napi(object)]
pub struct NativeLoadReport {
    /// The file loaded; absent when there was none to load.
    pub path: Option<String>,
    /// Its generation (the number in its name), for `aofOpen`; absent with `path`.
    pub generation: Option<f64>,
    /// Items stored from it.
    pub items: f64,
    /// Skipped: expired while the cache was down.
    pub expired: f64,
    /// Refused by the store (too large for its item size limit, no memory with `-M`).
    pub not_stored: f64,
    /// Size of the file.
    pub file_bytes: f64,
    /// When the snapshot was taken (unix milliseconds).
    pub created_ms: f64,
    /// The CAS high-water mark it recorded; the store numbers on above it.
    pub cas_high_water: f64,
    /// Time to read and store it.
    pub duration_ms: f64,
    /// Newer files that failed their check and were skipped before this one loaded.
    pub rejected: Vec<NativeRejectedSnapshot>,
}

/// `report` or `error`.
#[napi(object)]
pub struct NativeLoadResult {
    /// What was loaded, when it succeeded (also when there was nothing to load).
    pub report: Option<NativeLoadReport>,
    /// Why not, when no snapshot could be loaded.
    pub error: Option<NativeSnapshotError>,
}

/// Live figures of a running `snapshotSave`.
#[napi]
pub struct NativeSnapshotProgress {
    inner: Arc<Progress>,
}

#[napi]
impl NativeSnapshotProgress {
    /// Figures at zero, to pass to `snapshotSave`.
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeSnapshotProgress {
            inner: Arc::new(Progress::default()),
        }
    }

    /// Items copied out of the store so far.
    #[napi(getter)]
    pub fn items(&self) -> f64 {
        self.inner.items.load(std::sync::atomic::Ordering::Relaxed) as f64
    }

    /// Bytes written so far.
    #[napi(getter)]
    pub fn bytes(&self) -> f64 {
        self.inner.bytes.load(std::sync::atomic::Ordering::Relaxed) as f64
    }
}

impl Default for NativeSnapshotProgress {
    fn default() -> Self {
        Self::new()
    }
}

fn error_of(e: &SnapshotError) -> NativeSnapshotError {
    let (kind, path, offset, errno) = match e {
        SnapshotError::Io { path, source, .. } => ("io", path, None, source.raw_os_error()),
        SnapshotError::Corrupt { path, offset, .. } => {
            ("corrupt", path, Some(*offset as f64), None)
        }
        SnapshotError::Unsupported { path, .. } => ("unsupported", path, None, None),
        SnapshotError::Locked { path, .. } => ("locked", path, None, None),
    };
    NativeSnapshotError {
        kind: kind.into(),
        message: e.to_string(),
        path: path.display().to_string(),
        offset,
        errno,
    }
}

fn save_report(r: SaveReport) -> NativeSaveReport {
    NativeSaveReport {
        path: r.path.display().to_string(),
        items: r.items as f64,
        file_bytes: r.file_bytes as f64,
        data_bytes: r.data_bytes as f64,
        cas_high_water: r.cas_high_water as f64,
        created_ms: r.created_ms as f64,
        duration_ms: r.duration.as_secs_f64() * 1e3,
        sync_ms: r.sync_duration.as_secs_f64() * 1e3,
        removed: r.removed.iter().map(|p| p.display().to_string()).collect(),
    }
}

fn save_result(r: std::result::Result<SaveReport, SnapshotError>) -> NativeSaveResult {
    match r {
        Ok(r) => NativeSaveResult {
            report: Some(save_report(r)),
            error: None,
        },
        Err(e) => NativeSaveResult {
            report: None,
            error: Some(error_of(&e)),
        },
    }
}

fn load_result(r: std::result::Result<LoadReport, SnapshotError>) -> NativeLoadResult {
    match r {
        Ok(r) => NativeLoadResult {
            report: Some(NativeLoadReport {
                path: r.path.map(|p| p.display().to_string()),
                generation: r.generation.map(|g| g as f64),
                items: r.items as f64,
                expired: r.expired as f64,
                not_stored: r.not_stored as f64,
                file_bytes: r.file_bytes as f64,
                created_ms: r.created_ms as f64,
                cas_high_water: r.cas_high_water as f64,
                duration_ms: r.duration.as_secs_f64() * 1e3,
                rejected: r
                    .rejected
                    .iter()
                    .map(|x| NativeRejectedSnapshot {
                        moved_to: x.moved_to.as_ref().map(|p| p.display().to_string()),
                        error: error_of(&x.error),
                    })
                    .collect(),
            }),
            error: None,
        },
        Err(e) => NativeLoadResult {
            report: None,
            error: Some(error_of(&e)),
        },
    }
}

pub struct SaveTask {
    store: Arc<Store>,
    dir: PathBuf,
    keep: usize,
    progress: Option<Arc<Progress>>,
}

impl Task for SaveTask {
    type Output = std::result::Result<SaveReport, SnapshotError>;
    type JsValue = NativeSaveResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(snapshot::save(
            &self.store,
            &self.dir,
            self.keep,
            self.progress.as_deref(),
        ))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(save_result(out))
    }
}

pub struct LoadTask {
    store: Arc<Store>,
    dir: PathBuf,
    strict: bool,
}

impl Task for LoadTask {
    type Output = std::result::Result<LoadReport, SnapshotError>;
    type JsValue = NativeLoadResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(snapshot::load(&self.store, &self.dir, self.strict))
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> Result<Self::JsValue> {
        Ok(load_result(out))
    }
}

/// Writes a snapshot of `cache` into `dir` (created if missing) on a worker thread and keeps
/// the newest `keep`; resolves once the file is durable (fsynced, renamed, directory
/// fsynced). Only one save per directory at a time: the caller serialises them.
#[napi(ts_return_type = "Promise<NativeSaveResult>")]
pub fn snapshot_save(
    cache: &NativeCache,
    dir: String,
    keep: u32,
    progress: Option<&NativeSnapshotProgress>,
) -> Result<AsyncTask<SaveTask>> {
    Ok(AsyncTask::new(SaveTask {
        store: cache.store()?,
        dir: dir.into(),
        keep: keep as usize,
        progress: progress.map(|p| p.inner.clone()),
    }))
}

/// `snapshotSave` on this thread (blocks it until the file is durable): for a last save
/// at close or shutdown.
#[napi]
pub fn snapshot_save_sync(cache: &NativeCache, dir: String, keep: u32) -> Result<NativeSaveResult> {
    let mut task = SaveTask {
        store: cache.store()?,
        dir: dir.into(),
        keep: keep as usize,
        progress: None,
    };
    let out = task.compute()?;
    Ok(save_result(out))
}

/// Loads the newest valid snapshot of `dir` into `cache` on a worker thread (the cache
/// serves meanwhile: keys not loaded yet are misses). Damaged files are moved aside and
/// listed in `rejected`; with `strict` the first one is the error instead.
#[napi(ts_return_type = "Promise<NativeLoadResult>")]
pub fn snapshot_load(
    cache: &NativeCache,
    dir: String,
    strict: bool,
) -> Result<AsyncTask<LoadTask>> {
    Ok(AsyncTask::new(LoadTask {
        store: cache.store()?,
        dir: dir.into(),
        strict,
    }))
}

/// `snapshotLoad` on this thread, for a load that must finish before serving.
#[napi]
pub fn snapshot_load_sync(
    cache: &NativeCache,
    dir: String,
    strict: bool,
) -> Result<NativeLoadResult> {
    let store = cache.store()?;
    Ok(load_result(snapshot::load(
        &store,
        &PathBuf::from(dir),
        strict,
    )))
}

/// A number that grows with every change to the store (the CAS counter plus deletes,
/// touches and flushes): the scheduler's "changes since the last save" is its growth.
/// Resettable counters are part of it, so after `stats reset` it can go down.
#[napi]
pub fn snapshot_change_count(cache: &NativeCache) -> Result<f64> {
    let store = cache.store()?;
    let st = store.stats();
    Ok(store.cas_high_water() as f64 + (st.delete_hits + st.touch_hits + st.cmd_flush) as f64)
}

/// The exclusive lock on a data directory (`DIR/LOCK`, an `flock`): one cache per
/// directory. Held from `acquire` until `release`, until this object is garbage-collected,
/// or until the process ends (the kernel drops it, also on `kill -9`).
#[napi]
pub struct NativeDataDirLock {
    held: Option<snapshot::DirLock>,
}

#[napi]
impl NativeDataDirLock {
    /// A lock not held yet: `acquire` takes it.
    #[napi(constructor)]
    pub fn new() -> Self {
        NativeDataDirLock { held: None }
    }

    /// Takes the lock on `dir` (created if missing) without waiting; `null` once held, else
    /// why not (`kind` `'locked'`: another cache holds it; `'io'`: the file system refused).
    #[napi]
    pub fn acquire(&mut self, dir: String) -> Option<NativeSnapshotError> {
        match snapshot::lock_dir(&PathBuf::from(dir)) {
            Ok(l) => {
                self.held = Some(l);
                None
            }
            Err(e) => Some(error_of(&e)),
        }
    }

    /// Releases the lock (nothing if not held).
    #[napi]
    pub fn release(&mut self) {
        self.held = None;
    }
}

impl Default for NativeDataDirLock {
    fn default() -> Self {
        Self::new()
    }
}

/// What `aofOpen` replayed, or why it could not open the log.
#[napi(object)]
pub struct NativeAofReport {
    /// Records replayed into the store.
    pub records: f64,
    /// Live items the store refused (larger than its item size limit: a log written under a
    /// larger `-I`), left deleted.
    pub not_stored: f64,
    /// One message per log file whose torn or damaged tail was cut off.
    pub truncated: Vec<String>,
    /// The log of a replica's full sync whose snapshot did not load was deleted (what it
    /// says); the state is the one before that sync.
    pub sync_dropped: Option<String>,
    /// Why the log could not be opened or read (names the file and the OS error).
    pub error: Option<String>,
}

/// The append-only log's `stats` figures.
#[napi(object)]
pub struct NativeAofStatus {
    /// Bytes of the log files.
    pub size: f64,
    /// Whether the last write (and fsync) succeeded.
    pub ok: bool,
    /// Why not: names the file and the OS error.
    pub error: Option<String>,
    /// The file that failed.
    pub error_path: Option<String>,
    /// The OS error number of the failure.
    pub errno: Option<i32>,
}

/// Replays `dir`'s append-only log into `cache` over the snapshot of generation
/// `loadedGeneration` just loaded (absent: none was; every segment kept is replayed) and
/// logs every later change to it; `mode` is `'always'`, `'everysec'` or `'no'`.
#[napi]
pub fn aof_open(
    cache: &NativeCache,
    dir: String,
    mode: String,
    loaded_generation: Option<f64>,
) -> Result<NativeAofReport> {
    let Some(mode) = aof::Fsync::parse(&mode) else {
        return Err(napi::Error::from_reason(format!(
            "appendfsync must be always, everysec or no, got {mode:?}"
        )));
    };
    let store = cache.store()?;
    let loaded = loaded_generation.map(|g| g as u64);
    let opened = aof::open_after(&store, &PathBuf::from(dir), mode, loaded);
    Ok(match opened {
        Ok((_, rep)) => NativeAofReport {
            records: rep.records as f64,
            not_stored: rep.not_stored as f64,
            truncated: rep
                .truncated
                .iter()
                .map(|(p, why, n)| format!("{}: {why}; {n} bytes cut off", p.display()))
                .collect(),
            sync_dropped: rep.sync_dropped.map(|(gen, files)| {
                format!("{files} log files after segment {gen} deleted: they followed a replica's full sync whose snapshot {gen} did not load")
            }),
            error: None,
        },
        Err(e) => NativeAofReport {
            records: 0.0,
            not_stored: 0.0,
            truncated: Vec::new(),
            sync_dropped: None,
            error: Some(e.to_string()),
        },
    })
}

/// Size and health of `cache`'s append-only log; `null` without one.
#[napi]
pub fn aof_status(cache: &NativeCache) -> Result<Option<NativeAofStatus>> {
    let store = cache.store()?;
    let Some(journal) = store.journal() else {
        return Ok(None);
    };
    let why = journal.last_error();
    Ok(journal.status().map(|(size, ok)| NativeAofStatus {
        size: size as f64,
        ok,
        error_path: why.as_ref().map(|e| e.path.display().to_string()),
        errno: why.as_ref().and_then(|e| e.errno),
        error: why.map(|e| e.message),
    }))
}
