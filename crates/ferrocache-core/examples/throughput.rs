//! Engine throughput without Node: `cargo run --release --example throughput`.
//! 100k keys, 100-byte values; get-only, set-only and 90/10 mixes, on 1 and 2 threads.

use ferrocache_core::*;
use std::sync::Arc;
use std::time::Instant;

const KEYS: usize = 100_000;
const OPS: usize = 5_000_000;

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

fn run(name: &str, s: &Arc<Store>, threads: usize, keys: &Arc<Vec<Vec<u8>>>, set_every: usize) {
    let t = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|th| {
            let (s, keys) = (s.clone(), keys.clone());
            std::thread::spawn(move || {
                let value = [b'v'; 100];
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ th as u64;
                let mut sink = 0usize;
                for i in 0..OPS / threads {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = &keys[(x % KEYS as u64) as usize];
                    if set_every != 0 && i % set_every == 0 {
                        set(&s, k, &value);
                    } else {
                        sink += s
                            .get(k, &GetOptions::default(), |v| v.value.len())
                            .unwrap_or(0);
                    }
                }
                sink
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{name:<28} {threads} thread(s): {:>6.2} M ops/s",
        OPS as f64 / secs / 1e6
    );
}

fn main() {
    let s = Arc::new(Store::new(Config::default().background(false)).unwrap());
    let keys: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..KEYS)
            .map(|i| format!("key:{i:012}").into_bytes())
            .collect(),
    );
    for k in keys.iter() {
        set(&s, k, &[b'v'; 100]);
    }
    for threads in [1, 2] {
        run("get", &s, threads, &keys, 0);
        run("90% get / 10% set", &s, threads, &keys, 10);
        run("set", &s, threads, &keys, 1);
    }
}
