//! Every operation's memcached semantics and the stats it counts, on a manual clock.

mod common;

use common::{store, T0};
use ferrocache_core::*;

fn req<'a>(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> StoreRequest<'a> {
    StoreRequest::new(mode, key, value)
}

fn set(s: &Store, key: &str, value: &str) -> StoreOutcome {
    s.store(&req(StoreMode::Set, key.as_bytes(), value.as_bytes()))
        .unwrap()
}

fn get(s: &Store, key: &str) -> Option<Vec<u8>> {
    s.get(key.as_bytes(), &GetOptions::default(), |v| v.value.to_vec())
}

fn gets(s: &Store, key: &str) -> Option<(Vec<u8>, u32, u64)> {
    s.get(key.as_bytes(), &GetOptions::default(), |v| {
        (v.value.to_vec(), v.flags, v.cas)
    })
}

fn arith(s: &Store, key: &str, incr: bool, delta: u64) -> Result<ArithStatus, StoreError> {
    s.arith(&ArithRequest {
        key: key.as_bytes(),
        incr,
        delta,
        cas: None,
        vivify: None,
        touch: None,
        new_cas: None,
    })
}

#[test]
fn set_get_and_flags_round_trip() {
    let (s, _) = store();
    let out = s
        .store(&StoreRequest {
            flags: 0xffff_ffff,
            ..req(StoreMode::Set, b"k", b"v1")
        })
        .unwrap();
    assert_eq!(out.status, StoreStatus::Stored);
    assert!(out.cas > 0);
    assert_eq!(gets(&s, "k"), Some((b"v1".to_vec(), 0xffff_ffff, out.cas)));
    let out2 = set(&s, "k", "v2");
    assert!(out2.cas > out.cas, "every mutation gets a new cas");
    assert_eq!(get(&s, "k").unwrap(), b"v2");
    assert_eq!(get(&s, "missing"), None);
    let st = s.stats();
    assert_eq!(
        (st.cmd_get, st.get_hits, st.get_misses, st.cmd_set),
        (3, 2, 1, 2)
    );
    assert_eq!((st.curr_items, st.total_items), (1, 2));
    assert_eq!(st.bytes, 36 + 1 + 2);
}

#[test]
fn empty_and_long_keys_and_large_values() {
    let (s, _) = store();
    assert_eq!(
        s.store(&req(StoreMode::Set, b"", b"v")),
        Err(StoreError::BadKey)
    );
    let long = vec![b'k'; MAX_KEY_LEN + 1];
    assert_eq!(
        s.store(&req(StoreMode::Set, &long, b"v")),
        Err(StoreError::BadKey)
    );
    let max = vec![b'k'; MAX_KEY_LEN];
    assert_eq!(
        s.store(&req(StoreMode::Set, &max, b"v")).unwrap().status,
        StoreStatus::Stored
    );
    // a set that is too large removes the old value (memcached does)
    set(&s, "big", "small");
    let huge = vec![0u8; 1 << 20];
    assert_eq!(
        s.store(&req(StoreMode::Set, b"big", &huge)),
        Err(StoreError::TooLarge)
    );
    assert_eq!(get(&s, "big"), None);
    // the largest value that fits, by memcached's item size: key + value + 59 bytes
    let fits = vec![7u8; (1 << 20) - 59 - 3];
    assert_eq!(
        s.store(&req(StoreMode::Set, b"big", &fits)).unwrap().status,
        StoreStatus::Stored
    );
    assert_eq!(get(&s, "big").unwrap().len(), fits.len());
    let over = vec![7u8; fits.len() + 1];
    assert_eq!(
        s.store(&req(StoreMode::Set, b"big", &over)),
        Err(StoreError::TooLarge)
    );
}

#[test]
fn add_replace_append_prepend() {
    let (s, _) = store();
    assert_eq!(
        s.store(&req(StoreMode::Replace, b"k", b"x"))
            .unwrap()
            .status,
        StoreStatus::NotStored
    );
    assert_eq!(
        s.store(&req(StoreMode::Append, b"k", b"x")).unwrap().status,
        StoreStatus::NotStored
    );
    assert_eq!(
        s.store(&req(StoreMode::Add, b"k", b"a")).unwrap().status,
        StoreStatus::Stored
    );
    assert_eq!(
        s.store(&req(StoreMode::Add, b"k", b"b")).unwrap().status,
        StoreStatus::NotStored
    );
    assert_eq!(
        s.store(&req(StoreMode::Replace, b"k", b"r"))
            .unwrap()
            .status,
        StoreStatus::Stored
    );
    s.store(&StoreRequest {
        flags: 5,
        exptime: 100,
        ..req(StoreMode::Set, b"k", b"mid")
    })
    .unwrap();
    // append/prepend keep the old flags and exptime
    assert_eq!(
        s.store(&StoreRequest {
            flags: 9,
            exptime: 0,
            ..req(StoreMode::Append, b"k", b">")
        })
        .unwrap()
        .status,
        StoreStatus::Stored
    );
    assert_eq!(
        s.store(&req(StoreMode::Prepend, b"k", b"<"))
            .unwrap()
            .status,
        StoreStatus::Stored
    );
    let (v, f, e) = s
        .get(b"k", &GetOptions::default(), |v| {
            (v.value.to_vec(), v.flags, v.exptime)
        })
        .unwrap();
    assert_eq!((v.as_slice(), f, e), (&b"<mid>"[..], 5, T0 + 100));
    // append with a cas: mismatch is EXISTS, 0 means no comparison
    let cas = gets(&s, "k").unwrap().2;
    assert_eq!(
        s.store(&StoreRequest {
            cas: Some(cas + 100),
            ..req(StoreMode::Append, b"k", b"!")
        })
        .unwrap()
        .status,
        StoreStatus::Exists
    );
    assert_eq!(
        s.store(&StoreRequest {
            cas: Some(cas),
            ..req(StoreMode::Append, b"k", b"!")
        })
        .unwrap()
        .status,
        StoreStatus::Stored
    );
    assert_eq!(
        s.store(&StoreRequest {
            cas: Some(0),
            ..req(StoreMode::Append, b"k", b"!")
        })
        .unwrap()
        .status,
        StoreStatus::Stored
    );
    assert_eq!(get(&s, "k").unwrap(), b"<mid>!!");
    // meta N on append creates the item on a miss
    let out = s
        .store(&StoreRequest {
            vivify: Some(50),
            flags: 3,
            ..req(StoreMode::Append, b"v", b"new")
        })
        .unwrap();
    assert_eq!(out.status, StoreStatus::Stored);
    assert_eq!(
        s.get(b"v", &GetOptions::default(), |v| (
            v.value.to_vec(),
            v.exptime,
            v.flags
        )),
        Some((b"new".to_vec(), T0 + 50, 3))
    );
    // append growing into a larger slab class
    let long = vec![b'x'; 500];
    assert_eq!(
        s.store(&req(StoreMode::Append, b"v", &long))
            .unwrap()
            .status,
        StoreStatus::Stored
    );
    assert_eq!(get(&s, "v").unwrap().len(), 503);
}

#[test]
fn cas_semantics_and_stats() {
    let (s, _) = store();
    let cas_req = |c| StoreRequest {
        cas: Some(c),
        ..req(StoreMode::Set, b"k", b"new")
    };
    assert_eq!(s.store(&cas_req(1)).unwrap().status, StoreStatus::NotFound);
    let c = set(&s, "k", "old").cas;
    assert_eq!(
        s.store(&cas_req(c + 1)).unwrap().status,
        StoreStatus::Exists
    );
    assert_eq!(
        s.store(&cas_req(0)).unwrap().status,
        StoreStatus::Exists,
        "cas 0 never matches"
    );
    let out = s.store(&cas_req(c)).unwrap();
    assert_eq!(out.status, StoreStatus::Stored);
    assert_eq!(gets(&s, "k").unwrap().2, out.cas);
    assert_eq!(
        s.store(&cas_req(c)).unwrap().status,
        StoreStatus::Exists,
        "the cas changed"
    );
    // replace with a cas is a cas
    let out2 = s
        .store(&StoreRequest {
            cas: Some(out.cas),
            ..req(StoreMode::Replace, b"k", b"r")
        })
        .unwrap();
    assert_eq!(out2.status, StoreStatus::Stored);
    let st = s.stats();
    assert_eq!((st.cas_misses, st.cas_hits, st.cas_badval), (1, 2, 3));
}

#[test]
fn new_cas_from_meta_e_keeps_the_counter_above_it() {
    let (s, _) = store();
    let out = s
        .store(&StoreRequest {
            new_cas: Some(1_000_000),
            ..req(StoreMode::Set, b"k", b"v")
        })
        .unwrap();
    assert_eq!(out.cas, 1_000_000);
    assert_eq!(gets(&s, "k").unwrap().2, 1_000_000);
    assert!(set(&s, "j", "v").cas > 1_000_000);
}

#[test]
fn a_huge_meta_e_does_not_make_fresh_cas_values_wrap() {
    let (s, _) = store();
    let out = s
        .store(&StoreRequest {
            new_cas: Some(u64::MAX),
            ..req(StoreMode::Set, b"k", b"v")
        })
        .unwrap();
    assert_eq!(out.cas, u64::MAX);
    let next = set(&s, "j", "v").cas;
    assert!(next > 0 && next < 1 << 63, "{next}");
}

#[test]
fn exptime_relative_absolute_negative_and_lazy_expiry() {
    let (s, clock) = store();
    s.store(&StoreRequest {
        exptime: 10,
        ..req(StoreMode::Set, b"rel", b"v")
    })
    .unwrap();
    s.store(&StoreRequest {
        exptime: T0 as i64 + 20,
        ..req(StoreMode::Set, b"abs", b"v")
    })
    .unwrap();
    set(&s, "old", "v");
    let out = s
        .store(&StoreRequest {
            exptime: -1,
            ..req(StoreMode::Set, b"old", b"v2")
        })
        .unwrap();
    assert_eq!(out.status, StoreStatus::Stored);
    assert_eq!(
        get(&s, "old"),
        None,
        "negative exptime: stored already expired"
    );
    clock.advance(9);
    assert!(get(&s, "rel").is_some());
    clock.advance(1);
    assert_eq!(get(&s, "rel"), None, "expires at exactly now + exptime");
    assert!(get(&s, "abs").is_some());
    clock.advance(10);
    assert_eq!(get(&s, "abs"), None);
    let st = s.stats();
    assert_eq!(st.get_expired, 2);
    assert_eq!(st.curr_items, 0);
}

#[test]
fn touch_and_gat() {
    let (s, clock) = store();
    s.store(&StoreRequest {
        exptime: 5,
        ..req(StoreMode::Set, b"k", b"v")
    })
    .unwrap();
    assert!(s.touch(b"k", 100));
    assert!(!s.touch(b"nope", 100));
    clock.advance(50);
    assert!(get(&s, "k").is_some());
    let o = GetOptions {
        touch: Some(10),
        ..GetOptions::default()
    };
    assert_eq!(s.get(b"k", &o, |v| v.exptime), Some(clock.now() + 10));
    assert_eq!(s.get(b"nope", &o, |v| v.exptime), None);
    clock.advance(10);
    assert_eq!(get(&s, "k"), None);
    let st = s.stats();
    assert_eq!((st.cmd_touch, st.touch_hits, st.touch_misses), (4, 2, 2));
    // gat counts as a touch only, not as a get (checked against memcached 1.6.18)
    assert_eq!((st.cmd_get, st.get_hits, st.get_misses), (2, 1, 1));
    // meta mg with T: a hit is a touch, a miss a get miss (memcached 1.6.18)
    let mg = GetOptions {
        miss_counts_as_get: true,
        ..o
    };
    set(&s, "k", "v");
    assert!(s.get(b"k", &mg, |_| ()).is_some());
    assert!(s.get(b"nope", &mg, |_| ()).is_none());
    let st = s.stats();
    assert_eq!((st.cmd_touch, st.touch_hits, st.touch_misses), (5, 3, 2));
    assert_eq!((st.cmd_get, st.get_hits, st.get_misses), (3, 1, 2));
}

#[test]
fn delete_plain_cas_and_invalidate() {
    let (s, _) = store();
    let d = |key: &'static [u8], cas, inv, exp| {
        s.delete(&DeleteRequest {
            key,
            cas,
            invalidate: inv,
            exptime: exp,
            mismatch_uncounted: false,
        })
    };
    assert_eq!(d(b"k", None, false, None), DeleteStatus::NotFound);
    let c = set(&s, "k", "v").cas;
    assert_eq!(d(b"k", Some(c + 1), false, None), DeleteStatus::Exists);
    assert_eq!(d(b"k", Some(c), false, None), DeleteStatus::Deleted);
    assert_eq!(get(&s, "k"), None);
    // invalidate: the item stays, stale, with a new cas; the next meta mg wins the recache
    let c = set(&s, "k", "v").cas;
    assert_eq!(d(b"k", None, true, Some(30)), DeleteStatus::Deleted);
    let mg = GetOptions {
        may_win: true,
        ..GetOptions::default()
    };
    let (stale, won, taken, cas, exp) = s
        .get(b"k", &mg, |v| {
            (v.stale, v.won, v.win_taken, v.cas, v.exptime)
        })
        .unwrap();
    assert!(stale && won && !taken);
    assert!(cas > c);
    assert_eq!(exp, T0 + 30);
    let (won, taken) = s.get(b"k", &mg, |v| (v.won, v.win_taken)).unwrap();
    assert!(!won && taken, "only one winner");
    // a set with an older cas and I replaces the value but stays stale
    let out = s
        .store(&StoreRequest {
            cas: Some(c),
            invalidate: true,
            ..req(StoreMode::Set, b"k", b"fresh")
        })
        .unwrap();
    assert_eq!(out.status, StoreStatus::Stored);
    let (v, stale, taken) = s
        .get(b"k", &GetOptions::default(), |v| {
            (v.value.to_vec(), v.stale, v.win_taken)
        })
        .unwrap();
    assert_eq!((v.as_slice(), stale, taken), (&b"fresh"[..], true, true));
    // a normal set clears it
    set(&s, "k", "clean");
    assert!(!s.get(b"k", &GetOptions::default(), |v| v.stale).unwrap());
    let st = s.stats();
    assert_eq!((st.delete_hits, st.delete_misses), (1, 2));
}

/// memcached 1.6.18: get/gets/gat/gats and binary reads serve a stale item without taking
/// its win token; only meta mg takes it (W), the readers after it see Z.
#[test]
fn only_meta_reads_take_the_win_token() {
    let (s, clock) = store();
    let mg = GetOptions {
        may_win: true,
        ..GetOptions::default()
    };
    let gat = GetOptions {
        touch: Some(100),
        ..GetOptions::default()
    };
    let peek = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    let invalidate = |key: &'static [u8]| {
        s.delete(&DeleteRequest {
            key,
            invalidate: true,
            ..Default::default()
        })
    };
    set(&s, "k", "v");
    assert_eq!(invalidate(b"k"), DeleteStatus::Deleted);
    for o in [GetOptions::default(), gat, peek] {
        let (stale, won, value) = s
            .get(b"k", &o, |v| (v.stale, v.won, v.value.to_vec()))
            .unwrap();
        assert!(stale && !won, "{o:?} served it stale without the token");
        assert_eq!(value, b"v");
    }
    assert_eq!(
        s.get(b"k", &mg, |v| v.exptime),
        Some(clock.now() + 100),
        "gat touched it"
    );
    let _ = s.get(b"k", &GetOptions::default(), |_| ());
    // the first mg won above (the token was still free); the next ones see it taken
    assert_eq!(
        s.get(b"k", &mg, |v| (v.stale, v.won, v.win_taken)),
        Some((true, false, true))
    );
    // md I again frees the token for the next mg, not for a get
    assert_eq!(invalidate(b"k"), DeleteStatus::Deleted);
    assert_eq!(
        s.get(b"k", &GetOptions::default(), |v| (v.won, v.win_taken)),
        Some((false, false))
    );
    assert_eq!(
        s.get(b"k", &mg, |v| (v.stale, v.won, v.win_taken)),
        Some((true, true, false))
    );
    // md I on a missing key creates nothing
    assert_eq!(invalidate(b"none"), DeleteStatus::NotFound);
    assert_eq!(s.get(b"none", &mg, |_| ()), None);
    // R (recache below a ttl) is a meta flag: without may_win it wins nothing
    s.store(&StoreRequest {
        exptime: 10,
        ..req(StoreMode::Set, b"r", b"v")
    })
    .unwrap();
    let r = GetOptions {
        recache_below: Some(30),
        ..GetOptions::default()
    };
    assert_eq!(s.get(b"r", &r, |v| v.won), Some(false));
    assert_eq!(
        s.get(b"r", &GetOptions { may_win: true, ..r }, |v| v.won),
        Some(true)
    );
}

#[test]
fn vivify_and_recache() {
    let (s, clock) = store();
    let o = GetOptions {
        vivify: Some(30),
        ..GetOptions::default()
    };
    let (won, taken, len) = s
        .get(b"k", &o, |v| (v.won, v.win_taken, v.value.len()))
        .unwrap();
    assert!(won && !taken);
    assert_eq!(len, 0);
    let (won, taken) = s.get(b"k", &o, |v| (v.won, v.win_taken)).unwrap();
    assert!(!won && taken);
    // R: win when the remaining ttl is below the token
    s.store(&StoreRequest {
        exptime: 100,
        ..req(StoreMode::Set, b"r", b"v")
    })
    .unwrap();
    let r = GetOptions {
        recache_below: Some(30),
        may_win: true,
        ..GetOptions::default()
    };
    assert!(!s.get(b"r", &r, |v| v.won).unwrap());
    clock.advance(80);
    assert!(s.get(b"r", &r, |v| v.won).unwrap());
    assert!(!s.get(b"r", &r, |v| v.won).unwrap());
    // fetched/last access
    set(&s, "h", "v");
    clock.advance(3);
    let (f, l) = s
        .get(b"h", &GetOptions::default(), |v| {
            (v.fetched_before, v.last_access_secs)
        })
        .unwrap();
    assert!(!f);
    assert_eq!(l, 3);
    assert!(s
        .get(b"h", &GetOptions::default(), |v| v.fetched_before)
        .unwrap());
    // no_bump reads count nothing
    let before = s.stats();
    assert!(s
        .get(
            b"h",
            &GetOptions {
                no_bump: true,
                ..GetOptions::default()
            },
            |_| ()
        )
        .is_some());
    assert_eq!(s.stats().cmd_get, before.cmd_get);
}

#[test]
fn incr_decr() {
    let (s, _) = store();
    assert_eq!(arith(&s, "n", true, 1), Ok(ArithStatus::NotFound));
    s.store(&StoreRequest {
        flags: 7,
        exptime: 100,
        ..req(StoreMode::Set, b"n", b"10")
    })
    .unwrap();
    let ArithStatus::Ok { value, cas, .. } = arith(&s, "n", true, 5).unwrap() else {
        panic!()
    };
    assert_eq!(value, 15);
    assert_eq!(gets(&s, "n").unwrap(), (b"15".to_vec(), 7, cas));
    assert!(
        matches!(
            arith(&s, "n", false, 100),
            Ok(ArithStatus::Ok { value: 0, .. })
        ),
        "decr floors at 0"
    );
    assert_eq!(
        get(&s, "n").unwrap(),
        b"0 ",
        "in place, padded as memcached"
    );
    set(&s, "n", "18446744073709551615");
    assert!(
        matches!(
            arith(&s, "n", true, 2),
            Ok(ArithStatus::Ok { value: 1, .. })
        ),
        "incr wraps"
    );
    assert_eq!(get(&s, "n").unwrap(), b"1                   ");
    set(&s, "n", "100");
    arith(&s, "n", false, 95).unwrap();
    assert_eq!(get(&s, "n").unwrap(), b"5  ", "memcached's `decr 100 95`");
    arith(&s, "n", true, 995).unwrap();
    assert_eq!(
        get(&s, "n").unwrap(),
        b"1000",
        "longer: a new item of its length"
    );
    set(&s, "n", "99");
    assert!(matches!(
        arith(&s, "n", true, 1),
        Ok(ArithStatus::Ok { value: 100, .. })
    ));
    assert_eq!(get(&s, "n").unwrap(), b"100");
    // longer than the chunk: moves to a new item, keeping flags and exptime
    let e = s.get(b"n", &GetOptions::default(), |v| v.exptime).unwrap();
    assert!(matches!(
        arith(&s, "n", true, u64::MAX - 200),
        Ok(ArithStatus::Ok { .. })
    ));
    assert_eq!(
        s.get(b"n", &GetOptions::default(), |v| v.exptime).unwrap(),
        e
    );
    set(&s, "t", "abc");
    assert_eq!(arith(&s, "t", true, 1), Err(StoreError::NonNumeric));
    set(&s, "t", "");
    assert_eq!(arith(&s, "t", true, 1), Err(StoreError::NonNumeric));
    set(&s, "t", "-5");
    assert_eq!(arith(&s, "t", true, 1), Err(StoreError::NonNumeric));
    // cas, vivify, touch
    let c = set(&s, "c", "1").cas;
    let r = |cas, viv, touch| ArithRequest {
        key: b"c",
        incr: true,
        delta: 1,
        cas,
        vivify: viv,
        touch,
        new_cas: None,
    };
    assert_eq!(
        s.arith(&r(Some(c + 1), None, None)),
        Ok(ArithStatus::Exists)
    );
    assert!(matches!(
        s.arith(&r(Some(c), None, Some(60))),
        Ok(ArithStatus::Ok { value: 2, .. })
    ));
    let rv = ArithRequest {
        key: b"viv",
        incr: true,
        delta: 5,
        cas: None,
        vivify: Some((42, 0)),
        touch: None,
        new_cas: None,
    };
    // `created` says which call made the item (a quiet meta ma answers only then)
    assert!(matches!(
        s.arith(&rv),
        Ok(ArithStatus::Ok {
            value: 42,
            created: true,
            ..
        })
    ));
    assert!(matches!(
        s.arith(&rv),
        Ok(ArithStatus::Ok {
            value: 47,
            created: false,
            ..
        })
    ));
    let st = s.stats();
    assert_eq!((st.incr_misses, st.decr_misses, st.decr_hits), (1, 0, 2));
    assert_eq!(st.incr_hits, 7);
}

#[test]
fn flush_all_now_and_delayed() {
    let (s, clock) = store();
    set(&s, "a", "1");
    set(&s, "b", "2");
    s.flush_all(0);
    assert_eq!(get(&s, "a"), None);
    // lazy, as memcached's: the flushed "b" counts until a lookup or the background pass
    // reaps it ("a" went with the get)
    assert_eq!(s.stats().curr_items, 1);
    assert_eq!(get(&s, "b"), None);
    assert_eq!(s.stats().curr_items, 0);
    set(&s, "a", "1");
    assert!(get(&s, "a").is_some(), "items stored after the flush live");
    s.flush_all(10);
    clock.advance(5);
    assert!(get(&s, "a").is_some());
    clock.advance(5);
    set(&s, "c", "after");
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get(&s, "c").unwrap(), b"after");
    let st = s.stats();
    // "a" and "b" after the immediate flush, "a" after the delayed one
    assert_eq!(st.get_flushed, 3);
    assert_eq!(st.cmd_flush, 2);
}

#[test]
fn visit_shard_sees_every_live_item_once() {
    let (s, clock) = store();
    for i in 0..1000 {
        s.store(&StoreRequest {
            exptime: if i % 10 == 0 { 5 } else { 0 },
            ..req(StoreMode::Set, format!("k{i}").as_bytes(), b"v")
        })
        .unwrap();
    }
    clock.advance(5);
    let mut seen = std::collections::HashSet::new();
    for sh in 0..s.shard_count() {
        s.visit_shard(sh, |v| assert!(seen.insert(v.key.to_vec())));
    }
    assert_eq!(seen.len(), 900);
}

#[test]
fn maintain_reclaims_expired_items_without_access() {
    let (s, clock) = store();
    for i in 0..500 {
        s.store(&StoreRequest {
            exptime: 5,
            ..req(StoreMode::Set, format!("k{i}").as_bytes(), b"v")
        })
        .unwrap();
    }
    set(&s, "keep", "v");
    clock.advance(6);
    s.maintain();
    let st = s.stats();
    assert_eq!(st.curr_items, 1);
    assert_eq!(st.crawler_reclaimed, 500);
    assert_eq!(st.expired_unfetched, 500);
}

#[test]
fn reset_stats_zeroes_counters_not_state() {
    let (s, _) = store();
    set(&s, "a", "1");
    get(&s, "a");
    s.reset_stats();
    let st = s.stats();
    assert_eq!(
        (st.cmd_get, st.get_hits, st.cmd_set, st.total_items),
        (0, 0, 0, 0)
    );
    assert_eq!(st.curr_items, 1);
}

#[test]
fn background_crawler_stops_with_the_store() {
    let clock = Clock::manual(T0);
    let s = Store::new(
        Config::default()
            .memory_limit(2 << 20)
            .background(true)
            .clock(clock.clone()),
    )
    .unwrap();
    s.store(&StoreRequest {
        exptime: 1,
        ..req(StoreMode::Set, b"k", b"v")
    })
    .unwrap();
    clock.advance(2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.stats().curr_items != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "crawler never reclaimed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let t = std::time::Instant::now();
    drop(s);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "drop joins the crawler promptly"
    );
}

#[test]
fn store_is_shared_across_threads() {
    let (s, _) = store();
    let s = std::sync::Arc::new(s);
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..5000 {
                    let k = format!("t{t}:{}", i % 100);
                    set(&s, &k, "1");
                    let _ = arith(&s, &k, true, 1);
                    assert!(get(&s, &k).is_some());
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(s.stats().curr_items, 400);
}

#[test]
fn the_crawler_covers_a_large_store_over_several_passes() {
    let clock = Clock::manual(T0);
    let s = Store::new(
        Config::default()
            .memory_limit(256 << 20)
            .shards(2)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    let value = [b'v'; 100];
    const N: u64 = 600_000; // ~87 pages of 152-byte items, more than one pass crawls
    for i in 0..N {
        let key = format!("key:{i:012}");
        s.store(&StoreRequest {
            exptime: 5,
            ..req(StoreMode::Set, key.as_bytes(), &value)
        })
        .unwrap();
    }
    clock.advance(5);
    s.maintain();
    let first = s.stats().crawler_reclaimed;
    assert!(
        first > 0 && first < N,
        "one pass crawls a bounded number of pages: {first}"
    );
    for _ in 0..4 {
        s.maintain();
    }
    let st = s.stats();
    assert_eq!(st.crawler_reclaimed, N);
    assert_eq!(st.curr_items, 0);
}

/// `stats slabs` per-class cmd_set counts every storage command, refused ones included, in
/// the class of the request's value, so the classes add up to the global cmd_set (as
/// memcached 1.6.18's slab_stats set_cmds, measured: 9 after set, set, set, cas, ms, a
/// refused add, replace, an append and a refused prepend).
#[test]
fn per_class_cmd_set_counts_refused_stores_too() {
    let (s, _) = store();
    set(&s, "a", "x");
    let refused = [
        req(StoreMode::Add, b"a", b"y"),
        req(StoreMode::Replace, b"zz", b"y"),
        req(StoreMode::Prepend, b"zz", b"y"),
    ];
    for r in &refused {
        assert_eq!(s.store(r).unwrap().status, StoreStatus::NotStored);
    }
    assert_eq!(
        s.store(&req(StoreMode::Append, b"a", b"z")).unwrap().status,
        StoreStatus::Stored
    );
    let st = s.stats();
    assert_eq!(st.cmd_set, 5);
    let per_class: u64 = st.classes.iter().map(|c| c.cmd_set).sum();
    assert_eq!(per_class, 5);
}
