//! An immediate flush_all as memcached 1.6.18 does it: the flushed items stay in memory
//! (and in `curr_items`) until something meets them. A lookup counts `get_flushed` and
//! unlinks the item, the background walk reaps the rest (`reclaimed`, `expired_unfetched`
//! for the ones never read), allocation reuses their chunks before it evicts, and an item
//! stored after the flush in the same second stays (the flush marks the next CAS too).
//! Everything that walks the items skips the flushed ones; a replayed log hides exactly
//! what the flush hid.

use ferrocache_core::*;
use std::path::PathBuf;

mod common;

use common::{store, store_with};

fn req<'a>(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> StoreRequest<'a> {
    StoreRequest::new(mode, key, value)
}

fn set(s: &Store, key: &str, value: &[u8]) -> StoreOutcome {
    s.store(&req(StoreMode::Set, key.as_bytes(), value))
        .unwrap()
}

fn get(s: &Store, key: &str) -> Option<(Vec<u8>, u64)> {
    s.get(key.as_bytes(), &GetOptions::default(), |v| {
        (v.value.to_vec(), v.cas)
    })
}

fn live_keys(s: &Store) -> Vec<String> {
    let mut keys = Vec::new();
    for shard in 0..s.shard_count() {
        s.visit_shard(shard, |it| {
            keys.push(String::from_utf8_lossy(it.key).into_owned())
        });
    }
    keys.sort();
    keys
}

#[test]
fn an_immediate_flush_leaves_the_items_until_a_lookup_or_the_walk_meets_them() {
    let (s, clock) = store();
    set(&s, "a", b"1");
    set(&s, "b", b"1");
    set(&s, "read", b"1");
    assert!(get(&s, "read").is_some());
    clock.advance(1);
    s.flush_all(0);
    assert_eq!(get(&s, "a"), None);
    let st = s.stats();
    // memcached 1.6.18, measured: get_flushed 1, get_misses 1, curr_items counts the rest
    assert_eq!(st.get_flushed, 1);
    assert_eq!(st.get_misses, 1);
    assert_eq!(st.curr_items, 2);
    assert_eq!(st.total_items, 3);
    assert_eq!(st.reclaimed, 0);
    assert_eq!(st.cmd_flush, 1);
    assert!(
        st.bytes > 0,
        "the unread items' bytes stay counted until reaped"
    );
    let items: u64 = st.classes.iter().map(|c| c.number).sum();
    assert_eq!(items, 2, "stats items count them too");

    s.maintain();
    let st = s.stats();
    assert_eq!(st.curr_items, 0);
    assert_eq!(st.bytes, 0);
    // reaped as memcached's LRU maintainer reaps them: reclaimed, and expired_unfetched
    // for the one never read
    assert_eq!(st.reclaimed, 2);
    assert_eq!(st.expired_unfetched, 1);
    assert_eq!(st.crawler_reclaimed, 0);
    assert_eq!(st.evictions, 0);
    assert_eq!(st.get_flushed, 1);
}

#[test]
fn an_item_stored_after_the_flush_in_the_same_second_stays() {
    let (s, _clock) = store();
    let before = set(&s, "old", b"1").cas;
    s.flush_all(0);
    let after = set(&s, "new", b"2").cas;
    // the flush uses up one CAS, as memcached's (measured: c3, flush, next set c5)
    assert_eq!(after, before + 2);
    assert_eq!(get(&s, "old"), None);
    assert_eq!(get(&s, "new").map(|g| g.0), Some(b"2".to_vec()));
    assert_eq!(s.stats().get_flushed, 1);
    assert_eq!(live_keys(&s), ["new"]);
}

#[test]
fn a_delayed_flush_uses_no_cas_and_hides_nothing_before_its_deadline() {
    let (s, clock) = store();
    let before = set(&s, "old", b"1").cas;
    s.flush_all(10);
    assert_eq!(set(&s, "new", b"2").cas, before + 1);
    assert!(get(&s, "old").is_some());
    clock.advance(10);
    assert_eq!(get(&s, "old"), None);
    assert_eq!(get(&s, "new"), None);
    assert_eq!(s.stats().get_flushed, 2);
}

#[test]
fn every_command_that_meets_a_flushed_item_counts_get_flushed() {
    let (s, clock) = store();
    for k in ["t", "i", "ap", "cs", "ad", "md", "g"] {
        set(&s, k, b"5");
    }
    clock.advance(1);
    s.flush_all(0);
    assert!(!s.touch(b"t", 0));
    assert_eq!(
        s.arith(&ArithRequest {
            key: b"i",
            incr: true,
            delta: 1,
            cas: None,
            vivify: None,
            touch: None,
            new_cas: None,
        }),
        Ok(ArithStatus::NotFound)
    );
    let out = s.store(&req(StoreMode::Append, b"ap", b"x")).unwrap();
    assert_eq!(out.status, StoreStatus::NotStored);
    let mut cas = req(StoreMode::Set, b"cs", b"x");
    cas.cas = Some(1);
    assert_eq!(s.store(&cas).unwrap().status, StoreStatus::NotFound);
    let add = s.store(&req(StoreMode::Add, b"ad", b"x")).unwrap();
    assert_eq!(add.status, StoreStatus::Stored);
    assert_eq!(
        s.delete(&DeleteRequest {
            key: b"md",
            ..Default::default()
        }),
        DeleteStatus::NotFound
    );
    assert_eq!(get(&s, "g"), None);
    let st = s.stats();
    // memcached 1.6.18, the same commands pipelined right after flush_all: get_flushed 9
    // over 9 keys (touch, gat, incr, append, cas, add, mg, get, delete); here 7 of them
    assert_eq!(st.get_flushed, 7);
    assert_eq!(st.touch_misses, 1);
    assert_eq!(st.incr_misses, 1);
    assert_eq!(st.cas_misses, 1);
    assert_eq!(st.delete_misses, 1);
    assert_eq!(st.get_misses, 1);
    assert_eq!(st.curr_items, 1, "only the add's item");
}

#[test]
fn allocation_reuses_flushed_chunks_before_it_evicts() {
    let (s, _clock) = store_with(4 << 20);
    let value = vec![b'x'; 1000];
    let mut fit = 0;
    for i in 0..20_000 {
        set(&s, &format!("a{i}"), &value);
        if s.stats().evictions > 0 {
            break;
        }
        fit = i + 1;
    }
    assert!(fit > 1000, "{fit} items fit");
    let evicted = s.stats().evictions;
    s.flush_all(0);
    for i in 0..fit {
        set(&s, &format!("b{i}"), &value);
    }
    let st = s.stats();
    assert_eq!(
        st.evictions, evicted,
        "no eviction while flushed chunks remain"
    );
    assert!(st.reclaimed >= fit as u64 - 2, "reclaimed {}", st.reclaimed);
    assert_eq!(st.reclaimed, st.expired_unfetched);
    assert_eq!(get(&s, "a0"), None);
    assert!(get(&s, &format!("b{}", fit - 1)).is_some());
}

#[test]
fn walks_skip_flushed_items() {
    let (s, clock) = store();
    for i in 0..50 {
        set(&s, &format!("old{i}"), b"v");
    }
    clock.advance(1);
    s.flush_all(0);
    set(&s, "new", b"v");
    assert_eq!(live_keys(&s), ["new"]);
    let mut batch = Vec::new();
    for shard in 0..s.shard_count() {
        let mut cur = ShardCursor::default();
        while !s.visit_shard_batch(shard, &mut cur, 16, |it| batch.push(it.key.to_vec())) {}
    }
    assert_eq!(batch, [b"new".to_vec()]);
    let mut cold = Vec::new();
    for id in 1..=64 {
        s.visit_cold(id, 1000, |it| {
            cold.push(it.key.to_vec());
            true
        });
    }
    assert!(!cold.iter().any(|k| k.starts_with(b"old")), "{cold:?}");
    assert_eq!(s.stats().curr_items, 51, "not reaped yet");
}

#[test]
fn a_requested_crawl_counts_flushed_items_as_memcacheds_crawler_does() {
    let (s, clock) = store();
    for i in 0..10 {
        set(&s, &format!("k{i}"), b"v");
    }
    clock.advance(1);
    s.flush_all(0);
    assert_eq!(s.crawl(vec![true; 64]), CrawlStart::Started);
    let st = s.stats();
    assert_eq!(st.curr_items, 0);
    assert_eq!(st.crawler_reclaimed, 10);
    assert_eq!(st.expired_unfetched, 0);
    assert_eq!(st.reclaimed, 0);
}

#[test]
fn a_delayed_flush_after_an_immediate_one_keeps_the_flushed_items_hidden() {
    let (s, clock) = store();
    set(&s, "a", b"1");
    clock.advance(1);
    s.flush_all(0);
    s.flush_all(100);
    assert_eq!(get(&s, "a"), None);
    assert_eq!(s.stats().curr_items, 0);
    set(&s, "b", b"1");
    // an immediate flush after a delayed one whose deadline has not come
    s.flush_all(0);
    assert_eq!(get(&s, "b"), None);
    set(&s, "c", b"1");
    clock.advance(200);
    assert!(
        get(&s, "c").is_some(),
        "the immediate flush replaced the deadline"
    );
}

#[test]
fn flush_all_at_once_unlinks_everything_and_clears_the_marks() {
    let (s, _clock) = store();
    set(&s, "a", b"1");
    s.flush_all(0);
    set(&s, "b", b"1");
    s.flush_all_at_once();
    let st = s.stats();
    assert_eq!(st.curr_items, 0);
    assert_eq!(st.get_flushed, 0);
    // an item restored with a CAS below the earlier boundary is not hidden by it
    let mut r = req(StoreMode::Set, b"restored", b"v");
    r.new_cas = Some(1);
    s.store(&r).unwrap();
    assert_eq!(get(&s, "restored"), Some((b"v".to_vec(), 1)));
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fc-flush-lazy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn a_replayed_log_hides_what_the_flush_hid_and_keeps_what_came_after() {
    let dir = tmpdir("replay");
    {
        let (s, _clock) = store();
        let _aof = aof::open(&s, &dir, aof::Fsync::Always).unwrap();
        set(&s, "before", b"1");
        s.flush_all(0);
        set(&s, "after", b"2");
        // a snapshot taken now leaves the flushed item out
        snapshot::save(&s, &dir, 1, None).unwrap();
        set(&s, "later", b"3");
    }
    let (s, _clock) = store();
    let loaded = snapshot::load(&s, &dir, false).unwrap();
    let (_aof, _rep) = aof::open_after(&s, &dir, aof::Fsync::Always, loaded.generation).unwrap();
    assert_eq!(get(&s, "before"), None);
    assert_eq!(get(&s, "after").map(|g| g.0), Some(b"2".to_vec()));
    assert_eq!(get(&s, "later").map(|g| g.0), Some(b"3".to_vec()));
    assert_eq!(s.stats().curr_items, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replayed_log_without_snapshot_applies_the_flush_at_its_place() {
    let dir = tmpdir("replay-log");
    {
        let (s, _clock) = store();
        let _aof = aof::open(&s, &dir, aof::Fsync::Always).unwrap();
        set(&s, "before", b"1");
        s.flush_all(0);
        set(&s, "after", b"2");
    }
    let (s, _clock) = store();
    let (_aof, rep) = aof::open(&s, &dir, aof::Fsync::Always).unwrap();
    assert_eq!(rep.records, 3);
    assert_eq!(get(&s, "before"), None);
    assert_eq!(get(&s, "after").map(|g| g.0), Some(b"2".to_vec()));
    assert_eq!(
        s.stats().curr_items,
        1,
        "the replayed flush unlinks at once"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_the_crawler_disabled_the_background_pass_still_reaps_flushed_items_at_the_tails() {
    let (s, clock) = store();
    s.set_crawler_enabled(false);
    for i in 0..300 {
        set(&s, &format!("k{i}"), b"v");
    }
    set(&s, "expired", b"v");
    s.touch(b"expired", 1);
    clock.advance(2);
    s.flush_all(0);
    set(&s, "new", b"v");
    s.maintain();
    let st = s.stats();
    // every flushed item reaped; the live one stays (and so would an expired one not
    // flushed: the maintainer stand-in reaps flushed items only)
    assert_eq!(st.curr_items, 1);
    assert_eq!(st.reclaimed, 301);
    assert_eq!(
        st.expired_unfetched, 300,
        "the touched one counts as fetched"
    );
    assert_eq!(st.crawler_reclaimed, 0);
    assert_eq!(live_keys(&s), ["new"]);
}
