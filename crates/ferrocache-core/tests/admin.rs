//! The engine side of memcached's runtime admin commands: `cache_memlimit`
//! ([`Store::set_memory_limit`]), `slabs reassign` / `slabs automove`, `lru_crawler crawl |
//! enable | disable | tocrawl`.

use ferrocache_core::*;

const MB: usize = 1 << 20;

fn store(memory: usize, clock: &Clock) -> Store {
    Store::new(
        Config::default()
            .memory_limit(memory)
            .shards(2)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap()
}

fn set(s: &Store, key: &str, len: usize, exptime: i64) -> Result<StoreOutcome, StoreError> {
    let value = vec![b'x'; len];
    s.store(&StoreRequest {
        exptime,
        ..StoreRequest::new(StoreMode::Set, key.as_bytes(), &value)
    })
}

fn has(s: &Store, key: &str) -> bool {
    let opts = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key.as_bytes(), &opts, |_| ()).is_some()
}

fn pages_of(s: &Store, chunk_size_at_least: u32) -> u64 {
    s.stats()
        .classes
        .iter()
        .find(|c| c.chunk_size >= chunk_size_at_least)
        .map_or(0, |c| c.total_pages)
}

#[test]
fn a_lower_memory_limit_frees_pages_at_once_and_memory_stays_under_it() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(32 * MB, &clock);
    for i in 0..400_000 {
        set(&s, &format!("small:{i}"), 100, 0).unwrap();
    }
    for i in 0..4_000 {
        set(&s, &format!("large:{i}"), 2000, 0).unwrap();
    }
    assert_eq!(s.stats().total_malloced, 32 * MB as u64, "memory is full");

    s.set_memory_limit(8 * MB).unwrap();
    let st = s.stats();
    assert_eq!(st.limit_maxbytes, 8 * MB as u64);
    assert!(st.total_malloced <= 8 * MB as u64, "{}", st.total_malloced);
    assert!(st.slabs_moved >= 24, "pages left through the mover");
    assert_eq!(s.runtime_settings().memory_limit, 8 * MB);
    // what is left is readable, and the counts agree with what the pages hold
    let small_kept = (0..400_000)
        .filter(|i| has(&s, &format!("small:{i}")))
        .count();
    assert_eq!(
        small_kept as u64
            + (0..4_000)
                .filter(|i| has(&s, &format!("large:{i}")))
                .count() as u64,
        st.curr_items
    );
    assert!(small_kept > 0);

    // new writes evict instead of taking pages past the new limit
    for i in 0..100_000 {
        set(&s, &format!("again:{i}"), 300, 0).unwrap();
        if i % 10_000 == 0 {
            assert!(s.stats().total_malloced <= 8 * MB as u64);
        }
    }
    assert!(s.stats().total_malloced <= 8 * MB as u64);
    assert!(has(&s, "again:99999"));

    // raising it lets the store take more pages at once
    s.set_memory_limit(24 * MB).unwrap();
    for i in 0..100_000 {
        set(&s, &format!("more:{i}"), 100, 0).unwrap();
    }
    let st = s.stats();
    assert!(st.total_malloced > 8 * MB as u64, "{}", st.total_malloced);
    assert!(st.total_malloced <= 24 * MB as u64);
    assert_eq!(st.limit_maxbytes, 24 * MB as u64);
}

#[test]
fn a_memory_limit_that_holds_no_page_or_more_than_the_page_table_is_refused() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    assert!(s.set_memory_limit(MB - 1).is_err());
    assert!(s.set_memory_limit(usize::MAX).is_err());
    assert_eq!(s.stats().limit_maxbytes, 16 * MB as u64);
}

#[test]
fn without_eviction_a_lower_limit_relocates_items_and_never_drops_one() {
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(16 * MB)
            .shards(1)
            .evict(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    // 12 pages of items, then half of them deleted: their pages are half empty
    for i in 0..80_000 {
        set(&s, &format!("k{i}"), 100, 0).unwrap();
    }
    for i in (0..80_000).step_by(2) {
        s.delete(&DeleteRequest {
            key: format!("k{i}").as_bytes(),
            ..Default::default()
        });
    }
    s.set_memory_limit(8 * MB).unwrap();
    let st = s.stats();
    assert!(st.total_malloced <= 8 * MB as u64, "{}", st.total_malloced);
    assert_eq!(st.evictions, 0);
    assert!(st.slab_reassign_rescues > 0);
    assert!((1..80_000).step_by(2).all(|i| has(&s, &format!("k{i}"))));
}

#[test]
fn slabs_reassign_moves_one_page_and_answers_as_memcached_decides() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    for i in 0..20_000 {
        set(&s, &format!("k{i}"), 100, 0).unwrap(); // class 3 (152-byte chunks)
    }
    let n = s.slab_class_count() as i64;
    assert_eq!(pages_of(&s, 152), 3);
    assert_eq!(s.slabs_reassign(3, 3), Reassign::Same);
    assert_eq!(s.slabs_reassign(3, n + 1), Reassign::BadClass);
    assert_eq!(s.slabs_reassign(-2, 5), Reassign::BadClass);
    assert_eq!(
        s.slabs_reassign(7, 5),
        Reassign::NoSpare,
        "class 7 has no page"
    );
    assert_eq!(
        s.slabs_reassign(0, 5),
        Reassign::NoSpare,
        "the pool is empty"
    );

    assert_eq!(s.slabs_reassign(3, 5), Reassign::Moved);
    let st = s.stats();
    assert_eq!(st.slabs_moved, 1);
    assert_eq!(pages_of(&s, 152), 2);
    assert_eq!(
        st.classes.iter().find(|c| c.id == 5).unwrap().total_pages,
        1
    );
    assert_eq!(st.total_malloced, 3 * MB as u64, "the page changed hands");
    let moved = st.slab_reassign_rescues + st.slab_reassign_evictions_nomem;
    assert!(moved > 0, "the page's items were relocated or evicted");
    assert_eq!(st.curr_items, 20_000 - st.slab_reassign_evictions_nomem);
    assert!(
        st.slab_reassign_evictions_nomem > 0,
        "a full page: items dropped"
    );
    // memcached 1.6.18 counts them in slab_reassign_evictions_nomem only
    assert_eq!(st.evictions, 0);
    assert_eq!(st.classes.iter().map(|c| c.evicted).sum::<u64>(), 0);

    // -1: any class with a spare page (class 3 has 2)
    assert_eq!(s.slabs_reassign(-1, 6), Reassign::Moved);
    assert_eq!(pages_of(&s, 152), 1);
    // now no class has two pages: src -1 finds none
    assert_eq!(s.slabs_reassign(-1, 6), Reassign::BadClass);
    assert_eq!(s.slabs_reassign(3, 6), Reassign::NoSpare);
    // dst 0: the page goes to the pool
    for i in 0..20_000 {
        set(&s, &format!("j{i}"), 100, 0).unwrap();
    }
    assert_eq!(s.slabs_reassign(3, 0), Reassign::Moved);
    assert_eq!(s.stats().slab_global_page_pool, 1);
}

#[test]
fn slab_automove_takes_modes_0_to_2() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    assert_eq!(s.runtime_settings().slab_automove, 1);
    assert!(s.set_slab_automove(2));
    assert_eq!(s.runtime_settings().slab_automove, 2);
    assert!(!s.set_slab_automove(3));
    assert!(s.set_slab_automove(0));
    assert_eq!(s.runtime_settings().slab_automove, 0);
}

#[test]
fn aggressive_automove_gives_an_evicting_class_pages_each_pass() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    assert!(s.set_slab_automove(2));
    for i in 0..200_000 {
        set(&s, &format!("small:{i}"), 100, 0).unwrap();
    }
    s.maintain();
    let before = pages_of(&s, 2052);
    for i in 0..20_000 {
        set(&s, &format!("large:{i}"), 2000, 0).unwrap();
        if i % 1000 == 999 {
            s.maintain();
        }
    }
    assert!(
        pages_of(&s, 2052) > before + 4,
        "{before} -> {}",
        pages_of(&s, 2052)
    );
    assert!(s.stats().total_malloced <= 16 * MB as u64);
}

#[test]
fn without_slab_reassign_no_page_changes_class() {
    // memcached's -o no_slab_reassign: no rebalancer, so neither `slabs reassign`, automove
    // (even aggressive) nor a lowered limit moves a page; only a class without any page
    // gets its first one (memcached grants it past the limit, here it is taken)
    let s = Store::new(
        Config::default()
            .memory_limit(16 * MB)
            .shards(2)
            .slab_reassign(false)
            .background(false)
            .clock(Clock::manual(1_700_000_000)),
    )
    .unwrap();
    assert!(!s.runtime_settings().slab_reassign);
    assert!(s.set_slab_automove(2));
    for i in 0..200_000 {
        set(&s, &format!("small:{i}"), 100, 0).unwrap();
    }
    assert_eq!(s.slabs_reassign(-1, 0), Reassign::Disabled);
    for i in 0..20_000 {
        set(&s, &format!("large:{i}"), 2000, 0).unwrap();
        if i % 1000 == 999 {
            s.maintain();
        }
    }
    assert_eq!(pages_of(&s, 2052), 1, "only the first page");
    assert_eq!(s.stats().slabs_moved, 1);
    s.set_memory_limit(8 * MB).unwrap();
    s.maintain();
    let st = s.stats();
    assert_eq!(st.limit_maxbytes, 8 * MB as u64);
    assert_eq!(st.total_malloced, 16 * MB as u64, "pages with items stay");
    assert_eq!(st.slabs_moved, 1);
    assert!(has(&s, "small:199999") && has(&s, "large:19999"));
}

#[test]
fn without_slab_reassign_a_class_of_temp_items_takes_no_page_but_its_first() {
    // TEMP items (`lru temp_ttl`) are never evicted: once its page is full such a class
    // runs out of memory (memcached 1.6.18 -m 4 -o no_slab_reassign,temporary_ttl=60,
    // 60,000 100-byte sets then 3,000 2 KB sets with a TTL of 30: 451 stored, then
    // SERVER_ERROR out of memory). It took the other classes' pages instead, all of them.
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(4 * MB)
            .shards(2)
            .slab_reassign(false)
            .background(false)
            .clock(clock),
    )
    .unwrap();
    s.set_lru_temp_ttl(Some(60));
    for i in 0..60_000 {
        set(&s, &format!("a{i}"), 100, 0).unwrap();
    }
    let mut out_of_memory = 0;
    for i in 0..3000 {
        match set(&s, &format!("t{i}"), 2000, 30) {
            Ok(_) => {}
            Err(StoreError::OutOfMemory) => out_of_memory += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    let st = s.stats();
    let pages: Vec<u64> = st
        .classes
        .iter()
        .map(|c| c.total_pages)
        .filter(|&p| p > 0)
        .collect();
    assert_eq!(pages, [3, 1], "the first page only");
    assert_eq!(st.slabs_moved, 1);
    assert!(out_of_memory > 2000, "{out_of_memory} out of memory");
    // the small items of three pages stay (~6,500 a page; before, none)
    assert!(st.curr_items > 15_000, "{} items", st.curr_items);
}

#[test]
fn a_requested_crawl_reclaims_the_expired_items_of_its_classes_only() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    assert!(s.set_crawler_enabled(false), "disabling is always accepted");
    for i in 0..1000 {
        set(&s, &format!("a{i}"), 100, 10).unwrap(); // class 3
        set(&s, &format!("b{i}"), 1000, 10).unwrap(); // a larger class
    }
    set(&s, "keep", 100, 0).unwrap();
    clock.advance(20);
    let class_a = s
        .stats()
        .classes
        .iter()
        .find(|c| c.chunk_size == 152)
        .unwrap()
        .id;
    let starts = s.stats().lru_crawler_starts;

    let mut want = vec![false; s.slab_class_count()];
    want[class_a as usize - 1] = true;
    assert_eq!(s.crawl(want), CrawlStart::Started);
    let st = s.stats();
    assert_eq!(st.crawler_reclaimed, 1000);
    assert_eq!(st.crawler_items_checked, 1001);
    assert_eq!(st.lru_crawler_starts, starts + 1);
    assert!(!st.lru_crawler_running);
    assert_eq!(
        st.curr_items, 1001,
        "the other class's dead items are still linked"
    );
    assert!(has(&s, "keep"));

    // tocrawl caps the items checked per class
    s.set_crawler_tocrawl(100);
    assert_eq!(
        s.crawl(vec![true; s.slab_class_count()]),
        CrawlStart::Started
    );
    let st = s.stats();
    assert_eq!(st.crawler_items_checked, 1001 + 100 + 1);
    assert_eq!(st.crawler_reclaimed, 1100);
    s.set_crawler_tocrawl(0);
    assert_eq!(
        s.crawl(vec![true; s.slab_class_count()]),
        CrawlStart::Started
    );
    assert_eq!(s.stats().curr_items, 1);
}

#[test]
fn a_disabled_crawler_leaves_expired_items_until_it_is_enabled() {
    let clock = Clock::manual(1_700_000_000);
    let s = store(16 * MB, &clock);
    for i in 0..500 {
        set(&s, &format!("e{i}"), 50, 5).unwrap();
    }
    clock.advance(10);
    assert!(s.set_crawler_enabled(false));
    assert!(!s.runtime_settings().lru_crawler);
    s.maintain();
    let st = s.stats();
    assert_eq!((st.curr_items, st.crawler_reclaimed), (500, 0));
    assert!(s.set_crawler_enabled(true));
    assert!(s.runtime_settings().lru_crawler);
    assert!(
        !s.set_crawler_enabled(true),
        "enabling a running crawler is an error"
    );
    s.maintain();
    let st = s.stats();
    assert_eq!((st.curr_items, st.crawler_reclaimed), (0, 500));
    assert!(st.crawler_items_checked >= 500);
}

#[test]
fn the_limit_changes_while_writers_run_and_every_count_still_adds_up() {
    let clock = Clock::manual(1_700_000_000);
    let s = std::sync::Arc::new(store(16 * MB, &clock));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 2_000_000 {
                    let len = [50, 300, 2000][(i % 3) as usize];
                    set(&s, &format!("w{t}:{}", i % 50_000), len, 0).unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    for round in 0..12 {
        let mb = [8, 12, 9, 16][round % 4];
        s.set_memory_limit(mb * MB).unwrap();
        assert!(
            s.stats().total_malloced <= (mb * MB) as u64,
            "round {round}"
        );
        s.maintain();
        assert!(s.slabs_reassign(-1, 1 + (round as i64 % 5)) != Reassign::Same);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let st = s.stats();
    assert!(st.total_malloced <= 16 * MB as u64);
    let number: u64 = st.classes.iter().map(|c| c.number).sum();
    let used: u64 = st.classes.iter().map(|c| c.used_chunks).sum();
    assert_eq!((number, used), (st.curr_items, st.curr_items));
    let mut seen = 0u64;
    for shard in 0..s.shard_count() {
        s.visit_shard(shard, |it| {
            assert!(it.key.starts_with(b"w"));
            assert!(it.value.iter().all(|&b| b == b'x'));
            seen += 1;
        });
    }
    assert_eq!(seen, st.curr_items);
}

#[test]
fn the_background_thread_frees_the_pages_a_lower_limit_leaves_over() {
    let s = Store::new(Config::default().memory_limit(128 * MB).shards(2)).unwrap();
    for i in 0..1_000_000 {
        set(&s, &format!("k{i}"), 100, 0).unwrap();
    }
    assert_eq!(s.stats().total_malloced, 128 * MB as u64);
    s.set_memory_limit(8 * MB).unwrap();
    // 64 pages go before the call returns, the other 56 on the woken thread
    let left = s.stats().total_malloced;
    assert!(left <= 64 * MB as u64, "{left}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while s.stats().total_malloced > 8 * MB as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(s.stats().total_malloced, 8 * MB as u64);
}
