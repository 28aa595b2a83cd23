//! A plain store and string-keyed `set`/`value`, for tests about what files bring back.
#![allow(dead_code)]

use ferrocache_core::{Config, GetOptions, Store, StoreMode, StoreRequest};

/// 64 MiB, no background thread: nothing changes but what the test does.
pub fn store() -> Store {
    Store::new(Config::default().memory_limit(64 << 20).background(false)).unwrap()
}

pub fn set(s: &Store, key: &str, value: &[u8]) {
    s.store(&StoreRequest::new(StoreMode::Set, key.as_bytes(), value))
        .unwrap();
}

pub fn value(s: &Store, key: &str) -> Option<Vec<u8>> {
    s.get(key.as_bytes(), &GetOptions::default(), |it| {
        it.value.to_vec()
    })
}
