//! flush_all after ~776 days of uptime, where item times (26 bits of seconds since the store
//! started) saturate: the lazy immediate flush must still hide only the items stored before
//! it, and a delayed one only those present when it was sent, never the items stored after
//! (which would all be dead at once, for good: a cache that stores nothing).

mod common;

use common::store;
use ferrocache_core::*;

/// Past the items' saturated time (2^26 s, ~776 days).
const LONG_UPTIME: u32 = 1 << 26;

fn set(s: &Store, key: &str, value: &[u8]) {
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), value))
        .unwrap();
}

fn get(s: &Store, key: &str) -> Option<Vec<u8>> {
    s.get(key.as_bytes(), &GetOptions::default(), |v| v.value.to_vec())
}

#[test]
fn after_long_uptime_an_immediate_flush_hides_only_the_items_stored_before_it() {
    let (s, clock) = store();
    set(&s, "early", b"0");
    clock.advance(LONG_UPTIME);
    set(&s, "old", b"1");
    clock.advance(5);
    s.flush_all(0);
    set(&s, "same-second", b"2");
    assert_eq!(get(&s, "early"), None);
    assert_eq!(get(&s, "old"), None);
    assert_eq!(get(&s, "same-second"), Some(b"2".to_vec()));
    clock.advance(3);
    set(&s, "later", b"3");
    assert_eq!(get(&s, "later"), Some(b"3".to_vec()));
    assert_eq!(get(&s, "same-second"), Some(b"2".to_vec()));
    assert_eq!(s.stats().get_flushed, 2);
}

#[test]
fn after_long_uptime_a_delayed_flush_hides_the_items_present_and_not_later_ones() {
    let (s, clock) = store();
    clock.advance(LONG_UPTIME + 10);
    set(&s, "old", b"1");
    s.flush_all(10);
    assert_eq!(get(&s, "old"), Some(b"1".to_vec()), "before the deadline");
    clock.advance(11);
    assert_eq!(get(&s, "old"), None, "after the deadline");
    set(&s, "after", b"2");
    assert_eq!(get(&s, "after"), Some(b"2".to_vec()));
    clock.advance(100);
    set(&s, "much-later", b"3");
    assert_eq!(get(&s, "much-later"), Some(b"3".to_vec()));
}

#[test]
fn before_the_saturation_a_delayed_flush_still_hides_what_was_stored_until_its_deadline() {
    let (s, clock) = store();
    clock.advance(1000);
    s.flush_all(10);
    clock.advance(5);
    set(&s, "in-between", b"1");
    clock.advance(6);
    assert_eq!(get(&s, "in-between"), None);
    set(&s, "after", b"2");
    assert_eq!(get(&s, "after"), Some(b"2".to_vec()));
}
