//! The eviction hook (`Store::add_eviction_sink`, what `watch evictions` is built on):
//! every LRU eviction reaches each registered sink that wants it exactly once, with the
//! item's key, fetched flag, ttl left, last access and class; nothing reaches a sink that
//! does not want evictions, a dropped sink, or a store with none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use ferrocache_core::eviction::{Eviction, EvictionSink};
use ferrocache_core::*;

/// key, fetched, ttl, last access, class, value length
type Seen = (Vec<u8>, bool, i64, u32, u32, usize);

#[derive(Default)]
struct Recorder {
    on: AtomicBool,
    seen: Mutex<Vec<Seen>>,
}

impl EvictionSink for Recorder {
    fn wants_evictions(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
    fn evicted(&self, e: &Eviction<'_>) {
        self.seen.lock().unwrap().push((
            e.key.to_vec(),
            e.fetched,
            e.ttl,
            e.last_access,
            e.class_id,
            e.value_len,
        ));
    }
}

const START: u32 = 1_700_000_000;

fn store(clock: &Clock) -> Store {
    Store::new(
        Config::default()
            .memory_limit(2 << 20)
            .shards(1)
            .slab_automove(false)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap()
}

fn set(s: &Store, key: &str, exptime: i64) {
    let value = [b'v'; 500];
    let mut req = StoreRequest::new(StoreMode::Set, key.as_bytes(), &value);
    req.exptime = exptime;
    s.store(&req).unwrap();
}

fn recorder(on: bool) -> Arc<Recorder> {
    let r = Arc::new(Recorder::default());
    r.on.store(on, Ordering::Relaxed);
    r
}

fn weak(r: &Arc<Recorder>) -> Weak<dyn EvictionSink> {
    let w: Weak<Recorder> = Arc::downgrade(r);
    w
}

#[test]
fn each_eviction_reaches_a_listening_sink_once() {
    let clock = Clock::manual(START);
    let s = store(&clock);
    let (on, off) = (recorder(true), recorder(false));
    assert!(s.add_eviction_sink(weak(&on)));
    assert!(!s.add_eviction_sink(weak(&on)), "registered twice");
    assert!(s.add_eviction_sink(weak(&off)));
    set(&s, "first", 1000);
    set(&s, "second", 0);
    clock.advance(7);
    for i in 0..6000 {
        set(&s, &format!("key{i}"), 0);
    }
    let evictions = s.stats().evictions;
    assert!(evictions > 1000, "the fill evicts ({evictions})");
    let seen = on.seen.lock().unwrap();
    assert_eq!(seen.len() as u64, evictions);
    assert!(off.seen.lock().unwrap().is_empty());
    // the oldest go first: the two set before the clock moved, with their ttl and age
    let class = seen[0].4;
    assert!(class > 0);
    assert_eq!(seen[0], (b"first".to_vec(), false, 993, 7, class, 500));
    assert_eq!(seen[1], (b"second".to_vec(), false, -1, 7, class, 500));
    assert_eq!(seen[2], (b"key0".to_vec(), false, -1, 0, class, 500));
    let mut keys: Vec<&[u8]> = seen.iter().map(|e| &e.0[..]).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), seen.len(), "each eviction once");
}

#[test]
fn a_fetched_item_is_reported_fetched() {
    let clock = Clock::manual(START);
    let s = store(&clock);
    let on = recorder(true);
    s.add_eviction_sink(weak(&on));
    set(&s, "read", 0);
    s.get(b"read", &GetOptions::default(), |_| ()).unwrap();
    for i in 0..8000 {
        set(&s, &format!("key{i}"), 0);
    }
    let seen = on.seen.lock().unwrap();
    let read = seen.iter().find(|e| e.0 == b"read").expect("evicted");
    assert!(read.1, "fetch=yes");
    assert_eq!(seen.iter().filter(|e| e.1).count(), 1);
}

#[test]
fn nothing_is_reported_without_a_sink_or_after_it_is_dropped() {
    let clock = Clock::manual(START);
    let s = store(&clock);
    for i in 0..6000 {
        set(&s, &format!("a{i}"), 0);
    }
    let before = s.stats().evictions;
    assert!(before > 0);
    let r = recorder(true);
    s.add_eviction_sink(weak(&r));
    for i in 0..100 {
        set(&s, &format!("b{i}"), 0);
    }
    let heard = r.seen.lock().unwrap().len() as u64;
    assert_eq!(heard, s.stats().evictions - before);
    assert!(heard > 0);
    // switched off: evictions go on, the sink hears none
    r.on.store(false, Ordering::Relaxed);
    for i in 0..100 {
        set(&s, &format!("c{i}"), 0);
    }
    assert_eq!(r.seen.lock().unwrap().len() as u64, heard);
    // a dropped sink is skipped and forgotten at the next registration
    drop(r);
    for i in 0..100 {
        set(&s, &format!("d{i}"), 0);
    }
    let next = recorder(true);
    assert!(s.add_eviction_sink(weak(&next)));
    let mark = s.stats().evictions;
    for i in 0..10 {
        set(&s, &format!("e{i}"), 0);
    }
    assert_eq!(
        next.seen.lock().unwrap().len() as u64,
        s.stats().evictions - mark
    );
}
