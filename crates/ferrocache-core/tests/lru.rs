//! Segmented LRU: a scan of one-hit keys must not flush a working set that is being read.

use ferrocache_core::*;

fn store(warm_lru_pct: u8) -> Store {
    let mut cfg = Config::default()
        .memory_limit(8 << 20)
        .shards(1)
        .background(false)
        .clock(Clock::manual(1_700_000_000));
    cfg.warm_lru_pct = warm_lru_pct;
    Store::new(cfg).unwrap()
}

fn set(s: &Store, key: &str) {
    let value = [b'v'; 100];
    let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
    assert_eq!(s.store(&r).unwrap().status, StoreStatus::Stored);
}

fn hit(s: &Store, key: &str) -> bool {
    s.get(key.as_bytes(), &GetOptions::default(), |_| ())
        .is_some()
}

/// Working-set hits per round when each round scans twice the cache's capacity.
fn working_set_hits_under_scan(s: &Store) -> Vec<usize> {
    const WORKING: usize = 5000;
    let key = |p: &str, i: usize| format!("{p}:{i:013}"); // 16-byte keys: 152-byte items
    let capacity = 8 * ((1 << 20) / 152);
    // a full cache first, so the segments have their steady-state sizes
    for i in 0..capacity {
        set(s, &key("f", i));
    }
    for i in 0..WORKING {
        set(s, &key("w", i));
    }
    for _ in 0..2 {
        for i in 0..WORKING {
            assert!(hit(s, &key("w", i)));
        }
    }
    let mut rounds = Vec::new();
    let mut scan = 0;
    for _ in 0..4 {
        for _ in 0..2 * capacity {
            set(s, &key("s", scan));
            scan += 1;
        }
        rounds.push((0..WORKING).filter(|&i| hit(s, &key("w", i))).count());
    }
    let st = s.stats();
    assert!(
        st.evictions as usize >= 7 * capacity,
        "the scans evicted: {}",
        st.evictions
    );
    rounds
}

#[test]
fn a_scan_of_one_hit_keys_does_not_flush_the_working_set() {
    let s = store(40);
    assert_eq!(working_set_hits_under_scan(&s), vec![5000; 4]);
    let c = s
        .stats()
        .classes
        .into_iter()
        .find(|c| c.chunk_size == 152)
        .unwrap();
    assert!(
        c.number_warm >= 5000,
        "the working set lives in WARM: {c:?}"
    );
    assert!(c.evicted_unfetched > 0);
}

#[test]
fn without_a_warm_segment_the_same_scan_flushes_it() {
    // the control: the same workload is destructive when WARM cannot hold anything
    let s = store(0);
    let rounds = working_set_hits_under_scan(&s);
    assert!(rounds.iter().all(|&h| h < 500), "{rounds:?}");
}

#[test]
fn an_item_read_twice_in_cold_moves_to_warm_when_it_reaches_the_tail() {
    // reads only mark items ACTIVE; the eviction that meets them at the COLD tail moves
    // them to WARM instead of evicting them
    let s = store(40);
    let key = |p: &str, i: usize| format!("{p}:{i:013}");
    let capacity = 8 * ((1 << 20) / 152);
    for i in 0..capacity {
        set(&s, &key("f", i));
    }
    for i in 0..5000 {
        set(&s, &key("w", i));
    }
    for i in 0..capacity / 2 {
        set(&s, &key("g", i)); // pushes the working set out of HOT into COLD
    }
    let warm = |s: &Store| {
        let c = s.stats().classes.into_iter().find(|c| c.chunk_size == 152);
        c.unwrap().number_warm
    };
    let before = warm(&s);
    for _ in 0..2 {
        for i in 0..5000 {
            assert!(hit(&s, &key("w", i)));
        }
    }
    assert_eq!(warm(&s), before, "reads do not relink");
    for i in 0..2 * capacity {
        set(&s, &key("s", i));
    }
    assert_eq!((0..5000).filter(|&i| hit(&s, &key("w", i))).count(), 5000);
    assert!(warm(&s) >= 5000);
}

/// Keys `visit_cold` lists for class `id` (what `stats cachedump` prints).
fn cold_keys(s: &Store, id: u32, max: usize) -> Vec<String> {
    let mut keys = Vec::new();
    s.visit_cold(id, max, |it| {
        keys.push(String::from_utf8(it.key.to_vec()).unwrap());
        true
    });
    keys
}

#[test]
fn cold_walk_lists_cold_items_newest_first_without_active_or_base64_ones() {
    let s = Store::new(
        Config::default()
            .memory_limit(8 << 20)
            .shards(4)
            .background(false)
            .clock(Clock::manual(1_700_000_000)),
    )
    .unwrap();
    for k in ["a", "b", "c", "d"] {
        set(&s, k); // a class holding under 5 items keeps none in HOT (20%)
    }
    let id = s.stats().classes.iter().find(|c| c.number > 0).unwrap().id;
    assert!(hit(&s, "a")); // a first read only marks it FETCHED
    assert_eq!(cold_keys(&s, id, usize::MAX), ["d", "c", "b", "a"]);
    assert_eq!(cold_keys(&s, id, 2), ["d", "c"]);
    assert!(cold_keys(&s, id + 1, usize::MAX).is_empty());
    // a second read makes `a` ACTIVE (memcached moves it to WARM); a base64 key is skipped
    assert!(hit(&s, "a"));
    assert!(s.mark_key_binary(b"c"));
    assert_eq!(cold_keys(&s, id, usize::MAX), ["d", "b"]);
    // with 20 items in one shard HOT keeps 20% of them: the newest are not listed yet
    let one = Store::new(
        Config::default()
            .memory_limit(8 << 20)
            .shards(1)
            .background(false)
            .clock(Clock::manual(1_700_000_000)),
    )
    .unwrap();
    for i in 0..20 {
        set(&one, &format!("k{i:02}"));
    }
    let listed = cold_keys(&one, id, usize::MAX);
    assert_eq!(listed.len(), 16, "{listed:?}");
    assert_eq!(listed[0], "k15");
    assert_eq!(listed[15], "k00");
}
