//! The fuzz harnesses on the stable toolchain: every seed in `fuzz/seeds/<target>/` and
//! every input a fuzzer once crashed on, kept in `fuzz/regressions/<target>/`, replayed
//! through the same functions the cargo-fuzz targets call (`fuzz/src/lib.rs`, included
//! below). A crash input added to `fuzz/regressions/` fails here until its bug is fixed.
//!
//! `FUZZ_WRITE_SEEDS=1 cargo test -p ferrocache-protocol --test fuzz_replay` also writes
//! the snapshot and append-only-log seeds: files made from the protocol seeds' stores.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrocache_core::{aof, replication, snapshot, Clock};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none if the directory does not exist).
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(list) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = list
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                format!(
                    "{kind}/{target}/{}",
                    p.file_name().unwrap().to_string_lossy()
                ),
                fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// Runs `f` on every input, reporting every one that panics (not only the first).
fn replay(cases: &[(String, Vec<u8>)], f: fn(&[u8])) {
    let failed: Vec<&str> = cases
        .iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| f(data))).is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{} inputs fail: {failed:?}",
        failed.len()
    );
}

fn replay_target(target: &str, f: fn(&[u8]), min_seeds: usize) {
    let seeds = inputs("seeds", target);
    assert!(
        seeds.len() >= min_seeds,
        "{target}: {} seeds in fuzz/seeds/{target}, expected at least {min_seeds}",
        seeds.len()
    );
    replay(&seeds, f);
    replay(&inputs("regressions", target), f);
}

#[test]
fn session_text_seeds_and_regressions() {
    replay_target("session_text", harness::session_text, 100);
}

/// Some seeds run with logins required and some on a read-only replica.
#[test]
fn the_seeds_reach_every_server_mode() {
    let seeds = inputs("seeds", "session_text");
    for mode in [
        harness::Mode::Open,
        harness::Mode::Auth,
        harness::Mode::ReadOnly,
    ] {
        let n = seeds
            .iter()
            .filter(|(_, d)| harness::Mode::of(d) == mode)
            .count();
        assert!(n >= 5, "{mode:?}: {n} seeds");
    }
}

/// The seeds fuzz/make-seeds.ts wrote for one variant (`targeted-<what>.<mode>.<evict|
/// noevict>.<udp|tcp>`) run in it: its hash of the input is the harness's.
#[test]
fn the_targeted_seeds_run_in_their_variant() {
    let mut n = 0;
    for target in ["session_text", "session_binary"] {
        for (name, data) in inputs("seeds", target) {
            let Some(variant) = name.split("/targeted-").nth(1) else {
                continue;
            };
            let mut input = data.clone();
            if target == "session_binary" {
                input.insert(0, 0x80);
            }
            let v = harness::Variant::of(&input);
            let mode = match v.mode {
                harness::Mode::Open => "open",
                harness::Mode::Auth => "auth",
                harness::Mode::ReadOnly => "readonly",
            };
            let evict = if v.evict { "evict" } else { "noevict" };
            let udp = if v.udp { "udp" } else { "tcp" };
            assert!(
                variant.ends_with(&format!(".{mode}.{evict}.{udp}")),
                "{name} runs as {mode}.{evict}.{udp}"
            );
            n += 1;
        }
    }
    assert!(n >= 10, "{n} targeted seeds");
}

#[test]
fn session_binary_seeds_and_regressions() {
    replay_target("session_binary", harness::session_binary, 20);
}

#[test]
fn snapshot_seeds_and_regressions() {
    replay_target("snapshot", harness::snapshot, 5);
    replay(&snapshot_seeds(), harness::snapshot);
}

#[test]
fn aof_seeds_and_regressions() {
    replay_target("aof", harness::aof, 5);
    replay(&aof_seeds(), harness::aof);
}

#[test]
fn replication_seeds_and_regressions() {
    replay_target("replication", harness::replication, 5);
    replay(&replication_seeds(), harness::replication);
}

/// The harness must be able to fail: broken inputs it has to catch.
#[test]
fn harness_checks_fail_on_broken_files() {
    // a snapshot whose trailer disagrees with its chunks scans as corrupt, so only the
    // raw decoder runs; the CRC repair itself must produce what the writer writes
    let seeds = snapshot_seeds();
    let (_, good) = &seeds[0];
    assert_eq!(&harness::fix_snapshot_checksums(good), good);
    let mut damaged = good.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_ne!(&harness::fix_snapshot_checksums(&damaged), &damaged);
    let log = &aof_seeds()[0].1;
    assert_eq!(&harness::fix_frame_checksums(log), log);
    // a reply bound or a lost write is a panic, which replay() reports
    let r = catch_unwind(|| replay(&[("x".into(), vec![1])], |_| panic!("boom")));
    assert!(r.is_err());
}

/// A directory name of its own for each call (tests run on several threads).
fn temp_dir(what: &str) -> PathBuf {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("ferrocache-fuzz-{what}-{}-{n}", std::process::id()))
}

/// Stores filled by the text seeds, saved as snapshots (one per few seeds, and an empty one).
fn snapshot_seeds() -> Vec<(String, Vec<u8>)> {
    let protocol = inputs("seeds", "session_text");
    let dir = temp_dir("snapshot");
    let mut out = Vec::new();
    let empty: &[(String, Vec<u8>)] = &[];
    for (i, group) in std::iter::once(empty)
        .chain(protocol.chunks(40))
        .enumerate()
    {
        let store = harness::new_store(&Clock::manual(harness::START));
        for (_, data) in group {
            harness::feed(&store, &[data]);
        }
        let _ = fs::remove_dir_all(&dir);
        let saved = snapshot::save(&store, &dir, 1, None).unwrap();
        out.push((format!("snapshot-{i}"), fs::read(&saved.path).unwrap()));
    }
    let _ = fs::remove_dir_all(&dir);
    out
}

/// The records the text seeds' writes leave in an append-only log.
fn aof_seeds() -> Vec<(String, Vec<u8>)> {
    let protocol = inputs("seeds", "session_text");
    let dir = temp_dir("aof");
    let mut out = Vec::new();
    for (i, group) in protocol.chunks(40).enumerate() {
        let _ = fs::remove_dir_all(&dir);
        let store = harness::new_store(&Clock::manual(harness::START));
        let (log, _) = aof::open(&store, &dir, aof::Fsync::Always).unwrap();
        for (_, data) in group {
            harness::feed(&store, &[data]);
        }
        drop(store);
        drop(log);
        let bytes = fs::read(dir.join(aof::FILE)).unwrap();
        out.push((
            format!("aof-{i}"),
            bytes[harness::aof_header().len()..].to_vec(),
        ));
    }
    let _ = fs::remove_dir_all(&dir);
    out
}

/// What a replica reads after a full-sync reply: the store of a few text seeds as a
/// snapshot section, a heartbeat, then those seeds' changes as stream frames.
fn replication_seeds() -> Vec<(String, Vec<u8>)> {
    let protocol = inputs("seeds", "session_text");
    let logs = aof_seeds();
    let mut out = Vec::new();
    for (i, group) in protocol.chunks(40).enumerate() {
        let store = harness::new_store(&Clock::manual(harness::START));
        for (_, data) in group {
            harness::feed(&store, &[data]);
        }
        let mut frames = Vec::new();
        let mut sync = replication::FullSync::new();
        while !sync.next(&store, 1 << 20, &mut frames) {}
        let beat = replication::Frame::Heartbeat {
            unix_ms: 1_700_000_000_000,
            offset: 0,
        };
        replication::stream::encode(&beat, &mut frames);
        frames.extend_from_slice(&logs[i].1);
        out.push((format!("replication-{i}"), frames));
    }
    out
}

/// Logs of the paths that changed lately, written out by hand: delayed flushes and their
/// cancels between writes (48b6a6d replays a cancel late), the same log with a length field
/// damaged ahead of whole records (kept aside since 29c4809) and with a crash's torn tail
/// (cut off); and a replication stream carrying those records after its full sync.
fn targeted_log_seeds() -> Vec<(String, Vec<u8>)> {
    use ferrocache_core::journal::{self, Record};
    let set = |key: &'static [u8], value: &'static [u8], cas: u64| Record::Set {
        key,
        value,
        flags: 0,
        exptime: 0,
        cas,
        state: Default::default(),
    };
    let start = harness::START;
    let records = [
        set(b"a", b"A", 1),
        Record::Flush { at: start + 2 },
        set(b"b", b"B", 2),
        Record::FlushCancel,
        set(b"c", b"C", 3),
        Record::Flush { at: start + 1 },
        Record::Delete { key: b"a" },
        Record::FlushCancel,
        set(b"d", b"D", 4),
        Record::Flush { at: start + 1 },
        set(b"a", b"A2", 5),
    ];
    let mut log = Vec::new();
    let mut third = 0;
    for (i, r) in records.iter().enumerate() {
        if i == 2 {
            third = log.len();
        }
        journal::encode(r, &mut log);
    }
    let mut damaged = log.clone();
    damaged[third + 2] ^= 1; // the length runs 64 KiB past the end
    let torn = log[..log.len() - 3].to_vec();
    let mut stream = Vec::new();
    let mut sync = replication::FullSync::new();
    let store = harness::new_store(&Clock::manual(start));
    harness::feed(&store, &[b"set x 0 0 1\r\nX\r\n"]);
    while !sync.next(&store, 1 << 20, &mut stream) {}
    let beat = replication::Frame::Heartbeat {
        unix_ms: u64::from(start) * 1000,
        offset: 0,
    };
    replication::stream::encode(&beat, &mut stream);
    stream.extend_from_slice(&log);
    vec![
        ("aof/targeted-flush-cancel".into(), log),
        ("aof/targeted-damaged-length".into(), damaged),
        ("aof/targeted-torn-tail".into(), torn),
        ("replication/targeted-flush-cancel".into(), stream),
    ]
}

#[test]
fn write_seeds_when_asked() {
    let Some(what) = std::env::var_os("FUZZ_WRITE_SEEDS") else {
        return;
    };
    // FUZZ_WRITE_SEEDS=targeted: only those of targeted_log_seeds
    for (target, seeds) in (what != "targeted")
        .then(|| {
            [
                ("snapshot", snapshot_seeds()),
                ("aof", aof_seeds()),
                ("replication", replication_seeds()),
            ]
        })
        .into_iter()
        .flatten()
    {
        let dir = fuzz_dir().join("seeds").join(target);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in targeted_log_seeds() {
        fs::write(fuzz_dir().join("seeds").join(name), bytes).unwrap();
    }
}

/// The committed targeted log seeds are what [`targeted_log_seeds`] writes.
#[test]
fn the_targeted_log_seeds_are_committed() {
    for (name, bytes) in targeted_log_seeds() {
        let path = fuzz_dir().join("seeds").join(&name);
        assert!(
            fs::read(&path).ok() == Some(bytes),
            "{name} differs: FUZZ_WRITE_SEEDS=1 writes it"
        );
    }
}
