//! Snapshots: round trips, every kind of damaged file, the data directory's housekeeping,
//! and the resumable shard walk they are built on.

use ferrocache_core::snapshot::{self, SnapshotError};
use ferrocache_core::*;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const T0: u32 = 1_700_000_000;

#[path = "common/disk.rs"]
mod disk;
use disk::{SmallDisk, TempDir};

fn store_at(clock: &Clock, memory: usize) -> Store {
    Store::new(
        Config::default()
            .memory_limit(memory)
            .shards(4)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap()
}

fn set(s: &Store, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> u64 {
    s.store(&StoreRequest {
        mode: StoreMode::Set,
        key,
        value,
        flags,
        exptime,
        cas: None,
        invalidate: false,
        new_cas: None,
        vivify: None,
    })
    .unwrap()
    .cas
}

/// (value, flags, cas, exptime) of every live item, by key.
type Dump = HashMap<Vec<u8>, (Vec<u8>, u32, u64, u32)>;

fn dump(s: &Store) -> Dump {
    let mut m = HashMap::new();
    for shard in 0..s.shard_count() {
        s.visit_shard(shard, |it| {
            let old = m.insert(
                it.key.to_vec(),
                (it.value.to_vec(), it.flags, it.cas, it.exptime),
            );
            assert!(old.is_none(), "key seen twice");
        });
    }
    m
}

/// A store with `n` items of assorted sizes, flags and expiry; its clock at T0.
fn filled(n: usize) -> (Store, Clock) {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 64 << 20);
    for i in 0..n {
        let key = format!("key:{i}");
        let value = vec![(i % 251) as u8; i % 700];
        let exptime = match i % 3 {
            0 => 0,
            1 => 3600,                    // relative: T0 + 3600
            _ => T0 as i64 + 86_400 * 60, // absolute
        };
        set(&s, key.as_bytes(), &value, i as u32 * 7, exptime);
    }
    (s, clock)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_keeps_values_flags_cas_and_expiry() {
    let (s, clock) = filled(20_000);
    let before = dump(&s);
    assert_eq!(before.len(), 20_000);
    let dir = TempDir::new("rt");
    let progress = snapshot::Progress::default();
    let rep = snapshot::save(&s, &dir.0, 2, Some(&progress)).unwrap();
    assert_eq!(rep.items, 20_000);
    assert_eq!(progress.items.load(Ordering::Relaxed), 20_000);
    assert_eq!(rep.file_bytes, fs::metadata(&rep.path).unwrap().len());
    assert_eq!(progress.bytes.load(Ordering::Relaxed), rep.file_bytes);
    assert_eq!(names(&dir.0), vec!["snapshot-0000000001.fcs"]);

    let t = store_at(&clock, 64 << 20);
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!(lr.path.as_deref(), Some(rep.path.as_path()));
    assert_eq!((lr.items, lr.expired, lr.not_stored), (20_000, 0, 0));
    assert!(lr.rejected.is_empty());
    assert_eq!(dump(&t), before);
    assert_eq!(t.stats().curr_items, 20_000);
}

#[test]
fn cas_counter_continues_above_the_snapshot() {
    let (s, clock) = filled(100);
    // deleted items took CAS values too: the high-water mark is above every item's CAS
    for i in 0..50 {
        set(&s, format!("gone:{i}").as_bytes(), b"x", 0, 0);
        s.delete(&DeleteRequest {
            key: format!("gone:{i}").as_bytes(),
            ..DeleteRequest::default()
        });
    }
    let hw = s.cas_high_water();
    let max_item = dump(&s).values().map(|v| v.2).max().unwrap();
    assert!(hw > max_item);
    let dir = TempDir::new("cas");
    let rep = snapshot::save(&s, &dir.0, 2, None).unwrap();
    assert_eq!(rep.cas_high_water, hw);

    let t = store_at(&clock, 64 << 20);
    snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!(t.cas_high_water(), hw);
    let fresh = set(&t, b"new", b"v", 0, 0);
    assert!(fresh > hw, "new CAS {fresh} must be above {hw}");
}

#[test]
fn items_that_expired_while_down_are_skipped() {
    let (s, clock) = filled(3000); // a third expire at T0 + 3600
    let dir = TempDir::new("exp");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    clock.advance(3600);
    let t = store_at(&clock, 64 << 20);
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!((lr.items, lr.expired), (2000, 1000));
    assert!(dump(&t).values().all(|v| v.3 == 0 || v.3 > T0 + 3600));
    // remaining TTL is kept as absolute expiry, not restarted
    clock.set(T0 + 86_400 * 60);
    assert_eq!(dump(&t).len(), 1000);
}

#[test]
fn a_smaller_memory_limit_evicts_while_loading() {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 32 << 20);
    let value = vec![7u8; 1000];
    for i in 0..20_000 {
        set(&s, format!("k{i}").as_bytes(), &value, 0, 0);
    }
    let dir = TempDir::new("mem");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    let t = store_at(&clock, 8 << 20);
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    let st = t.stats();
    assert_eq!(lr.items, 20_000);
    assert!(
        st.curr_items < 8_500 && st.curr_items > 4_000,
        "{}",
        st.curr_items
    );
    assert!(st.evictions > 10_000);
    assert!(st.total_malloced <= 8 << 20);
}

#[test]
fn keeps_the_newest_n_and_removes_leftover_temp_files() {
    let (s, _) = filled(10);
    let dir = TempDir::new("keep");
    fs::write(dir.0.join("snapshot-0000000000.fcs.tmp"), b"half written").unwrap();
    for _ in 0..5 {
        snapshot::save(&s, &dir.0, 2, None).unwrap();
    }
    assert_eq!(
        names(&dir.0),
        vec!["snapshot-0000000004.fcs", "snapshot-0000000005.fcs"]
    );
    let rep = snapshot::save(&s, &dir.0, 0, None).unwrap(); // keep 0 means 1
    assert_eq!(names(&dir.0), vec!["snapshot-0000000006.fcs"]);
    assert_eq!(rep.removed.len(), 2);
}

#[test]
fn empty_store_and_missing_directory() {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 8 << 20);
    let dir = TempDir::new("empty");
    let sub = dir.0.join("not/yet");
    let lr = snapshot::load(&s, &sub, true).unwrap();
    assert!(lr.path.is_none());
    let rep = snapshot::save(&s, &sub, 2, None).unwrap();
    assert_eq!(rep.items, 0);
    let lr = snapshot::load(&store_at(&clock, 8 << 20), &sub, true).unwrap();
    assert_eq!(lr.path, Some(rep.path));
    assert_eq!(lr.items, 0);
}

/// Two snapshots: an older good one (1 item) and a newer one (many items) that `damage`
/// spoils. Returns the load report and the directory.
fn load_after(damage: impl FnOnce(&Path)) -> (snapshot::LoadReport, Store, TempDir) {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 16 << 20);
    set(&s, b"old", b"good", 1, 0);
    let dir = TempDir::new("dmg");
    snapshot::save(&s, &dir.0, 5, None).unwrap();
    for i in 0..5000 {
        set(&s, format!("new{i}").as_bytes(), &[b'v'; 300], 2, 0);
    }
    let bad = snapshot::save(&s, &dir.0, 5, None).unwrap().path;
    damage(&bad);
    let t = store_at(&clock, 16 << 20);
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    (lr, t, dir)
}

fn assert_fell_back(lr: &snapshot::LoadReport, t: &Store, dir: &Path) -> String {
    assert_eq!(lr.items, 1, "the older snapshot is loaded, and only it");
    assert_eq!(dump(t).len(), 1);
    assert!(lr
        .path
        .as_ref()
        .unwrap()
        .ends_with("snapshot-0000000001.fcs"));
    assert_eq!(lr.rejected.len(), 1);
    let r = &lr.rejected[0];
    let moved = r.moved_to.as_ref().expect("moved aside");
    assert!(moved.exists() && !r.path.exists());
    assert!(names(dir)
        .iter()
        .any(|n| n.starts_with("snapshot-0000000002.fcs.")));
    r.error.to_string()
}

fn corrupt_offset(lr: &snapshot::LoadReport) -> u64 {
    match &lr.rejected[0].error {
        SnapshotError::Corrupt { offset, .. } => *offset,
        e => panic!("expected corrupt, got {e}"),
    }
}

#[test]
fn truncated_files_fall_back_to_the_previous_snapshot() {
    let full = {
        let (s, _) = filled(5000);
        let dir = TempDir::new("len");
        snapshot::save(&s, &dir.0, 2, None).unwrap().file_bytes
    };
    assert!(full > 1 << 20, "spans several chunks");
    // cut inside the header, at a chunk boundary region, mid chunk, inside the trailer
    for cut in [1u64, 20, 48, 60, 5000, 1 << 20, full - 20, full - 1] {
        let (lr, t, dir) = load_after(|p| {
            let f = fs::OpenOptions::new().write(true).open(p).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(cut.min(len - 1)).unwrap();
        });
        let msg = assert_fell_back(&lr, &t, &dir.0);
        assert!(
            msg.contains("snapshot-0000000002.fcs") && msg.contains("corrupt at byte"),
            "{msg}"
        );
        assert!(msg.contains("truncated"), "{msg}");
        assert!(corrupt_offset(&lr) <= cut, "{msg}");
    }
}

#[test]
fn zero_length_file() {
    let (lr, t, dir) = load_after(|p| fs::write(p, b"").unwrap());
    let msg = assert_fell_back(&lr, &t, &dir.0);
    assert!(msg.contains("corrupt at byte 0: empty file"), "{msg}");
}

#[test]
fn flipped_bits_anywhere_are_caught() {
    let (s, _) = filled(300);
    let dir = TempDir::new("flip");
    let path = snapshot::save(&s, &dir.0, 2, None).unwrap().path;
    let good = fs::read(&path).unwrap();
    let mut checked = 0;
    // every byte of the header and trailer, and a spread of positions in between
    let positions = (0..64)
        .chain((64..good.len() - 40).step_by(37))
        .chain(good.len() - 40..good.len());
    for pos in positions {
        for bit in [0u8, 5] {
            let mut bad = good.clone();
            bad[pos] ^= 1 << bit;
            fs::write(&path, &bad).unwrap();
            match snapshot::verify(&path) {
                Err(SnapshotError::Corrupt { offset, .. }) => assert!(offset <= pos as u64),
                // the version field: read as another format version
                Err(SnapshotError::Unsupported { .. }) => assert!((8..12).contains(&pos)),
                other => panic!("flip at {pos} bit {bit}: {other:?}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 200);
    fs::write(&path, &good).unwrap();
    assert_eq!(snapshot::verify(&path).unwrap().items, 300);
}

#[test]
fn a_flipped_bit_in_the_newest_file_loads_the_older_one() {
    let (lr, t, dir) = load_after(|p| {
        let mut b = fs::read(p).unwrap();
        let at = b.len() / 2;
        b[at] ^= 0x10;
        fs::write(p, b).unwrap();
    });
    let msg = assert_fell_back(&lr, &t, &dir.0);
    assert!(msg.contains("chunk checksum mismatch"), "{msg}");
    assert!(lr.rejected[0]
        .moved_to
        .as_ref()
        .unwrap()
        .to_string_lossy()
        .ends_with(".corrupt"));
}

#[test]
fn other_format_versions_are_set_aside() {
    for version in [0u32, 3, 999] {
        let (lr, t, dir) = load_after(|p| {
            let mut b = fs::read(p).unwrap();
            b[8..12].copy_from_slice(&version.to_le_bytes());
            fs::write(p, b).unwrap();
        });
        let msg = assert_fell_back(&lr, &t, &dir.0);
        assert!(msg.contains(&format!("format version {version}")), "{msg}");
        assert!(lr.rejected[0]
            .moved_to
            .as_ref()
            .unwrap()
            .to_string_lossy()
            .ends_with(".unsupported"));
    }
}

/// (stale, win token held, base64 key) of `key`, read without taking the token.
fn meta_state(s: &Store, key: &[u8]) -> Option<(bool, bool, bool)> {
    let peek = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key, &peek, |v| (v.stale, v.win_taken, v.key_binary))
}

/// What a meta `mg` answers about the token: (stale, won it, someone else holds it).
fn mg(s: &Store, key: &[u8]) -> Option<(bool, bool, bool)> {
    let mg = GetOptions {
        may_win: true,
        ..GetOptions::default()
    };
    s.get(key, &mg, |v| (v.stale, v.won, v.win_taken))
}

#[test]
fn meta_state_survives_save_and_load() {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 16 << 20);
    let invalidate = |key: &'static [u8]| {
        s.delete(&DeleteRequest {
            key,
            invalidate: true,
            exptime: Some(300),
            ..Default::default()
        })
    };
    set(&s, b"plain", b"v", 3, 0);
    // md I: stale, token free; another md I'd item whose token an mg took
    set(&s, b"stale", b"old", 1, 0);
    assert_eq!(invalidate(b"stale"), DeleteStatus::Deleted);
    set(&s, b"taken", b"old", 2, 0);
    assert_eq!(invalidate(b"taken"), DeleteStatus::Deleted);
    assert_eq!(mg(&s, b"taken"), Some((true, true, false)));
    // mg N: a placeholder whose creator holds the token
    let viv = GetOptions {
        vivify: Some(60),
        may_win: true,
        ..GetOptions::default()
    };
    assert_eq!(s.get(b"viv", &viv, |v| v.won), Some(true));
    // ms … b: a base64 key
    set(&s, b"abc", b"binary", 0, 0);
    assert!(s.mark_key_binary(b"abc"));
    let keys: [&[u8]; 5] = [b"plain", b"stale", b"taken", b"viv", b"abc"];
    let before: Vec<_> = keys.iter().map(|k| meta_state(&s, k)).collect();
    assert_eq!(
        before,
        vec![
            Some((false, false, false)),
            Some((true, false, false)),
            Some((true, true, false)),
            Some((false, true, false)),
            Some((false, false, true)),
        ]
    );
    let dir = TempDir::new("meta");
    let rep = snapshot::save(&s, &dir.0, 1, None).unwrap();
    assert_eq!(snapshot::verify(&rep.path).unwrap().version, 2);

    let t = store_at(&clock, 16 << 20);
    let lr = snapshot::load(&t, &dir.0, true).unwrap();
    assert_eq!(lr.items, 5);
    assert_eq!(dump(&t), dump(&s), "values, flags, CAS and expiry");
    let after: Vec<_> = keys.iter().map(|k| meta_state(&t, k)).collect();
    assert_eq!(after, before);
    // and served as before the restart: the first mg of the stale item wins (X W), the
    // taken one and the placeholder answer Z
    assert_eq!(mg(&t, b"stale"), Some((true, true, false)));
    assert_eq!(mg(&t, b"stale"), Some((true, false, true)));
    assert_eq!(mg(&t, b"taken"), Some((true, false, true)));
    assert_eq!(mg(&t, b"viv"), Some((false, false, true)));
    assert_eq!(mg(&t, b"plain"), Some((false, false, false)));
}

/// `tests/fixtures/snapshot-v1.fcs` was written by the version-1 writer (before item
/// state): `plain` (flags 7), `expires` (absolute expiry 4000000000), `stale` (after
/// md I, which version 1 could not keep) and `abc` (marked as a base64 key).
#[test]
fn version_1_files_still_load() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/snapshot-v1.fcs");
    let dir = TempDir::new("v1");
    let path = dir.0.join("snapshot-0000000001.fcs");
    fs::copy(&fixture, &path).unwrap();
    let sum = snapshot::verify(&path).unwrap();
    assert_eq!((sum.version, sum.items), (1, 4));
    let clock = Clock::manual(T0);
    let t = store_at(&clock, 16 << 20);
    let lr = snapshot::load(&t, &dir.0, true).unwrap();
    assert_eq!((lr.items, lr.expired, lr.cas_high_water), (4, 0, 5));
    let d = dump(&t);
    assert_eq!(d[&b"plain"[..]], (b"value one".to_vec(), 7, 1, 0));
    assert_eq!(
        d[&b"expires"[..]],
        (b"until 2096".to_vec(), 0, 2, 4_000_000_000)
    );
    assert_eq!(
        d[&b"stale"[..]],
        (b"old".to_vec(), 1, 4, 0),
        "md I gave it CAS 4"
    );
    assert_eq!(d[&b"abc"[..]], (b"binary key".to_vec(), 0, 5, 0));
    // no state in version 1: every item comes back plain
    for k in [&b"plain"[..], b"expires", b"stale", b"abc"] {
        assert_eq!(meta_state(&t, k), Some((false, false, false)), "{k:?}");
    }
    // the next save writes the current version, which loads the same items
    let again = snapshot::save(&t, &dir.0, 1, None).unwrap();
    assert_eq!(snapshot::verify(&again.path).unwrap().version, 2);
    assert_eq!(&fs::read(&again.path).unwrap()[8..12], &2u32.to_le_bytes());
    let u = store_at(&clock, 16 << 20);
    snapshot::load(&u, &dir.0, true).unwrap();
    assert_eq!(dump(&u), d);
}

#[test]
fn unknown_item_state_bits_are_damage() {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 8 << 20);
    set(&s, b"k", b"v", 0, 0);
    let dir = TempDir::new("bits");
    let path = snapshot::save(&s, &dir.0, 1, None).unwrap().path;
    let mut b = fs::read(&path).unwrap();
    // the one record's state byte, then the chunk's checksum made right again
    let chunk = snapshot::format::HEADER_LEN;
    let rec = chunk + snapshot::format::CHUNK_HEADER_LEN;
    assert_eq!(b[rec + 21], 0);
    b[rec + 21] = 8;
    let payload_end =
        rec + u32::from_le_bytes(b[chunk + 8..chunk + 12].try_into().unwrap()) as usize;
    let crc = crc32c::crc32c_append(crc32c::crc32c(&b[chunk..chunk + 12]), &b[rec..payload_end]);
    b[chunk + 12..chunk + 16].copy_from_slice(&crc.to_le_bytes());
    fs::write(&path, &b).unwrap();
    match snapshot::verify(&path) {
        Err(SnapshotError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, (rec + 21) as u64);
            assert!(reason.contains("unknown item state bits 0x08"), "{reason}");
        }
        other => panic!("expected corrupt, got {other:?}"),
    }
}

#[test]
fn not_a_snapshot_and_trailing_garbage() {
    let (lr, t, dir) = load_after(|p| fs::write(p, b"*2\r\n$3\r\nSET\r\n").unwrap());
    assert!(assert_fell_back(&lr, &t, &dir.0).contains("bad magic"));
    let (lr, t, dir) = load_after(|p| {
        let mut f = fs::OpenOptions::new().append(true).open(p).unwrap();
        std::io::Write::write_all(&mut f, b"x").unwrap();
    });
    assert!(assert_fell_back(&lr, &t, &dir.0).contains("data after the trailer"));
}

#[test]
fn strict_load_refuses_and_touches_nothing() {
    let clock = Clock::manual(T0);
    let s = store_at(&clock, 8 << 20);
    set(&s, b"k", b"v", 0, 0);
    let dir = TempDir::new("strict");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    let bad = snapshot::save(&s, &dir.0, 2, None).unwrap().path;
    let len = fs::metadata(&bad).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&bad)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let before = names(&dir.0);
    let t = store_at(&clock, 8 << 20);
    let e = snapshot::load(&t, &dir.0, true).unwrap_err();
    assert!(matches!(e, SnapshotError::Corrupt { .. }), "{e}");
    assert_eq!(names(&dir.0), before);
    assert_eq!(t.stats().curr_items, 0);
}

#[test]
fn an_unusable_data_directory_is_an_error_naming_it() {
    let (s, _) = filled(100);
    let dir = TempDir::new("fail");
    let file = dir.0.join("plain");
    fs::write(&file, b"").unwrap();
    let e = snapshot::save(&s, &file, 1, None).unwrap_err();
    assert!(matches!(e, SnapshotError::Io { .. }), "{e}");
    assert!(e.to_string().contains("plain"), "{e}");
}

#[test]
fn a_full_disk_fails_the_save_and_keeps_the_previous_snapshot() {
    let Some(disk) = SmallDisk::mount(512) else {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root)");
        return;
    };
    let dir = disk.path();
    let (s, _) = filled(200);
    let good = snapshot::save(&s, dir, 2, None).unwrap().path;
    let bytes = fs::read(&good).unwrap();
    for i in 0..5000 {
        set(&s, format!("big{i}").as_bytes(), &[b'x'; 200], 0, 0);
    }
    let e = snapshot::save(&s, dir, 1, None).unwrap_err();
    assert!(
        matches!(
            e,
            SnapshotError::Io {
                action: "write",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("snapshot-0000000002.fcs.tmp"), "{e}");
    assert_eq!(
        names(dir),
        vec!["snapshot-0000000001.fcs"],
        "temp file removed"
    );
    assert_eq!(fs::read(&good).unwrap(), bytes);
    let t = store_at(&Clock::manual(T0), 8 << 20);
    assert_eq!(snapshot::load(&t, dir, true).unwrap().items, 200);
}

#[test]
fn resumable_walk_sees_each_key_once_while_the_table_grows() {
    resumable_walk_while_growing(ShardCursor::default);
}

#[test]
fn scattered_walk_sees_each_key_once_while_the_table_grows() {
    // a replica's full sync visits the table's parts out of order
    resumable_walk_while_growing(ShardCursor::scattered);
}

fn resumable_walk_while_growing(cursor: fn() -> ShardCursor) {
    // one shard, a tiny table: writers make it grow (and migrate) between walk steps
    let clock = Clock::manual(T0);
    let s = Arc::new(
        Store::new(
            Config::default()
                .memory_limit(64 << 20)
                .shards(1)
                .hash_power(4)
                .background(false)
                .clock(clock),
        )
        .unwrap(),
    );
    for i in 0..2000 {
        set(&s, format!("pre{i}").as_bytes(), b"p", 0, 0);
    }
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut cur = cursor();
    let mut step = 0;
    loop {
        let done = s.visit_shard_batch(0, &mut cur, 16, |it| {
            *seen.entry(it.key.to_vec()).or_default() += 1;
        });
        // writes between steps: new keys (growth) and rewrites of old ones
        for j in 0..40 {
            set(&s, format!("new{step}-{j}").as_bytes(), b"n", 0, 0);
        }
        set(
            &s,
            format!("pre{}", step % 2000).as_bytes(),
            b"rewritten",
            0,
            0,
        );
        step += 1;
        assert!(step < 100_000, "the walk must end");
        if done {
            break;
        }
    }
    assert!(
        s.stats().curr_items > 10_000,
        "the table grew several times"
    );
    for i in 0..2000 {
        assert_eq!(seen.get(format!("pre{i}").as_bytes()), Some(&1), "pre{i}");
    }
    assert!(seen.values().all(|&n| n == 1), "no key twice");
}

#[test]
fn a_load_keeps_what_clients_stored_meanwhile() {
    // --load-async opens the port before the load: a key a client stores before the load
    // reaches it is newer than the snapshot's copy and must stay
    let (s, clock) = filled(1_000);
    let dir = TempDir::new("async");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    let t = store_at(&clock, 64 << 20);
    let written = set(&t, b"key:5", b"written during the load", 1, 0);
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!(lr.items, 999, "every other item loads");
    let after = dump(&t);
    assert_eq!(after.len(), 1_000);
    assert_eq!(
        after[&b"key:5"[..]],
        (b"written during the load".to_vec(), 1, written, 0)
    );
    assert_eq!(after[&b"key:6"[..]], dump(&s)[&b"key:6"[..]]);
}

#[test]
fn a_flush_all_in_effect_during_an_async_load_keeps_the_rest_out() {
    // --load-async: a flush_all a client sends while records are still to be stored is
    // newer than all of them (here it takes effect before the first; the loader checks
    // before each record)
    let (s, clock) = filled(2_000);
    let dir = TempDir::new("flush");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    let t = store_at(&clock, 64 << 20);
    clock.advance(5);
    t.flush_all(1);
    clock.advance(1); // the deadline passes: in effect from now on, before any record
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!(lr.items, 0);
    assert!(dump(&t).is_empty(), "nothing flushed comes back");
    // without a flush every item loads (items whose expiry passed excepted: none here)
    let u = store_at(&clock, 64 << 20);
    assert_eq!(snapshot::load(&u, &dir.0, false).unwrap().items, 2_000);
}

#[test]
fn an_immediate_flush_applied_during_an_async_load_keeps_the_rest_out() {
    // a replica started with --load-async: its full sync (or an immediate flush_all in the
    // primary's stream, or a replayed one) applies flush_all_at_once, which leaves no flush
    // mark; the loader must stop at it as at a client's flush_all, or it brings back
    // records the primary does not have
    let (s, clock) = filled(2_000);
    let dir = TempDir::new("flush-at-once");
    snapshot::save(&s, &dir.0, 2, None).unwrap();
    let t = store_at(&clock, 64 << 20);
    t.flush_all_at_once();
    let lr = snapshot::load(&t, &dir.0, false).unwrap();
    assert_eq!(lr.items, 0);
    assert!(dump(&t).is_empty(), "nothing flushed comes back");
}
