//! Persistence under disk faults (review): the append-only log's file deleted under a
//! running store (its data directory removed), and a temp file a killed save left on a
//! nearly full disk.

use ferrocache_core::aof::{self, Fsync};
use ferrocache_core::snapshot;
use std::fs;
use std::path::Path;

#[path = "common/disk.rs"]
mod disk;
use disk::{SmallDisk, TempDir};

#[path = "common/kv.rs"]
mod kv;
use kv::{set, store, value};

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
#[cfg(unix)]
fn a_deleted_log_refuses_writes_until_a_snapshot_starts_a_new_one() {
    for (mode, renamed) in [
        (Fsync::Always, false),
        (Fsync::EverySec, false),
        (Fsync::Always, true),
    ] {
        let tmp = TempDir::new(&format!("gone-{mode:?}-{renamed}"));
        let dir = tmp.0.join("data");
        {
            let s = store();
            let (log, _) = aof::open(&s, &dir, mode).unwrap();
            set(&s, "before", b"1");
            // the operator removes (or renames) the data directory: the open log is now a
            // file no restart with this directory reads
            if renamed {
                fs::rename(&dir, tmp.0.join("data.old")).unwrap();
            } else {
                fs::remove_dir_all(&dir).unwrap();
            }
            set(&s, "lost", b"2");
            log.tick(); // the log thread's second (EverySec; Always checks each record)
            assert!(
                !s.accepting_writes(),
                "{mode:?}: a write to a deleted log would be acknowledged and lost"
            );
            let e = s
                .journal()
                .unwrap()
                .last_error()
                .expect("the reason is kept");
            assert_eq!(e.errno, Some(2), "{mode:?}: ENOENT: {}", e.message);
            assert!(e.message.contains("deleted"), "{}", e.message);
            // a snapshot walks everything in memory and starts a new log in a new directory
            let saved = snapshot::save(&s, &dir, 2, None);
            assert!(saved.is_ok(), "{mode:?}: {:?}", saved.err());
            assert!(s.accepting_writes(), "{mode:?}: the new log takes records");
            assert_eq!(s.journal().unwrap().last_error(), None);
            set(&s, "after", b"3");
            drop(log);
        }
        let t = store();
        let loaded = snapshot::load(&t, &dir, true).unwrap();
        aof::open_after(&t, &dir, mode, loaded.generation).unwrap();
        for (k, v) in [("before", b"1"), ("lost", b"2"), ("after", b"3")] {
            assert_eq!(value(&t, k).as_deref(), Some(&v[..]), "{mode:?}: {k}");
        }
        assert!(names(&dir).contains(&"appendonly.aof".to_string()));
    }
}

#[test]
fn a_temp_file_left_by_a_killed_save_does_not_fill_the_disk_for_the_next_one() {
    let Some(disk) = SmallDisk::mount(1024) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let dir = disk.path();
    let s = store();
    for i in 0..380 {
        set(&s, &format!("k{i}"), &[b'v'; 1000]);
    }
    let first = snapshot::save(&s, dir, 1, None).unwrap();
    // a save killed (kill -9, power loss) near its end left its temp file
    let stale = dir.join("snapshot-0000000002.fcs.tmp");
    fs::write(&stale, vec![0u8; first.file_bytes as usize]).unwrap();
    set(&s, "k0", b"new");
    // the old snapshot and the new one fit; the stale temp file as well does not
    let second = snapshot::save(&s, dir, 1, None);
    assert!(second.is_ok(), "{:?}", second.err());
    assert_eq!(names(dir), vec!["snapshot-0000000003.fcs"]);
    let t = store();
    snapshot::load(&t, dir, true).unwrap();
    assert_eq!(value(&t, "k0").as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_damaged_record_inside_the_log_keeps_the_records_after_it_aside() {
    let tmp = TempDir::new("midlog");
    let dir = tmp.0.join("data");
    {
        let s = store();
        let _log = aof::open(&s, &dir, Fsync::Always).unwrap();
        for i in 0..10 {
            set(&s, &format!("k{i}"), format!("value-{i}").as_bytes());
        }
    }
    let path = dir.join(aof::FILE);
    let mut bytes = fs::read(&path).unwrap();
    // a bit flips in the value of the fourth record (a bad sector): the six after it are
    // whole and were acknowledged
    let at = bytes
        .windows(7)
        .position(|w| w == b"value-3")
        .expect("the fourth record's value");
    bytes[at] ^= 0x20;
    fs::write(&path, &bytes).unwrap();
    let s = store();
    let (_log, rep) = aof::open(&s, &dir, Fsync::Always).unwrap();
    assert_eq!(rep.records, 3, "replay stops at the damaged record");
    assert_eq!(rep.truncated.len(), 1);
    assert!(value(&s, "k2").is_some() && value(&s, "k4").is_none());
    // the cut bytes are not destroyed: they are kept beside the log for recovery
    let aside: Vec<String> = names(&dir)
        .into_iter()
        .filter(|n| n.starts_with("appendonly.aof.corrupt"))
        .collect();
    assert_eq!(aside.len(), 1, "{:?}", names(&dir));
    let kept = fs::read(dir.join(&aside[0])).unwrap();
    let cut = rep.truncated[0].2 as usize;
    assert_eq!(
        kept,
        bytes[bytes.len() - cut..],
        "the damaged record and all after it"
    );
    assert!(kept.windows(7).any(|w| w == b"value-9"));
    // the log goes on from the last whole record
    set(&s, "k10", b"after");
    drop(_log);
    drop(s);
    let t = store();
    aof::open(&t, &dir, Fsync::Always).unwrap();
    assert_eq!(value(&t, "k10").as_deref(), Some(&b"after"[..]));
}

#[test]
fn an_unreadable_newest_snapshot_does_not_count_as_a_kept_one() {
    let tmp = TempDir::new("unreadable");
    let dir = &tmp.0;
    let s = store();
    set(&s, "k", b"1");
    let good = snapshot::save(&s, dir, 2, None).unwrap().path;
    // the newest "snapshot" cannot be read (here a directory: EISDIR; for a server not run
    // as root also a file it may not read, or a bad sector's EIO)
    fs::create_dir(dir.join("snapshot-0000000002.fcs")).unwrap();
    let t = store();
    let loaded = snapshot::load(&t, dir, false).unwrap();
    assert_eq!(loaded.path.as_deref(), Some(good.as_path()));
    assert_eq!(loaded.rejected.len(), 1);
    // two saves later, with two kept: the older good snapshot must not have been pruned in
    // favour of the unreadable one (a damaged newest would then have nothing to fall back on)
    snapshot::save(&t, dir, 2, None).unwrap();
    let listed: Vec<u64> = snapshot::load(&store(), dir, true)
        .map(|r| r.generation.unwrap())
        .into_iter()
        .collect();
    assert_eq!(listed, vec![3]);
    let names = names(dir);
    assert!(
        names.contains(&"snapshot-0000000001.fcs".to_string()),
        "the good older snapshot was pruned: {names:?}"
    );
    assert!(
        !names.contains(&"snapshot-0000000002.fcs".to_string()),
        "{names:?}"
    );
}
