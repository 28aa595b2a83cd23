//! Replication's byte work for `src/replication/` (TypeScript owns the sockets):
//! `NativeReplication` holds a node's [`ReplLog`] (installed as a journal sink of the cache's
//! store) and the replica side's [`Applier`]; `NativeFullSync` produces a full sync's
//! snapshot frames. One call per socket read on the replica (`apply`), one per write batch on
//! the primary (`read`).

// napi-rs compiles its export registration out of test builds.
#![cfg_attr(test, allow(dead_code))]

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrocache_core::replication::{Applier, FullSync, Psync, ReplLog};
use ferrocache_core::Store;
use napi::bindgen_prelude::Buffer;
use napi::Result;
use napi_derive::napi;

use crate::cache::NativeCache;

/// A node's replication state (`stats` lines, the links' positions).
#[napi(object)]
pub struct NativeReplInfo {
    /// This node originates its stream (a primary), rather than following one.
    pub primary: bool,
    /// The id of the history this node holds.
    pub replid: String,
    /// The history this one continues (after a promotion), valid up to `second_offset`.
    pub replid2: String,
    /// Up to which offset `replid2`'s history is this node's too: replicas of the old
    /// primary at or before it continue without a full sync.
    pub second_offset: f64,
    /// Stream bytes produced (primary) or applied (replica).
    pub offset: f64,
    /// Whether a backlog is kept (from the first replica's sync on).
    pub backlog_active: bool,
    /// The backlog's capacity in bytes.
    pub backlog_size: f64,
    /// The stream offset of the backlog's first byte.
    pub backlog_first: f64,
    /// Bytes the backlog holds.
    pub backlog_len: f64,
}

/// The answer to a replica's `PSYNC`.
#[napi(object)]
pub struct NativePsync {
    /// A full sync (snapshot, then the stream from `offset`); else continue from the
    /// replica's offset.
    pub full: bool,
    /// The id to answer with (`FULLRESYNC <replid> <offset>` or `CONTINUE <replid>`).
    pub replid: String,
    /// Where the stream starts for this replica.
    pub offset: f64,
}

/// What one `apply` did.
#[napi(object)]
pub struct NativeApplied {
    /// Records applied to the store.
    pub records: f64,
    /// Stream bytes applied (the offset moved this far).
    pub stream_bytes: f64,
    /// Live items the store refused and left deleted (larger than its item size limit: a
    /// primary with a larger `-I`).
    pub not_stored: f64,
    /// The snapshot section of a full sync ended.
    pub sync_done: bool,
    /// The last heartbeat's primary clock (unix ms), or -1 when none was applied.
    pub heartbeat_ms: f64,
    /// Offset after this call.
    pub offset: f64,
    /// A damaged frame: the link must be dropped.
    pub error: Option<String>,
}

/// One node's replication: the stream it records as a primary (backlog, `PSYNC`
/// answers) and the frames it applies as a replica.
#[napi]
pub struct NativeReplication {
    store: Arc<Store>,
    log: Arc<ReplLog>,
    applier: Applier,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[napi]
impl NativeReplication {
    /// Starts recording `cache`'s changes (once a replica has synced; a primary keeps no
    /// backlog before that).
    #[napi(constructor)]
    pub fn new(cache: &NativeCache, backlog_bytes: f64) -> Result<Self> {
        let store = cache.store()?;
        let log = Arc::new(ReplLog::with_time(
            backlog_bytes.max(1.0) as usize,
            store.time(),
        ));
        store.set_journal(log.clone());
        // a delayed flush_all sent before replication was in use is this history's too:
        // its deadline gets marked in the stream like one sent later
        if let Some(at) = store.pending_flush_deadline() {
            log.note_flush(at);
        }
        Ok(NativeReplication {
            store,
            log,
            applier: Applier::new(),
        })
    }

    /// The state `stats` reports and the links use.
    #[napi]
    pub fn info(&self) -> NativeReplInfo {
        let i = self.log.info();
        NativeReplInfo {
            primary: i.primary,
            replid: i.replid,
            replid2: i.replid2,
            second_offset: i.second_offset as f64,
            offset: i.offset as f64,
            backlog_active: i.backlog_active,
            backlog_size: i.backlog_size as f64,
            backlog_first: i.backlog_first as f64,
            backlog_len: i.backlog_len as f64,
        }
    }

    /// The stream offset (cheap: for the links' poll).
    #[napi]
    pub fn offset(&self) -> f64 {
        self.log.offset() as f64
    }

    /// The log, for readers outside JavaScript (`stats` reads its offset).
    pub(crate) fn log(&self) -> Arc<ReplLog> {
        self.log.clone()
    }

    /// Resizes the backlog (at least one byte). Its content is dropped: replicas behind
    /// the offset resync in full.
    #[napi]
    pub fn set_backlog_size(&self, bytes: f64) {
        self.log.set_backlog_size(bytes.max(1.0) as usize);
    }

    /// A replica's `PSYNC replid offset` (`?` and -1 for none).
    #[napi]
    pub fn psync(&self, replid: String, offset: f64) -> NativePsync {
        match self.log.psync(&replid, offset.max(0.0) as u64) {
            Psync::Continue { replid: id } => NativePsync {
                full: false,
                replid: id,
                offset,
            },
            Psync::Full { replid, offset } => NativePsync {
                full: true,
                replid,
                offset: offset as f64,
            },
        }
    }

    /// Up to `max` stream bytes from `offset` on (empty when caught up), or `null` when the
    /// backlog no longer holds `offset`.
    #[napi]
    pub fn read(&self, offset: f64, max: u32) -> Option<Buffer> {
        let mut out = Vec::new();
        self.log
            .read(offset.max(0.0) as u64, max as usize, &mut out)
            .then(|| out.into())
    }

    /// Appends a heartbeat (this clock, this offset) when this node is a primary with a
    /// backlog.
    #[napi]
    pub fn heartbeat(&self) -> bool {
        self.log.heartbeat(unix_ms())
    }

    /// `replicaof no one`: returns the new replication id. A delayed flush from the old
    /// primary held for its mark becomes the store's own first (at once if it is due).
    #[napi]
    pub fn promote(&mut self) -> String {
        self.applier.end(&self.store);
        self.log.promote()
    }

    /// This node follows another from now on (its own changes are no longer streamed).
    #[napi]
    pub fn demote(&self) {
        self.log.demote()
    }

    /// The upstream answered our PSYNC: a full sync from `offset` of `replid`, or a
    /// continuation (`full` false). Resets the applier; a full sync empties the store.
    #[napi]
    pub fn follow(&mut self, replid: String, offset: f64, full: bool) {
        self.log.follow(&replid, offset.max(0.0) as u64, full);
        self.applier.begin(&self.store, full);
    }

    /// Applies the frames of one socket read to the store.
    #[napi]
    pub fn apply(&mut self, input: Buffer) -> NativeApplied {
        let r = self.applier.feed(&self.store, &self.log, &input);
        let offset = self.log.offset() as f64;
        match r {
            Ok(a) => NativeApplied {
                records: a.records as f64,
                stream_bytes: a.stream_bytes as f64,
                not_stored: a.not_stored as f64,
                sync_done: a.sync_done,
                heartbeat_ms: a.heartbeat.map_or(-1.0, |(ms, _)| ms as f64),
                offset,
                error: None,
            },
            Err(e) => NativeApplied {
                records: 0.0,
                stream_bytes: 0.0,
                not_stored: 0.0,
                sync_done: false,
                heartbeat_ms: -1.0,
                offset,
                error: Some(e.to_string()),
            },
        }
    }

    /// Whether the applier is inside a full sync's snapshot section.
    #[napi(getter)]
    pub fn syncing(&self) -> bool {
        self.applier.in_snapshot()
    }
}

/// The snapshot part of one full sync, produced in pieces on the event loop.
#[napi]
pub struct NativeFullSync {
    store: Arc<Store>,
    sync: FullSync,
    done: bool,
}

#[napi]
impl NativeFullSync {
    /// A full sync of `cache` (replicated by `repl`) from its first item; a delayed
    /// flush `repl` holds for its primary's mark is sent as a pending one.
    #[napi(constructor)]
    pub fn new(cache: &NativeCache, repl: &NativeReplication) -> Result<Self> {
        Ok(NativeFullSync {
            store: cache.store()?,
            sync: FullSync::of(&repl.applier),
            done: false,
        })
    }

    /// The next frames (about `max_bytes`), or `null` once the sync-end frame was returned.
    #[napi]
    pub fn next(&mut self, max_bytes: u32) -> Option<Buffer> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(max_bytes as usize + 4096);
        self.done = self.sync.next(&self.store, max_bytes as usize, &mut out);
        Some(out.into())
    }

    /// Items sent so far.
    #[napi(getter)]
    pub fn items(&self) -> f64 {
        self.sync.items() as f64
    }
}
