//! A store on a manual clock started where a test wants it, and the two item operations the
//! clock-step tests use.
#![allow(dead_code)]

use ferrocache_core::*;

/// A store (restarted, or started) with a manual clock at `at`; default shards and memory.
pub fn store_at(at: u32) -> (Store, Clock) {
    let clock = Clock::manual(at);
    let s = Store::new(Config::default().background(false).clock(clock.clone())).unwrap();
    (s, clock)
}

/// Sets `key` to "v" with `exptime` (memcached's seconds).
pub fn set(s: &Store, key: &[u8], exptime: i64) {
    let r = StoreRequest {
        exptime,
        ..StoreRequest::new(StoreMode::Set, key, b"v")
    };
    s.store(&r).unwrap();
}

/// Whether a get finds `key`.
pub fn has(s: &Store, key: &[u8]) -> bool {
    s.get(key, &GetOptions::default(), |_| ()).is_some()
}
