//! What several test files share: a store on a manual clock, as the examples build theirs.

use ferrocache_core::{Clock, Config, Store};

/// The manual clock's start (unix seconds).
pub const T0: u32 = 1_700_000_000;

/// Two shards, no background thread, a manual clock starting at [`T0`].
pub fn store_with(memory: usize) -> (Store, Clock) {
    let clock = Clock::manual(T0);
    let s = Store::new(
        Config::default()
            .memory_limit(memory)
            .shards(2)
            .background(false)
            .clock(clock.clone()),
    )
    .unwrap();
    (s, clock)
}

/// [`store_with`] 16 MiB.
pub fn store() -> (Store, Clock) {
    store_with(16 << 20)
}
