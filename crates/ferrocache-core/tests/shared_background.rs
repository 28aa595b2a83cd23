//! The background work of every store of a process runs on a few shared threads
//! (`background.rs`): making stores makes no thread per store, every store still gets its
//! passes, a dropped store leaves the threads before its drop returns, and a store whose
//! walk takes minutes (`lru_crawler sleep`) does not hold up the others' expiry.

use ferrocache_core::sysevent::{SysEvent, SysEventSink};
use ferrocache_core::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// One test at a time: they count the process's threads.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// This process's threads (Linux); elsewhere none are counted.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Polls `done` every 20 ms for up to `secs` seconds.
fn within(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn small() -> Config {
    Config::default().memory_limit(1 << 20).shards(1)
}

fn set_expiring(s: &Store, key: &str) {
    let req = StoreRequest {
        exptime: 1,
        ..StoreRequest::new(StoreMode::Set, key.as_bytes(), b"v")
    };
    s.store(&req).unwrap();
}

/// A thread per store kept 200 threads for 200 stores (and a Node loop dropping caches
/// thousands until a GC). Each store's expired item is still reaped by its own walk.
#[cfg(target_os = "linux")]
#[test]
fn two_hundred_stores_share_two_threads_and_each_is_crawled() {
    let _one = serial();
    let before = threads();
    let stores: Vec<Store> = (0..200).map(|_| Store::new(small()).unwrap()).collect();
    let made = threads();
    assert!(
        made <= before + 2,
        "{made} threads with 200 stores (were {before})"
    );
    for (i, s) in stores.iter().enumerate() {
        set_expiring(s, &format!("k{i}"));
    }
    let reaped = || stores.iter().all(|s| s.stats().crawler_reclaimed == 1);
    assert!(
        within(8, reaped),
        "some stores' expired items were not reaped"
    );
    drop(stores);
    // the shared threads end a while after the last store went
    assert!(
        within(6, || threads() <= before),
        "{} threads after the stores went (were {before})",
        threads()
    );
}

/// Blocks in each crawl round it hears of, so a step of its store is running.
#[derive(Default)]
struct Slow {
    inside: AtomicBool,
    calls: AtomicUsize,
}

impl SysEventSink for Slow {
    fn wants_sysevents(&self) -> bool {
        true
    }
    fn sysevent(&self, e: &SysEvent) {
        if let SysEvent::Crawl(_) = e {
            self.calls.fetch_add(1, SeqCst);
            self.inside.store(true, SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            self.inside.store(false, SeqCst);
        }
    }
}

/// Dropping a store while a background step of it runs waits for that step; no step of it
/// runs after the drop returns.
#[test]
fn a_dropped_store_waits_for_its_running_step_and_is_not_visited_again() {
    let _one = serial();
    let s = Store::new(small()).unwrap();
    let sink = Arc::new(Slow::default());
    let w: Weak<Slow> = Arc::downgrade(&sink);
    s.add_sysevent_sink(w);
    s.store(&StoreRequest::new(StoreMode::Set, b"a", b"v"))
        .unwrap();
    assert!(
        within(5, || sink.inside.load(SeqCst)),
        "no crawl round was reported"
    );
    drop(s);
    assert!(!sink.inside.load(SeqCst), "the drop returned during a step");
    let calls = sink.calls.load(SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        sink.calls.load(SeqCst),
        calls,
        "a dropped store was visited"
    );
}

/// Three stores (more than the shared threads) walking a 2^20-slot table at the longest
/// `lru_crawler sleep`, 1 s per lock hold (a pass takes 256 s), while a small store's item
/// expires: its walk reaps it within seconds, as with a thread of its own.
#[test]
fn stores_in_long_paced_walks_do_not_hold_up_another_stores_expiry() {
    let _one = serial();
    let slow: Vec<Store> = (0..3)
        .map(|_| {
            let s = Store::new(small().hash_power(20)).unwrap();
            s.set_crawler_sleep(1_000_000);
            s
        })
        .collect();
    // their paced walks begin with the first pass, a second after they were made
    std::thread::sleep(Duration::from_millis(1200));
    let quick = Store::new(small()).unwrap();
    set_expiring(&quick, "k");
    let t = Instant::now();
    assert!(
        within(6, || quick.stats().crawler_reclaimed == 1),
        "the expired item was not reaped while other stores walked"
    );
    assert!(slow.iter().all(|s| s.stats().lru_crawler_running));
    eprintln!("reaped after {:?}", t.elapsed());
}

/// Owns its store and lets it go when it hears of a crawl round: the store's last
/// reference then goes inside a background step of that store, on the shared thread.
struct Owner(Mutex<Option<Arc<Store>>>);

impl SysEventSink for Owner {
    fn wants_sysevents(&self) -> bool {
        true
    }
    fn sysevent(&self, _: &SysEvent) {
        let store = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(store);
    }
}

/// A store dropped on the shared thread by its own step (a sink holding its last
/// reference) does not wait for that step, which would never end (that step is its drop):
/// the thread goes on serving other stores.
#[test]
fn a_store_dropped_by_its_own_step_does_not_stop_the_shared_thread() {
    let _one = serial();
    let s = Arc::new(Store::new(small()).unwrap());
    let owner = Arc::new(Owner(Mutex::new(Some(s.clone()))));
    let sink: Arc<dyn SysEventSink> = owner.clone();
    s.add_sysevent_sink(Arc::downgrade(&sink));
    s.store(&StoreRequest::new(StoreMode::Set, b"a", b"v"))
        .unwrap();
    let gone = Arc::downgrade(&s);
    drop(s);
    assert!(
        within(5, || gone.upgrade().is_none()),
        "its own step did not drop the store"
    );
    let other = Store::new(small()).unwrap();
    set_expiring(&other, "k");
    assert!(
        within(6, || other.stats().crawler_reclaimed == 1),
        "the shared thread stopped"
    );
}
