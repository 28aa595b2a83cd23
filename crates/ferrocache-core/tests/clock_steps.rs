//! The wall clock stepping back (an NTP step; the engine reads `CLOCK_REALTIME_COARSE`): the
//! engine's time goes on from where it was, as memcached's monotonic clock, so a flush_all
//! after the step still hides what was stored before it and expired items stay expired.

use ferrocache_core::*;

#[path = "common/clocked.rs"]
mod clocked;

use clocked::{has, set, store_at};

const T0: u32 = 1_700_000_000;

fn store() -> (Store, Clock) {
    store_at(T0)
}

/// A read that does not bump (a bump would stamp the item with the time it reads).
fn peek(s: &Store, key: &[u8]) -> bool {
    let quiet = GetOptions {
        no_bump: true,
        ..GetOptions::default()
    };
    s.get(key, &quiet, |_| ()).is_some()
}

#[test]
fn a_flush_after_the_clock_stepped_back_hides_what_was_stored_before() {
    let (s, clock) = store();
    clock.advance(1000);
    set(&s, b"a", 0);
    clock.set(T0 + 10);
    s.flush_all(0);
    assert!(!has(&s, b"a"), "stored before the flush, kept after it");
    set(&s, b"b", 0);
    assert!(has(&s, b"b"), "stored after the flush");
    assert_eq!(s.stats().curr_items, 1);
}

#[test]
fn a_delayed_flush_after_the_clock_stepped_back_comes_on_time() {
    let (s, clock) = store();
    clock.advance(1000);
    set(&s, b"a", 0);
    clock.set(T0 + 10);
    s.flush_all(5);
    clock.advance(4);
    assert!(peek(&s, b"a"), "before the deadline");
    clock.advance(1);
    assert!(!has(&s, b"a"), "at the deadline, 5 s after the flush");
}

#[test]
fn expired_items_stay_expired_when_the_clock_steps_back() {
    let (s, clock) = store();
    set(&s, b"a", 10);
    set(&s, b"b", 20);
    clock.advance(15);
    assert_eq!(s.stats().curr_items, 2, "a not yet reaped");
    clock.set(T0 + 5);
    assert!(!has(&s, b"a"), "expired 5 s ago by the store's time");
    assert!(has(&s, b"b"));
    // time goes on from where it was: b has 5 s left
    assert_eq!(s.now(), T0 + 15);
    clock.advance(4);
    assert!(has(&s, b"b"));
    clock.advance(1);
    assert!(!has(&s, b"b"));
}

#[test]
fn time_goes_forward_with_the_clock_after_a_step_back() {
    let (s, clock) = store();
    clock.advance(100);
    assert_eq!(s.now(), T0 + 100);
    clock.set(T0 + 40);
    assert_eq!(s.now(), T0 + 100);
    clock.advance(3);
    assert_eq!(s.now(), T0 + 103);
    // a step forward is followed as it is
    clock.advance(86_400);
    assert_eq!(s.now(), T0 + 103 + 86_400);
    // a second behind (another thread's read from before a tick) moves nothing
    clock.set(T0 + 43 + 86_400 - 1);
    assert_eq!(s.now(), T0 + 103 + 86_400);
    clock.advance(1);
    assert_eq!(s.now(), T0 + 103 + 86_400);
    clock.advance(1);
    assert_eq!(s.now(), T0 + 104 + 86_400);
}

/// Threads reading the store's time while the clock keeps stepping back by a day: the
/// store's time must stay where it was, never jump ahead. A reader that reads the clock
/// before the step and the accumulated step after it would add the step twice, for good.
#[test]
fn readers_racing_clock_steps_never_move_time_ahead() {
    const DAY: u32 = 86_400;
    let (s, clock) = store();
    let s = std::sync::Arc::new(s);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut highest = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    highest = highest.max(s.now());
                }
                highest
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(400);
    let mut steps = 0u32;
    while std::time::Instant::now() < deadline && steps < 10_000 {
        steps += 1;
        clock.set(T0 - steps * DAY);
        // let a reader see the step before the next one
        for _ in 0..200 {
            std::hint::spin_loop();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        let highest = r.join().unwrap();
        assert!(
            highest <= T0,
            "the store's time moved {} s ahead",
            highest - T0
        );
    }
    assert_eq!(s.now(), T0);
}
