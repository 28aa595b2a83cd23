//! After the wall clock stepped back the store's time is ahead of the clock by the step
//! (tests/clock_steps.rs). What leaves the store (the log, snapshots, a replica's stream)
//! carries the clock's unix seconds: the log's writer reads the clock, and a restart's time
//! starts at the clock again.

use ferrocache_core::aof::{self, Fsync};
use ferrocache_core::snapshot;
use ferrocache_core::*;

#[path = "common/clocked.rs"]
mod clocked;
mod common;
#[path = "common/disk.rs"]
mod disk;

use clocked::{has, set, store_at};
use common::{store, T0};
use disk::TempDir;

/// Steps `clock` back by `by` seconds and lets the store see it.
fn step_back(s: &Store, clock: &Clock, by: u32) {
    let before = s.now();
    clock.set(clock.now() - by);
    assert_eq!(s.now(), before, "the store's time does not go back");
}

#[test]
fn a_snapshot_after_a_step_back_keeps_each_items_time_left() {
    let dir = TempDir::new("clock-snapshot");
    {
        let (s, clock) = store();
        set(&s, b"k", 100);
        step_back(&s, &clock, 50);
        snapshot::save(&s, dir.path(), 1, None).unwrap();
    }
    // restarted at the clock's time, 100 s left of the item's life as before the restart
    let (s, clock) = store_at(T0 - 50);
    snapshot::load(&s, dir.path(), false).unwrap();
    clock.set(T0 + 49);
    assert!(has(&s, b"k"), "1 s left");
    clock.set(T0 + 51);
    assert!(!has(&s, b"k"), "lived 50 s past its ttl");
}

#[test]
fn a_logged_delayed_flush_after_a_step_back_is_marked_when_it_acted() {
    let dir = TempDir::new("clock-aof");
    {
        let (s, clock) = store();
        let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
        step_back(&s, &clock, 100);
        set(&s, b"before", 0);
        s.flush_all(10);
        clock.advance(20);
        assert!(!has(&s, b"before"), "the flush acted");
        set(&s, b"after", 0);
        assert!(has(&s, b"after"));
    }
    // replayed at the clock's time: the flush's mark comes before the set that followed it
    let (s, clock) = store_at(T0 - 80);
    let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
    assert!(!has(&s, b"before"));
    clock.set(T0 + 20);
    assert!(
        has(&s, b"after"),
        "set after the flush acted, flushed by the replay"
    );
}

#[test]
fn a_logged_items_exptime_after_a_step_back_keeps_its_time_left() {
    let dir = TempDir::new("clock-aof-exptime");
    {
        let (s, clock) = store();
        let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
        step_back(&s, &clock, 50);
        set(&s, b"k", 100);
    }
    let (s, clock) = store_at(T0 - 50);
    let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
    clock.set(T0 + 49);
    assert!(has(&s, b"k"), "1 s left");
    clock.set(T0 + 51);
    assert!(!has(&s, b"k"), "lived 50 s past its ttl");
}

#[test]
fn a_logged_delayed_flush_pending_across_a_step_back_is_marked_when_it_acted() {
    let dir = TempDir::new("clock-aof-across");
    {
        let (s, clock) = store();
        let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
        set(&s, b"before", 0);
        s.flush_all(10);
        step_back(&s, &clock, 100);
        clock.advance(20);
        assert!(!has(&s, b"before"), "the flush acted");
        set(&s, b"after", 0);
        // past the deadline by the clock too: the log's mark must not come only now
        clock.advance(100);
        set(&s, b"later", 0);
        assert!(has(&s, b"after"));
    }
    let (s, _clock) = store_at(T0 + 21);
    let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
    assert!(!has(&s, b"before"));
    assert!(has(&s, b"later"));
    assert!(
        has(&s, b"after"),
        "set after the flush acted, flushed by the replay"
    );
}

/// A delayed flush still pending when the clock steps back, then a restart: the replay acts
/// on it when the store would have (by the clock: the step's seconds earlier than the
/// second the log first recorded), not the step's seconds late.
#[test]
fn a_restart_after_a_step_back_acts_on_a_pending_flush_when_the_store_would_have() {
    for (restart_after, due) in [(15, true), (5, false)] {
        let dir = TempDir::new("clock-aof-pending-restart");
        {
            let (s, clock) = store();
            let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
            set(&s, b"before", 0);
            s.flush_all(10);
            step_back(&s, &clock, 100);
            set(&s, b"mid", 0);
        }
        // restarted `restart_after` s after the flush (sent with a delay of 10 s)
        let (s, clock) = store_at(T0 - 100 + restart_after);
        let (_aof, _) = aof::open(&s, dir.path(), Fsync::Always).unwrap();
        assert_eq!(has(&s, b"before"), !due, "{restart_after} s: before");
        assert_eq!(has(&s, b"mid"), !due, "{restart_after} s: mid");
        clock.set(T0 - 100 + 11);
        assert!(!has(&s, b"before") && !has(&s, b"mid"), "{restart_after} s");
        set(&s, b"after", 0);
        clock.advance(200);
        assert!(
            has(&s, b"after"),
            "{restart_after} s: set after the flush acted"
        );
    }
}
