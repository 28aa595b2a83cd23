//! Durability review (session 18): damage in the append-only log that looks like a torn tail.

use ferrocache_core::aof::{self, Fsync};
use std::fs;

#[path = "common/disk.rs"]
mod disk;
use disk::TempDir;

#[path = "common/kv.rs"]
mod kv;
use kv::{set, store, value};

/// A flipped bit in a record's length field that makes it run past the end of the file
/// looked like a record cut short by a crash: the acknowledged records after it were cut
/// off as a torn tail, with no copy kept (measured: one 0xff byte in the length of the
/// 44th of 100 records: "record cut short", 1,904 bytes gone). A crash's torn tail (one
/// record cut short, nothing whole after it) is still just cut off.
#[test]
fn a_damaged_length_running_past_the_end_keeps_the_records_after_it_aside() {
    let tmp = TempDir::new("length-flip");
    let dir = &tmp.0;
    {
        let s = store();
        let _log = aof::open(&s, dir, Fsync::Always).unwrap();
        for i in 0..10 {
            set(&s, &format!("k{i}"), format!("value-{i}").as_bytes());
        }
    }
    let path = dir.join(aof::FILE);
    let whole = fs::read(&path).unwrap();
    // the fourth record's frame: its length field's third byte flips (length > the file)
    let at = whole
        .windows(7)
        .position(|w| w == b"value-3")
        .expect("the fourth record's value");
    let frame = at - 8 - (1 + 8 + 4 + 4 + 1 + 2); // body: tag, cas, exptime, flags, klen, "k3"
    assert_eq!(
        u32::from_le_bytes(whole[frame..frame + 4].try_into().unwrap()),
        27
    );
    let mut bytes = whole.clone();
    bytes[frame + 2] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let s = store();
    let (log, rep) = aof::open(&s, dir, Fsync::Always).unwrap();
    assert_eq!(rep.records, 3, "replay stops at the damaged record");
    assert!(value(&s, "k2").is_some() && value(&s, "k3").is_none());
    assert_eq!(rep.truncated.len(), 1);
    assert!(
        rep.truncated[0].1.contains("length damaged"),
        "{}",
        rep.truncated[0].1
    );
    let aside = dir.join("appendonly.aof.corrupt");
    assert_eq!(
        fs::read(&aside).expect("the cut bytes kept aside"),
        bytes[frame..],
        "the damaged record and the six whole ones after it"
    );
    drop(log);
    drop(s);

    // a crash's torn tail: the last record cut short, nothing whole after it: no copy
    fs::remove_file(&aside).unwrap();
    fs::write(&path, &whole[..whole.len() - 5]).unwrap();
    let s = store();
    let (_log, rep) = aof::open(&s, dir, Fsync::Always).unwrap();
    assert_eq!(rep.records, 9);
    assert!(
        rep.truncated[0].1.contains("cut short"),
        "{}",
        rep.truncated[0].1
    );
    assert!(!aside.exists(), "a torn tail is not kept");
}

/// A log shorter than its 12-byte header is one a crash left while creating it and is
/// started again; but one whose bytes are not the header's start is another program's
/// file, and was overwritten without a word (measured: `hello` as appendonly.aof, replayed
/// as 0 records, the file replaced). It is refused as any other foreign file is.
#[test]
fn a_short_foreign_file_as_the_log_is_refused_not_overwritten() {
    let tmp = TempDir::new("short-foreign");
    let dir = &tmp.0;
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(aof::FILE);
    fs::write(&path, b"hello").unwrap();
    let e = aof::open(&store(), dir, Fsync::Always)
        .err()
        .expect("refused");
    assert!(
        e.to_string().contains("not a ferrocache append-only log"),
        "{e}"
    );
    assert_eq!(fs::read(&path).unwrap(), b"hello", "left as it was");
    // the start of a header (a crash inside the creation): begun again, empty
    fs::write(&path, b"\x89FCAO").unwrap();
    let (_log, rep) = aof::open(&store(), dir, Fsync::Always).unwrap();
    assert_eq!(rep.records, 0);
    assert_eq!(fs::metadata(&path).unwrap().len(), 12);
}

/// The check for whole records behind a damaged length reads 17 MiB of the tail, more than
/// any one record; but a whole record that does not fit in those 17 MiB (after a damaged
/// one of 9 MiB, a next one of 9 MiB) was not seen, so the tail counted as one record cut
/// short and every record in it was cut off with no copy (measured: the 9 MiB records and
/// the small one after them gone, nothing kept aside). A tail longer than the longest
/// record cannot be one record cut short: it is kept aside.
#[test]
fn a_damaged_length_before_records_too_large_for_the_scan_keeps_them_aside() {
    let tmp = TempDir::new("length-flip-large");
    let dir = &tmp.0;
    let big = || {
        ferrocache_core::Store::new(
            ferrocache_core::Config::default()
                .memory_limit(64 << 20)
                .item_size_max(16 << 20)
                .background(false),
        )
        .unwrap()
    };
    let nine = vec![b'x'; 9 << 20];
    {
        let s = big();
        let _log = aof::open(&s, dir, Fsync::No).unwrap();
        set(&s, "k0", b"small");
        set(&s, "k1", &nine);
        set(&s, "k2", &nine);
        set(&s, "k3", b"after");
    }
    let path = dir.join(aof::FILE);
    let mut bytes = fs::read(&path).unwrap();
    // the second record (k1): its length's top byte flips, past the end of the file
    let frame = 12 + 8 + (1 + 8 + 4 + 4 + 1 + 2 + 5);
    let len = u32::from_le_bytes(bytes[frame..frame + 4].try_into().unwrap()) as usize;
    assert_eq!(len, 1 + 8 + 4 + 4 + 1 + 2 + (9 << 20), "k1's frame");
    bytes[frame + 3] ^= 0x08;
    fs::write(&path, &bytes).unwrap();
    let s = big();
    let (_log, rep) = aof::open(&s, dir, Fsync::No).unwrap();
    assert_eq!(rep.records, 1, "replay stops at the damaged record");
    assert!(
        rep.truncated[0].1.contains("length damaged"),
        "{}",
        rep.truncated[0].1
    );
    let aside = fs::read(dir.join("appendonly.aof.corrupt")).expect("the cut bytes kept aside");
    assert!(aside == bytes[frame..], "k1, k2 and k3 kept aside");
}
