//! memcached allocates the item a storage command stores before it looks the key up
//! (`process_update_command` allocates, `do_store_item` looks up), so under memory pressure
//! that allocation may evict the very item the command then looks for. Measured on
//! memcached 1.6.18 (`-m 2`, 5000 sets of 1000-byte values, then a command on the oldest
//! live key): `replace` and a same-size `append` answer NOT_STORED, `cas` NOT_FOUND
//! (cas_misses + 1) and the key is gone; `add` and `set` are STORED; a small `append`
//! (its request item in another class) is STORED and evicts the next-oldest key instead
//! (memcached's second allocation, for the joined value, skips the locked old item); each
//! with one eviction and cmd_set + 1.

use ferrocache_core::*;

const VALUE: usize = 1000;
const KEYS: usize = 5000;

/// A one-shard store of 2 MiB filled with KEYS values of VALUE bytes (one class, evicting);
/// returns it with the index of the oldest key still there (the COLD tail).
fn full_store() -> (Store, usize) {
    let s = Store::new(
        Config::default()
            .memory_limit(2 << 20)
            .shards(1)
            .slab_automove(false)
            .background(false),
    )
    .unwrap();
    let value = vec![b'x'; VALUE];
    for i in 0..KEYS {
        let key = format!("k{i}");
        let out = s
            .store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), &value))
            .unwrap();
        assert_eq!(out.status, StoreStatus::Stored);
    }
    assert!(s.stats().evictions > 0, "the class must be evicting");
    let oldest = (0..KEYS)
        .find(|i| present(&s, &format!("k{i}")))
        .expect("some keys stay");
    (s, oldest)
}

fn present(s: &Store, key: &str) -> bool {
    let quiet = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key.as_bytes(), &quiet, |_| ()).is_some()
}

fn cas_of(s: &Store, key: &str) -> u64 {
    let quiet = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key.as_bytes(), &quiet, |v| v.cas).unwrap()
}

/// Runs `mode` with `value` (and `cas`) on the oldest key; returns the status and the
/// counters before and after.
fn on_oldest(
    mode: StoreMode,
    value: &[u8],
    with_cas: bool,
) -> (Store, usize, StoreStatus, Stats, Stats) {
    let (s, oldest) = full_store();
    let key = format!("k{oldest}");
    let cas = with_cas.then(|| cas_of(&s, &key));
    let before = s.stats();
    let out = s
        .store(&StoreRequest {
            cas,
            ..StoreRequest::new(mode, key.as_bytes(), value)
        })
        .unwrap();
    let after = s.stats();
    (s, oldest, out.status, before, after)
}

#[test]
fn replace_whose_own_allocation_evicts_the_key_is_not_stored() {
    let (s, oldest, status, before, after) = on_oldest(StoreMode::Replace, &[b'r'; VALUE], false);
    assert_eq!(status, StoreStatus::NotStored);
    assert!(!present(&s, &format!("k{oldest}")));
    assert!(present(&s, &format!("k{}", oldest + 1)));
    assert_eq!(after.evictions, before.evictions + 1);
    assert_eq!(after.cmd_set, before.cmd_set + 1);
    assert_eq!(after.curr_items, before.curr_items - 1);
    assert_eq!(after.total_items, before.total_items);
}

#[test]
fn cas_whose_own_allocation_evicts_the_key_is_not_found() {
    let (s, oldest, status, before, after) = on_oldest(StoreMode::Set, &[b'c'; VALUE], true);
    assert_eq!(status, StoreStatus::NotFound);
    assert!(!present(&s, &format!("k{oldest}")));
    assert_eq!(after.cas_misses, before.cas_misses + 1);
    assert_eq!(after.cas_hits, before.cas_hits);
    assert_eq!(after.evictions, before.evictions + 1);
    assert_eq!(after.cmd_set, before.cmd_set + 1);
}

#[test]
fn add_whose_own_allocation_evicts_the_key_is_stored() {
    let (s, oldest, status, before, after) = on_oldest(StoreMode::Add, &[b'a'; VALUE], false);
    assert_eq!(status, StoreStatus::Stored);
    let quiet = GetOptions::default();
    let got = s.get(format!("k{oldest}").as_bytes(), &quiet, |v| v.value[0]);
    assert_eq!(got, Some(b'a'));
    assert_eq!(after.evictions, before.evictions + 1);
    assert_eq!(after.curr_items, before.curr_items);
    assert_eq!(after.total_items, before.total_items + 1);
}

#[test]
fn set_whose_own_allocation_evicts_the_key_is_stored() {
    let (s, oldest, status, before, after) = on_oldest(StoreMode::Set, &[b's'; VALUE], false);
    assert_eq!(status, StoreStatus::Stored);
    assert!(present(&s, &format!("k{oldest}")));
    assert!(present(&s, &format!("k{}", oldest + 1)));
    assert_eq!(after.evictions, before.evictions + 1);
    assert_eq!(after.curr_items, before.curr_items);
}

#[test]
fn append_of_the_same_size_whose_own_allocation_evicts_the_key_is_not_stored() {
    for mode in [StoreMode::Append, StoreMode::Prepend] {
        let (s, oldest, status, before, after) = on_oldest(mode, &[b'p'; VALUE], false);
        assert_eq!(status, StoreStatus::NotStored, "{mode:?}");
        assert!(!present(&s, &format!("k{oldest}")));
        assert!(present(&s, &format!("k{}", oldest + 1)));
        assert_eq!(after.evictions, before.evictions + 1);
        assert_eq!(after.cmd_set, before.cmd_set + 1);
        assert_eq!(after.curr_items, before.curr_items - 1);
    }
}

#[test]
fn small_append_keeps_the_key_and_evicts_the_next_oldest() {
    let (s, oldest, status, before, after) = on_oldest(StoreMode::Append, b"hello", false);
    assert_eq!(status, StoreStatus::Stored);
    let quiet = GetOptions::default();
    let len = s.get(format!("k{oldest}").as_bytes(), &quiet, |v| v.value.len());
    assert_eq!(len, Some(VALUE + 5));
    assert!(!present(&s, &format!("k{}", oldest + 1)));
    assert_eq!(after.evictions, before.evictions + 1);
    assert_eq!(after.curr_items, before.curr_items - 1);
}

/// A refused command still took (and gave back) its chunk: nothing leaks.
#[test]
fn refused_commands_give_their_chunk_back() {
    let (s, oldest) = full_store();
    let key = format!("k{}", oldest + 10);
    let value = [b'z'; VALUE];
    let before = s.stats();
    for _ in 0..100 {
        let out = s
            .store(&StoreRequest::new(StoreMode::Add, key.as_bytes(), &value))
            .unwrap();
        assert_eq!(out.status, StoreStatus::NotStored);
        let out = s
            .store(&StoreRequest {
                cas: Some(1),
                ..StoreRequest::new(StoreMode::Set, key.as_bytes(), &value)
            })
            .unwrap();
        assert_eq!(out.status, StoreStatus::Exists);
    }
    let after = s.stats();
    let used = |st: &Stats| st.classes.iter().map(|c| c.used_chunks).sum::<u64>();
    assert_eq!(used(&after), after.curr_items);
    assert_eq!(used(&before), before.curr_items);
    // a full class: each of the first refused commands evicted for its chunk, then the
    // freed chunks are reused
    assert!(after.evictions >= before.evictions);
    assert!(present(&s, &key));
}
