//! The runtime LRU settings of memcached's `lru tune`, `lru mode` and `slabs automove
//! ratio` (`Store::set_lru_tune`, `set_lru_segmented`, `set_slab_automove_ratio`): each one
//! changes what the engine does, not only what `stats settings` shows.

use ferrocache_core::*;

fn store(clock: &Clock) -> Store {
    Store::new(
        Config::default()
            .memory_limit(4 << 20)
            .shards(1)
            .slab_automove(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap()
}

fn set(s: &Store, key: &str, len: usize) {
    let value = vec![b'v'; len];
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &value))
        .unwrap();
}

fn get(s: &Store, key: &str) -> bool {
    s.get(key.as_bytes(), &GetOptions::default(), |_| ())
        .is_some()
}

fn present(s: &Store, key: &str) -> bool {
    let quiet = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key.as_bytes(), &quiet, |_| ()).is_some()
}

/// (hot, warm, cold) items of the class holding 100-byte values.
fn segments(s: &Store) -> (u64, u64, u64) {
    let st = s.stats();
    let c = st.classes.iter().find(|c| c.number > 0).unwrap();
    (c.number_hot, c.number_warm, c.number_cold)
}

#[test]
fn lru_tune_changes_the_hot_share_at_once() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(&clock);
    for i in 0..1000 {
        set(&s, &format!("a{i}"), 100);
    }
    let (hot, _, _) = segments(&s);
    assert!((195..=205).contains(&hot), "default 20%: {hot}");
    s.set_lru_tune(50, 30, 0.2, 2.0);
    for i in 0..1000 {
        set(&s, &format!("b{i}"), 100);
    }
    let (hot, _, _) = segments(&s);
    assert!((995..=1005).contains(&hot), "50% of 2000: {hot}");
    let r = s.runtime_settings();
    assert_eq!((r.hot_lru_pct, r.warm_lru_pct), (50, 30));
    assert_eq!((r.hot_max_factor, r.warm_max_factor), (0.2, 2.0));
}

/// HOT items older than hot_max_factor times the COLD tail's age move to COLD in the
/// background pass; a larger factor keeps them.
#[test]
fn hot_max_factor_moves_old_hot_items_to_cold() {
    for (factor, moved) in [(0.2, true), (5.0, false)] {
        let clock = Clock::manual(1_700_000_000);
        let s = store(&clock);
        s.set_lru_tune(20, 40, factor, 2.0);
        for i in 0..500 {
            set(&s, &format!("k{i}"), 100);
        }
        let (hot, _, cold) = segments(&s);
        assert_eq!((hot, cold), (100, 400));
        clock.advance(100);
        s.maintain();
        let (hot_after, _, _) = segments(&s);
        if moved {
            // the COLD tail is 100 s old, so is every HOT item: older than 20 s
            assert!(hot_after < hot, "factor {factor}: {hot_after} still HOT");
        } else {
            assert_eq!(hot_after, hot, "factor {factor}");
        }
    }
}

/// WARM items older than warm_max_factor times the COLD tail's age move to COLD.
#[test]
fn warm_max_factor_moves_old_warm_items_to_cold() {
    for (factor, moved) in [(0.5, true), (5.0, false)] {
        let clock = Clock::manual(1_700_000_000);
        let s = store(&clock);
        s.set_lru_tune(20, 40, 100.0, factor);
        for i in 0..500 {
            set(&s, &format!("k{i}"), 100);
        }
        // read the HOT keys (the newest 100) twice: ACTIVE, so the passes move them to WARM
        for i in 400..500 {
            assert!(get(&s, &format!("k{i}")));
            assert!(get(&s, &format!("k{i}")));
        }
        s.maintain();
        s.maintain();
        let (_, warm, _) = segments(&s);
        assert_eq!(warm, 100);
        clock.advance(100);
        // a new COLD tail age: the oldest COLD item was written 100 s ago
        s.maintain();
        let (_, warm_after, _) = segments(&s);
        if moved {
            assert!(
                warm_after < warm,
                "factor {factor}: {warm_after} still WARM"
            );
        } else {
            assert_eq!(warm_after, warm, "factor {factor}");
        }
    }
}

/// Flat mode: new items go to COLD, HOT and WARM drain, and a read moves an item to the
/// head (once its time is a minute old), so it outlives the items written with it.
#[test]
fn flat_mode_is_one_lru_with_bump_on_read() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(&clock);
    for i in 0..500 {
        set(&s, &format!("old{i}"), 100);
    }
    assert_eq!(segments(&s).0, 100);
    s.set_lru_segmented(false);
    assert!(!s.runtime_settings().lru_segmented);
    for i in 0..100 {
        set(&s, &format!("new{i}"), 100);
    }
    for _ in 0..4 {
        s.maintain();
    }
    let (hot, warm, cold) = segments(&s);
    assert_eq!((hot, warm, cold), (0, 0, 600), "all in COLD");
    // a read within the minute does not relink; after it, it does
    assert!(get(&s, "old0"));
    clock.advance(61);
    assert!(get(&s, "old0"));
    assert!(get(&s, "old1")); // read once: relinked too
                              // fill until old3 (behind old0 to old2 at the tail before the reads) is evicted
    let mut i = 0;
    while present(&s, "old3") {
        set(&s, &format!("fill{i}"), 100);
        i += 1;
        assert!(i < 100_000, "old3 never evicted");
    }
    assert!(!present(&s, "old2"));
    assert!(present(&s, "old0"), "the read item was bumped to the head");
    assert!(present(&s, "old1"));
    s.set_lru_segmented(true);
    set(&s, "back", 100);
    assert!(segments(&s).0 >= 1, "segmented again: new items enter HOT");
}

/// In segmented mode the same reads do not save the items from the COLD tail when they
/// were read only once (FETCHED, not ACTIVE): the control for the test above.
#[test]
fn segmented_mode_does_not_bump_an_item_read_once() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(&clock);
    for i in 0..500 {
        set(&s, &format!("old{i}"), 100);
    }
    clock.advance(61);
    assert!(get(&s, "old1"));
    let mut i = 0;
    while present(&s, "old2") {
        set(&s, &format!("fill{i}"), 100);
        i += 1;
        assert!(i < 100_000, "old2 never evicted");
    }
    assert!(!present(&s, "old1"), "read once: evicted in its turn");
}

/// automove 1 takes a page from a class that evicts nothing for the evicting class when the
/// evicting class's oldest item is younger than `ratio` times the other's.
#[test]
fn slab_automove_ratio_decides_whether_a_page_moves() {
    for (ratio, moves) in [(0.8, true), (0.3, false)] {
        let clock = Clock::manual(1_700_000_000);
        let s = Store::new(
            Config::default()
                .memory_limit(8 << 20)
                .shards(1)
                .slab_automove(true)
                .background(false)
                .clock(clock.clone()),
        )
        .unwrap();
        s.set_slab_automove_ratio(ratio);
        // class of 1000-byte values: 4 pages, then idle
        for i in 0..3400 {
            set(&s, &format!("big{i}"), 1000);
        }
        clock.advance(100);
        // class of 100-byte values: the rest, then evicting with items 50..60 s old
        let mut i = 0;
        while s.stats().evictions == 0 {
            set(&s, &format!("small{i}"), 100);
            i += 1;
        }
        clock.advance(50);
        for j in 0..2000 {
            set(&s, &format!("more{j}"), 100);
        }
        // keep the idle class's window busy with sets so only the age ratio decides
        set(&s, "big0", 1000);
        s.maintain(); // opens the window
        for j in 0..2000 {
            set(&s, &format!("again{j}"), 100);
        }
        set(&s, "big1", 1000);
        let before = s.stats().slabs_moved;
        s.maintain();
        let moved = s.stats().slabs_moved > before;
        assert_eq!(moved, moves, "ratio {ratio}");
        assert_eq!(s.runtime_settings().slab_automove_ratio, ratio);
    }
}

fn set_ttl(s: &Store, key: &str, len: usize, exptime: i64) -> Result<StoreOutcome, StoreError> {
    let value = vec![b't'; len];
    s.store(&StoreRequest {
        exptime,
        ..StoreRequest::new(StoreMode::Set, key.as_bytes(), &value)
    })
}

fn temp_count(s: &Store) -> u64 {
    s.stats().classes.iter().map(|c| c.number_temp).sum()
}

/// `lru temp_ttl`: items whose TTL is at most the setting go to the TEMP LRU; they are
/// never evicted (others are, however old the TEMP items are) and go once expired.
#[test]
fn temp_lru_items_are_never_evicted_and_go_when_expired() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(&clock);
    s.set_lru_temp_ttl(Some(100));
    let r = s.runtime_settings();
    assert!(r.temp_lru);
    assert_eq!(r.temporary_ttl, 100);
    set_ttl(&s, "never", 100, 0).unwrap();
    set_ttl(&s, "long", 100, 101).unwrap();
    for i in 0..200 {
        set_ttl(&s, &format!("temp{i}"), 100, 100).unwrap();
    }
    assert_eq!(temp_count(&s), 200);
    // the TEMP items are the oldest; writing four times the memory evicts all others
    for i in 0..120_000 {
        set(&s, &format!("fill{i}"), 100);
    }
    assert!(s.stats().evictions > 10_000);
    assert!(!present(&s, "never") && !present(&s, "long"));
    for i in 0..200 {
        assert!(present(&s, &format!("temp{i}")), "temp{i} evicted");
    }
    // expired: reclaimed by the background pass, no longer in TEMP
    clock.advance(101);
    s.maintain();
    assert!(!present(&s, "temp0"));
    assert_eq!(temp_count(&s), 0);
    // off again: a short TTL goes to HOT; temporary_ttl stays as memcached shows it
    s.set_lru_temp_ttl(None);
    set_ttl(&s, "short", 100, 5).unwrap();
    assert_eq!(temp_count(&s), 0);
    let r = s.runtime_settings();
    assert!(!r.temp_lru);
    assert_eq!(r.temporary_ttl, 100);
}

/// A class holding only TEMP items has nothing to evict: a store in it is refused for
/// memory (memcached: SERVER_ERROR out of memory) instead of evicting one.
#[test]
fn a_class_of_only_temp_items_is_out_of_memory() {
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(1 << 20)
            .shards(1)
            .slab_automove(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    s.set_lru_temp_ttl(Some(1000));
    let mut stored = 0;
    let mut refused = None;
    for i in 0..20_000 {
        match set_ttl(&s, &format!("t{i}"), 100, 500) {
            Ok(_) => stored += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert_eq!(refused, Some(StoreError::OutOfMemory), "after {stored}");
    assert_eq!(s.stats().evictions, 0);
    assert!(present(&s, "t0"));
}
