//! memcached 1.6.18's `flush_all <delay>` (`Store::flush_all_as_memcached`): its deadline is
//! `realtime(delay) - 1` and the items of that second go too, so `flush_all 1` hides at once
//! what was stored before and what is stored in the rest of the second, and `flush_all 2`
//! acts in the next second. The deadline the journal and replicas keep (and
//! `pending_flush_deadline` reports) stays the one the client asked for: the same items go.
//! The embedded `Store::flush_all` keeps its deadline as given.

use ferrocache_core::*;

mod common;

use common::{store, T0};

fn set(s: &Store, key: &str) {
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"v"))
        .unwrap();
}

fn has(s: &Store, key: &str) -> bool {
    s.get(key.as_bytes(), &GetOptions::default(), |_| ())
        .is_some()
}

#[test]
fn flush_all_1_hides_at_once_and_for_the_rest_of_the_second() {
    let (s, clock) = store();
    clock.advance(5);
    set(&s, "before");
    s.flush_all_as_memcached(1);
    assert!(!has(&s, "before"));
    set(&s, "same-second");
    assert!(
        !has(&s, "same-second"),
        "memcached: it->time <= oldest_live"
    );
    assert_eq!(s.pending_flush_deadline(), Some(T0 + 6));
    clock.advance(1);
    assert_eq!(s.pending_flush_deadline(), None);
    set(&s, "next-second");
    assert!(has(&s, "next-second"));
}

#[test]
fn flush_all_2_acts_in_the_next_second() {
    let (s, clock) = store();
    clock.advance(5);
    set(&s, "before");
    s.flush_all_as_memcached(2);
    set(&s, "same-second");
    assert!(has(&s, "before") && has(&s, "same-second"));
    clock.advance(1);
    assert!(!has(&s, "before") && !has(&s, "same-second"));
    set(&s, "deadline-minus-one");
    assert!(!has(&s, "deadline-minus-one"));
    assert_eq!(
        s.pending_flush_deadline(),
        Some(T0 + 7),
        "the deadline asked for"
    );
    clock.advance(1);
    set(&s, "at-deadline");
    assert!(has(&s, "at-deadline"));
    assert_eq!(s.pending_flush_deadline(), None);
}

#[test]
fn the_embedded_flush_all_keeps_its_deadline() {
    let (s, clock) = store();
    clock.advance(5);
    set(&s, "before");
    s.flush_all(2);
    clock.advance(1);
    assert!(has(&s, "before"));
    clock.advance(1);
    assert!(!has(&s, "before"));
}

/// Counts the flushes a journal is told of.
struct FlushCount(std::sync::atomic::AtomicU32);

impl journal::Journal for FlushCount {
    fn record(&self, r: &journal::Record<'_>) {
        if matches!(r, journal::Record::Flush { .. }) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[test]
fn a_unix_time_before_the_start_hides_nothing_and_is_not_logged() {
    // memcached: realtime() of a time up to process_started + 1 (start - 61 s) is 1, its
    // mark 0: no flush (`flush_all 2592001` measured against 1.6.18)
    let (s, clock) = store();
    let log = std::sync::Arc::new(FlushCount(Default::default()));
    s.set_journal(log.clone());
    clock.advance(5);
    set(&s, "kept");
    for past in [2_592_001, T0 as i64 - 61] {
        s.flush_all_as_memcached(past);
        assert!(has(&s, "kept"), "{past}");
    }
    assert_eq!(s.stats().cmd_flush, 2, "counted as memcached counts it");
    assert_eq!(log.0.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(s.pending_flush_deadline(), None);
    // a second later it is a time in the past: everything goes at once
    s.flush_all_as_memcached(T0 as i64 - 60);
    assert!(!has(&s, "kept"));
    assert_eq!(log.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    // the embedded flush keeps taking any past time as now
    set(&s, "embedded");
    s.flush_all(2_592_001);
    assert!(!has(&s, "embedded"));
}

/// Counts the cancels of a pending flush a journal is told of.
struct CancelCount(std::sync::atomic::AtomicU32);

impl journal::Journal for CancelCount {
    fn record(&self, r: &journal::Record<'_>) {
        if matches!(r, journal::Record::FlushCancel) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[test]
fn a_unix_time_before_the_start_drops_a_pending_delayed_flush() {
    // memcached 1.6.18 (measured): `flush_all 2`, `flush_all 2592001`, three seconds later
    // both items stored before are still there; its mark became 0
    let (s, clock) = store();
    let log = std::sync::Arc::new(CancelCount(Default::default()));
    s.set_journal(log.clone());
    clock.advance(5);
    set(&s, "kept");
    s.flush_all_as_memcached(2);
    assert!(s.pending_flush_deadline().is_some());
    s.flush_all_as_memcached(2_592_001);
    assert_eq!(s.pending_flush_deadline(), None);
    assert_eq!(log.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    clock.advance(3);
    set(&s, "later");
    assert!(has(&s, "kept") && has(&s, "later"));
    // nothing pending: nothing to log
    s.flush_all_as_memcached(2_592_001);
    assert_eq!(log.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    // a flush already in effect stays (memcached would un-hide what it has not reaped)
    s.flush_all_as_memcached(0);
    s.flush_all_as_memcached(2_592_001);
    assert!(!has(&s, "kept"));
    assert_eq!(s.stats().cmd_flush, 5);
}

#[test]
fn a_flush_whose_mark_is_not_ahead_uses_up_a_cas_as_memcached() {
    // memcached 1.6.18 takes a CAS value (oldest_cas = get_cas_id()) whenever its mark,
    // realtime(delay) - 1, is at or before now: `flush_all 1` and a unix time before its
    // start (mark 0) too, not only an immediate flush (measured: set, gets c1, `flush_all
    // 2592001`, set, gets c3; `flush_all 1` likewise; `flush_all 2` c+1). Found by the
    // client-library differential run (pymemcache, its reset's `flush_all 2592001`).
    let (s, clock) = store();
    clock.advance(5);
    let cas = |s: &Store, key: &str| {
        s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), b"v"))
            .unwrap()
            .cas
    };
    let first = cas(&s, "a");
    s.flush_all_as_memcached(2_592_001);
    assert_eq!(cas(&s, "b"), first + 2, "a unix time before the start");
    s.flush_all_as_memcached(1);
    assert_eq!(cas(&s, "c"), first + 4, "flush_all 1");
    clock.advance(1);
    s.flush_all_as_memcached(2);
    assert_eq!(
        cas(&s, "d"),
        first + 5,
        "flush_all 2: its mark is ahead, no CAS"
    );
    s.flush_all_as_memcached(0);
    assert_eq!(cas(&s, "e"), first + 7, "immediate");
}
