//! The slab page mover: when the value sizes shift, memory follows instead of calcifying in
//! the class that filled it first.

use ferrocache_core::*;

const MEMORY: usize = 16 << 20;

fn store(automove: bool) -> Store {
    Store::new(
        Config::default()
            .memory_limit(MEMORY)
            .shards(1)
            .slab_automove(automove)
            .background(false)
            .clock(Clock::manual(1_700_000_000)),
    )
    .unwrap()
}

fn set(s: &Store, key: &str, len: usize) {
    let value = vec![b'x'; len];
    let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
    assert_eq!(s.store(&r).unwrap().status, StoreStatus::Stored);
}

/// Fills memory with 100-byte values, then writes 2000-byte values; returns the large
/// class's pages and how many of the last 4000 large keys are still there.
fn shift_sizes(s: &Store) -> (u64, usize) {
    for i in 0..200_000 {
        set(s, &format!("small:{i}"), 100);
    }
    let small = s
        .stats()
        .classes
        .into_iter()
        .find(|c| c.chunk_size == 152)
        .unwrap();
    assert_eq!(
        small.total_pages,
        (MEMORY >> 20) as u64,
        "small values took all memory"
    );
    const LARGE: usize = 40_000;
    for i in 0..LARGE {
        set(s, &format!("large:{i}"), 2000);
        if i % 500 == 0 {
            s.maintain();
        }
    }
    let st = s.stats();
    assert!(st.total_malloced <= MEMORY as u64);
    let large = st
        .classes
        .iter()
        .find(|c| c.chunk_size >= 2036 + 16)
        .map(|c| c.total_pages)
        .unwrap_or(0);
    let kept = (LARGE - 4000..LARGE)
        .filter(|i| {
            s.get(
                format!("large:{i}").as_bytes(),
                &GetOptions::default(),
                |_| (),
            )
            .is_some()
        })
        .count();
    (large, kept)
}

#[test]
fn a_shift_of_value_sizes_moves_pages_to_the_new_class() {
    let s = store(true);
    let (pages, kept) = shift_sizes(&s);
    eprintln!("automove: large class {pages}/16 pages, {kept}/4000 recent large values kept");
    assert!(pages >= 12, "large class got {pages} of 16 pages");
    assert!(
        kept >= 3600,
        "only {kept} of the last 4000 large values kept"
    );
    assert!(s.stats().slabs_moved >= 11);
}

#[test]
fn without_automove_memory_calcifies() {
    // the control: only the synchronous move (a class with no page at all) happens
    let s = store(false);
    let (pages, kept) = shift_sizes(&s);
    eprintln!("no automove: large class {pages}/16 pages, {kept}/4000 recent large values kept");
    assert_eq!(pages, 1);
    assert!(kept < 1000, "{kept}");
}

#[test]
fn a_class_without_pages_gets_one_when_memory_is_full() {
    // small items fill all 16 pages through 4 shards, then large values (a class with no
    // page and no item anywhere) must get a page moved to them
    let s = Store::new(
        Config::default()
            .memory_limit(MEMORY)
            .shards(4)
            .slab_automove(false)
            .background(false),
    )
    .unwrap();
    assert_eq!(s.shard_count(), 4);
    for i in 0..300_000 {
        set(&s, &format!("small:{i}"), 100);
    }
    assert!(s.stats().evictions > 0);
    for i in 0..200 {
        set(&s, &format!("large:{i}"), 5000);
        assert!(s
            .get(
                format!("large:{i}").as_bytes(),
                &GetOptions::default(),
                |_| ()
            )
            .is_some());
    }
    let st = s.stats();
    assert!(st.total_malloced <= MEMORY as u64);
    assert_eq!(
        st.slabs_moved, 1,
        "one page of 5000-byte chunks holds 200 of them"
    );
}

#[test]
fn shards_share_slab_memory() {
    // ~20 size classes and 8 shards in the default 64 MiB (memcslap-like mix): nothing is
    // evicted while the items fit, because pages belong to classes, not to shards (with
    // per-shard pages, 8 x 20 first pages would not fit in 64)
    let s = Store::new(Config::default().background(false)).unwrap();
    assert_eq!(s.shard_count(), 8);
    for i in 0..2000 {
        set(&s, &format!("slap:{i}"), (i * 37) % 4000);
    }
    let st = s.stats();
    assert_eq!(st.evictions, 0);
    assert_eq!(st.curr_items, 2000);
}

#[test]
fn without_eviction_a_full_store_says_out_of_memory() {
    let s = Store::new(
        Config::default()
            .memory_limit(2 << 20)
            .evict(false)
            .background(false),
    )
    .unwrap();
    let value = vec![b'x'; 100];
    let mut stored = 0;
    let err = loop {
        let key = format!("k:{stored}");
        let r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
        match s.store(&r) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 100_000);
    };
    assert_eq!(err, StoreError::OutOfMemory);
    assert_eq!(err.to_string(), "out of memory storing object");
    let st = s.stats();
    assert_eq!(st.evictions, 0);
    assert_eq!(st.curr_items, stored);
    assert!(stored >= 2 * ((1 << 20) / 152) - 1, "{stored}");
    assert!(
        s.get(b"k:0", &GetOptions::default(), |_| ()).is_some(),
        "nothing was evicted"
    );
}

#[test]
fn without_eviction_an_emptied_page_moves_to_a_class_without_pages() {
    // memcached -m 2 -M filled with 100-byte values, every one deleted, then a 5000-byte
    // set: STORED (measured); the synchronous move of a page that needs no eviction ran
    // only with eviction on, so here every other size was refused for good
    let s = Store::new(
        Config::default()
            .memory_limit(2 << 20)
            .shards(4)
            .evict(false)
            .background(false),
    )
    .unwrap();
    let value = vec![b'x'; 100];
    let mut stored = 0;
    while s
        .store(&StoreRequest::new(
            StoreMode::Set,
            format!("k:{stored}").as_bytes(),
            &value,
        ))
        .is_ok()
    {
        stored += 1;
        assert!(stored < 100_000);
    }
    // full of items, the larger class cannot have a page: no eviction without -M's leave
    let big = StoreRequest::new(StoreMode::Set, b"big", &[b'y'; 5000]);
    assert_eq!(s.store(&big), Err(StoreError::OutOfMemory));
    assert_eq!(s.stats().curr_items, stored);
    for i in 0..stored {
        let key = format!("k:{i}");
        delete(&s, &key);
    }
    assert_eq!(s.store(&big).unwrap().status, StoreStatus::Stored);
    // and the other emptied page to a third class, not the moved page that now holds one
    // item (the class with as many pages, whose item could not be relocated)
    let larger = StoreRequest::new(StoreMode::Set, b"larger", &[b'z'; 300_000]);
    assert_eq!(s.store(&larger).unwrap().status, StoreStatus::Stored);
    let st = s.stats();
    assert_eq!((st.evictions, st.slabs_moved, st.curr_items), (0, 2, 2));
    assert!(st.total_malloced <= 2 << 20);
}

/// A store without eviction (-M), its memory limit `mb` MiB, `shards` shards, on a manual
/// clock.
fn no_evict(mb: usize, shards: usize) -> (Store, Clock) {
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(mb << 20)
            .shards(shards)
            .evict(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    (s, clock)
}

/// `n` keys `{prefix}{i}` for each shard of a `shards`-shard store (found by storing them
/// in a scratch store and walking its shards).
fn keys_by_shard(shards: usize, prefix: &str, n: usize) -> Vec<Vec<String>> {
    let s = Store::new(Config::default().shards(shards).background(false)).unwrap();
    for i in 0..n * shards * 4 {
        set(&s, &format!("{prefix}{i}"), 1);
    }
    (0..shards)
        .map(|sh| {
            let mut keys = Vec::new();
            s.visit_shard(sh, |v| {
                keys.push(String::from_utf8(v.key.to_vec()).unwrap())
            });
            keys.sort_by_key(|k| k[prefix.len()..].parse::<usize>().unwrap());
            keys.truncate(n);
            assert_eq!(keys.len(), n);
            keys
        })
        .collect()
}

fn delete(s: &Store, key: &str) {
    s.delete(&DeleteRequest {
        key: key.as_bytes(),
        ..DeleteRequest::default()
    });
}

fn has(s: &Store, key: &str) -> bool {
    s.get(key.as_bytes(), &GetOptions::default(), |_| ())
        .is_some()
}

fn try_set(s: &Store, key: &str, len: usize, exptime: i64) -> Result<StoreStatus, StoreError> {
    let value = vec![b'x'; len];
    let mut r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
    r.exptime = exptime;
    s.store(&r).map(|o| o.status)
}

#[test]
fn without_eviction_expired_items_of_other_shards_make_room() {
    // memcached -m 2 -M -o no_lru_crawler filled with 100-byte values that expire, then as
    // many new keys after the expiry: all STORED (one LRU per class, whose tail holds the
    // expired items). A shard that had run out of its own expired items refused the store
    // while other shards still held some (ferrocached -M -m 2 -o no_lru_crawler: 168 of
    // 13796 refused, measured)
    let (s, clock) = no_evict(2, 4);
    let mut n = 0;
    while try_set(&s, &format!("old:{n}"), 100, 10).is_ok() {
        n += 1;
        assert!(n < 100_000);
    }
    clock.advance(11);
    let refused = (0..n)
        .filter(|i| try_set(&s, &format!("new:{i}"), 100, 0).is_err())
        .count();
    assert_eq!(refused, 0, "{refused} of {n} refused");
    let st = s.stats();
    assert_eq!((st.curr_items, st.evictions), (n, 0));
}

/// Without eviction: 5000-byte values (keys of shard 1 only) fill their class's one page;
/// `k0` (shard 0) and `k1` (shard 1) get `old` (a value of `old_len` bytes); 100-byte
/// values fill the rest of memory and are deleted, so their pages could be given up
/// without evicting. Returns the store and the two keys.
fn full_class_in_one_shard(old_len: usize) -> (Store, String, String) {
    let (s, _) = no_evict(4, 2);
    let keys = keys_by_shard(2, "key:", 400);
    let big = |s: &Store| {
        let c = s.stats().classes.into_iter().find(|c| c.chunk_size > 5000);
        c.map(|c| (c.total_pages, c.free_chunks))
    };
    for k in &keys[1][2..] {
        set(&s, k, 5000);
        if big(&s).is_some_and(|(_, free)| free == 0) {
            break;
        }
    }
    assert_eq!(big(&s), Some((1, 0)), "one full page of 5000-byte values");
    let (k0, k1) = (keys[0][0].clone(), keys[1][0].clone());
    set(&s, &k0, old_len);
    set(&s, &k1, old_len);
    let mut n = 0;
    while try_set(&s, &format!("small:{n}"), 100, 0).is_ok() {
        n += 1;
        assert!(n < 100_000);
    }
    for i in 0..n {
        delete(&s, &format!("small:{i}"));
    }
    assert_eq!(s.stats().total_malloced, 4 << 20);
    (s, k0, k1)
}

#[test]
fn without_eviction_a_refused_set_drops_the_old_value_in_every_shard() {
    // the 5000-byte class has no free chunk and its items are in shard 1: a 5000-byte set
    // is refused (memcached -M: the class has pages, no page passes the limit) and, as
    // memcached's, drops the key's old value. In shard 1 it did; in shard 0 the refusal came
    // after room had been sought in the other shards, and the old value stayed
    let (s, k0, k1) = full_class_in_one_shard(100);
    for k in [&k1, &k0] {
        assert_eq!(try_set(&s, k, 5000, 0), Err(StoreError::OutOfMemory), "{k}");
        assert!(!has(&s, k), "{k}'s old value stayed");
    }
    let st = s.stats();
    assert_eq!((st.evictions, st.slabs_moved), (0, 0));
}

#[test]
fn without_eviction_an_append_whose_value_has_no_memory_is_refused() {
    // memcached allocates the request's item (class of its 5000 bytes) before joining:
    // with that class full and -M, SERVER_ERROR out of memory, whatever the joined value's
    // class holds. An append in a shard with none of the 5000-byte items went on without
    // it and stored the joined value (in the old value's class, which had room)
    let sizes = Store::new(Config::default().background(false))
        .unwrap()
        .slab_class_sizes();
    // an old value whose class also takes it with 5000 bytes more
    let i = (1..sizes.len())
        .find(|&i| sizes[i] - sizes[i - 1] > 6000)
        .unwrap();
    let old_len = sizes[i - 1] as usize + 20 - 36;
    let (s, k0, k1) = full_class_in_one_shard(old_len);
    for k in [&k1, &k0] {
        let value = vec![b'y'; 5000];
        let r = StoreRequest::new(StoreMode::Append, k.as_bytes(), &value);
        assert_eq!(s.store(&r), Err(StoreError::OutOfMemory), "{k}");
        let len = s.get(k.as_bytes(), &GetOptions::default(), |v| v.value.len());
        assert_eq!(len, Some(old_len), "{k} kept its value");
    }
}

/// `-m 4 -M` as a server: 100-byte values fill memory and 9 of 10 are deleted, 5000-byte
/// values fill their class; then, a second at a time (`maintain()` each second, as the
/// background thread), one more 5000-byte set. Returns the store, the second (1-based) of
/// the first set `STORED` (None: refused all through `seconds`), the kept small keys.
fn freed_page_after_deletes(mode: u8, seconds: u32) -> (Store, Option<u32>, Vec<String>) {
    freed_page_after_deletes_in(mode, 30, seconds, true)
}

/// [`freed_page_after_deletes`] with `-o slab_automove_window=<window>`; `pass_first`:
/// a background pass before the fill (else the fill comes first, as right after a start).
fn freed_page_after_deletes_in(
    mode: u8,
    window: u32,
    seconds: u32,
    pass_first: bool,
) -> (Store, Option<u32>, Vec<String>) {
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(4 << 20)
            .shards(4)
            .evict(false)
            .background(false)
            .clock(clock.clone())
            .slab_automove_window(window),
    )
    .unwrap();
    s.set_slab_automove(mode);
    if pass_first {
        s.maintain(); // the automover starts with the store
    }
    let mut n = 0;
    while try_set(&s, &format!("s:{n}"), 100, 0).is_ok() {
        n += 1;
        assert!(n < 100_000);
    }
    // the fill takes a while over the network: its out-of-memory is seen by a sample
    clock.advance(1);
    s.maintain();
    let mut kept = Vec::new();
    for i in 0..n {
        let key = format!("s:{i}");
        if i % 10 == 0 {
            kept.push(key);
            continue;
        }
        delete(&s, &key);
    }
    let mut big = 0;
    while try_set(&s, &format!("b:{big}"), 5000, 0).is_ok() {
        big += 1;
        assert!(big < 10_000);
    }
    let stored = (1..=seconds).find(|_| {
        clock.advance(1);
        s.maintain();
        try_set(&s, &format!("b:{big}"), 5000, 0).is_ok()
    });
    (s, stored, kept)
}

#[test]
fn without_eviction_automove_hands_a_page_freed_by_deletes_back_after_its_window() {
    // memcached 1.6.18 -m 4 -M, the same steps (measured): the 5000-byte set refused for
    // 30 s, then STORED; `stats slabs` shows the 100-byte class down from 4 pages (3.6 of
    // them free chunks) to 2, slabs_moved 2 (both pages to the pool), 1093 items rescued,
    // none lost. Its automover gives a class with more than 2.5 pages of free chunks and
    // no eviction, outofmemory or new page in its last 30 samples a page back to its pool.
    // ferrocache's did nothing without eviction: the set stayed refused
    let (s, stored, kept) = freed_page_after_deletes(1, 40);
    let second = stored.expect("a page came back for the refused class within 40 s");
    // the class ran out of memory at the fill's end, seen by the sample before the
    // deletes: its window is clean 30 samples later
    assert_eq!(second, 30);
    let st = s.stats();
    assert_eq!((st.evictions, st.slab_reassign_evictions_nomem), (0, 0));
    assert!(st.slab_reassign_rescues > 0);
    assert!(kept.iter().all(|k| has(&s, k)), "a kept item was lost");
    let small = st.classes.iter().find(|c| c.chunk_size == 152).unwrap();
    assert!(
        (small.free_chunks as f64) <= small.chunks_per_page as f64 * 2.5,
        "{small:?}"
    );
    assert!(st.total_malloced <= 4 << 20);
}

#[test]
fn without_eviction_automove_follows_slab_automove_window() {
    // memcached 1.6.18 -m 4 -M -o slab_automove_window=3, the same steps over the network
    // (measured): the 5000-byte set STORED within a few seconds, none lost. The window was
    // always 30 here (the setting accepted and ignored): still refused at the 10th second
    let (s, stored, kept) = freed_page_after_deletes_in(1, 3, 10, true);
    // out of memory at the sample before the deletes: the window is clean 3 samples later
    assert_eq!(stored, Some(3));
    assert!(kept.iter().all(|k| has(&s, k)), "a kept item was lost");
    assert_eq!(s.stats().evictions, 0);
}

#[test]
fn without_eviction_automove_window_starts_with_the_store() {
    // memcached's automover samples the server once as it starts (its dry run), so a fill
    // within the first second is a change its first sample sees: the window starts then.
    // Here the first sample was the first background pass, a second after the start, which
    // took the filled store as its starting point: the page moved at the next sample
    // (ferrocached -m 4 -M, the fill right after start: STORED after 1 s, window 30)
    let (s, stored, kept) = freed_page_after_deletes_in(1, 3, 10, false);
    assert_eq!(stored, Some(3));
    assert!(kept.iter().all(|k| has(&s, k)), "a kept item was lost");
    let (_, stored, _) = freed_page_after_deletes_in(1, 30, 10, false);
    assert_eq!(stored, None);
}

#[test]
fn without_eviction_automove_2_moves_no_page() {
    // memcached -m 4 -M -o slab_automove=2, the same steps: still refused after 45 s,
    // slabs_moved 0 (measured; mode 2 asks for a page only when it evicts)
    let (s, stored, kept) = freed_page_after_deletes(2, 40);
    assert_eq!(stored, None);
    assert!(kept.iter().all(|k| has(&s, k)));
}
