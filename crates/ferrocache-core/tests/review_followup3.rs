//! Follow-up review of the deleted-log refusal: the log file deleted while its writes fail
//! (a full disk; the usual reason to delete a data directory).

use ferrocache_core::aof::{self, Fsync};
use ferrocache_core::snapshot;
use ferrocache_core::{Config, Store, StoreMode, StoreRequest};
use std::fs;

#[path = "common/disk.rs"]
mod disk;
use disk::SmallDisk;

#[test]
fn a_full_disk_then_the_data_directory_deleted_still_asks_for_the_snapshot_that_cures_it() {
    let Some(disk) = SmallDisk::mount(256) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let dir = disk.path().join("data");
    let s = Store::new(Config::default().memory_limit(64 << 20).background(false)).unwrap();
    let (log, _) = aof::open(&s, &dir, Fsync::EverySec).unwrap();
    // the disk fills up: the log's writes fail (ENOSPC) and writes are refused
    let mut n = 0;
    while s.accepting_writes() && n < 2_000 {
        // the same 50 keys rewritten: the log outgrows the data, as it does between saves
        let key = format!("k{}", n % 50);
        s.store(&StoreRequest::new(
            StoreMode::Set,
            key.as_bytes(),
            &[b'v'; 1000],
        ))
        .unwrap();
        n += 1;
    }
    assert!(!s.accepting_writes(), "the disk never filled");
    // the operator deletes the data directory to make room; the open log keeps its space
    fs::remove_dir_all(&dir).unwrap();
    assert!(!s.accepting_writes());
    log.tick(); // the log thread's second: its retry fails again, into the deleted file
    let e = s.journal().unwrap().last_error().expect("refused");
    // errno 2 is what makes the server start a snapshot on its own (persistence.ts)
    assert_eq!(e.errno, Some(2), "{}", e.message);
    // and that snapshot is the cure: the rotation drops the deleted file (its space) first
    let saved = snapshot::save(&s, &dir, 2, None);
    assert!(saved.is_ok(), "{:?}", saved.err());
    assert!(s.accepting_writes());
    drop(log);
}
