//! The system-event hook (`Store::add_sysevent_sink`, what `watch sysevents` is built on):
//! each round of the expiry walk reports, per class and LRU segment it met items of, what
//! it examined and reclaimed; each automove (mode 1) page move reports its classes (0 for
//! the pool, where it hands pages without eviction); as in
//! memcached 1.6.18, `slabs reassign`, mode 2 and an allocation's own move report nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ferrocache_core::sysevent::{CrawlRound, SysEvent, SysEventSink};
use ferrocache_core::*;

#[derive(Default)]
struct Recorder {
    on: AtomicBool,
    seen: Mutex<Vec<SysEvent>>,
}

impl SysEventSink for Recorder {
    fn wants_sysevents(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
    fn sysevent(&self, e: &SysEvent) {
        self.seen.lock().unwrap().push(*e);
    }
}

fn recorder(on: bool) -> Arc<Recorder> {
    let r = Arc::new(Recorder::default());
    r.on.store(on, Ordering::Relaxed);
    r
}

fn weak(r: &Arc<Recorder>) -> Weak<dyn SysEventSink> {
    let w: Weak<Recorder> = Arc::downgrade(r);
    w
}

fn crawls(r: &Recorder) -> Vec<CrawlRound> {
    let seen = std::mem::take(&mut *r.seen.lock().unwrap());
    seen.into_iter()
        .map(|e| match e {
            SysEvent::Crawl(c) => c,
            other => panic!("not a crawl: {other:?}"),
        })
        .collect()
}

fn moves(r: &Recorder) -> Vec<(u32, u32)> {
    let seen = std::mem::take(&mut *r.seen.lock().unwrap());
    seen.into_iter()
        .filter_map(|e| match e {
            SysEvent::SlabMove { src, dst } => Some((src, dst)),
            SysEvent::Crawl(_) => None,
        })
        .collect()
}

fn set(s: &Store, key: &str, len: usize, exptime: i64) {
    let value = vec![b'x'; len];
    let mut r = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
    r.exptime = exptime;
    assert_eq!(s.store(&r).unwrap().status, StoreStatus::Stored);
}

/// The class holding exactly `items` items.
fn class_with(s: &Store, items: u64) -> u32 {
    let st = s.stats();
    st.classes.iter().find(|c| c.number == items).unwrap().id
}

#[test]
fn a_crawl_round_reports_each_class_and_segment_it_met() {
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .shards(4)
            .slab_automove(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    // a round before any sink reports nothing to a sink added later
    for i in 0..300 {
        set(&s, &format!("small:{i}"), 10, if i < 100 { 5 } else { 0 });
    }
    for i in 0..50 {
        set(&s, &format!("big:{i}"), 3000, 5);
    }
    s.maintain();
    let (small, big) = (class_with(&s, 300), class_with(&s, 50));
    assert_ne!(small, big);
    let off = recorder(false);
    let on = recorder(true);
    assert!(s.add_sysevent_sink(weak(&off)));
    assert!(s.add_sysevent_sink(weak(&on)));
    assert!(!s.add_sysevent_sink(weak(&on)), "registered twice");
    assert!(crawls(&on).is_empty());
    clock.advance(10);
    s.maintain();
    let got = crawls(&on);
    assert!(off.seen.lock().unwrap().is_empty());
    let sum = |class: u32, f: fn(&CrawlRound) -> u64| -> u64 {
        got.iter().filter(|r| r.class_id == class).map(f).sum()
    };
    // 300 small items met, the 100 with a 5 s TTL reclaimed; the 50 big ones all expired
    assert_eq!(sum(small, |r| r.examined), 300, "{got:?}");
    assert_eq!(sum(small, |r| r.reclaimed), 100, "{got:?}");
    assert_eq!(sum(big, |r| r.examined), 50);
    assert_eq!(sum(big, |r| r.reclaimed), 50);
    assert!(got.iter().all(|r| r.class_id == small || r.class_id == big));
    for r in &got {
        // no background thread: the embedder decides when the next round runs
        assert_eq!((r.since_run, r.next_run, r.elapsed), (0, None, 0), "{r:?}");
        assert!(r.lru < 4 && r.examined > 0 && r.reclaimed <= r.examined);
    }
    // memcached's order: every class's HOT line, then WARM, COLD, TEMP
    let order: Vec<(usize, u32)> = got.iter().map(|r| (r.lru, r.class_id)).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    // the next round sees only what is left; a sink that stops wanting hears nothing
    s.maintain();
    let next = crawls(&on);
    assert_eq!(next.iter().map(|r| r.examined).sum::<u64>(), 200);
    assert_eq!(next.iter().map(|r| r.reclaimed).sum::<u64>(), 0);
    on.on.store(false, Ordering::Relaxed);
    s.maintain();
    assert!(crawls(&on).is_empty());
    // a disabled crawler walks no rounds
    on.on.store(true, Ordering::Relaxed);
    assert!(s.set_crawler_enabled(false));
    s.maintain();
    assert!(crawls(&on).is_empty());
}

const MEMORY: usize = 16 << 20;

fn mover_store(mode: u8) -> Store {
    let s = Store::new(
        Config::default()
            .memory_limit(MEMORY)
            .shards(1)
            .background(false)
            .clock(Clock::manual(1_700_000_000)),
    )
    .unwrap();
    assert!(s.set_slab_automove(mode));
    s
}

/// Fills memory with 100-byte values, then writes 2000-byte values with a `maintain` pass
/// every 500; returns the small and large classes.
fn shift_sizes(s: &Store) -> (u32, u32) {
    for i in 0..200_000 {
        set(s, &format!("small:{i}"), 100, 0);
    }
    for i in 0..40_000 {
        set(s, &format!("large:{i}"), 2000, 0);
        if i % 500 == 0 {
            s.maintain();
        }
    }
    let st = s.stats();
    let id = |size: u32| st.classes.iter().find(|c| c.chunk_size >= size).unwrap().id;
    (id(152), id(2036 + 16))
}

#[test]
fn automove_page_moves_are_reported_with_their_classes() {
    let s = mover_store(1);
    let r = recorder(true);
    s.add_sysevent_sink(weak(&r));
    let (small, large) = shift_sizes(&s);
    let moved = moves(&r);
    eprintln!(
        "automove: {} moves reported, slabs_moved {}",
        moved.len(),
        s.stats().slabs_moved
    );
    assert!(moved.len() >= 10, "{moved:?}");
    assert!(moved.iter().all(|&m| m == (small, large)), "{moved:?}");
    // the synchronous move that gave the large class its first page is not automove's
    assert!(s.stats().slabs_moved > moved.len() as u64);
    // as memcached: `slabs reassign` logs nothing
    assert_eq!(
        s.slabs_reassign(large as i64, small as i64),
        Reassign::Moved
    );
    assert!(moves(&r).is_empty());
}

#[test]
fn aggressive_automove_reports_nothing_as_memcached() {
    let s = mover_store(2);
    let r = recorder(true);
    s.add_sysevent_sink(weak(&r));
    shift_sizes(&s);
    assert!(s.stats().slabs_moved > 1);
    assert!(moves(&r).is_empty());
}

#[test]
fn without_eviction_automove_reports_pages_given_to_the_pool_as_dst_0() {
    // memcached 1.6.18 -M writes `type=slab_move src=<class> dst=0` for each page its
    // automover gives back to the pool (measured with -o slab_automove_window=3: 14 lines
    // `src=12 dst=0` after deleting what filled 16 pages); ferrocache's gave none back
    let clock = Clock::manual(1_700_000_000);
    let s = Store::new(
        Config::default()
            .memory_limit(4 << 20)
            .evict(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    let r = recorder(true);
    assert!(s.add_sysevent_sink(weak(&r)));
    s.maintain();
    let value = [b'x'; 100];
    let mut n = 0u64;
    while s
        .store(&StoreRequest::new(
            StoreMode::Set,
            format!("k:{n}").as_bytes(),
            &value,
        ))
        .is_ok()
    {
        n += 1;
        assert!(n < 100_000);
    }
    for i in (0..n).filter(|i| i % 10 != 0) {
        s.delete(&DeleteRequest {
            key: format!("k:{i}").as_bytes(),
            cas: None,
            invalidate: false,
            exptime: None,
            mismatch_uncounted: false,
        });
    }
    // the sample after the fill sees its out-of-memory; 30 clean samples later the class's
    // 3.6 pages' worth of free chunks go back a page at a time down to 1.6
    for _ in 0..31 {
        clock.advance(1);
        s.maintain();
    }
    let class = class_with(&s, n.div_ceil(10));
    assert_eq!(moves(&r), vec![(class, 0), (class, 0)]);
    assert_eq!(s.stats().slabs_moved, 2);
}
