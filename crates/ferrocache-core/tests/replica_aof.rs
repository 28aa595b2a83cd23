//! A replica with an append-only log (`--appendfsync always`): one read of the stream is
//! applied with one fdatasync, not one per record (which held a replica's event loop for
//! seconds under a fast primary), and every applied record is still replayed after a crash.

use ferrocache_core::aof::{self, Fsync};
use ferrocache_core::replication::{Applier, Psync, ReplLog};
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

fn temp_dir() -> TempDir {
    let p = std::env::temp_dir().join(format!("ferrocache-replica-aof-{}", std::process::id()));
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

    let dir = temp_dir();
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
