//! A replica with an append-only log (`--appendfsync always`): one read of the stream is
//! applied with one fdatasync, not one per record (which held a replica's event loop for
//! seconds under a fast primary), and every applied record is still replayed after a crash.

use ferrocache_core::aof::{self, Fsync};
use ferrocache_core::journal::{ItemState, Record};
use ferrocache_core::replication::{stream, Applier, Frame, FullSync, Psync, ReplLog};
use ferrocache_core::snapshot;
use ferrocache_core::{Config, GetOptions, Store, StoreMode, StoreRequest};
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let p = std::env::temp_dir().join(format!(
        "ferrocache-replica-aof-{name}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    TempDir(p)
}

fn store() -> Store {
    Store::new(Config::default().background(false)).unwrap()
}

fn value(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
    s.get(key, &GetOptions::default(), |it| it.value.to_vec())
}

#[test]
fn a_replica_read_costs_one_fdatasync_and_survives_a_crash() {
    const N: usize = 200;
    let primary = store();
    let plog = Arc::new(ReplLog::new(1 << 20));
    primary.set_journal(plog.clone());
    let start = match plog.psync("?", 0) {
        Psync::Full { offset, .. } => offset,
        Psync::Continue { .. } => unreachable!("no history yet"),
    };
    for i in 0..N {
        let key = format!("k{i}");
        primary
            .store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"value"))
            .unwrap();
    }
    let mut stream = Vec::new();
    assert!(plog.read(start, usize::MAX, &mut stream));

    let dir = temp_dir("batch");
    let replica = store();
    let (log, _) = aof::open(&replica, &dir.0, Fsync::Always).unwrap();
    let rlog = ReplLog::new(1 << 20);
    rlog.follow(&plog.info().replid, start, false);
    let before = log.record_syncs();
    let applied = Applier::new().feed(&replica, &rlog, &stream).unwrap();
    assert_eq!(applied.records as usize, N);
    // one for the read (200 before batching)
    assert_eq!(log.record_syncs() - before, 1);
    // a write of the replica's own (not a batch) is still fdatasynced by itself
    replica
        .store(&StoreRequest::new(StoreMode::Set, b"own", b"x"))
        .unwrap();
    assert_eq!(log.record_syncs() - before, 2);
    drop(log);
    drop(replica);

    // "crash": a new store replays the log alone
    let again = store();
    let (_log, _) = aof::open(&again, &dir.0, Fsync::Always).unwrap();
    for i in 0..N {
        assert_eq!(
            value(&again, format!("k{i}").as_bytes()).as_deref(),
            Some(&b"value"[..])
        );
    }
    assert_eq!(value(&again, b"own").as_deref(), Some(&b"x"[..]));
}

fn set(s: &Store, key: &str, v: &[u8]) {
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), v))
        .unwrap();
}

fn count(s: &Store, prefix: &str, n: usize) -> usize {
    (0..n)
        .filter(|i| value(s, format!("{prefix}{i}").as_bytes()).is_some())
        .count()
}

/// A replica's directory: a snapshot of 100 `old` items, 50 more in the log after it.
fn replica_with_history(dir: &std::path::Path) -> (Store, Arc<aof::Aof>) {
    let s = store();
    let (log, _) = aof::open(&s, dir, Fsync::Always).unwrap();
    for i in 0..100 {
        set(&s, &format!("old{i}"), b"o");
    }
    snapshot::save(&s, dir, 2, None).unwrap();
    for i in 100..150 {
        set(&s, &format!("old{i}"), b"o");
    }
    (s, log)
}

/// A node started from `dir` alone ("a crash": the store is gone, the files stay).
fn restart(dir: &std::path::Path) -> (Store, aof::ReplayReport) {
    let s = store();
    let loaded = snapshot::load(&s, dir, false).unwrap().generation;
    let (_log, rep) = aof::open_after(&s, dir, Fsync::Always, loaded).unwrap();
    (s, rep)
}

const NEW: usize = 2_000;

/// A primary of `NEW` items and the full sync's frames, cut in reads of about 4 KiB.
fn primary_sync() -> Vec<Vec<u8>> {
    let p = store();
    for i in 0..NEW {
        set(&p, &format!("new{i}"), b"n");
    }
    let mut fs = FullSync::new();
    let mut reads = Vec::new();
    loop {
        let mut out = Vec::new();
        let done = fs.next(&p, 4096, &mut out);
        reads.push(out);
        if done {
            return reads;
        }
    }
}

fn streamed_set(key: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let r = Record::Set {
        key: key.as_bytes(),
        value: b"s",
        flags: 0,
        exptime: 0,
        cas: 1,
        state: ItemState::default(),
    };
    stream::encode(&Frame::Change(r), &mut out);
    out
}

#[test]
fn a_replica_killed_inside_its_full_sync_restarts_with_the_state_before_it() {
    let dir = temp_dir("killed");
    let (replica, log) = replica_with_history(&dir.0);
    let reads = primary_sync();
    let rlog = ReplLog::new(1 << 20);
    let mut ap = Applier::new();
    ap.begin(&replica, true);
    for r in &reads[..reads.len() / 2] {
        ap.feed(&replica, &rlog, r).unwrap();
    }
    let part = count(&replica, "new", NEW);
    assert!(part > 0 && part < NEW, "inside the sync: {part}");
    // a writable replica's own write inside the sync is still logged
    set(&replica, "own", b"x");
    drop(log);
    drop(replica);

    // before the fix: the flush and the part (150 old gone, `part` new)
    let (again, rep) = restart(&dir.0);
    assert_eq!(count(&again, "old", 150), 150);
    assert_eq!(count(&again, "new", NEW), 0);
    assert_eq!(value(&again, b"own").as_deref(), Some(&b"x"[..]));
    assert!(
        rep.sync_dropped.is_none(),
        "no snapshot began after the sync"
    );
}

#[test]
fn a_full_sync_is_kept_from_the_snapshot_that_follows_it() {
    let dir = temp_dir("kept");
    let (replica, log) = replica_with_history(&dir.0);
    let rlog = ReplLog::new(1 << 20);
    let mut ap = Applier::new();
    ap.begin(&replica, true);
    for r in primary_sync() {
        ap.feed(&replica, &rlog, &r).unwrap();
    }
    // the stream after the sync, before a snapshot began: not logged either
    ap.feed(&replica, &rlog, &streamed_set("early")).unwrap();
    let files = |d: &std::path::Path| {
        let mut v: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // killed here: the state before the sync
    let copy = PathBuf::from(format!("{}-copy", dir.0.display()));
    let _copy = TempDir(copy.clone());
    fs::create_dir_all(&copy).unwrap();
    for f in files(&dir.0) {
        if f != "LOCK" {
            fs::copy(dir.0.join(&f), copy.join(&f)).unwrap();
        }
    }
    let (crashed, _) = restart(&copy);
    assert_eq!(count(&crashed, "old", 150), 150);
    assert_eq!(count(&crashed, "new", NEW), 0);
    drop(crashed);

    // the snapshot that follows the sync walks after the log rotated; it is killed before
    // it is durable (its rotation alone, here): the records after it go with it
    // after snapshot 1 (and segment 1, sealed when it began)
    let gen = 2;
    replica.journal().unwrap().before_snapshot(gen).unwrap();
    assert!(dir.0.join(aof::synced_name(gen)).exists());
    ap.feed(&replica, &rlog, &streamed_set("later")).unwrap();
    set(&replica, "own", b"x");
    for f in files(&dir.0) {
        if f != "LOCK" {
            fs::copy(dir.0.join(&f), copy.join(&f)).unwrap();
        }
    }
    let (crashed, rep) = restart(&copy);
    assert_eq!(count(&crashed, "old", 150), 150);
    assert_eq!(count(&crashed, "new", NEW), 0);
    assert_eq!(value(&crashed, b"later"), None);
    assert_eq!(rep.sync_dropped.map(|d| d.0), Some(gen));
    assert!(!copy.join(aof::synced_name(gen)).exists());
    drop(crashed);
    // started again from there: the same state, logging as usual
    let (crashed, rep) = restart(&copy);
    assert_eq!(count(&crashed, "old", 150), 150);
    assert!(rep.sync_dropped.is_none());
    drop(crashed);

    // a snapshot that completes: it and the log after it hold everything
    replica.journal().unwrap().after_snapshot(false);
    snapshot::save(&replica, &dir.0, 2, None).unwrap();
    ap.feed(&replica, &rlog, &streamed_set("last")).unwrap();
    drop(log);
    drop(replica);
    let (again, rep) = restart(&dir.0);
    assert!(rep.sync_dropped.is_none());
    assert_eq!(count(&again, "old", 150), 0);
    assert_eq!(count(&again, "new", NEW), NEW);
    for k in ["early", "later", "last", "own"] {
        assert!(value(&again, k.as_bytes()).is_some(), "{k}");
    }
}
