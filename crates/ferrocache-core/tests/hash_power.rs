//! memcached's `-o hashpower=N` and `-o no_hashexpand`: `Config::hash_power` sizes the whole
//! store's table at 2^N slots (split between the shards, `stats` `hash_power_level` N and
//! `hash_bytes` 8·2^N as memcached's 8-byte buckets), and `Config::hash_expand(false)` keeps
//! a table at its size until it is 15/16 full. A slot holds one item (open addressing), so a
//! table that does not grow at 3/4 runs long probe sequences: lookups, deletions (backward
//! shifts), the crawler, the snapshot walk and the page mover must all stay right there, and
//! past 15/16 it must grow after all.

use ferrocache_core::*;
use std::collections::HashMap;

/// The manual clock's start (unix seconds).
const T0: u32 = 1_700_000_000;

fn config(shards: usize) -> Config {
    Config::default()
        .shards(shards)
        .background(false)
        .clock(Clock::manual(T0))
}

fn set(s: &Store, key: &str, value: &[u8], exptime: i64) {
    let mut r = StoreRequest::new(StoreMode::Set, key.as_bytes(), value);
    r.exptime = exptime;
    assert_eq!(s.store(&r).unwrap().status, StoreStatus::Stored, "{key}");
}

fn get(s: &Store, key: &str) -> Option<Vec<u8>> {
    s.get(key.as_bytes(), &GetOptions::default(), |it| {
        it.value.to_vec()
    })
}

fn delete(s: &Store, key: &str) -> bool {
    let r = DeleteRequest {
        key: key.as_bytes(),
        cas: None,
        invalidate: false,
        exptime: None,
        mismatch_uncounted: false,
    };
    s.delete(&r) == DeleteStatus::Deleted
}

/// Every live key a snapshot walk of the store sees, each once.
fn walk(s: &Store, max_items: usize) -> Vec<Vec<u8>> {
    walk_from(s, max_items, ShardCursor::default)
}

/// The same with each shard's walk starting at `start()` (a replica's full sync: scattered).
fn walk_from(s: &Store, max_items: usize, start: fn() -> ShardCursor) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for shard in 0..s.shard_count() {
        let mut cur = start();
        while !s.visit_shard_batch(shard, &mut cur, max_items, |it| keys.push(it.key.to_vec())) {}
    }
    keys.sort();
    let n = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), n, "a walk saw an item twice");
    keys
}

#[test]
fn hash_power_is_the_whole_stores_size_as_memcached_reports_it() {
    for shards in [1, 8, 256] {
        for power in [12u8, 16, 20] {
            let s = Store::new(config(shards).hash_power(power)).unwrap();
            let st = s.stats();
            assert_eq!(st.hash_power_level, power as u32, "{shards} shards");
            assert_eq!(st.hash_bytes, 8 << power, "{shards} shards");
            assert!(!st.hash_is_expanding);
        }
    }
    // without it: 2^12 slots per shard, as before
    assert_eq!(Store::new(config(8)).unwrap().stats().hash_power_level, 15);
    assert_eq!(config(8).hash_power(20).shard_hash_power(), 17);
    // a shard's table is never under 2^4 slots
    assert_eq!(config(256).hash_power(4).shard_hash_power(), 4);
    for bad in [3u8, 33] {
        let e = Store::new(config(8).hash_power(bad))
            .err()
            .expect("refused");
        assert!(e.0.contains("hash power"), "{}", e.0);
    }
}

#[test]
fn a_table_larger_than_memory_and_swap_is_refused_with_memcacheds_words() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    let (Some(ram), Some(swap)) = (kib("MemTotal:"), kib("SwapTotal:")) else {
        return; // not Linux: only a failed allocation refuses
    };
    // 2^32 slots: 32 GiB, memcached's largest (its calloc fails on smaller machines)
    let res = Store::new(config(1).hash_power(32));
    if (ram + swap) << 10 < 32 << 30 {
        let e = res
            .err()
            .expect("a 32 GiB table on a smaller machine was accepted");
        assert!(e.0.starts_with("Failed to init hashtable."), "{}", e.0);
    } else {
        assert_eq!(res.unwrap().stats().hash_power_level, 32);
    }
}

#[test]
fn without_expansion_a_table_keeps_its_size_until_15_16_full() {
    // one shard of 2^12 slots: growing tables grow past 3072 items, this one past 3840
    let fixed = Store::new(config(1).hash_power(12).hash_expand(false)).unwrap();
    let growing = Store::new(config(1).hash_power(12)).unwrap();
    for i in 0..3840 {
        set(&fixed, &format!("k{i}"), b"v", 0);
        set(&growing, &format!("k{i}"), b"v", 0);
    }
    assert_eq!(fixed.stats().hash_bytes, 8 << 12);
    assert_eq!(fixed.stats().hash_power_level, 12);
    assert!(growing.stats().hash_bytes > 8 << 12);
    // churn at 15/16 full: long clusters, deletions shifting entries back, no growth
    let mut model: HashMap<String, Vec<u8>> = (0..3840)
        .map(|i| (format!("k{i}"), b"v".to_vec()))
        .collect();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for n in 0..60_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = format!("k{}", x % 7680);
        if model.contains_key(&key) {
            assert!(delete(&fixed, &key), "{key}");
            model.remove(&key);
        } else if model.len() < 3840 {
            let value = n.to_le_bytes();
            set(&fixed, &key, &value, 0);
            model.insert(key, value.to_vec());
        }
        if n % 10_000 == 0 {
            for i in 0..7680 {
                let key = format!("k{i}");
                assert_eq!(get(&fixed, &key), model.get(&key).cloned(), "{key}");
            }
        }
    }
    let st = fixed.stats();
    assert_eq!(st.hash_bytes, 8 << 12, "the table grew below 15/16 full");
    assert_eq!(st.curr_items, model.len() as u64);
    let mut want: Vec<Vec<u8>> = model.keys().map(|k| k.as_bytes().to_vec()).collect();
    want.sort();
    assert_eq!(walk(&fixed, 16), want);
}

#[test]
fn ten_times_more_items_than_slots_without_expansion() {
    // 2^12 slots and 40960 items (memcached's no_hashexpand keeps 2^12 buckets and chains
    // ten deep; here a slot holds one item, so the table grows once 15/16 full)
    let clock = Clock::manual(T0);
    let s = Store::new(
        config(1)
            .clock(clock.clone())
            .hash_power(12)
            .hash_expand(false),
    )
    .unwrap();
    const N: usize = 40_960;
    for i in 0..N {
        // every tenth item expires after 100 s
        let exptime = if i % 10 == 0 { 100 } else { 0 };
        set(
            &s,
            &format!("item:{i}"),
            format!("value {i}").as_bytes(),
            exptime,
        );
    }
    let st = s.stats();
    assert_eq!(st.curr_items, N as u64);
    // grown only past 15/16: 8.5-10.7 bytes of slots per item (growing at 3/4: 10.7-13.3)
    assert!(!st.hash_is_expanding);
    assert!(
        (st.hash_bytes as f64 / N as f64) < 10.7,
        "{} bytes of slots per item",
        st.hash_bytes as f64 / N as f64
    );
    for i in 0..N {
        assert_eq!(
            get(&s, &format!("item:{i}")),
            Some(format!("value {i}").into_bytes())
        );
    }
    assert_eq!(walk(&s, 64).len(), N);
    assert_eq!(walk_from(&s, 64, ShardCursor::scattered).len(), N);
    // the crawler's walk finds and reclaims every expired item
    clock.advance(101);
    for _ in 0..8 {
        s.maintain();
    }
    let st = s.stats();
    assert_eq!(st.crawler_reclaimed, (N / 10) as u64);
    assert_eq!(st.curr_items, (N - N / 10) as u64);
    // free chunks all over the smallest class's pages, then the mover takes one of its
    // pages: the items on it move to free chunks (the table relinks each in place)
    for i in (1..N).filter(|i| i % 10 != 0 && i % 3 == 0) {
        assert!(delete(&s, &format!("item:{i}")));
    }
    let class = |s: &Store| {
        s.stats()
            .classes
            .iter()
            .map(|c| c.total_pages)
            .collect::<Vec<_>>()
    };
    let before = class(&s);
    assert_eq!(s.slabs_reassign(1, 2), Reassign::Moved);
    s.maintain();
    assert_ne!(class(&s), before, "no page moved");
    assert!(s.stats().slab_reassign_rescues > 0, "no item was moved");
    let mut live = 0;
    for i in 0..N {
        let want = (i % 10 != 0 && i % 3 != 0).then(|| format!("value {i}").into_bytes());
        let got = get(&s, &format!("item:{i}"));
        // the mover may evict an item it has no room for, never change or resurrect one
        assert!(got.is_none() || got == want, "item:{i}");
        live += got.is_some() as usize;
    }
    assert!(live > N / 2, "{live} items left");
    assert_eq!(s.stats().curr_items, live as u64);
    assert_eq!(walk(&s, 64).len(), live);
}

#[cfg(target_os = "linux")]
#[test]
fn a_large_initial_table_is_lazy_and_walked_in_short_lock_holds() {
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 4096
    }
    let before = rss();
    // 2^28 slots: 2 GiB of table in 8 shards
    let s = Store::new(config(8).hash_power(28)).unwrap();
    assert_eq!(s.stats().hash_bytes, 8 << 28);
    let grown = rss().saturating_sub(before);
    assert!(grown < 128 << 20, "{} MiB resident at once", grown >> 20);
    for i in 0..1000 {
        set(&s, &format!("k{i}"), b"v", 0);
    }
    // a snapshot walk of a nearly empty table: each hold scans a bounded share of it (one
    // hold scanning 2^25 empty slots would stall every request to the shard meanwhile)
    let mut holds = 0;
    let mut items = 0;
    let mut cur = ShardCursor::default();
    while !s.visit_shard_batch(0, &mut cur, 512, |_| items += 1) {
        holds += 1;
    }
    assert!(holds >= 1000, "{holds} lock holds walked 2^25 slots");
    assert!(
        items > 50 && items < 250,
        "{items} of ~125 items in shard 0"
    );
}
