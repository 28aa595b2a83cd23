//! The engine's read path on one thread, the way `getSync` and the server use it: 16-byte
//! keys, 100-byte values, keys read in a random order so the hash table and the items miss
//! the CPU cache. `cargo run --release -p ferrocache-core --example lookup [ops [keys]]`
//!
//! Prints ns per operation for get-only and 90% get / 10% set over 100k and 1M keys (or the
//! key count given second), with the value copied out as a reply would. For repeatable
//! comparisons run small figures under `valgrind --tool=cachegrind --cache-sim=yes` and
//! compare instructions and data-cache misses.

use ferrocache_core::*;
use std::time::Instant;

fn set(s: &Store, key: &[u8], value: &[u8]) {
    let r = StoreRequest {
        mode: StoreMode::Set,
        key,
        value,
        flags: 0,
        exptime: 0,
        cas: None,
        invalidate: false,
        new_cas: None,
        vivify: None,
    };
    s.store(&r).unwrap();
}

/// xorshift64: the same pseudo-random key order on every run.
fn order(n: usize, ops: usize) -> Vec<u32> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..ops)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as u32
        })
        .collect()
}

fn run(keys: usize, ops: usize) {
    let s = Store::new(Config::default().memory_limit(1 << 30).background(false)).unwrap();
    let names: Vec<[u8; 16]> = (0..keys)
        .map(|i| {
            let mut k = [0u8; 16];
            k.copy_from_slice(format!("key:{i:012}").as_bytes());
            k
        })
        .collect();
    let value = [b'v'; 100];
    for k in &names {
        set(&s, k, &value);
    }
    let idx = order(keys, ops);
    let mut out = Vec::with_capacity(256);
    for (name, set_every) in [("get", 0usize), ("90% get / 10% set", 10)] {
        // one warm-up pass over the same order, so LRU segments reach their steady state
        for pass in 0..2 {
            let t = Instant::now();
            let mut hits = 0usize;
            for (i, &k) in idx.iter().enumerate() {
                let key = &names[k as usize];
                if set_every != 0 && i % set_every == 0 {
                    set(&s, key, &value);
                } else {
                    hits += s
                        .get(key, &GetOptions::default(), |v| {
                            out.clear();
                            out.extend_from_slice(v.value);
                        })
                        .is_some() as usize;
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / ops as f64;
            assert!(hits > 0);
            if pass == 1 {
                println!("{keys:>8} keys  {name:<18} {ns:>7.1} ns/op");
            }
        }
    }
}

fn main() {
    let ops = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("ops: a number"))
        .unwrap_or(4_000_000);
    let keys: Vec<usize> = match std::env::args().nth(2) {
        Some(k) => vec![k.parse().expect("keys: a number")],
        None => vec![100_000, 1_000_000],
    };
    for keys in keys {
        run(keys, ops);
    }
}
