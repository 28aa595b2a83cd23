//! Edge values at the engine's API: exptime at memcached's 30-day boundary, absolute times
//! now / in the past / past u32, the widest flags, incr/decr at the ends of u64.

use ferrocache_core::*;

const T0: u32 = 1_700_000_000;
const DAYS_30: i64 = 60 * 60 * 24 * 30;

fn store() -> (Store, Clock) {
    let clock = Clock::manual(T0);
    let s = Store::new(Config::default().background(false).clock(clock.clone())).unwrap();
    (s, clock)
}

fn set(s: &Store, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> StoreOutcome {
    let r = StoreRequest {
        flags,
        exptime,
        ..StoreRequest::new(StoreMode::Set, key, value)
    };
    s.store(&r).unwrap()
}

/// (value, flags, exptime) without bumping the item.
fn peek(s: &Store, key: &[u8]) -> Option<(Vec<u8>, u32, u32)> {
    let o = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key, &o, |v| (v.value.to_vec(), v.flags, v.exptime))
}

#[test]
fn exptime_at_the_30_day_boundary() {
    let (s, clock) = store();
    // exactly 30 days is still relative
    set(&s, b"rel", b"v", 0, DAYS_30);
    assert_eq!(peek(&s, b"rel").unwrap().2, T0 + DAYS_30 as u32);
    // one more second is an absolute time: 1970, long past, so stored already expired
    let out = set(&s, b"abs", b"v", 0, DAYS_30 + 1);
    assert_eq!(out.status, StoreStatus::Stored);
    assert_eq!(peek(&s, b"abs"), None);
    // absolute now: expired (an item is dead when exptime <= now); a second later: alive
    set(&s, b"now", b"v", 0, T0 as i64);
    assert_eq!(peek(&s, b"now"), None);
    set(&s, b"next", b"v", 0, T0 as i64 + 1);
    assert!(peek(&s, b"next").is_some());
    // past u32: held at the last second u32 names
    set(&s, b"far", b"v", 0, u32::MAX as i64 + 10);
    assert_eq!(peek(&s, b"far").unwrap().2, u32::MAX);
    // touch and gat at the boundary
    assert!(s.touch(b"rel", DAYS_30));
    assert_eq!(peek(&s, b"rel").unwrap().2, T0 + DAYS_30 as u32);
    assert!(s.touch(b"rel", DAYS_30 + 1), "a hit: the item now expired");
    assert_eq!(peek(&s, b"rel"), None);
    set(&s, b"g", b"v", 0, 0);
    let o = GetOptions {
        touch: Some(-1),
        ..GetOptions::default()
    };
    assert!(
        s.get(b"g", &o, |_| ()).is_some(),
        "gat -1 hits, then expires"
    );
    assert_eq!(peek(&s, b"g"), None);
    clock.advance(DAYS_30 as u32 - 1);
    assert!(peek(&s, b"next").is_none());
}

#[test]
fn the_widest_flags_survive_every_rewrite() {
    let (s, _) = store();
    set(&s, b"f", b"10", u32::MAX, 0);
    let app = StoreRequest::new(StoreMode::Append, b"f", b"0");
    s.store(&app).unwrap();
    assert_eq!(peek(&s, b"f"), Some((b"100".to_vec(), u32::MAX, 0)));
    let incr = ArithRequest {
        key: b"f",
        incr: true,
        delta: 99_900,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    };
    s.arith(&incr).unwrap();
    assert_eq!(peek(&s, b"f"), Some((b"100000".to_vec(), u32::MAX, 0)));
}

#[test]
fn incr_and_decr_at_the_ends_of_u64() {
    let (s, _) = store();
    let arith = |incr, delta| {
        let r = ArithRequest {
            key: b"n",
            incr,
            delta,
            cas: None,
            vivify: None,
            touch: None,
            new_cas: None,
        };
        match s.arith(&r) {
            Ok(ArithStatus::Ok { value, .. }) => value,
            other => panic!("{other:?}"),
        }
    };
    set(&s, b"n", b"1", 0, 0);
    assert_eq!(arith(true, u64::MAX), 0, "1 + (2^64 - 1) wraps to 0");
    assert_eq!(peek(&s, b"n").unwrap().0, b"0");
    assert_eq!(arith(false, u64::MAX), 0, "decr floors at 0");
    assert_eq!(arith(true, u64::MAX), u64::MAX);
    assert_eq!(peek(&s, b"n").unwrap().0, b"18446744073709551615");
    assert_eq!(arith(true, 0), u64::MAX, "incr 0 keeps the value");
    assert_eq!(arith(false, u64::MAX - 1), 1);
    assert_eq!(
        peek(&s, b"n").unwrap().0,
        b"1                   ",
        "in place, padded to the old length"
    );
    assert_eq!(arith(true, u64::MAX), 0);
    // one past u64 is not a number
    set(&s, b"n", b"18446744073709551616", 0, 0);
    let r = ArithRequest {
        key: b"n",
        incr: true,
        delta: 1,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    };
    assert_eq!(s.arith(&r), Err(StoreError::NonNumeric));
}

#[test]
fn an_incr_that_runs_out_of_memory_still_counts_its_hit() {
    // memcached 1.6.18 with -M -m 2, class 1 full, `incr n 1` on "9": SERVER_ERROR out of
    // memory, and `incr_hits` 1 (its do_add_delta counts the hit before it allocates the
    // longer value); a refused set is not counted in cmd_set (measured)
    let s = Store::new(
        Config::default()
            .memory_limit(1 << 20)
            .shards(1)
            .evict(false)
            .background(false),
    )
    .unwrap();
    set(&s, b"n", b"9", 0, 0);
    set(&s, b"d", b"10", 0, 0);
    let mut i = 0;
    while s
        .store(&StoreRequest::new(
            StoreMode::Set,
            format!("k{i}").as_bytes(),
            b"x",
        ))
        .is_ok()
    {
        i += 1;
    }
    let arith = |key: &'static [u8], incr| {
        s.arith(&ArithRequest {
            key,
            incr,
            delta: 1,
            cas: None,
            vivify: None,
            touch: None,
            new_cas: None,
        })
    };
    assert_eq!(arith(b"n", true), Err(StoreError::OutOfMemory));
    assert_eq!(peek(&s, b"n").unwrap().0, b"9", "the old value stays");
    assert!(arith(b"d", false).is_ok(), "in place: no allocation");
    let st = s.stats();
    assert_eq!((st.incr_hits, st.decr_hits), (1, 1));
    assert_eq!(st.classes[0].incr_hits, 1);
    assert_eq!(st.cmd_set, 2 + i, "the refused set is not counted");
}

#[test]
fn a_set_refused_for_memory_keeps_the_old_value_only_of_an_item_memcached_chunks() {
    // memcached 1.6.18 -m 4 -M, four 600 KB values: a fifth set of k0 is "SERVER_ERROR Out
    // of memory during read" and k0 keeps its value (the chunks are allocated while the
    // value is read, after the key was looked up); a refused set of an item it does not
    // chunk drops the old value (measured)
    let s = Store::new(
        Config::default()
            .memory_limit(4 << 20)
            .shards(1)
            .evict(false)
            .background(false),
    )
    .unwrap();
    let big = vec![b'a'; 600_000];
    for key in [&b"k0"[..], b"k1", b"k2", b"k3"] {
        set(&s, key, &big, 0, 0);
    }
    let refused = |value: &[u8]| s.store(&StoreRequest::new(StoreMode::Set, b"k0", value));
    assert_eq!(refused(&[b'b'; 600_000]), Err(StoreError::OutOfMemory));
    assert_eq!(
        peek(&s, b"k0").unwrap().0,
        big,
        "chunked there: the old value stays"
    );
    // 500 KB: memcached's largest chunk (512 KiB) holds it whole
    assert_eq!(refused(&[b'b'; 500_000]), Err(StoreError::OutOfMemory));
    assert!(peek(&s, b"k0").is_none(), "not chunked: dropped");
}
