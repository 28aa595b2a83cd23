//! A hash table is allocated as zeroed memory, which the OS maps lazily, so a new table (at
//! start, and each time one grows) costs no time or resident memory until its slots are
//! used. Filling it with a non-zero "empty" pattern instead wrote the whole table at once:
//! a pause at every growth proportional to the table's size (measured in review: 7.5 ms at
//! 1M items in one shard, 17 ms at 2.5M), the very pause incremental growth is there to avoid.

use ferrocache_core::{Config, Store};

/// Resident set size of this process in bytes (Linux).
#[cfg(target_os = "linux")]
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[cfg(target_os = "linux")]
#[test]
fn a_new_table_is_not_written_until_used() {
    let before = rss();
    // one shard with 2^25 slots: a 256 MiB table
    let store = Store::new(Config::default().shards(1).hash_power(25).background(false)).unwrap();
    assert_eq!(store.stats().hash_bytes, 8 << 25);
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 64 << 20,
        "a new 256 MiB table made {} MiB resident at once",
        grown >> 20
    );
    drop(store);
}
